"""The settlement rules as pure functions: what a line pays and why, exact to the fen.

Every amount is a Decimal rounded half up at line level (:func:`portal.models.money`); a total
is the plain sum of rounded amounts. Nothing here touches the database, so the property tests
can run thousands of cases quickly.

The quarterly evaluation supplies grades by answering the signal
:data:`settlement.api.grade_wanted`; without an answer no grade line is made.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from portal.models import money
from portal.periods import Period
from settlement.kinds import total_of_fees
from tenants.models import ServiceType

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)

# --- exception codes, their labels and default dispositions ------------------------------------

NO_RATE_CARD = "no_rate_card"
OUT_OF_WARRANTY = "out_of_warranty"
LATE = "late"
DUPLICATE = "duplicate"
UNCERTIFIED = "uncertified_engineer"
DISTANCE_OVER_CAP = "distance_over_cap"
HOURS_OVER_STANDARD = "hours_over_standard"
MISSING_EVIDENCE = "missing_evidence"

EXCEPTION_CODES = (OUT_OF_WARRANTY, LATE, DUPLICATE, UNCERTIFIED, DISTANCE_OVER_CAP,
                   HOURS_OVER_STANDARD, MISSING_EVIDENCE, NO_RATE_CARD)
# Shown to HQ only: it is about other claims, possibly of other agencies.
HQ_ONLY_CODES = frozenset({DUPLICATE})

DEFAULT_DISPOSITIONS = {
    OUT_OF_WARRANTY: "deny",
    LATE: "deny",
    DUPLICATE: "review",
    UNCERTIFIED: "pay",  # the labor share rule already applied
    DISTANCE_OVER_CAP: "review",
    HOURS_OVER_STANDARD: "review",
    MISSING_EVIDENCE: "review",
    NO_RATE_CARD: "review",
}

EXCEPTION_LABELS = {
    OUT_OF_WARRANTY: _l("Out of warranty"),
    LATE: _l("Outside the claim window"),
    DUPLICATE: _l("Possible duplicate (same serial number and repair code claimed recently)"),
    UNCERTIFIED: _l("Engineer without a valid certificate"),
    DISTANCE_OVER_CAP: _l("Distance over the cap"),
    HOURS_OVER_STANDARD: _l("Hours over the standard"),
    MISSING_EVIDENCE: _l("Evidence missing for this amount"),
    NO_RATE_CARD: _l("No rate card covers this order"),
}

DISPOSITION_RANK = {"pay": 0, "review": 1, "deny": 2}
DISPOSITION_LABELS = {"pay": _l("Pay"), "review": _l("Route to a reviewer"),
                      "deny": _l("Deny")}

# The reason a disposition "deny" records on the line, in the agency's words.
AUTO_DENY_REASONS = {
    OUT_OF_WARRANTY: "out_of_warranty",
    LATE: "other",
    DUPLICATE: "duplicate",
    UNCERTIFIED: "other",
    DISTANCE_OVER_CAP: "rate_mismatch",
    HOURS_OVER_STANDARD: "rate_mismatch",
    MISSING_EVIDENCE: "insufficient_evidence",
    NO_RATE_CARD: "rate_mismatch",
}

REASON_LABELS = {
    "duplicate": _l("Duplicate claim"),
    "insufficient_evidence": _l("Insufficient evidence"),
    "out_of_warranty": _l("Out of warranty"),
    "rate_mismatch": _l("Rate mismatch"),
    "other": _l("Other"),
}

# --- the rules applied to an order's amount ---------------------------------------------------

RULE_REWORK = "rework"
RULE_UNCERTIFIED = "uncertified_share"
RULE_DISTANCE_CAPPED = "distance_capped"
RULE_WITHIN_FREE_KM = "within_free_km"
RULE_NOT_ONSITE = "not_onsite"
RULE_NO_RATE = "no_rate_card"

RULE_LABELS = {
    RULE_REWORK: _l("Rework (返修): no labor fee"),
    RULE_UNCERTIFIED: _l("Engineer not certified on the service date: labor paid at the "
                         "configured share"),
    RULE_DISTANCE_CAPPED: _l("Distance beyond the cap is not paid"),
    RULE_WITHIN_FREE_KM: _l("Distance within the free km: no allowance"),
    RULE_NOT_ONSITE: _l("Not an on-site repair: no distance allowance"),
    RULE_NO_RATE: _l("No rate card in force on the service date: nothing computed"),
}


@dataclass(frozen=True)
class Terms:
    """The rates that apply to one order: its rate card version, product line, service type
    and the agency's tier."""

    rate_card_id: int
    callout_fee: Decimal
    hourly_rate: Decimal
    free_km: Decimal
    per_km: Decimal
    max_km: Decimal
    parts_handling_pct: Decimal


