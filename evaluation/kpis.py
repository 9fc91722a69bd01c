"""The KPIs of the quarterly evaluation as pure rules: formula, raw value, points, score, grade.

The KPIs are a registry: one `Kpi(...)` in :data:`KPIS` declares a KPI whole — its texts, unit,
default weight, minimum and curve, which records it counts (`source`: evaluation.figures counts
each source once for every KPI of it; an order KPI names the WorkOrder flag or the figures
condition its numerator counts) and which of them its records page lists. Schemes, the scheme
form, computation, drill-down pages, reports and appeals read it from here.

A KPI's raw value is ``numerator × scale ÷ denominator`` rounded half up to two places; its
points come from a piecewise-linear curve (raw value → 0–100, flat beyond the ends); the score is
the weighted mean of the points of the KPIs with enough data, the weights of the others spread
over them in proportion (``Σ points × weight ÷ Σ weight``), rounded half up to two places.
Nothing here touches the database.

Dispatched orders (#18). A scheme version made since the dispatch (``Scheme.dispatch_clocks``)
judges the timeliness of a dispatched order (one with SLA clocks) by its clock of the matching
milestone — arrival on site, diagnosis carry-in, completion by phone — on time when the
clock's recorded moment is at or before its due time (never reached: late); other orders keep
the typed times. Such a version also carries the appointment rate (预约率) and the kept-window
rate (预约达成率), counted from the clocks and appointments. The timed KPIs (``timed``) store
how many of their orders the clocks measured. Older versions have neither the rules nor the
KPIs: their quarters compute exactly as before.

A new version's starting weights (``proposed_weight``) give 5 each to the two appointment
KPIs, taken from defective-part returns (10 → 5) and certified-engineer coverage (10 → 5):
the visit kept as promised weighs as much as the paperwork after it. Their curves: 60 % → 0,
90 % → 80, 100 % → 100 for appointments booked in time (as timeliness, a little more lenient
at the bottom); 60 % → 0, 85 % → 80, 100 % → 100 for windows kept (traffic and the previous
visit make a few late arrivals unavoidable); at least 5 orders each.
"""
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.errors_domain import DomainError

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
GRADES = ("A", "B", "C", "D")
GRADE_FLOORS = ((Decimal(90), "A"), (Decimal(80), "B"), (Decimal(70), "C"))


