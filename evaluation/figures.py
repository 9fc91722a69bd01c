"""The quarter's figures in set-based SQL: one GROUP BY per source over the whole network.

Each KPI's counting condition is written once here and used twice: by the aggregates of the
computation and by the drill-down lists of the agency pages, so that the records behind a
KPI add up to its figure.
"""
from datetime import date

from flask import current_app
from sqlalchemy import Integer, and_, case, exists, func, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from dispatch.appointments import Appointment
from dispatch.sla import Milestone, SlaClock
from evaluation import kpis
from evaluation.models import Inspection, Quarter
from portal.extensions import db
from portal.periods import Period
from service.models import (
    Complaint,
    OrderStatus,
    PartReturn,
    PartsRequest,
    ReturnStatus,
    Revisit,
    Verdict,
    WorkOrder,
)
from tenants.models import Agency, AgencyStatus

EVALUATED_STATUSES = (AgencyStatus.PROBATION, AgencyStatus.ACTIVE, AgencyStatus.SUSPENDED)


class elapsed_seconds(FunctionElement):  # noqa: N801 - reads as a SQL function
    """Whole seconds from `earlier` to `later` (each truncated to the second), on SQLite and
    PostgreSQL alike."""

    type = Integer()
    inherit_cache = True
    name = "elapsed_seconds"


@compiles(elapsed_seconds, "sqlite")
def _elapsed_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return (f"(CAST(strftime('%s', {later}) AS INTEGER) - "
            f"CAST(strftime('%s', {earlier}) AS INTEGER))")


