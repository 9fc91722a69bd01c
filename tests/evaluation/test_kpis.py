"""The KPI rules: formulas at their edges, curves, weight redistribution, grade boundaries."""
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluation import kpis
from evaluation.compute import score_counts
from evaluation.schemes import scheme_in_force, scheme_terms
from portal.errors_domain import DomainError
from portal.periods import Period
from tests.evaluation import factories as f

D = Decimal
Q = f.Q


def _terms():
    return {k.code: (k.weight, k.min_count, k.curve, n) for n, k in enumerate(kpis.KPIS)}


# --- pure rules --------------------------------------------------------------------------------


def test_raw_value_edges():
    timeliness = kpis.BY_CODE["timeliness"]
    assert kpis.raw_value(timeliness, 0, 0) is None          # no orders
    assert kpis.raw_value(timeliness, 0, 7) == D("0.00")     # all late
    assert kpis.raw_value(timeliness, 7, 7) == D("100.00")   # all in time
    assert kpis.raw_value(timeliness, 2, 3) == D("66.67")    # half up
    assert kpis.raw_value(timeliness, 1, 8) == D("12.50")
    assert kpis.raw_value(kpis.BY_CODE["satisfaction"], 9, 2) == D("4.50")


@pytest.mark.parametrize("raw, points", [
    ("0", "0.00"), ("69.99", "0.00"), ("70", "0.00"), ("80", "40.00"), ("90", "80.00"),
    ("95", "90.00"), ("100", "100.00"), ("120", "100.00"), ("85.55", "62.20")])
def test_points_follow_the_curve_and_are_flat_beyond_its_ends(raw, points):
    assert kpis.points_on(kpis.BY_CODE["timeliness"].curve, D(raw)) == D(points)


@pytest.mark.parametrize("raw, points", [("0", "100.00"), ("2.5", "87.50"), ("5", "75.00"),
                                         ("10", "37.50"), ("15", "0.00"), ("50", "0.00")])
def test_lower_is_better_curves_descend(raw, points):
    assert kpis.points_on(kpis.BY_CODE["rework"].curve, D(raw)) == D(points)


def test_too_few_items_is_insufficient_and_no_items_too():
    timeliness = kpis.BY_CODE["timeliness"]
    none = kpis.figure(timeliness, 0, 0, 15, 10, timeliness.curve)
    few = kpis.figure(timeliness, 9, 9, 15, 10, timeliness.curve)
    enough = kpis.figure(timeliness, 10, 10, 15, 10, timeliness.curve)
    assert not none.is_sufficient and none.raw is None and none.points is None
    assert not few.is_sufficient and few.raw == D("100.00") and few.points is None
    assert enough.is_sufficient and enough.points == D("100.00")
    # a minimum of zero still needs one counted item
    assert not kpis.figure(timeliness, 0, 0, 15, 0, timeliness.curve).is_sufficient


def test_weight_of_insufficient_kpis_is_spread_in_proportion():
    counts = {"timeliness": (10, 10), "first_time_fix": (5, 10)}  # 100 → 100; 50 → 0 points
    found, score, grade = score_counts(_terms(), counts)
    weights = kpis.effective_weights(found)
    # only timeliness (15) and first-time fix (10) count: 60 % and 40 % of the score
    assert weights["timeliness"] == D("60.00") and weights["first_time_fix"] == D("40.00")
    assert weights["satisfaction"] is None
    assert score == D("60.00")  # (100 × 15 + 0 × 10) / 25
    assert grade == "D"


def test_nothing_sufficient_means_no_score():
    found, score, grade = score_counts(_terms(), {})
    assert score is None and grade is None
    assert all(v is None for v in kpis.effective_weights(found).values())


@pytest.mark.parametrize("score, grade", [
    ("100", "A"), ("90.00", "A"), ("89.99", "B"), ("80.00", "B"), ("79.99", "C"),
    ("70.00", "C"), ("69.99", "D"), ("0", "D")])
def test_grade_boundaries(score, grade):
    assert kpis.grade_of(D(score)) == grade


def test_a_score_that_rounds_to_90_is_an_a():
    # 89.995 is rounded half up to 90.00 before it is graded
    used = [kpis.Figure("x", 0, 1, 1, 1, D(0), D("89.99"), True),
            kpis.Figure("y", 0, 1, 1, 1, D(0), D("90.00"), True)]
    assert kpis.score_of(used) == D("90.00") and kpis.grade_of(kpis.score_of(used)) == "A"