def q2(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Kpi:
    code: str
    label: object
    formula: object          # may hold %(phone)s, %(onsite)s, %(carry_in)s
    numerator_label: object
    denominator_label: object
    drill_label: object
    unit: str                # "percent", "mean", "per100", "points"
    scale: Decimal
    weight: int              # the default scheme's
    min_count: int
    curve: tuple             # ((raw, points), ...)
    # Which records it counts: "orders" (the quarter's completed orders; `counted` names a
    # WorkOrder flag or a condition of evaluation.figures.ORDER_CONDITIONS), "revisits",
    # "complaints", "returns", "settlement" or "inspection" (evaluation.figures counts each).
    source: str = "orders"
    counted: str | None = None
    # What its records page lists: the records that miss it ("missed"), those it counts
    # ("counted") or all of them ("all"); and the table that shows them.
    listed: str = "missed"
    records: str = "orders"
    # An order KPI counting only some of the completed orders: the figures condition that
    # picks them (its denominator); None: all of them.
    base: str | None = None
    # About time: measured by the SLA clocks for dispatched orders (versions with the
    # clocks), and the share so measured is stored and shown; `clock_formula` says how.
    timed: bool = False
    clock_formula: object = None
    # A new version's starting weight when it differs from the default scheme's (`weight`).
    proposed_weight: int | None = None


def _c(*pairs) -> tuple:
    return tuple((Decimal(str(x)), Decimal(str(p))) for x, p in pairs)


KPIS: tuple[Kpi, ...] = (
    Kpi("satisfaction", _l("Customer satisfaction"),
        _l("Sum of the revisit scores (1–5) ÷ revisits of the quarter's completed orders"),
        _l("Sum of scores"), _l("Revisits"), _l("Revisits of the quarter, lowest score first"),
        "mean", Decimal(1), 20, 5, _c((3, 0), (4, 70), ("4.5", 90), (5, 100)),
        source="revisits", listed="all", records="revisits"),
    Kpi("timeliness", _l("Response timeliness"),
        _l("Completed orders within the SLA ÷ completed orders × 100. SLA from receipt: phone "
           "response %(phone)s h, on-site arrival %(onsite)s h, carry-in diagnosis "
           "%(carry_in)s h"),
        _l("Within the SLA"), _l("Completed orders"), _l("Orders outside the SLA"),
        "percent", HUNDRED, 15, 10, _c((70, 0), (90, 80), (100, 100)),
        counted="within_sla", records="late_orders", timed=True,
        clock_formula=_l("Dispatched orders by the system's SLA clock of the milestone "
                         "(arrival on site, diagnosis carry-in, completion by phone): within "
                         "the SLA when reached by its due time; other orders by the typed "
                         "times.")),
    Kpi("first_time_fix", _l("First-time fix rate"),
        _l("Orders fixed at the first visit ÷ completed orders × 100"),
        _l("Fixed the first time"), _l("Completed orders"),
        _l("Orders not fixed the first time"),
        "percent", HUNDRED, 10, 10, _c((50, 0), (80, 70), (95, 100)),
        counted="is_first_time_fix"),
    Kpi("rework", _l("Rework rate"),
        _l("Rework orders (返修: same serial number within 30 days of a completed repair) ÷ "
           "completed orders × 100"),
        _l("Rework orders"), _l("Completed orders"), _l("Rework orders"),
        "percent", HUNDRED, 10, 10, _c((0, 100), (5, 75), (15, 0)),
        counted="is_rework", listed="counted"),
    Kpi("complaints", _l("Substantiated complaints"),
        _l("Complaints judged substantiated in the quarter ÷ completed orders × 100 "
           "(per 100 orders)"),
        _l("Substantiated complaints"), _l("Completed orders"), _l("Substantiated complaints"),
        "per100", HUNDRED, 10, 10, _c((0, 100), (2, 75), (6, 0)),
        source="complaints", listed="counted", records="complaints"),
    Kpi("returns", _l("Defective-part return compliance"),
        _l("Returns due in the quarter, shipped by the due date and not rejected ÷ returns "
           "due in the quarter × 100"),
        _l("Returned on time"), _l("Returns due"), _l("Returns late, missing or rejected"),
        "percent", HUNDRED, 10, 3, _c((50, 0), (90, 80), (100, 100)),
        source="returns", records="returns", proposed_weight=5),
    Kpi("certified", _l("Certified-engineer coverage"),
        _l("Completed orders serviced by an engineer with a valid certificate for the product "
           "line ÷ completed orders × 100"),
        _l("By certified engineers"), _l("Completed orders"),
        _l("Orders by engineers without a valid certificate"),
        "percent", HUNDRED, 10, 10, _c((0, 0), (50, 70), (100, 100)),
        counted="is_engineer_certified", proposed_weight=5),
    Kpi("settlement", _l("Settlement accuracy"),
        _l("Claimed order lines approved without adjustment ÷ decided order lines of the "
           "quarter's settlements × 100"),
        _l("Approved unadjusted"), _l("Decided lines"), _l("Adjusted or denied lines"),
        "percent", HUNDRED, 5, 10, _c((70, 0), (95, 90), (100, 100)),
        source="settlement", records="lines"),
    Kpi("inspection", _l("On-site inspection"),
        _l("Score of the regional manager's on-site inspection (0–100)"),
        _l("Inspection score"), _l("Inspections"), _l("Inspection"),
        "points", Decimal(1), 10, 1, _c((0, 0), (100, 100)),
        source="inspection", listed="all", records="inspection"),
    # Since the dispatch (#18): in scheme versions with the clocks only (weight 0 in the
    # default scheme, which does not hold them).
    Kpi("appointment", _l("Appointment rate (预约率)"),
        _l("Dispatched on-site and carry-in orders whose appointment was booked by the SLA "
           "clock's due time ÷ dispatched on-site and carry-in orders completed × 100"),
        _l("Booked in time"), _l("Dispatched visits"),
        _l("Dispatched orders whose appointment was booked late or never"),
        "percent", HUNDRED, 0, 5, _c((60, 0), (90, 80), (100, 100)),
        counted="appointment_in_time", base="dispatched_visit", timed=True,
        proposed_weight=5),
    Kpi("kept_window", _l("Kept-window rate (预约达成率)"),
        _l("Dispatched on-site orders whose engineer arrived inside the current appointment "
           "window (the moment the portal recorded the arrival) ÷ dispatched on-site orders "
           "completed whose window had ended × 100"),
        _l("Window kept"), _l("Windows ended"),
        _l("Dispatched orders that arrived outside the window or never"),
        "percent", HUNDRED, 0, 5, _c((60, 0), (85, 80), (100, 100)),
        counted="window_kept", base="window_ended", timed=True, proposed_weight=5),
)

BY_CODE = {k.code: k for k in KPIS}
CODES = tuple(k.code for k in KPIS)
assert sum(k.weight for k in KPIS) == 100


def proposed_weight(kpi: Kpi) -> int:
    """A new scheme version's starting weight of `kpi`."""
    return kpi.weight if kpi.proposed_weight is None else kpi.proposed_weight


assert sum(proposed_weight(k) for k in KPIS) == 100
assert all(k.source == "orders" for k in KPIS if k.timed or k.base)
assert all((k.source == "orders") == (k.counted is not None) for k in KPIS)


def of_source(source: str) -> list[Kpi]:
    """The KPIs counted from `source`'s records, in the catalog's order."""
    return [k for k in KPIS if k.source == source]

UNIT_SUFFIX = {"percent": "%", "mean": "", "per100": "", "points": ""}


def formula_text(kpi: Kpi, sla_minutes: dict, clocks: bool = False) -> str:
    """The KPI's formula with the scheme's SLA hours filled in (`clocks`: a version with the
    dispatch clocks, which says how they count)."""
    text = str(kpi.formula)
    text = text % {k: _hours(v) for k, v in sla_minutes.items()} if "%(" in text else text
    return f"{text} {kpi.clock_formula}" if clocks and kpi.clock_formula else text


def clock_share(by_clocks: int | None, counted: int) -> dict | None:
    """How much of a timed KPI the clocks measured: {"clocks", "typed", "of", "percent"}
    (percent whole, rounded half up); None when not recorded or nothing was counted."""
    if by_clocks is None or not counted:
        return None
    percent = (Decimal(by_clocks) * HUNDRED / Decimal(counted)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP)
    return {"clocks": by_clocks, "typed": counted - by_clocks, "of": counted,
            "percent": int(percent)}


def _hours(minutes: int) -> str:
    """90 → "1.5", 1440 → "24", 100 → "1.67"."""
    return format(q2(Decimal(minutes) / 60).normalize(), "f")


# --- values ------------------------------------------------------------------------------------


def raw_value(kpi: Kpi, numerator: int, denominator: int) -> Decimal | None:
    """numerator × scale ÷ denominator, two places; None without a denominator."""
    if not denominator:
        return None
    return q2(Decimal(numerator) * kpi.scale / Decimal(denominator))


def points_on(curve, raw: Decimal) -> Decimal:
    """The points of `raw` on a piecewise-linear curve, flat beyond its first and last points."""
    (x0, p0), (xn, pn) = curve[0], curve[-1]
    if raw <= x0:
        return q2(p0)
    if raw >= xn:
        return q2(pn)
    for (xa, pa), (xb, pb) in zip(curve, curve[1:], strict=False):
        if xa <= raw <= xb:
            return q2(pa + (pb - pa) * (raw - xa) / (xb - xa))
    return q2(pn)  # unreachable for a valid curve


@dataclass(frozen=True)
class Figure:
    """One KPI of one agency: what was counted and what it gives."""

    code: str
    numerator: int
    denominator: int
    weight: int
    min_count: int
    raw: Decimal | None
    points: Decimal | None
    is_sufficient: bool


def figure(kpi: Kpi, numerator: int, denominator: int, weight: int, min_count: int,
           curve) -> Figure:
    """A KPI with fewer than `min_count` counted items (or none) is marked insufficient."""
    raw = raw_value(kpi, numerator, denominator)
    sufficient = raw is not None and denominator >= max(min_count, 1)
    points = points_on(curve, raw) if sufficient else None
    return Figure(kpi.code, numerator, denominator, weight, min_count, raw, points, sufficient)


def effective_weights(figures: list[Figure]) -> dict[str, Decimal | None]:
    """Each sufficient KPI's share of 100 once the insufficient ones' weight is spread."""
    total = sum(f.weight for f in figures if f.is_sufficient)
    return {f.code: (q2(Decimal(f.weight) * HUNDRED / total) if f.is_sufficient and total
                     else None) for f in figures}


def score_of(figures: list[Figure]) -> Decimal | None:
    """Σ points × weight ÷ Σ weight over the sufficient KPIs; None when none is sufficient."""
    used = [f for f in figures if f.is_sufficient]
    total = sum(f.weight for f in used)
    if not total:
        return None
    return q2(sum(f.points * f.weight for f in used) / Decimal(total))


def grade_of(score: Decimal | None) -> str | None:
    """A (≥ 90), B (≥ 80), C (≥ 70), else D, on the score rounded to two places."""
    if score is None:
        return None
    for floor, grade in GRADE_FLOORS:
        if score >= floor:
            return grade
    return "D"


# --- curves as text (the scheme form) -------------------------------------------------------------


def curve_text(curve) -> str:
    return ", ".join(f"{_plain(x)}:{_plain(p)}" for x, p in curve)


def _plain(value) -> str:
    """3, 4.8 — not 3.00, 4.80."""
    return format(Decimal(value).normalize(), "f")


def parse_curve(text: str, field: str) -> tuple:
    """"3:0, 4:60, 4.8:100" → ((3, 0), (4, 60), (4.8, 100)); raises DomainError when the
    points are not 2–8 pairs with increasing raw values and points from 0 to 100."""
    pairs = []
    message = _("Write the curve as raw:points pairs, for example 70:0, 90:80, 100:100.")
    for chunk in (text or "").replace(";", ",").split(","):
        if not chunk.strip():
            continue
        left, sep, right = chunk.partition(":")
        if not sep:
            raise DomainError(message, field=field)
        try:
            x, p = Decimal(left.strip()), Decimal(right.strip())
        except InvalidOperation:
            raise DomainError(message, field=field) from None
        if not (x.is_finite() and p.is_finite()) or abs(x) > 100000:
            raise DomainError(message, field=field)
        pairs.append((q2(x), q2(p)))
    check_curve(pairs, field)
    return tuple(pairs)


def check_curve(pairs, field: str) -> None:
    if not 2 <= len(pairs) <= 8:
        raise DomainError(_("A curve has from 2 to 8 points."), field=field)
    if any(b[0] <= a[0] for a, b in zip(pairs, pairs[1:], strict=False)):
        raise DomainError(_("The raw values of a curve must increase from point to point."),
                          field=field)
    if any(not Decimal(0) <= p <= HUNDRED for _x, p in pairs):
        raise DomainError(_("Points on a curve are from 0 to 100."), field=field)


def curve_to_json(curve) -> list:
    return [[str(x), str(p)] for x, p in curve]


def curve_from_json(data) -> tuple:
    return tuple((Decimal(x), Decimal(p)) for x, p in data)