@compiles(elapsed_seconds)
def _elapsed_default(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return (f"(CAST(FLOOR(EXTRACT(EPOCH FROM {later})) AS BIGINT) - "
            f"CAST(FLOOR(EXTRACT(EPOCH FROM {earlier})) AS BIGINT))")


def zone() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


# --- the conditions, written once -----------------------------------------------------------------


def completed_in(period: Period, order=WorkOrder):
    """The quarter's completed orders: completed, with a local service day in the quarter."""
    return and_(order.status == OrderStatus.COMPLETED,
                order.service_date.between(period.first_day, period.last_day))


def sla_clock(order=WorkOrder):
    """The moment the SLA judges: response (phone, carry-in diagnosis) or arrival (on-site)."""
    return case((order.service_type == "onsite", order.arrived_at), else_=order.responded_at)


def within_sla(sla_minutes: dict, order=WorkOrder):
    limit = case((order.service_type == "phone", sla_minutes["phone"] * 60),
                 (order.service_type == "onsite", sla_minutes["onsite"] * 60),
                 else_=sla_minutes["carry_in"] * 60)
    clock = sla_clock(order)
    return and_(clock.is_not(None), elapsed_seconds(clock, order.received_at) <= limit)


# --- dispatched orders: the SLA clocks (versions with ``Scheme.dispatch_clocks``) ----------------
# A dispatched order has clocks (dispatch/sla.py, one row per milestone after accept; the
# unique index (agency_id, work_order_id, milestone) answers each test below).


def _clocks_of(order, *where):
    return exists().where(SlaClock.agency_id == order.agency_id,
                          SlaClock.work_order_id == order.id, *where)


def dispatched(order=WorkOrder):
    """The order came from HQ's dispatch: it has SLA clocks."""
    return _clocks_of(order)


def timeliness_milestone(order=WorkOrder):
    """The milestone the response timeliness reads: arrival on site, diagnosis carry-in,
    completion by phone (a phone order's only clock)."""
    return case((order.service_type == "onsite", Milestone.ARRIVAL.value),
                (order.service_type == "carry_in", Milestone.DIAGNOSIS.value),
                else_=Milestone.COMPLETION.value)


def clock_in_time(milestone, order=WorkOrder):
    """The order's clock of `milestone` was reached by its due time (never reached: late)."""
    return _clocks_of(order, SlaClock.milestone == milestone, SlaClock.met_at.is_not(None),
                      SlaClock.met_at <= SlaClock.due_at)


def within_sla_by_clocks(sla_minutes: dict, order=WorkOrder):
    """Dispatched orders by their clock, the others by the typed times."""
    return or_(and_(dispatched(order), clock_in_time(timeliness_milestone(order), order)),
               and_(not_(dispatched(order)), within_sla(sla_minutes, order)))


def dispatched_visit(period: Period, order=WorkOrder):
    """A dispatched on-site or carry-in order (one with an appointment clock)."""
    return and_(order.service_type.in_(("onsite", "carry_in")),
                _clocks_of(order, SlaClock.milestone == Milestone.APPOINTMENT.value))


def appointment_in_time(sla_minutes: dict, order=WorkOrder):
    return clock_in_time(Milestone.APPOINTMENT.value, order)


def _current_window(order, *where):
    return exists().where(Appointment.agency_id == order.agency_id,
                          Appointment.work_order_id == order.id,
                          Appointment.superseded_at.is_(None), *where)


def window_ended(period: Period, order=WorkOrder):
    """A dispatched on-site order whose current appointment window ended by the quarter's
    end."""
    end = period.utc_bounds(zone())[1]
    return and_(order.service_type == "onsite", dispatched(order),
                _current_window(order, Appointment.window_to < end))


def window_kept(sla_minutes: dict, order=WorkOrder):
    """The arrival clock's recorded moment lies inside the current window (inclusive).

    One EXISTS over the window and the clock, both tied to the order: a scalar subquery nested
    inside the window's EXISTS would not correlate to the order (PostgreSQL refused its many
    rows; SQLite silently took the first)."""
    return _current_window(order, SlaClock.agency_id == order.agency_id,
                           SlaClock.work_order_id == order.id,
                           SlaClock.milestone == Milestone.ARRIVAL.value,
                           SlaClock.met_at.is_not(None),
                           SlaClock.met_at >= Appointment.window_from,
                           SlaClock.met_at <= Appointment.window_to)


# Conditions an order KPI may count besides a WorkOrder flag (kpis.Kpi.counted); versions
# with the clocks count ``CLOCK_CONDITIONS`` instead where they name one. ``BASE_CONDITIONS``:
# the completed orders a KPI counts at all (kpis.Kpi.base), for the quarter.
ORDER_CONDITIONS = {"within_sla": within_sla, "appointment_in_time": appointment_in_time,
                    "window_kept": window_kept}
CLOCK_CONDITIONS = {"within_sla": within_sla_by_clocks}
BASE_CONDITIONS = {"dispatched_visit": dispatched_visit, "window_ended": window_ended}


def order_condition(kpi: kpis.Kpi, sla_minutes: dict, order=WorkOrder, *,
                    clocks: bool = False):
    """What an order KPI counts in its numerator: a condition on the completed orders
    (`clocks`: the scheme version judges dispatched orders by their SLA clocks)."""
    named = ((CLOCK_CONDITIONS.get(kpi.counted) if clocks else None)
             or ORDER_CONDITIONS.get(kpi.counted))
    return named(sla_minutes, order) if named else getattr(order, kpi.counted)


def order_base(kpi: kpis.Kpi, period: Period, order=WorkOrder):
    """Which of the quarter's completed orders an order KPI counts (its denominator); None:
    all of them."""
    return None if kpi.base is None else BASE_CONDITIONS[kpi.base](period, order)


def measured_by_clocks(kpi: kpis.Kpi, period: Period, order=WorkOrder):
    """Of a timed KPI's orders, those the clocks measure (the dispatched ones)."""
    base = order_base(kpi, period, order)
    return dispatched(order) if base is None else and_(base, dispatched(order))


def substantiated_in(period: Period):
    start, end = period.utc_bounds(zone())
    return and_(Complaint.verdict == Verdict.SUBSTANTIATED, Complaint.closed_at >= start,
                Complaint.closed_at < end)


def returns_due_in(period: Period):
    return PartReturn.due_on.between(period.first_day, period.last_day)


def return_on_time():
    return and_(PartReturn.shipped_on.is_not(None), PartReturn.shipped_on <= PartReturn.due_on,
                PartReturn.status != ReturnStatus.REJECTED)


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _settlement_models():
    """The settlement area's line and settlement models, or None when it is not installed."""
    try:
        from settlement.models import Settlement, SettlementLine
    except ImportError:  # pragma: no cover - the area is optional
        return None
    return Settlement, SettlementLine


def settlement_lines_of(period: Period):
    """(Settlement, SettlementLine, condition) of the quarter's decided order lines, or None."""
    models = _settlement_models()
    if models is None:
        return None
    settlement, line = models
    condition = and_(line.kind == "order", line.decision != "pending",
                     settlement.year == period.year, settlement.month.in_(period.months),
                     settlement.status.notin_(("draft", "withdrawn")))
    return settlement, line, condition


def line_accepted(line):
    return line.decision == "approved"


# --- the aggregates -------------------------------------------------------------------------------


def _only(stmt, column, agency_id):
    return stmt if agency_id is None else stmt.where(column == agency_id)


# The key of count_figures' answer that holds, per timed KPI, the orders the clocks measured.
BY_CLOCKS = "by_clocks"


def _order_columns(period: Period, sla_minutes: dict, clocks: bool) -> list:
    """(code, numerator, denominator, measured by clocks or None) expressions of each order
    KPI the version counts (a version without the clocks: the KPIs it always had)."""
    out = []
    for kpi in kpis.of_source("orders"):
        if kpi.base is not None and not clocks:
            continue  # the appointment KPIs come with the clocks
        base = order_base(kpi, period)
        counted = order_condition(kpi, sla_minutes, clocks=clocks)
        numerator = _count_if(counted if base is None else and_(base, counted))
        denominator = func.count(WorkOrder.id) if base is None else _count_if(base)
        measured = _count_if(measured_by_clocks(kpi, period)) if clocks and kpi.timed else None
        out.append((kpi.code, numerator, denominator, measured))
    return out


def count_figures(period: Period, sla_minutes: dict, quarter_id: int | None,
                  agency_id: int | None = None, tick=None, *,
                  clocks: bool = False) -> dict[int, dict]:
    """{agency_id: {kpi code: (numerator, denominator)}} for every agency with data.

    `clocks` (the scheme version's ``dispatch_clocks``): dispatched orders' timeliness from
    their SLA clocks, the appointment KPIs counted, and under :data:`BY_CLOCKS` {code: orders
    measured by the clocks} of each timed KPI."""
    out: dict[int, dict] = {}

    def put(rows, build):
        for row in rows:
            out.setdefault(row[0], {}).update(build(row))

    tick = tick or (lambda note: None)
    # Every order KPI in one GROUP BY; complaints count per completed order.
    columns = _order_columns(period, sla_minutes, clocks)
    flat = [expr for _code, num, den, measured in columns
            for expr in (num, den, *(() if measured is None else (measured,)))]
    orders = _only(select(WorkOrder.agency_id, func.count(WorkOrder.id), *flat)
                   .where(completed_in(period)), WorkOrder.agency_id, agency_id
                   ).group_by(WorkOrder.agency_id)

    def order_row(row) -> dict:
        found, measured, at = {}, {}, 2
        for code, _num, _den, by_clocks in columns:
            found[code] = (row[at], row[at + 1])
            at += 2
            if by_clocks is not None:
                measured[code] = row[at]
                at += 1
        if clocks:
            found[BY_CLOCKS] = measured
        return {**found, **{k.code: (0, row[1]) for k in kpis.of_source("complaints")}}

    put(db.session.execute(orders), order_row)
    tick("orders")
    revisits = _only(select(WorkOrder.agency_id, func.coalesce(func.sum(Revisit.score), 0),
                            func.count(Revisit.id))
                     .join(WorkOrder, and_(WorkOrder.agency_id == Revisit.agency_id,
                                           WorkOrder.id == Revisit.work_order_id))
                     .where(completed_in(period)), WorkOrder.agency_id, agency_id
                     ).group_by(WorkOrder.agency_id)
    put(db.session.execute(revisits),
        lambda r: {k.code: (r[1], r[2]) for k in kpis.of_source("revisits")})
    tick("revisits")
    complaints = _only(select(Complaint.agency_id, func.count(Complaint.id))
                       .where(substantiated_in(period)), Complaint.agency_id, agency_id
                       ).group_by(Complaint.agency_id)
    for agency, count in db.session.execute(complaints):
        for kpi in kpis.of_source("complaints"):
            orders_done = out.get(agency, {}).get(kpi.code, (0, 0))[1]
            out.setdefault(agency, {})[kpi.code] = (count, orders_done)
    tick("complaints")
    returns = _only(select(PartReturn.agency_id, _count_if(return_on_time()),
                           func.count(PartReturn.id)).where(returns_due_in(period)),
                    PartReturn.agency_id, agency_id).group_by(PartReturn.agency_id)
    put(db.session.execute(returns),
        lambda r: {k.code: (r[1], r[2]) for k in kpis.of_source("returns")})
    tick("returns")
    _settlement_figures(period, agency_id, put)
    tick("settlements")
    if quarter_id is not None:
        inspections = _only(select(Inspection.agency_id, Inspection.score)
                            .where(Inspection.quarter_id == quarter_id),
                            Inspection.agency_id, agency_id)
        put(db.session.execute(inspections),
            lambda r: {k.code: (r[1], 1) for k in kpis.of_source("inspection")})
    tick("inspections")
    return out


def _settlement_figures(period: Period, agency_id, put) -> None:
    found = settlement_lines_of(period)
    if found is None:
        return
    settlement, line, condition = found
    stmt = _only(select(line.agency_id, _count_if(line_accepted(line)), func.count(line.id))
                 .join(settlement, and_(settlement.agency_id == line.agency_id,
                                        settlement.id == line.settlement_id))
                 .where(condition), line.agency_id, agency_id).group_by(line.agency_id)
    put(db.session.execute(stmt),
        lambda r: {k.code: (r[1], r[2]) for k in kpis.of_source("settlement")})


def evaluated_agencies(agency_id: int | None = None) -> list:
    """(id, region_id, tier, status) of the agencies evaluated: on probation, active, suspended."""
    stmt = _only(select(Agency.id, Agency.region_id, Agency.tier, Agency.status)
                 .where(Agency.status.in_(EVALUATED_STATUSES)), Agency.id, agency_id)
    return db.session.execute(stmt.order_by(Agency.id)).all()


def coverage_gaps(day: date, agency_id: int | None = None) -> dict[int, int]:
    """{agency_id: product lines short of level-2 engineers} on `day` (certification area)."""
    try:
        from certification.queries import coverage_statement
    except ImportError:  # pragma: no cover - the area is optional
        return {}
    rows = coverage_statement(day, agency_id=agency_id, gaps_only=True).order_by(None).subquery()
    return dict(db.session.execute(select(rows.c.agency_id, func.count())
                                   .group_by(rows.c.agency_id)).all())


def previous_results(period: Period, agency_id: int | None = None) -> dict[int, tuple]:
    """{agency_id: (grade, score)} of the quarter before `period`."""
    from evaluation.models import Result

    before = period.previous()
    stmt = _only(select(Result.agency_id, Result.grade, Result.score)
                 .join(Quarter, Quarter.id == Result.quarter_id)
                 .where(Quarter.year == before.year, Quarter.quarter == before.quarter),
                 Result.agency_id, agency_id)
    return {a: (g, s) for a, g, s in db.session.execute(stmt)}


# --- HQ's own service level ----------------------------------------------------------------------


def service_level_sums(period: Period) -> dict[int, dict]:
    """{agency_id: {"region_id", "parts": (count, seconds), "settlement": ..., "verdict": ...}}
    for every agency (three GROUP BY queries)."""
    start, end = period.utc_bounds(zone())
    out: dict[int, dict] = {}

    def add(key, stmt):
        for agency, region, count, seconds in db.session.execute(stmt):
            row = out.setdefault(agency, {"region_id": region, "parts": (0, 0),
                                          "settlement": (0, 0), "verdict": (0, 0)})
            row[key] = (count, int(seconds or 0))

    def sums(model, owner, later, earlier, *where):
        return (select(owner, Agency.region_id, func.count(), func.coalesce(func.sum(
            elapsed_seconds(later, earlier)), 0)).join(Agency, Agency.id == owner)
            .where(*where).group_by(owner, Agency.region_id))

    add("parts", sums(PartsRequest, PartsRequest.agency_id, PartsRequest.shipped_at,
                      PartsRequest.submitted_at, PartsRequest.shipped_at >= start,
                      PartsRequest.shipped_at < end))
    add("verdict", sums(Complaint, Complaint.agency_id, Complaint.closed_at,
                        Complaint.received_at, Complaint.closed_at >= start,
                        Complaint.closed_at < end))
    models = _settlement_models()
    if models is not None:
        settlement = models[0]
        add("settlement", sums(settlement, settlement.agency_id, settlement.paid_at,
                               settlement.submitted_at, settlement.paid_at >= start,
                               settlement.paid_at < end, settlement.submitted_at.is_not(None)))
    return out

