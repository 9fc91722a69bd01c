"""The charts of the home pages (issue #16): each chart's figures match the data of a small
network, read back from the table under the chart; months are the network's local ones; a
regional manager sees their region only and an agency its own rows; the owner's money is
labelled, with the labor lost to uncertified engineers as its own figure and link.
"""
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from flask import g
from sqlalchemy import select

from evaluation.models import Quarter, Result, Scheme, ServiceLevel
from portal import clock
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import OrderStatus, WorkOrder
from settlement.models import Claim, Settlement, SettlementLine
from tenants.models import AgencyStatus
from tests.factories import build_world, make_agency, make_user, signed_in
from tests.settlement import factories as sf

D = Decimal
SHANGHAI = "Asia/Shanghai"


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clock.local_zone())


# --- reading a chart back from the page -----------------------------------------------------------


def chart_table(page: str, title: str) -> dict[str, list[str]]:
    """{row label: [cells]} of the table under the chart captioned `title` (the macro's
    fallback), with the header row under the key ""."""
    figures = re.findall(r'<figure class="portal-chart[^"]*">(.*?)</figure>', page, re.DOTALL)
    found = [f for f in figures if unescape(re.search(
        r"<figcaption[^>]*>(.*?)</figcaption>", f, re.DOTALL).group(1)).strip() == title]
    assert found, f"no chart {title!r} in the page"
    figure = found[0]
    assert "data:image/svg+xml;base64," in figure  # the image itself
    table = {"": [unescape(h).strip() for h in re.findall(r"<th scope=\"col\">(.*?)</th>",
                                                         figure, re.DOTALL)][1:]}
    for row in re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", figure, re.DOTALL):
        table[unescape(row[0]).strip()] = [unescape(c).strip() for c in
                                           re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.DOTALL)]
    return table


def chart_titles(page: str) -> list[str]:
    return [unescape(t).strip() for t in re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", page,
                                                    re.DOTALL)]


def home(app, user, locale: str = "en") -> str:
    client = signed_in(app, user)
    response = client.get("/", headers={"Accept-Language": locale})
    assert response.status_code == 200
    return response.get_data(as_text=True)


# --- a small network at 23:30 on the last day of October, Shanghai --------------------------------

NOW = datetime(2026, 10, 31, 23, 30)  # local: still October; 15:30 UTC


@pytest.fixture
def frozen():
    with time_machine.travel(NOW.replace(tzinfo=_zone()), tick=False) as traveller:
        yield traveller


def _zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(SHANGHAI)


def open_order(agency, line, *, received: datetime) -> WorkOrder:
    n = next(sf._seq)
    order = WorkOrder(agency_id=agency.id, number=f"OPEN{n:05d}", service_type="carry_in",
                      status=OrderStatus.OPEN, customer_name="李四", customer_phone="13900001111",
                      product_line_id=line.id, product_model_id=sf.model_of(line).id,
                      serial_number=f"SNO{n:07d}", purchase_date=date(2026, 1, 1),
                      is_in_warranty=True, received_at=received,
                      service_date=clock.local_day(received))
    db.session.add(order)
    db.session.flush()
    return order


