"""The dispatcher's suggestion: which agencies a request may be offered to (dispatchable,
authorized for the line and type, an approved area covering the address, not excluded), in
which order (distance band, open load, grade, certified engineers, code), with the reasons;
one query whatever the number of candidates; the latest published grade from evaluation; the
partial in Chinese and English."""
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import render_template_string
from flask_babel import force_locale
from sqlalchemy import select

from certification.models import EngineerStatus
from dispatch import suggest
from dispatch.coverage import Coverage, CoverageStatus
from dispatch.requests import ServiceRequest
from dispatch.suggest import Suggestion, suggestions
from evaluation.dispatch_grades import latest_grades
from evaluation.models import Quarter, Result
from portal import clock
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import AgencyProductLine, AgencyStatus, Province
from tests.certification.factories import get_program, make_certificate, make_engineer
from tests.factories import make_agency, make_product_line
from tests.service.factories import make_order

CITY, DISTRICT = "深圳市", "南山区"


@pytest.fixture
def grades():
    """The evaluation area's grade source registered (as its init does), restored after."""
    before = suggest.registered_grade_source()
    suggest.grade_source(latest_grades)
    yield
    suggest.grade_source(before)


@pytest.fixture
def no_grades():
    before = suggest.registered_grade_source()
    suggest.grade_source(None)
    yield
    suggest.grade_source(before)


class Net:
    """A province with the request's city, and agencies placed in it by `agency()`."""

    def __init__(self, world):
        self.world, self.line = world, world.line
        self.province = Province(code="SZ-T", name_zh="广东", name_en="Guangdong",
                                 region_id=world.region1.id)
        db.session.add(self.province)
        db.session.flush()
        self.quarters: dict = {}

    def agency(self, code, *, status=AgencyStatus.ACTIVE, lines=None, city=CITY,
               areas=("",), area_status=CoverageStatus.APPROVED, service_types=None,
               engineers=0, certified=0, open_orders=0):
        """An agency of the city with approved areas (district names, '' the whole city) for
        the line and on-site repair, its engineers (the first `certified` hold a valid
        certificate for the line), and its open work orders."""
        lines = [self.line] if lines is None else lines
        agency = make_agency(self.world.region1, code, product_lines=lines)
        agency.province_id, agency.city = self.province.id, city
        if service_types is not None:
            agency.service_types = service_types
        for district in areas:
            row = Coverage(agency_id=agency.id, province_id=self.province.id, city=city,
                           district=district, product_line_id=self.line.id,
                           service_type="onsite", status=area_status,
                           reason="no" if area_status == CoverageStatus.REJECTED else "")
            db.session.add(row)
        program = get_program(self.line, 1)
        for n in range(engineers):
            engineer = make_engineer(agency, lines=[self.line])
            if n < certified:
                make_certificate(engineer, program)
        for _n in range(open_orders):
            make_order(agency, self.line)
        agency.status = status  # after its orders: a suspended agency keeps its open work
        db.session.flush()
        return agency

    def grade(self, agency, grade, *, year=2024, quarter=1, quarter_status="published",
              status="published", score=None):
        key = (year, quarter)
        if key not in self.quarters:
            now = clock.now()
            row = Quarter(year=year, quarter=quarter, scheme_id=1, status=quarter_status,
                          agency_count=1,
                          published_at=None if quarter_status == "draft" else now,
                          appeal_deadline_at=now + timedelta(days=7))
            db.session.add(row)
            db.session.flush()
            self.quarters[key] = row
        score = score if score is not None else {"A": Decimal("95.00"), "B": Decimal("85.00"),
                                                 "C": Decimal("70.00"), "D": Decimal("50.00"),
                                                 None: None}[grade]
        db.session.add(Result(agency_id=agency.id, quarter_id=self.quarters[key].id,
                              region_id=agency.region_id, tier_at=agency.tier,
                              agency_status_at=agency.status, score=score, grade=grade,
                              status=status,
                              finalized_at=clock.now() if status == "final" else None))
        db.session.flush()

    def request(self, *, district=DISTRICT, city=CITY, line=None, service_type="onsite"):
        """The request as the suggestion reads it (a transient row: only its area, line and
        type matter)."""
        line = line or self.line
        return ServiceRequest(province_id=self.province.id, city=city, district=district,
                              product_line_id=line.id, service_type=service_type)


