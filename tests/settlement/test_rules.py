"""The fee rules and checks as pure functions: worked examples and property-based tests."""
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.periods import Period
from settlement import rules

D = Decimal
TERMS = rules.Terms(rate_card_id=1, callout_fee=D("50.00"), hourly_rate=D("80.00"),
                    free_km=D("10.00"), per_km=D("1.50"), max_km=D("60.00"),
                    parts_handling_pct=D("8.00"))


def facts(**kw):
    base = {"service_type": "onsite", "labor_hours": D("1.50"), "distance_km": D("35.00"),
            "parts_value": D("245.00"), "is_rework": False, "is_engineer_certified": True}
    return rules.OrderFacts(**{**base, **kw})


# --- worked examples -------------------------------------------------------------------------


def test_worked_example_on_site_repair():
    """50.00 + 1.50 h × 80.00 + (35 − 10) km × 1.50 + 8 % × 245.00 = 227.10."""
    c = rules.compute_order(facts(), TERMS, D("0"))
    assert (c.callout_fee, c.labor_fee, c.paid_km, c.distance_fee, c.parts_handling_fee) == (
        D("50.00"), D("120.00"), D("25.00"), D("37.50"), D("19.60"))
    assert c.total == D("227.10")
    assert c.rules == ()


def test_labor_is_repair_code_hours_times_the_tier_rate():
    terms = rules.Terms(**{**TERMS.__dict__, "hourly_rate": D("72.50")})
    c = rules.compute_order(facts(labor_hours=D("2.35")), terms, D("0"))
    assert c.labor_fee == D("170.38")  # 2.35 × 72.50 = 170.375 → half up


def test_distance_is_capped_and_the_free_km_are_not_paid():
    c = rules.compute_order(facts(distance_km=D("95.00")), TERMS, D("0"))
    assert c.paid_km == D("50.00") and c.distance_fee == D("75.00")  # (60 − 10) × 1.50
    assert rules.RULE_DISTANCE_CAPPED in c.rules
    c = rules.compute_order(facts(distance_km=D("8.00")), TERMS, D("0"))
    assert c.paid_km == D("0.00") and c.distance_fee == D("0.00")
    assert rules.RULE_WITHIN_FREE_KM in c.rules


def test_no_distance_allowance_off_site():
    c = rules.compute_order(facts(service_type="carry_in", distance_km=None), TERMS, D("0"))
    assert c.distance_fee == D("0.00") and rules.RULE_NOT_ONSITE in c.rules


def test_parts_handling_rounds_half_up_not_half_even():
    # 8 % × 0.5625 would be 0.045: half even gives 0.04, half up 0.05.
    c = rules.compute_order(facts(parts_value=D("0.5625")), TERMS, D("0"))
    assert c.parts_handling_fee == D("0.05")
    assert D("0.045").quantize(D("0.01"), rounding=ROUND_HALF_EVEN) == D("0.04")
    # 12.5 % of 0.20 = 0.025 → 0.03
    assert rules.percent_of(D("0.20"), D("12.50")) == D("0.03")


def test_rework_pays_no_labor():
    c = rules.compute_order(facts(is_rework=True, is_engineer_certified=False), TERMS, D("40"))
    assert c.labor_fee == D("0.00") and c.labor_share_pct == D("0")
    assert c.rules[0] == rules.RULE_REWORK
    assert c.total == D("107.10")  # the call-out, distance and parts handling stay


def test_uncertified_engineer_gets_the_configured_share():
    c = rules.compute_order(facts(is_engineer_certified=False), TERMS, D("0"))
    assert c.labor_fee == D("0.00") and rules.RULE_UNCERTIFIED in c.rules
    c = rules.compute_order(facts(is_engineer_certified=False), TERMS, D("33.33"))
    assert c.labor_fee == D("40.00")  # 120 × 33.33 % = 39.996


def test_no_rate_card_computes_nothing():
    c = rules.compute_order(facts(), None, D("0"))
    assert c.total == D("0.00") and c.rules == (rules.RULE_NO_RATE,)


def test_deductions_and_grade():
    assert rules.return_deduction(D("33.33"), 3) == D("-99.99")
    assert rules.complaint_deduction(D("200")) == D("-200.00")
    assert rules.grade_adjustment(D("12345.67"), D("5.00")) == D("617.28")  # 617.2835
    assert rules.grade_adjustment(D("1000.10"), D("-8.00")) == D("-80.01")  # −80.008
    assert rules.grade_adjustment(D("0.10"), D("-5.00")) == D("-0.01")  # −0.005: half away


def test_grade_quarters_are_the_ended_quarters_before_the_month_latest_first():
    assert rules.grade_quarters(2026, 1, 2) == [Period(2025, 4), Period(2025, 3)]
    assert [q.label for q in rules.grade_quarters(2026, 11)] == [
        "2026Q3", "2026Q2", "2026Q1", "2025Q4"]


def test_grade_source_hook(no_grade_source, grade_source):
    assert rules.grade_for(1, 2026, 3) is None
    grade_source(lambda agency_id, year, quarter: "B" if quarter == 3 else "Z")
    assert rules.grade_for(1, 2026, 3) == "B"
    assert rules.grade_for(1, 2026, 2) is None  # anything but A–D is no grade


# --- checks ----------------------------------------------------------------------------------

CLEAN = rules.CheckFacts(has_rate_card=True, is_in_warranty=True, days_since_service=10,
                         claim_window_days=60, is_duplicate=False, is_engineer_certified=True,
                         distance_km=D("20"), max_km=D("60"), labor_hours=D("1.5"),
                         max_order_hours=D("4"), claimed_amount=D("300"),
                         evidence_threshold=D("500"), evidence_count=0)