def claim(agency, year: int, month: int, status: str, lines: list[dict], *,
          submitted_at: datetime | None = None) -> Settlement:
    """A settlement written as the claim services leave it: lines (order lines on completed
    orders, grade lines with their period), totals the sums of the lines."""
    n = next(sf._seq)
    moment = submitted_at or clock.now() - timedelta(days=3)
    decided = status in ("approved", "paid")
    settlement = Settlement(
        agency_id=agency.id, number=f"STL-T-{n:05d}", year=year, month=month, status=status,
        computed_on=clock.local_today(),
        submitted_at=None if status in ("draft", "withdrawn") else moment,
        submission_count=0 if status == "draft" else 1,
        approved_at=moment if decided else None,
        paid_at=moment if status == "paid" else None, paid_on=None,
        payment_reference="PAY-1" if status == "paid" else None)
    db.session.add(settlement)
    db.session.flush()
    claimed = approved = D("0.00")
    for spec in lines:
        subject = {}
        if spec["kind"] == "order":
            order = sf.order(agency, spec["line"], day=date(year, month, 10),
                             service_type="carry_in", certified=not spec.get("uncertified"))
            subject = {"work_order_id": order.id}
        else:
            subject = {"grade_period": spec["period"]}
        held = Claim(agency_id=agency.id, settlement_id=settlement.id,
                     is_live=status != "withdrawn",
                     released_at=clock.now() if status == "withdrawn" else None, **subject)
        db.session.add(held)
        db.session.flush()
        amount = spec["amount"]
        fees = {}
        if spec["kind"] == "order":
            hours, rate = spec.get("hours", D("0.00")), spec.get("rate", D("0.00"))
            share = D("0.00") if spec.get("uncertified") else D("100.00")
            labor = (hours * rate * share / 100).quantize(D("0.01"))
            fees = {"callout_fee": amount - labor, "labor_hours": hours, "hourly_rate": rate,
                    "labor_share_pct": share, "labor_fee": labor,
                    "rules_applied": "uncertified_share" if spec.get("uncertified") else ""}
        else:
            fees = {"grade": spec["grade"], "rate_pct": D("-3.00"), "basis_amount": D("100.00")}
        db.session.add(SettlementLine(
            agency_id=agency.id, settlement_id=settlement.id, claim_id=held.id,
            kind=spec["kind"], claimed_amount=amount,
            decision="approved" if decided else "pending",
            approved_amount=amount if decided else None, **subject, **fees))
        claimed += amount
        approved += amount if decided else D("0.00")
    settlement.claimed_total, settlement.approved_total = claimed, approved
    settlement.line_count = len(lines)
    db.session.flush()
    return settlement


def quarter(year: int, q: int, status: str) -> Quarter:
    published = status != "draft"
    now = clock.now()
    row = Quarter(year=year, quarter=q, status=status,
                  scheme_id=db.session.scalar(select(Scheme.id).order_by(Scheme.id)),
                  published_at=now - timedelta(days=20) if published else None,
                  appeal_deadline_at=now - timedelta(days=13) if published else None,
                  finalized_at=now - timedelta(days=10) if status == "final" else None)
    db.session.add(row)
    db.session.flush()
    return row


def result(agency, q: Quarter, score: str, grade: str) -> Result:
    row = Result(agency_id=agency.id, quarter_id=q.id, region_id=agency.region_id,
                 tier_at=agency.tier, agency_status_at=agency.status, score=D(score),
                 grade=grade, status="draft" if q.status == "draft" else "published")
    db.session.add(row)
    db.session.flush()
    return row


def level(q: Quarter, region=None, *, parts=(0, 0), settlement=(0, 0), verdict=(0, 0)):
    """HQ's service in a quarter: (count, total days) of each kind."""
    day = 86400
    db.session.add(ServiceLevel(
        quarter_id=q.id, region_id=region.id if region else None,
        parts_count=parts[0], parts_seconds=int(parts[1] * day),
        settlement_count=settlement[0], settlement_seconds=int(settlement[1] * day),
        verdict_count=verdict[0], verdict_seconds=int(verdict[1] * day)))
    db.session.flush()