@dataclass(frozen=True)
class OrderFacts:
    service_type: str
    labor_hours: Decimal  # the repair codes' standard hours
    distance_km: Decimal | None
    parts_value: Decimal  # in-warranty parts used, at their unit prices
    is_rework: bool
    is_engineer_certified: bool


@dataclass(frozen=True)
class Computation:
    """Each step of an order's amount; `total` is the sum of the rounded components."""

    rate_card_id: int | None
    callout_fee: Decimal
    labor_hours: Decimal
    hourly_rate: Decimal
    labor_share_pct: Decimal
    labor_fee: Decimal
    distance_km: Decimal | None
    free_km: Decimal
    max_km: Decimal | None
    paid_km: Decimal
    per_km: Decimal
    distance_fee: Decimal
    parts_value: Decimal
    parts_handling_pct: Decimal
    parts_handling_fee: Decimal
    rules: tuple[str, ...]

    @property
    def total(self) -> Decimal:
        return total_of_fees(self)


def percent_of(amount: Decimal, pct: Decimal) -> Decimal:
    """`pct` % of `amount`, rounded half up to the fen."""
    return money(Decimal(amount) * Decimal(pct) / HUNDRED)


def labor_share(facts: OrderFacts, uncertified_share_pct: Decimal) -> tuple[Decimal, list]:
    if facts.is_rework:
        return ZERO, [RULE_REWORK]
    if not facts.is_engineer_certified:
        return Decimal(uncertified_share_pct), [RULE_UNCERTIFIED]
    return Decimal("100.00"), []


def paid_distance(facts: OrderFacts, terms: Terms) -> tuple[Decimal, list]:
    """km paid: the distance up to the cap, less the free km (on-site repairs only)."""
    if facts.service_type != ServiceType.ONSITE or facts.distance_km is None:
        return ZERO, [RULE_NOT_ONSITE]
    rules = []
    counted = facts.distance_km
    if counted > terms.max_km:
        counted, rules = terms.max_km, [RULE_DISTANCE_CAPPED]
    paid = counted - terms.free_km
    if paid <= 0:
        return ZERO, [*rules, RULE_WITHIN_FREE_KM]
    return paid, rules


def compute_order(facts: OrderFacts, terms: Terms | None,
                  uncertified_share_pct: Decimal) -> Computation:
    """The amount of one claimed order under `terms` (None: no rate card, nothing paid)."""
    if terms is None:
        return Computation(None, ZERO, facts.labor_hours, ZERO, Decimal("100.00"), ZERO,
                           facts.distance_km, ZERO, None, ZERO, ZERO, ZERO, facts.parts_value,
                           ZERO, ZERO, (RULE_NO_RATE,))
    share, rules = labor_share(facts, uncertified_share_pct)
    labor_fee = money(facts.labor_hours * terms.hourly_rate * share / HUNDRED)
    paid_km, distance_rules = paid_distance(facts, terms)
    return Computation(
        rate_card_id=terms.rate_card_id,
        callout_fee=money(terms.callout_fee),
        labor_hours=facts.labor_hours,
        hourly_rate=terms.hourly_rate,
        labor_share_pct=share,
        labor_fee=labor_fee,
        distance_km=facts.distance_km,
        free_km=terms.free_km,
        max_km=terms.max_km,
        paid_km=paid_km,
        per_km=terms.per_km,
        distance_fee=money(paid_km * terms.per_km),
        parts_value=money(facts.parts_value),
        parts_handling_pct=terms.parts_handling_pct,
        parts_handling_fee=percent_of(facts.parts_value, terms.parts_handling_pct),
        rules=tuple(rules + distance_rules),
    )