@pytest.fixture
def net(ctx, world):
    with unscoped("the test builds a network of one city"):
        yield Net(world)


def _codes(rows: list[Suggestion]) -> list[str]:
    return [s.agency_code for s in rows]


def _suggest(request, **kw) -> list[Suggestion]:
    with unscoped("the dispatcher (HQ) reads the network"):
        return suggestions(request, **kw)


# --- who is a candidate -------------------------------------------------------------------


def test_only_dispatchable_authorized_agencies_with_an_approved_area_there_are_suggested(
        net, no_grades):
    other_line = make_product_line()
    net.agency("OK-CITY")
    net.agency("OK-DISTRICT", areas=(DISTRICT,))
    net.agency("OK-PROBATION", status=AgencyStatus.PROBATION)
    net.agency("NO-SUSPENDED", status=AgencyStatus.SUSPENDED)
    net.agency("NO-APPLICANT", status=AgencyStatus.APPLICANT)
    net.agency("NO-TERMINATED", status=AgencyStatus.TERMINATED)
    # Approved once, then the line's authorization was taken away.
    net.agency("NO-LINE", lines=[other_line])
    net.agency("NO-TYPE", service_types="carry_in,phone")
    net.agency("NO-PROPOSED", area_status=CoverageStatus.PROPOSED)
    net.agency("NO-REJECTED", area_status=CoverageStatus.REJECTED)
    net.agency("NO-WITHDRAWN", area_status=CoverageStatus.WITHDRAWN)
    net.agency("NO-CITY", city="广州市")
    net.agency("NO-DISTRICT", areas=("福田区",))
    assert sorted(_codes(_suggest(net.request()))) == ["OK-CITY", "OK-DISTRICT",
                                                       "OK-PROBATION"]


def test_the_area_line_and_type_of_the_request_are_matched(net, no_grades):
    net.agency("CITY")
    net.agency("FUTIAN", areas=("福田区",))
    assert _codes(_suggest(net.request(district="福田区"))) == ["FUTIAN", "CITY"]
    assert _codes(_suggest(net.request(service_type="carry_in"))) == []
    other_line = make_product_line()
    assert _codes(_suggest(net.request(line=other_line))) == []
    assert _codes(_suggest(net.request(city="广州市"))) == []


def test_excluded_agencies_are_left_out_as_ids_or_as_a_subquery(net, no_grades):
    a, b = net.agency("EX-A"), net.agency("EX-B")
    net.agency("EX-C")
    assert _codes(_suggest(net.request(), exclude_agency_ids=[a.id, None])) == ["EX-B", "EX-C"]
    assert _codes(_suggest(net.request(), exclude_agency_ids=[])) == ["EX-A", "EX-B", "EX-C"]
    # As the offers will pass it: a SELECT of agency ids (a NULL in it excludes nobody else).
    refused = select(AgencyProductLine.agency_id).where(
        AgencyProductLine.agency_id.in_([a.id, b.id]))
    assert _codes(_suggest(net.request(), exclude_agency_ids=refused)) == ["EX-C"]


def test_an_agency_covering_both_the_city_and_the_district_ranks_in_the_district_band(
        net, no_grades):
    net.agency("BOTH", areas=("", DISTRICT))
    [row] = _suggest(net.request())
    assert row.band == 1


# --- the order and the reasons --------------------------------------------------------------