@pytest.fixture
def net(frozen, app, _transaction):
    """Region 1: A (active), A2 (active), P (probation); region 2: B (active), S (suspended).
    Open orders, claims of several months and states, two published quarters and a draft."""
    with app.app_context():
        world = build_world()
        with unscoped("the test writes a small network"):
            g._audit_actor = None
            line = world.line
            world.p = make_agency(world.region1, "P-PRO", status=AgencyStatus.PROBATION)
            world.s = make_agency(world.region2, "S-SUS", status=AgencyStatus.SUSPENDED)
            now = clock.now()
            for agency, fresh, stale in ((world.a, 2, 1), (world.a2, 1, 0), (world.b, 0, 2)):
                for _n in range(fresh):
                    open_order(agency, line, received=now - timedelta(days=1))
                for _n in range(stale):
                    open_order(agency, line, received=now - timedelta(days=10))
            sf.order(world.a, line, day=date(2026, 10, 20))  # completed: no backlog

            order = {"kind": "order", "line": line}
            claim(world.a, 2025, 10, "approved", [dict(order, amount=D("999.00"))])  # too old
            claim(world.a, 2025, 11, "paid", [dict(order, amount=D("100.00"))])
            claim(world.a, 2026, 9, "approved", [
                dict(order, amount=D("300.00"), hours=D("2.50"), rate=D("100.00")),
                dict(order, amount=D("50.00"), hours=D("1.50"), rate=D("80.00"),
                     uncertified=True),
                {"kind": "grade", "period": "2026Q2", "grade": "D", "amount": D("-40.00")}])
            claim(world.a, 2026, 10, "submitted", [
                dict(order, amount=D("200.00"), hours=D("1.50"), rate=D("100.00")),
                {"kind": "grade", "period": "2026Q1", "grade": "C", "amount": D("-20.00")}])
            world.draft = claim(world.a, 2026, 8, "draft", [
                dict(order, amount=D("50.00"), hours=D("2.00"), rate=D("80.00"),
                     uncertified=True),
                {"kind": "grade", "period": "2025Q4", "grade": "D", "amount": D("-60.00")}])
            claim(world.a, 2026, 7, "withdrawn", [
                dict(order, amount=D("70.00"), hours=D("1.00"), rate=D("90.00"),
                     uncertified=True)])
            # Sent at 23:30 on 31 October, Shanghai (15:30 UTC): an October claim.
            claim(world.a2, 2026, 10, "submitted", [dict(order, amount=D("700.00"))],
                  submitted_at=local(date(2026, 10, 31), 23, 30).astimezone(UTC))
            claim(world.b, 2026, 10, "approved", [dict(order, amount=D("5000.00"))])

            q1, q2 = quarter(2026, 1, "final"), quarter(2026, 2, "published")
            q3 = quarter(2026, 3, "draft")
            result(world.a, q1, "72.00", "C")
            for agency, score, grade in ((world.a, "85.50", "B"), (world.a2, "60.00", "D"),
                                         (world.b, "95.00", "A")):
                result(agency, q2, score, grade)
            result(world.a, q3, "99.00", "A")  # a draft: nobody outside HQ sees it
            level(q1, parts=(1, 0.5), settlement=(2, 20), verdict=(1, 3))
            level(q2, parts=(2, 3), settlement=(4, 40), verdict=(0, 0))
            level(q2, world.region1, parts=(1, 3), settlement=(1, 12), verdict=(1, 2))
            level(q3, parts=(9, 99), settlement=(9, 99), verdict=(9, 99))
            world.regions = {r.id: r for r in (world.region1, world.region2)}
            db.session.commit()
    world.app = app
    return world



def money(amount: str) -> str:
    from babel.numbers import format_currency

    return format_currency(D(amount), "CNY", locale="en")


ZERO2 = [money("0"), money("0")]
STATUSES = ["Applicant", "Probation", "Active", "Suspended", "Terminated"]
SERVICE = ["Parts request turnaround", "Settlement cycle", "Complaint verdict time"]


def months_of(table: dict) -> list[str]:
    return [k for k in table if k]


# --- HQ -------------------------------------------------------------------------------------------


def test_hq_charts_show_the_network(net):
    page = home(net.app, net.user(Role.HQ_ADMIN))
    one, two = net.region1.name_en, net.region2.name_en

    network = chart_table(page, "Agencies by region and status")
    assert network == {"": STATUSES, one: ["0", "1", "2", "0", "0"],
                       two: ["0", "0", "1", "1", "0"]}

    backlog = chart_table(page, "Open work orders by region")
    assert backlog == {"": ["Open up to 7 days", "Open more than 7 days"],
                       one: ["3", "1"], two: ["0", "2"]}

    months = chart_table(page, "Claimed and approved per month")
    assert months[""] == ["Claimed", "Approved"]
    # The last twelve local months; a draft is not claimed yet; 2025-10 is too old.
    assert months_of(months) == ["Nov 2025", "Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026",
                                 "Apr 2026", "May 2026", "Jun 2026", "Jul 2026", "Aug 2026",
                                 "Sep 2026", "Oct 2026"]
    assert months["Nov 2025"] == [money("100"), money("100")]
    assert months["Sep 2026"] == [money("310"), money("310")]
    assert months["Oct 2026"] == [money("5880"), money("5000")]  # A 180 + A2 700 + B 5000
    assert months["Aug 2026"] == months["Jul 2026"] == ZERO2  # a draft, a withdrawn claim

    grades = chart_table(page, "Grades in 2026Q2 (latest published quarter)")
    assert grades == {"": ["Agencies"], "A": ["1"], "B": ["1"], "C": ["0"], "D": ["1"]}

    levels = chart_table(page, "HQ’s service level in days (mean): the network")
    assert levels == {"": SERVICE, "2026Q1": ["0.5", "10.0", "3.0"],
                      "2026Q2": ["1.5", "10.0", "—"]}  # no complaint judged; Q3 is a draft