# --- checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckFacts:
    """What the automatic checks look at for one order line."""

    has_rate_card: bool
    is_in_warranty: bool
    days_since_service: int
    claim_window_days: int
    is_duplicate: bool
    is_engineer_certified: bool
    distance_km: Decimal | None
    max_km: Decimal | None
    labor_hours: Decimal
    max_order_hours: Decimal
    claimed_amount: Decimal
    evidence_threshold: Decimal
    evidence_count: int


def order_exceptions(facts: CheckFacts) -> list[str]:
    """The exception codes one order line raises, in the fixed order of EXCEPTION_CODES."""
    raised = {
        OUT_OF_WARRANTY: not facts.is_in_warranty,
        LATE: facts.days_since_service > facts.claim_window_days,
        DUPLICATE: facts.is_duplicate,
        UNCERTIFIED: not facts.is_engineer_certified,
        DISTANCE_OVER_CAP: (facts.distance_km is not None and facts.max_km is not None
                            and facts.distance_km > facts.max_km),
        HOURS_OVER_STANDARD: facts.labor_hours > facts.max_order_hours,
        MISSING_EVIDENCE: (facts.claimed_amount > facts.evidence_threshold
                           and facts.evidence_count == 0),
        NO_RATE_CARD: not facts.has_rate_card,
    }
    return [code for code in EXCEPTION_CODES if raised[code]]


def disposition_of(codes: Iterable[str], dispositions: dict[str, str]) -> str:
    """The strictest disposition among `codes` (no code: pay)."""
    worst = "pay"
    for code in codes:
        candidate = dispositions.get(code, DEFAULT_DISPOSITIONS.get(code, "review"))
        if DISPOSITION_RANK[candidate] > DISPOSITION_RANK[worst]:
            worst = candidate
    return worst


def denying_code(codes: Iterable[str], dispositions: dict[str, str]) -> str | None:
    """The first code whose disposition is deny: the reason an automatic denial gives."""
    for code in codes:
        if dispositions.get(code, DEFAULT_DISPOSITIONS.get(code)) == "deny":
            return code
    return None


def visible_codes(codes: Iterable[str], is_hq: bool) -> list[str]:
    return [c for c in codes if is_hq or c not in HQ_ONLY_CODES]


# --- rules a reviewer applies to a selection of order lines ----------------------------------
# Each has its exact Python form (the reference, tested against the SQL) and its SQL form over
# amounts in integer fen (how :class:`portal.models.Money` stores them), so that one UPDATE
# decides any number of lines. Amounts of order lines are never negative: integer division
# then rounds half up exactly as :func:`money` does.

CAP_STANDARD = "cap_standard_hours"
DEDUCT_UNCERTIFIED = "deduct_uncertified_labor"
PAY_PERCENT = "pay_percent"

BULK_RULE_LABELS = {
    CAP_STANDARD: _l("Cap at the rate card fee for the standard hours per order"),
    DEDUCT_UNCERTIFIED: _l("Deduct the labor of engineers without a valid certificate"),
    PAY_PERCENT: _l("Pay a percentage of the claimed amount"),
}

# Short names of the exception codes for the review table (the full label is its title).
EXCEPTION_SHORT_LABELS = {
    OUT_OF_WARRANTY: _l("Warranty"),
    LATE: _l("Late"),
    DUPLICATE: _l("Duplicate?"),
    UNCERTIFIED: _l("Uncertified"),
    DISTANCE_OVER_CAP: _l("Distance"),
    HOURS_OVER_STANDARD: _l("Hours"),
    MISSING_EVIDENCE: _l("Evidence"),
    NO_RATE_CARD: _l("No rate"),
}