def test_ranked_by_band_then_load_then_grade_then_certified_engineers_then_code(net, grades):
    # The district band first, however loaded.
    net.agency("Z-NEAR", areas=(DISTRICT,), engineers=1, open_orders=2)
    # Whole city: load 0.00, 0.50, 1.00 (three ways to 1.00), 2.00.
    idle = net.agency("C-IDLE", engineers=2)
    half = net.agency("C-HALF", engineers=2, open_orders=1)
    graded_a = net.agency("C-ONE-A", engineers=1, open_orders=1)
    net.agency("C-ONE-NONE", engineers=0, open_orders=1)  # no engineer: capacity 1
    graded_b = net.agency("C-ONE-B", engineers=1, open_orders=1)
    graded_b2 = net.agency("C-ONE-B2", engineers=2, certified=2, open_orders=2)
    net.agency("C-TWO", engineers=1, open_orders=2)
    net.grade(graded_a, "A")
    net.grade(graded_b, "B")
    net.grade(graded_b2, "B")
    net.grade(idle, "D")
    net.grade(half, "C")
    rows = _suggest(net.request())
    assert _codes(rows) == ["Z-NEAR", "C-IDLE", "C-HALF", "C-ONE-A", "C-ONE-B2", "C-ONE-B",
                            "C-ONE-NONE", "C-TWO"]
    assert [r.band for r in rows] == [1, 2, 2, 2, 2, 2, 2, 2]
    assert [r.load for r in rows] == [Decimal("2.00"), Decimal("0.00"), Decimal("0.50"),
                                      Decimal("1.00"), Decimal("1.00"), Decimal("1.00"),
                                      Decimal("1.00"), Decimal("2.00")]
    assert [r.grade for r in rows] == [None, "D", "C", "A", "B", "B", None, None]


def test_ties_go_to_more_certified_engineers_then_to_the_code(net, no_grades):
    net.agency("T-B", engineers=3, certified=1)
    net.agency("T-A", engineers=3, certified=1)
    net.agency("T-C", engineers=3, certified=3)
    assert _codes(_suggest(net.request())) == ["T-C", "T-A", "T-B"]


def test_the_reasons_are_shown_with_each_agency(net, grades):
    agency = net.agency("R-ONE", areas=(DISTRICT,), engineers=4, certified=2, open_orders=5)
    # Neither a left engineer nor an expired certificate counts.
    left = make_engineer(agency, lines=[net.line], status=EngineerStatus.LEFT)
    make_certificate(left, get_program(net.line, 1))
    expired = make_engineer(agency, lines=[net.line])
    make_certificate(expired, get_program(net.line, 1),
                     valid_from=clock.local_today() - timedelta(days=800),
                     valid_to=clock.local_today() - timedelta(days=1))
    net.grade(agency, "B", score=Decimal("86.50"))
    [row] = _suggest(net.request())
    assert row == Suggestion(
        agency_id=agency.id, agency_code="R-ONE", agency_name=agency.legal_name,
        region_zh=net.world.region1.name_zh, region_en=net.world.region1.name_en, band=1,
        open_orders=5, engineers=5, capacity=5, load=Decimal("1.00"), grade="B",
        score=Decimal("86.50"), certified_engineers=2)
    assert row.region_name("zh_CN") == net.world.region1.name_zh


def test_the_limit_keeps_the_best(net, no_grades):
    for n in range(5):
        net.agency(f"L-{n}")
    assert _codes(_suggest(net.request(), limit=2)) == ["L-0", "L-1"]


def test_one_query_whatever_the_number_of_candidates(net, grades, query_counter):
    first = net.agency("Q-0", engineers=1, certified=1, open_orders=1)
    net.grade(first, "A")
    with query_counter:
        assert len(_suggest(net.request())) == 1
    few = query_counter.count
    for n in range(1, 8):
        agency = net.agency(f"Q-{n}", areas=("", DISTRICT), engineers=2, certified=1,
                            open_orders=n % 3)
        net.grade(agency, "ABCD"[n % 4])
    with query_counter:
        assert len(_suggest(net.request(), exclude_agency_ids=[first.id])) == 7
    assert few == query_counter.count == 1


# --- the grade: evaluation's latest published result -----------------------------------------


def test_the_grade_is_the_latest_published_one_and_null_without_a_source(net, grades):
    agency = net.agency("G-ONE")
    net.grade(agency, "C", year=2024, quarter=1, status="final")
    net.grade(agency, "A", year=2024, quarter=2)                      # latest published
    net.grade(agency, None, year=2024, quarter=3)                     # published, no grade
    net.grade(agency, "D", year=2024, quarter=4, quarter_status="draft", status="draft")
    [row] = _suggest(net.request())
    assert (row.grade, row.score) == ("A", Decimal("95.00"))
    suggest.grade_source(None)
    [row] = _suggest(net.request())
    assert (row.grade, row.score) == (None, None)