def test_every_hq_role_gets_the_charts_of_its_areas(net):
    for role in (Role.HQ_CERTIFIER, Role.HQ_PARTS, Role.HQ_SERVICE, Role.AUDITOR):
        titles = chart_titles(home(net.app, net.user(role)))
        assert "Agencies by region and status" in titles
        assert "Open work orders by region" in titles
        assert "Grades in 2026Q2 (latest published quarter)" in titles
        assert ("Claimed and approved per month" in titles) == (role == Role.AUDITOR)


def test_the_regional_manager_sees_their_region_only(net):
    page = home(net.app, net.user(Role.REGIONAL_MANAGER))
    one, two = net.region1.name_en, net.region2.name_en
    assert two not in page and "B-FOR" not in page and "S-SUS" not in page
    assert "CANARY-B" not in page

    network = chart_table(page, "Agencies by region and status")
    assert network == {"": STATUSES, one: ["0", "1", "2", "0", "0"]}

    backlog = chart_table(page, "Open work orders by agency (the 12 with the most)")
    assert backlog == {"": ["Open up to 7 days", "Open more than 7 days"],
                       "A-OWN": ["2", "1"], "A-SIB": ["1", "0"]}  # the busiest first

    months = chart_table(page, "Claimed and approved per month")
    assert months["Oct 2026"] == [money("880"), money("0")]  # A 180 + A2 700, nothing of B
    assert months["Sep 2026"] == [money("310"), money("310")]

    grades = chart_table(page, "Grades in 2026Q2 (latest published quarter)")
    assert grades == {"": ["Agencies"], "A": ["0"], "B": ["1"], "C": ["0"], "D": ["1"]}

    levels = chart_table(page, f"HQ’s service level in days (mean): {one}")
    assert levels == {"": SERVICE, "2026Q1": ["—", "—", "—"],
                      "2026Q2": ["3.0", "12.0", "2.0"]}


# --- the agency -----------------------------------------------------------------------------------


def _money_card(page: str) -> str:
    start = page.index("Our settlements")
    return page[start:page.index("what HQ approved, after deductions.", start)]


def test_the_owner_sees_own_money_by_month_and_grade_trend(net):
    page = home(net.app, net.user(Role.AGENCY_OWNER))
    for foreign in ("CANARY-B", "CANARY-S", "5,000.00", "700.00", "5,880.00", "B-FOR"):
        assert foreign not in page

    months = chart_table(page, "Our money per claim month")
    assert months[""] == ["Claimed (orders and bonuses)", "Deducted", "Approved for payment"]
    assert len(months_of(months)) == 12 and months_of(months)[-1] == "Oct 2026"
    assert months["Nov 2025"] == [money("100"), money("0"), money("100")]
    assert months["Sep 2026"] == [money("350"), money("40"), money("310")]
    assert months["Oct 2026"] == [money("200"), money("20"), money("0")]  # in review
    assert months["Aug 2026"] == [money("0")] * 3  # the draft is not sent yet
    assert months["Jul 2026"] == [money("0")] * 3  # withdrawn

    # The trend of the four quarters up to the latest published one; the draft stays hidden.
    trend = chart_table(page, "Score by quarter")
    assert trend == {"": ["Score", "Grade"], "2025Q3": ["—", "—"], "2025Q4": ["—", "—"],
                     "2026Q1": ["72.00", "C"], "2026Q2": ["85.50", "B"]}
    assert "99.00" not in page and "2026Q3" not in page


def test_every_amount_says_what_it_is_and_never_wraps(net):
    page = home(net.app, net.user(Role.AGENCY_OWNER))
    card = _money_card(page)
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", card)))
    assert f"Claim total after deductions: {money('180')}" in text  # submitted
    assert (f"Claim total after deductions: {money('310')} · "
            f"Approved for payment: {money('310')}") in text
    # The draft: its running total, and why it is negative.
    assert "Running total so far: -\u2060CN¥10.00" in text or \
        f"Running total so far: {money('-10')}" in text
    assert "Negative because the deductions already on this claim" in text
    # Each amount, the negative one included, is one unbreakable piece.
    amounts = re.findall(r"<(span|td)([^>]*)>([^<]*CN¥[^<]*)</\1>", card)
    assert len(amounts) == card.count("CN¥") > 10
    assert all("text-nowrap" in attributes for _tag, attributes, _text in amounts)


