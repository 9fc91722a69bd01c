"""Computing a quarter: the worked example by hand, set-based queries, ranks with ties,
elimination warnings, the job and the command line."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from evaluation import compute
from evaluation.models import KpiValue, Result
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.periods import Period
from tests.evaluation import factories as f
from tests.evaluation.conftest import audits

Q = f.Q


def build_worked_example(world):
    """Agency A in 2026Q2 — every figure below is worked out by hand in test_worked_example.

    20 completed orders: 8 phone (one answered after 3 h: late), 8 carry-in (two diagnosed
    after 30 h: late), 4 on-site (one arrival after 26 h: late) → 16 of 20 within the SLA.
    Three not fixed the first time, one rework, two by uncertified engineers.
    Ten revisits scoring 5,5,5,5,4,4,4,4,3,2 (sum 41). One substantiated complaint (and one
    not substantiated, which does not count). Four returns due: three on time, one late.
    No settlement lines (too little data). Inspection 88.
    """
    a, line = world.a, world.line
    origin = f.order(a, line, day=Q.first_day - timedelta(days=10))  # Q1: not counted
    orders = []
    for n in range(8):
        orders.append(f.order(a, line, service_type="phone", hours=3 if n == 0 else 1.5,
                              text="CANARY-A"))
    for n in range(8):
        orders.append(f.order(a, line, service_type="carry_in", hours=30 if n < 2 else 20))
    for n in range(4):
        orders.append(f.order(a, line, service_type="onsite", hours=26 if n == 0 else 6))
    # flags on orders that are on time anyway
    for o in orders[3:6]:
        o.is_first_time_fix = False
    orders[6].is_rework, orders[6].rework_of_id = True, origin.id
    for o in orders[10:12]:
        o.is_engineer_certified = False
    db.session.flush()
    for o, score in zip(orders[4:14], (5, 5, 5, 5, 4, 4, 4, 4, 3, 2), strict=True):
        f.revisit(o, score)
    f.complaint(a, closed_on=Q.first_day + timedelta(days=20), o=orders[0])
    f.complaint(a, closed_on=Q.first_day + timedelta(days=21), substantiated=False)
    due = Q.first_day + timedelta(days=40)
    for n in range(3):
        f.part_return(a, line, due_on=due, shipped_on=due - timedelta(days=n))
    f.part_return(a, line, due_on=due, shipped_on=due + timedelta(days=2))
    return orders


def test_worked_example(hq):
    build_worked_example(hq)
    quarter = f.computed()
    f.inspect(quarter, hq.a, 88)
    quarter = f.computed()  # a recompute keeps and counts the inspection score
    result = f.result_of(quarter, hq.a)
    v = f.values_of(result)
    expected = {
        # code: (numerator, denominator, raw, points, effective weight = weight × 100 / 95)
        "satisfaction": (41, 10, "4.10", "74.00", "21.05"),  # 70 + 20 × 0.1/0.5
        "timeliness": (16, 20, "80.00", "40.00", "15.79"),   # 80 × 10/20
        "first_time_fix": (17, 20, "85.00", "80.00", "10.53"),  # 70 + 30 × 5/15
        "rework": (1, 20, "5.00", "75.00", "10.53"),          # on the curve's point (5, 75)
        "complaints": (1, 20, "5.00", "18.75", "10.53"),      # 75 − 75 × 3/4
        "returns": (3, 4, "75.00", "50.00", "10.53"),         # 80 × 25/40
        "certified": (18, 20, "90.00", "94.00", "10.53"),     # 70 + 30 × 40/50
        "inspection": (88, 1, "88.00", "88.00", "10.53"),
    }
    for code, (num, den, raw, points, weight) in expected.items():
        value = v[code]
        assert (value.numerator, value.denominator) == (num, den), code
        assert value.raw == Decimal(raw), code
        assert value.points == Decimal(points), code
        assert value.effective_weight == Decimal(weight), code
        assert value.is_sufficient, code
    # No settlement lines: marked, its weight 5 spread over the other 95.
    assert not v["settlement"].is_sufficient and v["settlement"].points is None
    # (74×20 + 40×15 + 80×10 + 75×10 + 18.75×10 + 50×10 + 94×10 + 88×10) / 95
    #   = 6137.5 / 95 = 64.6052… → 64.61 → D
    assert result.score == Decimal("64.61")
    assert result.grade == "D"
    assert audits("evaluation.computed") == 2


def test_agencies_without_data_are_not_rated(hq):
    quarter = f.computed()
    results = db.session.scalars(select(Result).where(Result.quarter_id == quarter.id)).all()
    assert {r.agency_id for r in results} == {hq.a.id, hq.a2.id, hq.b.id}
    assert all(r.score is None and r.grade is None and r.rank_national is None for r in results)
    values = db.session.scalars(select(KpiValue)).all()
    assert len(values) == 3 * 9 and not any(v.is_sufficient for v in values)


def test_ranks_with_ties_nationally_and_in_the_region(hq):
    quarter = f.computed()
    scores = {hq.a.id: "80.00", hq.a2.id: "80.00", hq.b.id: "91.50"}
    for result in db.session.scalars(select(Result).where(Result.quarter_id == quarter.id)):
        result.score, result.grade = Decimal(scores[result.agency_id]), "B"
    db.session.flush()
    compute.rank_quarter(quarter.id)
    db.session.expire_all()
    ranks = {r.agency_id: (r.rank_national, r.rank_national_of, r.rank_region, r.rank_region_of)
             for r in db.session.scalars(select(Result).where(Result.quarter_id == quarter.id))}
    # B leads the nation; A and A2 tie for second (the next rank would be 4) and for first
    # in region 1; B is alone in region 2.
    assert ranks[hq.b.id] == (1, 3, 1, 1)
    assert ranks[hq.a.id] == (2, 3, 1, 2)
    assert ranks[hq.a2.id] == (2, 3, 1, 2)


def test_second_d_in_a_row_raises_the_elimination_warning(hq):
    previous = Q.previous()
    for period in (previous, Q):
        for _n in range(12):
            f.order(hq.a, hq.line, day=period.first_day + timedelta(days=5), hours=40,
                    first_time_fix=False, certified=False)
    first = f.computed(previous)
    assert f.result_of(first, hq.a).grade == "D"
    assert not f.result_of(first, hq.a).elimination_warning
    second = f.result_of(f.computed(Q), hq.a)
    assert second.grade == "D" and second.previous_grade == "D"
    assert second.elimination_warning


def test_the_quarter_must_have_ended_and_be_a_draft(hq):
    today = compute.local_today()
    with pytest.raises(DomainError, match="not ended"):
        compute.compute_quarter(Period.of_day(today))
    with pytest.raises(DomainError):
        compute.check_computable(None)
    f.published()
    with pytest.raises(DomainError, match="already published"):
        compute.compute_quarter(Q)


def test_computation_is_set_based(hq, query_counter):
    """The same number of statements for three agencies as for nine, with data or without."""
    build_worked_example(hq)
    with query_counter as small:
        f.computed()
    from tests.factories import make_agency

    for n in range(6):
        agency = make_agency(hq.region1 if n % 2 else hq.region2, f"X-{n}")
        for _k in range(3):
            f.order(agency, hq.line, hours=1)
    with query_counter as large:
        f.computed()
    assert large.count == small.count, (small.count, large.count)
    assert large.count < 60