def test_only_a_draft_grade_is_no_grade(net, grades):
    agency = net.agency("G-DRAFT")
    net.grade(agency, "A", year=2023, quarter=4, quarter_status="draft", status="draft")
    [row] = _suggest(net.request())
    assert row.grade is None


def test_latest_grades_has_one_row_per_graded_agency(net):
    one, two = net.agency("LG-1"), net.agency("LG-2")
    net.grade(one, "B", year=2023, quarter=3)
    net.grade(one, "A", year=2024, quarter=1, status="appealed")
    net.grade(two, "C", year=2023, quarter=3, status="final")
    rows = db.session.execute(latest_grades().where(Result.agency_id.in_([one.id, two.id]))
                              .order_by(Result.agency_id)).all()
    assert [(r.agency_id, r.grade) for r in rows] == [(one.id, "A"), (two.id, "C")]


# --- the partial ----------------------------------------------------------------------------

PARTIAL = ('{% from "dispatch/_suggestions.html" import suggestions_table %}'
           '{% call(s) suggestions_table(rows) %}'
           '<button data-agency="{{ s.agency_id }}">OFFER</button>{% endcall %}')


@pytest.mark.parametrize("locale,expected", [
    ("en", ["Agency", "Region", "Area match", "Open load", "Certified engineers",
            "5 / 3 engineers", "Covers the district", "Covers the whole city", "No grade yet"]),
    ("zh_CN", ["服务网点", "大区", "等级"]),
])
def test_the_partial_renders_the_reasons_and_a_place_for_the_offer(net, grades, locale,
                                                                   expected):
    near = net.agency("P-NEAR", areas=(DISTRICT,), engineers=3, certified=1, open_orders=5)
    net.agency("P-CITY")
    net.grade(near, "B")
    rows = _suggest(net.request())
    with force_locale(locale):
        html = render_template_string(PARTIAL, rows=rows)
    for text in expected:
        assert text in html
    region = net.world.region1
    assert (region.name_zh if locale == "zh_CN" else region.name_en) in html
    assert f'data-agency="{near.id}"' in html and "P-NEAR" in html and "P-CITY" in html
    assert html.index("P-NEAR") < html.index("P-CITY")


def test_the_partial_says_when_nobody_covers_the_address(ctx):
    html = render_template_string(
        '{% from "dispatch/_suggestions.html" import suggestions_table %}'
        '{{ suggestions_table([]) }}')
    assert 'id="suggestions-none"' in html and "<table" not in html


# --- the synthetic network (bench/suggest.py) ------------------------------------------------


def test_the_synthetic_network_has_areas_and_waiting_calls_to_suggest_for(app, _transaction,
                                                                         no_grades):
    from dispatch import synth as dispatch_synth  # registers the generator
    from portal import synth

    with app.test_request_context():
        net = synth.build_network(synth.Sizes(agencies=8, orders=80, engineers=40,
                                              quarters=0), seed=11, commit=False,
                                  run_jobs=False)
        with unscoped("the test reads the synthetic network"):
            requests = list(db.session.scalars(select(ServiceRequest).where(
                ServiceRequest.number.like(f"{net.tag}-SR%")).order_by(ServiceRequest.id)))
            assert len(requests) == dispatch_synth.request_count(8)
            statuses = set(db.session.scalars(select(Coverage.status).join(
                Coverage.agency).where(Coverage.agency_id.in_(
                    select(AgencyProductLine.agency_id)))))
            assert CoverageStatus.APPROVED in statuses
            found = [suggestions(r) for r in requests]
            assert not dispatch_synth.top_up(net.tag)  # built with it: nothing to add
    assert sum(1 for rows in found if rows) > len(requests) // 2
    assert all(row.band in (1, 2) for rows in found for row in rows)