def test_labor_lost_to_uncertified_engineers_has_its_figure_and_links(net):
    client = signed_in(net.app, net.user(Role.AGENCY_OWNER))
    page = client.get("/").get_data(as_text=True)
    card = _money_card(page)
    # The September order (1.50 h × 80.00) and the draft's (2.00 h × 80.00) paid at 0 %; the
    # withdrawn claim's order no longer counts.
    figure = re.search(r'data-figure="labor-lost">([^<]*)<', card).group(1)
    assert unescape(figure) == money("280")
    assert "Labor lost to uncertified engineers, last 12 months:" in card
    assert "2 orders were serviced by engineers without a valid certificate" in card
    coverage = f"/certification/agencies/{net.a.id}/coverage"
    assert f'href="{coverage}"' in card and 'href="/service/orders/?certified=0"' in card
    assert client.get(coverage).status_code == 200
    listed = client.get("/service/orders/?certified=0").get_data(as_text=True)
    assert listed.count("<tr") >= 3  # the header and the uncertified orders


def test_staff_see_the_money_but_no_evaluation(net):
    page = home(net.app, net.user(Role.AGENCY_STAFF))
    assert chart_titles(page) == ["Our money per claim month"]
    assert "CANARY-B" not in page


def test_charts_read_in_chinese(net):
    page = home(net.app, net.user(Role.HQ_ADMIN), "zh_CN")
    titles = chart_titles(page)
    network = chart_table(page, titles[0])
    assert network[""] == ["申请中", "试运营", "正式授权", "暂停", "已终止"]
    assert net.region1.name_zh in network
    owner = home(net.app, net.user(Role.AGENCY_OWNER), "zh_CN")
    months = chart_table(owner, chart_titles(owner)[0])  # the money comes first
    assert months_of(months)[0] == "2025年11月" and months_of(months)[-1] == "2026年10月"


def test_an_empty_network_says_there_is_nothing_yet(app, world):
    for role in Role:
        page = home(app, world.user(role))
        if role in (Role.HQ_ADMIN, Role.REGIONAL_MANAGER):
            assert "Grades of the latest published quarter" in chart_titles(page)
            assert "No figures yet." in page
        if role == Role.AGENCY_OWNER:
            assert "Score by quarter" not in page and "No evaluation published yet." in page
            months = chart_table(page, "Our money per claim month")
            assert all(cells == [money("0")] * 3 for key, cells in months.items() if key)
            assert "Every claimed order was serviced by a certified engineer." in page


# --- local months ---------------------------------------------------------------------------------


def test_months_are_the_network_s_local_months(net, frozen):
    """At 00:30 on 1 November in Shanghai it is still 31 October in UTC: the twelve months
    are December 2025 to November 2026, and October's claims stay in October."""
    frozen.move_to(local(date(2026, 11, 1), 0, 30))
    assert clock.now().date() == date(2026, 10, 31)
    for role, oct_claimed in ((Role.HQ_ADMIN, "5880"), (Role.REGIONAL_MANAGER, "880")):
        months = chart_table(home(net.app, net.user(role)), "Claimed and approved per month")
        assert months_of(months)[0] == "Dec 2025" and months_of(months)[-1] == "Nov 2026"
        assert "Nov 2025" not in months
        assert months["Oct 2026"][0] == money(oct_claimed)
        assert months["Nov 2026"] == ZERO2
    owner = chart_table(home(net.app, net.user(Role.AGENCY_OWNER)), "Our money per claim month")
    assert months_of(owner)[-1] == "Nov 2026" and "Nov 2025" not in owner


# --- a constant number of queries -----------------------------------------------------------------