@pytest.mark.parametrize("change, code", [
    ({"is_in_warranty": False}, rules.OUT_OF_WARRANTY),
    ({"days_since_service": 61}, rules.LATE),
    ({"is_duplicate": True}, rules.DUPLICATE),
    ({"is_engineer_certified": False}, rules.UNCERTIFIED),
    ({"distance_km": D("60.01")}, rules.DISTANCE_OVER_CAP),
    ({"labor_hours": D("4.01")}, rules.HOURS_OVER_STANDARD),
    ({"claimed_amount": D("500.01")}, rules.MISSING_EVIDENCE),
    ({"has_rate_card": False}, rules.NO_RATE_CARD),
])
def test_each_check_raises_its_code(change, code):
    assert rules.order_exceptions(CLEAN) == []
    assert rules.order_exceptions(rules.CheckFacts(**{**CLEAN.__dict__, **change})) == [code]


def test_edges_of_the_checks_do_not_raise():
    edges = {"days_since_service": 60, "distance_km": D("60"), "labor_hours": D("4"),
             "claimed_amount": D("500")}
    assert rules.order_exceptions(rules.CheckFacts(**{**CLEAN.__dict__, **edges})) == []
    evidenced = {"claimed_amount": D("900"), "evidence_count": 1}
    assert rules.order_exceptions(rules.CheckFacts(**{**CLEAN.__dict__, **evidenced})) == []


def test_disposition_is_the_strictest():
    d = dict(rules.DEFAULT_DISPOSITIONS)
    assert rules.disposition_of([], d) == "pay"
    assert rules.disposition_of([rules.UNCERTIFIED], d) == "pay"
    assert rules.disposition_of([rules.UNCERTIFIED, rules.DUPLICATE], d) == "review"
    assert rules.disposition_of([rules.DUPLICATE, rules.LATE], d) == "deny"
    d[rules.UNCERTIFIED] = "deny"
    assert rules.disposition_of([rules.UNCERTIFIED], d) == "deny"
    assert rules.denying_code([rules.DUPLICATE, rules.UNCERTIFIED], d) == rules.UNCERTIFIED


def test_duplicate_is_shown_to_hq_only():
    codes = [rules.DUPLICATE, rules.UNCERTIFIED]
    assert rules.visible_codes(codes, is_hq=True) == codes
    assert rules.visible_codes(codes, is_hq=False) == [rules.UNCERTIFIED]


# --- properties over thousands of cases ----------------------------------------------------------

fen = st.integers(min_value=0, max_value=10**8)            # up to 1,000,000.00
hundredths = st.integers(min_value=0, max_value=100000)     # up to 1,000.00 (hours, km, %)


def _half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding half away from zero: the reference the rules must meet."""
    q, r = divmod(abs(numerator), denominator)
    q += 2 * r >= denominator
    return q if numerator >= 0 else -q


@settings(max_examples=2000, deadline=None)
@given(callout=fen, rate=fen, per_km=fen, hours=hundredths, distance=hundredths,
       free=hundredths, cap=hundredths, parts=fen, pct=st.integers(0, 10000),
       share=st.integers(0, 10000), rework=st.booleans(), certified=st.booleans(),
       onsite=st.booleans())
def test_amounts_are_exact_and_match_integer_arithmetic(callout, rate, per_km, hours, distance,
                                                        free, cap, parts, pct, share, rework,
                                                        certified, onsite):
    cap = max(cap, free)
    terms = rules.Terms(1, D(callout).scaleb(-2), D(rate).scaleb(-2), D(free).scaleb(-2),
                        D(per_km).scaleb(-2), D(cap).scaleb(-2), D(pct).scaleb(-2))
    f = rules.OrderFacts("onsite" if onsite else "carry_in", D(hours).scaleb(-2),
                         D(distance).scaleb(-2) if onsite else None, D(parts).scaleb(-2),
                         rework, certified)
    c = rules.compute_order(f, terms, D(share).scaleb(-2))
    for amount in (c.callout_fee, c.labor_fee, c.distance_fee, c.parts_handling_fee, c.total):
        assert amount == amount.quantize(D("0.01")) and amount >= 0
    assert c.total == c.callout_fee + c.labor_fee + c.distance_fee + c.parts_handling_fee
    # The same amounts in integer fen, computed independently.
    share_h = 0 if rework else (10000 if certified else share)   # hundredths of a percent
    labor = _half_up_div(hours * rate * share_h, 100 * 10000)
    paid = max(0, min(distance, cap) - free) if onsite else 0
    assert int(c.labor_fee * 100) == labor
    assert int(c.distance_fee * 100) == _half_up_div(paid * per_km, 100)
    assert int(c.parts_handling_fee * 100) == _half_up_div(parts * pct, 10000)


@settings(max_examples=2000, deadline=None)
@given(amount=st.integers(-10**9, 10**9), pct=st.integers(-10000, 10000))
def test_percent_of_rounds_half_away_from_zero(amount, pct):
    result = rules.percent_of(D(amount).scaleb(-2), D(pct).scaleb(-2))
    assert int(result * 100) == _half_up_div(amount * pct, 10000)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.integers(-10**9, 10**9), max_size=40))
def test_a_total_is_the_exact_sum_of_its_lines(fens):
    amounts = [D(n).scaleb(-2) for n in fens]
    assert int(rules.total_of(amounts) * 100) == sum(fens)
    assert rules.total_of([*amounts, None]) == rules.total_of(amounts)


@pytest.mark.parametrize("value, ok", [(D("1.23"), True), (D("-0.01"), True), (D("1.234"), False),
                                       (D("NaN"), False), (D("1e309"), False), ("1.00", False),
                                       (D("Infinity"), False), (1, False)])
def test_is_fen(value, ok):
    assert rules.is_fen(value) is ok