@given(st.lists(st.tuples(st.integers(0, 10000), st.integers(0, 100)), min_size=1, max_size=9))
def test_score_is_the_weighted_mean_exactly(items):
    figures = [kpis.Figure(str(n), 0, 1, w, 1, D(0), D(p) / 100, True)
               for n, (p, w) in enumerate(items)]
    total = sum(w for _p, w in items)
    score = kpis.score_of(figures)
    if total == 0:
        assert score is None
        return
    exact = sum(D(p) / 100 * w for p, w in items) / total
    assert abs(score - exact) <= D("0.005")
    assert D(0) <= score <= D(100)


@pytest.mark.parametrize("text, message", [
    ("", "from 2 to 8 points"), ("60:0", "from 2 to 8 points"), ("60;0", "raw:points"),
    ("a:b, 1:2", "raw:points"), ("90:0, 60:100", "increase"), ("0:0, 10:101", "0 to 100"),
    ("nan:1, 2:3", "raw:points"), ("1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9", "from 2 to 8")])
def test_bad_curves_are_refused(text, message):
    with pytest.raises(DomainError, match=message):
        kpis.parse_curve(text, "curve_x")


def test_curves_round_trip_as_text():
    curve = kpis.parse_curve(" 3:0 , 4:60, 4.8:100 ", "c")
    assert kpis.curve_text(curve) == "3:0, 4:60, 4.8:100"


# --- each KPI counted in SQL at its edges ------------------------------------------------------


def _counts(agency_id):
    from evaluation import figures

    scheme = scheme_in_force(Q)
    return figures.count_figures(Q, scheme.sla_minutes, None).get(agency_id, {})


def test_no_orders_counts_nothing(hq):
    assert _counts(hq.a.id) == {}


def test_all_late_and_all_in_time_at_the_sla_edges(hq):
    a, line = hq.a, hq.line
    # exactly at the SLA is in time; one minute over is late
    f.order(a, line, service_type="phone", hours=2)
    f.order(a, line, service_type="phone", hours=2 + 1 / 60)
    f.order(a, line, service_type="onsite", hours=24)
    f.order(a, line, service_type="onsite", hours=24 + 1 / 60)
    f.order(a, line, service_type="carry_in", hours=24)
    f.order(a, line, service_type="carry_in", hours=25)
    assert _counts(a.id)["timeliness"] == (3, 6)
    for _n in range(4):
        f.order(hq.b, line, service_type="phone", hours=5)
    assert _counts(hq.b.id)["timeliness"] == (0, 4)


def test_orders_outside_the_quarter_or_not_completed_do_not_count(hq):
    f.order(hq.a, hq.line, day=Q.first_day - timedelta(days=1))
    f.order(hq.a, hq.line, day=Q.last_day + timedelta(days=1))
    f.order(hq.a, hq.line, day=Q.first_day)
    late = f.order(hq.a, hq.line, day=Q.last_day)
    late.status, late.completed_at = "open", None
    assert _counts(hq.a.id)["timeliness"] == (1, 1)


def test_revisits_complaints_returns_and_settlement_lines(hq):
    a, line = hq.a, hq.line
    for score in (1, 5):
        f.revisit(f.order(a, line), score)
    f.complaint(a, closed_on=Q.last_day)                          # counts
    f.complaint(a, closed_on=Q.last_day + timedelta(days=1))      # next quarter
    f.complaint(a, closed_on=Q.first_day, substantiated=False)    # not substantiated
    due = Q.first_day + timedelta(days=30)
    f.part_return(a, line, due_on=due, shipped_on=due)                          # on time
    f.part_return(a, line, due_on=due, shipped_on=None)                         # overdue
    f.part_return(a, line, due_on=due, shipped_on=due, status="rejected")       # rejected
    f.part_return(a, line, due_on=Q.last_day + timedelta(days=1), shipped_on=None)  # later
    f.settlement_lines(a, line, month=Q.months[1],
                       decisions=["approved", "approved", "adjusted", "denied", "pending"])
    counts = _counts(a.id)
    assert counts["satisfaction"] == (6, 2)
    assert counts["complaints"][0] == 1
    assert counts["returns"] == (1, 3)
    assert counts["settlement"] == (2, 4)


def test_the_scheme_in_force_is_the_latest_effective(hq):
    scheme = scheme_in_force(Period(2026, 2))
    assert scheme.version == 1
    terms = scheme_terms(scheme)
    assert sum(t[0] for t in terms.values()) == 100