def _grow(net):
    """Five times the work: more agencies in both regions, orders, claims and results."""
    with net.app.app_context(), unscoped("the test adds to the network"):
        g._audit_actor = None
        q2 = db.session.scalars(select(Quarter).where(Quarter.year == 2026,
                                                      Quarter.quarter == 2)).one()
        order = {"kind": "order", "line": net.line}
        for n, region in enumerate((net.region1, net.region2) * 3):
            agency = make_agency(region, f"G-{n}")
            for _n in range(4):
                open_order(agency, net.line, received=clock.now() - timedelta(days=n + 1))
            for month in (9, 10):
                claim(agency, 2026, month, "approved" if month == 9 else "submitted",
                      [dict(order, amount=D("40.00"), hours=D("1.00"), rate=D("30.00"),
                            uncertified=True)] * 3)
            result(agency, q2, "81.00", "B")
        for month in (3, 4, 5):
            claim(net.a, 2026, month, "paid", [dict(order, amount=D("90.00"))] * 4)
        make_user(Role.AGENCY_STAFF, agency=net.a)
        db.session.commit()


def test_the_home_pages_run_a_constant_number_of_queries(net, query_counter, capsys):
    roles = (Role.HQ_ADMIN, Role.HQ_SETTLEMENT, Role.REGIONAL_MANAGER, Role.AUDITOR,
             Role.AGENCY_OWNER, Role.AGENCY_STAFF)
    clients = {role: signed_in(net.app, net.user(role)) for role in roles}

    def measure() -> dict:
        counts = {}
        for role, client in clients.items():
            with query_counter as counter:
                assert client.get("/").status_code == 200
            counts[role] = counter.count
        return counts

    before = measure()
    _grow(net)
    after = measure()
    assert after == before, {r: (before[r], after[r]) for r in roles if before[r] != after[r]}
    with capsys.disabled():
        print("\nhome page statements per role, small and grown network:",
              {str(r): n for r, n in after.items()})


# --- the evaluation trend chart -------------------------------------------------------------------


@pytest.mark.parametrize("last", ["55.50", "100.00"])
def test_the_trend_chart_prints_the_last_score_whole(last):
    """The score printed beside the last point used to run past the image's right edge
    ("55." instead of "55.50"); the chart is also the same bytes for the same figures (PDF
    reports are stored and compared)."""
    from evaluation.charts import trend_svg

    points = [("2025Q4", D("71.25")), ("2026Q1", None), ("2026Q2", D("88.00")),
              ("2026Q3", D(last))]
    svg = trend_svg(points)
    assert svg == trend_svg(points)
    width = float(re.search(r'<svg[^>]*width="(\d+)"', svg).group(1))
    x0 = float(re.search(r'translate\(([\d.]+), [\d.]+\)" class="plot"', svg).group(1))
    font = 12  # the style's value font size
    printed = re.findall(r'x="([\d.]+)" y="[-\d.]+" class="value">([^<]*)<', svg)
    assert [text for _x, text in printed] == ["71.25", "88.00", last]
    x, text = printed[-1]
    assert x0 + float(x) + len(text) * 0.62 * font <= width  # generous glyph widths


# --- charts remembered for a minute ---------------------------------------------------------------


@pytest.fixture
def remembering(app):
    """portal.memo on, as in production (the tests turn it off)."""
    from portal import memo

    memo.forget()
    app.config["HOME_FIGURES_SECONDS"] = 60
    yield
    app.config["HOME_FIGURES_SECONDS"] = 0
    memo.forget()


def test_a_remembered_chart_keeps_to_its_reader_and_language(net, remembering):
    for _twice in range(2):
        en = home(net.app, net.user(Role.HQ_ADMIN))
        zh = home(net.app, net.user(Role.HQ_ADMIN), "zh_CN")
        regional = home(net.app, net.user(Role.REGIONAL_MANAGER))
        owner = home(net.app, net.user(Role.AGENCY_OWNER))
        assert chart_table(en, "Agencies by region and status")[""] == STATUSES
        zh_network = chart_table(zh, chart_titles(zh)[0])
        assert zh_network[""] == ["申请中", "试运营", "正式授权", "暂停", "已终止"]
        assert net.region2.name_en not in regional
        assert chart_table(regional, "Claimed and approved per month")["Oct 2026"] == [
            money("880"), money("0")]
        assert chart_table(en, "Claimed and approved per month")["Oct 2026"] == [
            money("5880"), money("5000")]
        assert "5,880.00" not in owner and "CANARY-B" not in owner