def capped_to_standard(claimed: Decimal, labor_fee: Decimal, labor_hours: Decimal,
                       hourly_rate: Decimal, share_pct: Decimal, max_hours: Decimal) -> Decimal:
    """The claimed amount with its labor paid for at most `max_hours` (the rate card's hourly
    rate and the line's labor share, as :func:`compute_order` pays labor)."""
    if labor_hours <= max_hours:
        return claimed
    return claimed - labor_fee + money(max_hours * hourly_rate * share_pct / HUNDRED)


def without_uncertified_labor(claimed: Decimal, labor_fee: Decimal, codes: Iterable[str]
                              ) -> Decimal:
    """The claimed amount less its labor fee when the engineer had no valid certificate."""
    return claimed - labor_fee if UNCERTIFIED in codes else claimed


def percent_paid(claimed: Decimal, pct: Decimal) -> Decimal:
    return percent_of(claimed, pct)


def _half_up(numerator, denominator: int):
    """SQL: numerator / denominator rounded half up, for a numerator that is never negative."""
    return (numerator + denominator // 2) // denominator


def capped_to_standard_sql(claimed, labor_fee, labor_hours, hourly_rate, share_pct,
                           max_hours: Decimal):
    """SQL form of :func:`capped_to_standard` over integer fen, hundredths of an hour and
    hundredths of a percent: hours × rate × share = fen × 10⁶."""
    from sqlalchemy import case

    hundredths = int(max_hours * 100)
    capped = _half_up(hourly_rate * share_pct * hundredths, 1_000_000)
    return case((labor_hours > hundredths, claimed - labor_fee + capped), else_=claimed)


def without_uncertified_labor_sql(claimed, labor_fee, codes):
    """SQL form of :func:`without_uncertified_labor` (`codes`: the comma-joined column)."""
    from sqlalchemy import case, literal

    listed = (literal(",") + codes + literal(",")).like(f"%,{UNCERTIFIED},%")
    return case((listed, claimed - labor_fee), else_=claimed)


def percent_paid_sql(claimed, pct: Decimal):
    """SQL form of :func:`percent_paid`: fen × pct (in hundredths of a percent) / 10⁴."""
    return _half_up(claimed * int(pct * 100), 10_000)


# --- deductions and bonuses ------------------------------------------------------------------

DEFAULT_GRADE_PCT = {"A": Decimal("5.00"), "B": Decimal("0.00"), "C": Decimal("-3.00"),
                     "D": Decimal("-8.00")}
GRADES = ("A", "B", "C", "D")


def return_deduction(unit_price: Decimal, quantity: int) -> Decimal:
    """An overdue defective-part return costs the agency the part's value."""
    return -money(Decimal(unit_price) * quantity)


def complaint_deduction(amount: Decimal) -> Decimal:
    return -money(amount)


def grade_adjustment(labor_total: Decimal, pct: Decimal) -> Decimal:
    """A grade's bonus (+) or penalty (−): `pct` % of the quarter's labor fees."""
    return percent_of(labor_total, pct)


def grade_quarters(year: int, month: int, count: int = 4) -> list[Period]:
    """The `count` quarters that ended before the month's quarter began (latest first): the
    quarters whose final grade a claim of that month may carry."""
    current = Period.of_day(date(year, month, 1))
    return [current.previous(n) for n in range(1, count + 1)]


# --- the grade the evaluation area supplies --------------------------------------------------


def grade_for(agency_id: int, year: int, quarter: int) -> str | None:
    """The agency's final grade of the quarter (A–D) as the areas that answer
    :data:`settlement.api.grade_wanted` give it, or None."""
    from settlement.api import grade_wanted

    for _receiver, grade in grade_wanted.send(None, agency_id=agency_id, year=year,
                                              quarter=quarter):
        if grade in GRADES:
            return grade
    return None


# --- sums ------------------------------------------------------------------------------------


def is_fen(value) -> bool:
    """A Decimal amount exact to the fen, of a size money can have (never NaN or 1e309)."""
    return (isinstance(value, Decimal) and value.is_finite() and abs(value) < Decimal("1e12")
            and value == value.quantize(Decimal("0.01")))


def total_of(amounts: Iterable[Decimal | None]) -> Decimal:
    """The sum of line amounts (None counts as nothing), exact."""
    return sum((a for a in amounts if a is not None), ZERO)
