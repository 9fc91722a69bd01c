"""Reads of the evaluation pages: rankings, distributions, agencies at risk, an agency's
results and the records behind each KPI. A fixed number of queries per page, all through the
tenant guard (an agency sees its own rows, a regional manager their region's) and, for agency
users, the publication guard below (nothing of a quarter before it is published)."""
from functools import cache

from sqlalchemy import and_, case, event, func, not_, select
from sqlalchemy.orm import joinedload, with_loader_criteria

from evaluation import figures, kpis, reports
from evaluation.models import (
    Appeal,
    AppealStatus,
    HqRating,
    Inspection,
    KpiValue,
    Proposal,
    ProposalStatus,
    Quarter,
    QuarterStatus,
    RankingReport,
    Report,
    Result,
    ResultStatus,
    ServiceLevel,
)
from portal.extensions import db
from portal.listing import paginate
from portal.models import utcnow
from portal.periods import Period
from portal.tenancy import TenantSession, current_scope
from service.models import Complaint, PartReturn, Revisit, WorkOrder
from tenants.models import Agency, Region

# --- what an agency sees of a quarter, written once -----------------------------------------------
# An agency sees nothing of a quarter before it is published (PRODUCT.md §2.5): neither the
# quarter, its score, rank, KPIs nor inspection. Like the tenant guard, this adds the filter
# to every ORM read made in an agency's scope (pages, home card, drill-downs, trend, report
# downloads), so that no view has to remember it; a draft quarter's result is then missing
# (404) like any other. HQ, auditors and regional managers, who enter inspection scores on
# drafts, read drafts as before.


def published_quarters():
    """The ids of the quarters agencies may see: published or final (a subquery)."""
    return select(Quarter.id).where(Quarter.status != QuarterStatus.DRAFT)


@cache
def _published_only() -> tuple:
    quarters = published_quarters()
    results = select(Result.id).where(Result.quarter_id.in_(quarters))
    return (
        with_loader_criteria(Quarter, Quarter.status != QuarterStatus.DRAFT,
                             include_aliases=True),
        *(with_loader_criteria(model, model.quarter_id.in_(quarters), include_aliases=True)
          for model in (Result, Inspection)),
        *(with_loader_criteria(model, model.result_id.in_(results), include_aliases=True)
          for model in (KpiValue, Appeal, Report, Proposal)),
    )


@event.listens_for(TenantSession, "do_orm_execute")
def _hide_unpublished_quarters(state) -> None:
    if state.is_column_load or state.is_relationship_load or not state.is_select:
        return  # criteria travel with the parent statement (propagate_to_loaders)
    if current_scope().kind == "agency":
        state.statement = state.statement.options(*_published_only())


# --- HQ's pages -----------------------------------------------------------------------------------


def quarters() -> list[Quarter]:
    return list(db.session.scalars(select(Quarter).options(joinedload(Quarter.scheme))
                                   .order_by(Quarter.year.desc(), Quarter.quarter.desc())))


def standing():
    """Where a result stands now, as one SQL expression over Result joined to its Quarter: the
    stored status, except that a published result nobody answered stands final once the 7
    days to answer are over (as `services.stands_final` says of one result, and when the
    tick closes the agency's task). The one definition of "awaiting answer" and "final" the
    quarter list counts and the ranking shows."""
    return case((and_(Result.status == ResultStatus.PUBLISHED,
                      Quarter.appeal_deadline_at < utcnow()), ResultStatus.FINAL.value),
                else_=Result.status)


def result_counts(quarter_id: int | None = None) -> dict[int, dict]:
    """{quarter_id: {standing: n}} of the results the user may see (one GROUP BY), of every
    quarter or of one."""
    # Grouped by the columns the expression reads (no bound value in GROUP BY, which
    # PostgreSQL would not match with the selected one); equal standings are summed here.
    stmt = (select(Result.quarter_id, standing(), func.count())
            .join(Quarter, Quarter.id == Result.quarter_id)
            .group_by(Result.quarter_id, Result.status, Quarter.appeal_deadline_at))
    if quarter_id is not None:
        stmt = stmt.where(Result.quarter_id == quarter_id)
    out: dict[int, dict] = {}
    for found, status_now, n in db.session.execute(stmt):
        counts = out.setdefault(found, {})
        counts[status_now] = counts.get(status_now, 0) + n
    return out


def ranking_statement(quarter_id: int, region_id: int | None = None):
    """Rows of (result, where it stands now: `standing`), best first."""
    stmt = (select(Result, standing().label("standing"))
            .options(joinedload(Result.agency), joinedload(Result.region))
            .join(Quarter, Quarter.id == Result.quarter_id)
            .join(Agency, Agency.id == Result.agency_id)
            .where(Result.quarter_id == quarter_id)
            .order_by(Result.rank_national.is_(None), Result.rank_national, Agency.code))
    if region_id:
        stmt = stmt.where(Result.region_id == region_id)
    return stmt


def distribution(quarter_id: int) -> tuple[list[Region], dict]:
    """Grades by region: ({(region_id, grade): n}) and the regions that have results."""
    rows = db.session.execute(select(Result.region_id, Result.grade, func.count())
                              .where(Result.quarter_id == quarter_id)
                              .group_by(Result.region_id, Result.grade)).all()
    counts = {(r, g or "-"): n for r, g, n in rows}
    ids = sorted({r for r, _g, _n in rows}) or [0]
    regions = list(db.session.scalars(select(Region).where(Region.id.in_(ids))
                                      .order_by(Region.code)))
    return regions, counts


def at_risk(quarter_id: int, limit: int = 50) -> list[Result]:
    """Elimination warnings, D grades, and C grades with certification gaps (worst first)."""
    risky = ((Result.grade == "D") | Result.elimination_warning
             | ((Result.grade == "C") & (Result.coverage_gaps > 0)))
    return list(db.session.scalars(
        select(Result).options(joinedload(Result.agency), joinedload(Result.region))
        .where(Result.quarter_id == quarter_id, risky)
        .order_by(Result.elimination_warning.desc(), Result.score, Result.id).limit(limit)))


def quarter_extras(quarter: Quarter) -> dict:
    """Inspections entered, open appeals and the ranking report versions (three queries)."""
    inspections = db.session.scalar(select(func.count(Inspection.id)).where(
        Inspection.quarter_id == quarter.id))
    appeals = list(db.session.scalars(
        select(Appeal).options(joinedload(Appeal.agency))
        .join(Result, and_(Result.agency_id == Appeal.agency_id, Result.id == Appeal.result_id))
        .where(Result.quarter_id == quarter.id).order_by(Appeal.status != AppealStatus.OPEN,
                                                         Appeal.lodged_at)))
    rankings = list(db.session.scalars(select(RankingReport).where(
        RankingReport.quarter_id == quarter.id).order_by(RankingReport.version.desc(),
                                                         RankingReport.locale)))
    return {"inspections": inspections, "appeals": appeals, "rankings": rankings,
            "issued": issued_days(rankings, quarter)}


def issued_days(files: list, quarter: Quarter) -> dict[int, object]:
    """{id: the day it was issued} of stored report or ranking files of `quarter`."""
    return {f.id: reports.issued_day(f.version, f.created_at, quarter) for f in files}


def agency_results(agency_id: int, limit: int | None = None) -> list[Result]:
    """The agency's results, latest quarter first (in an agency's scope: published ones)."""
    return list(db.session.scalars(
        select(Result).options(joinedload(Result.quarter)).join(Quarter)
        .where(Result.agency_id == agency_id)
        .order_by(Quarter.year.desc(), Quarter.quarter.desc()).limit(limit)))


def result_page(result: Result) -> dict:
    """Everything a result page shows, in a fixed number of queries."""
    quarter = result.quarter
    context = reports.load_context(quarter, [result])
    versions = list(db.session.scalars(select(Report).where(
        Report.agency_id == result.agency_id, Report.result_id == result.id)
        .order_by(Report.version.desc(), Report.locale)))
    appeal = db.session.scalars(select(Appeal).where(
        Appeal.agency_id == result.agency_id, Appeal.result_id == result.id)).one_or_none()
    inspection = db.session.scalars(select(Inspection).options(joinedload(Inspection.entered_by))
                                    .where(Inspection.agency_id == result.agency_id,
                                           Inspection.quarter_id == quarter.id)).one_or_none()
    proposals = list(db.session.scalars(select(Proposal).where(
        Proposal.agency_id == result.agency_id, Proposal.result_id == result.id)
        .order_by(Proposal.id)))
    return {"quarter": quarter, "values": context["values"].get(result.id, []),
            "trend": reports.trend_points(context, result), "versions": versions,
            "issued": issued_days(versions, quarter),
            "appeal": appeal, "inspection": inspection, "proposals": proposals,
            "service": {"agency": reports.result_service(result),
                        "region": reports.level_figures(context["levels"].get(result.region_id)),
                        "network": reports.level_figures(context["levels"].get(None))},
            "scheme": quarter.scheme,
            "shares": {v.code: kpis.clock_share(v.by_clocks, v.denominator)
                       for v in context["values"].get(result.id, [])},
            "answer_open": (quarter.appeal_deadline_at is not None
                            and not quarter.answers_closed)}


# --- the records behind a KPI ---------------------------------------------------------------------


def paginate_records(stmt, kind: str):
    """Two queries whatever the size: a page of the records and their exact count (the
    figure itself matters: the records add up to the KPI)."""
    return paginate(stmt, exact=True, rows=kind in ROW_RECORDS)


def drilldown(result: Result, code: str):
    """(statement of the records behind the KPI, kind of records) for `result`'s agency: the
    KPI's records table (kpis.Kpi.records), "none" when its source is not installed."""
    kpi = kpis.BY_CODE[code]
    quarter = result.quarter
    stmt = _RECORDS[kpi.records](result, kpi, Period(quarter.year, quarter.quarter),
                                 quarter.scheme.sla_minutes, quarter.scheme.dispatch_clocks)
    return stmt, (kpi.records if stmt is not None else "none")


def _listed(kpi: kpis.Kpi, counted, base=None):
    """The records a KPI's page lists, from the condition its numerator counts (among the
    orders it counts at all: `base`)."""
    listed = counted if kpi.listed == "counted" else not_(counted)
    return listed if base is None else and_(base, listed)


def _order_listed(kpi: kpis.Kpi, period: Period, sla, clocks: bool):
    return _listed(kpi, figures.order_condition(kpi, sla, clocks=clocks),
                   figures.order_base(kpi, period))


def _done(result: Result, period: Period):
    return and_(WorkOrder.agency_id == result.agency_id, figures.completed_in(period))


def _revisits(result, kpi, period, sla, clocks=False):
    return (select(Revisit, WorkOrder)
            .join(WorkOrder, and_(WorkOrder.agency_id == Revisit.agency_id,
                                  WorkOrder.id == Revisit.work_order_id))
            .where(_done(result, period)).order_by(Revisit.score, WorkOrder.number))


def _late_orders(result, kpi, period, sla, clocks=False):
    elapsed = figures.elapsed_seconds(figures.sla_clock(), WorkOrder.received_at)
    return (select(WorkOrder, elapsed.label("elapsed"))
            .where(_done(result, period), _order_listed(kpi, period, sla, clocks))
            .order_by(WorkOrder.service_date, WorkOrder.number))


def _orders(result, kpi, period, sla, clocks=False):
    return (select(WorkOrder)
            .where(_done(result, period), _order_listed(kpi, period, sla, clocks))
            .order_by(WorkOrder.service_date, WorkOrder.number))


def _complaints(result, kpi, period, sla, clocks=False):
    return (select(Complaint).where(Complaint.agency_id == result.agency_id,
                                    figures.substantiated_in(period))
            .order_by(Complaint.closed_at))


def _returns(result, kpi, period, sla, clocks=False):
    return (select(PartReturn).options(joinedload(PartReturn.part),
                                       joinedload(PartReturn.work_order))
            .where(PartReturn.agency_id == result.agency_id, figures.returns_due_in(period),
                   _listed(kpi, figures.return_on_time()))
            .order_by(PartReturn.due_on, PartReturn.id))


def _lines(result, kpi, period, sla, clocks=False):
    found = figures.settlement_lines_of(period)
    if found is None:
        return None
    settlement, line, condition = found
    return (select(line, settlement)
            .join(settlement, and_(settlement.agency_id == line.agency_id,
                                   settlement.id == line.settlement_id))
            .where(line.agency_id == result.agency_id, condition,
                   _listed(kpi, figures.line_accepted(line)))
            .order_by(settlement.month, line.id))


def _inspection(result, kpi, period, sla, clocks=False):
    return select(Inspection).where(Inspection.agency_id == result.agency_id,
                                    Inspection.quarter_id == result.quarter_id)


# The tables of records a KPI page shows (templates/evaluation/drilldown.html), by kind.
_RECORDS = {"revisits": _revisits, "late_orders": _late_orders, "orders": _orders,
            "complaints": _complaints, "returns": _returns, "lines": _lines,
            "inspection": _inspection}
ROW_RECORDS = ("revisits", "late_orders", "lines")  # pages of rows (records side by side)


def revisit_totals(result: Result) -> tuple[int, int]:
    """(revisits, sum of their scores) of the quarter's completed orders: the list's totals."""
    quarter = result.quarter
    period = Period(quarter.year, quarter.quarter)
    return tuple(db.session.execute(
        select(func.count(Revisit.id), func.coalesce(func.sum(Revisit.score), 0))
        .join(WorkOrder, and_(WorkOrder.agency_id == Revisit.agency_id,
                              WorkOrder.id == Revisit.work_order_id))
        .where(WorkOrder.agency_id == result.agency_id, figures.completed_in(period))).one())


def live_counts(result: Result) -> dict:
    """The agency's KPI counts as the data stands now (the drill-down's totals)."""
    quarter = result.quarter
    period = Period(quarter.year, quarter.quarter)
    return figures.count_figures(period, quarter.scheme.sla_minutes, quarter.id,
                                 agency_id=result.agency_id,
                                 clocks=quarter.scheme.dispatch_clocks
                                 ).get(result.agency_id, {})


def stored_value(result: Result, code: str) -> KpiValue | None:
    return db.session.scalars(select(KpiValue).where(
        KpiValue.agency_id == result.agency_id, KpiValue.result_id == result.id,
        KpiValue.code == code)).one_or_none()


# --- network pages --------------------------------------------------------------------------------


def open_proposals_statement():
    return (select(Proposal).options(joinedload(Proposal.agency),
                                     joinedload(Proposal.result).joinedload(Result.quarter))
            .order_by(Proposal.status != ProposalStatus.PROPOSED, Proposal.created_at.desc(),
                      Proposal.id.desc()))


def open_appeals_statement():
    return (select(Appeal).options(joinedload(Appeal.agency),
                                   joinedload(Appeal.result).joinedload(Result.quarter))
            .order_by(Appeal.status != AppealStatus.OPEN, Appeal.lodged_at.desc()))


def survey_summary(quarter_id: int) -> list:
    """Mean ratings of HQ by region for a quarter (one GROUP BY): region, n, four means."""
    return db.session.execute(
        select(Region, func.count(HqRating.id), func.avg(HqRating.parts),
               func.avg(HqRating.settlement), func.avg(HqRating.support),
               func.avg(HqRating.training))
        .join(Agency, Agency.id == HqRating.agency_id).join(Region, Region.id == Agency.region_id)
        .where(HqRating.quarter_id == quarter_id).group_by(Region.id)
        .order_by(Region.code)).all()


def service_levels(quarter_id: int) -> dict:
    """{region_id or None: ServiceLevel} of a quarter (HQ's aggregates, no agency rows)."""
    return {lv.region_id: lv for lv in db.session.scalars(
        select(ServiceLevel).where(ServiceLevel.quarter_id == quarter_id))}


def own_ratings(agency_id: int) -> dict[int, HqRating]:
    return {r.quarter_id: r for r in db.session.scalars(
        select(HqRating).where(HqRating.agency_id == agency_id))}


def report_by_hash(digest: str) -> dict:
    """What the auditors' check says of a file SHA-256: the stored report or network ranking
    with those bytes (`found`, else None), the day it was issued, and the current version of
    the same report in the same language (`current`: itself when no newer one replaced it),
    with its day (three queries at most)."""
    found = db.session.scalars(select(Report).options(
        joinedload(Report.agency), joinedload(Report.result).joinedload(Result.quarter))
        .where(Report.sha256 == digest)).first()
    if found is not None:
        quarter, model = found.result.quarter, Report
        same = (Report.agency_id == found.agency_id, Report.result_id == found.result_id)
    else:
        found = db.session.scalars(select(RankingReport).options(
            joinedload(RankingReport.quarter)).where(RankingReport.sha256 == digest)).first()
        if found is None:
            return {"found": None, "current": None}
        quarter, model = found.quarter, RankingReport
        same = (RankingReport.quarter_id == found.quarter_id,)
    current = db.session.scalars(select(model).where(*same, model.locale == found.locale)
                                 .order_by(model.version.desc()).limit(1)).one()
    return {"found": found, "kind": "report" if model is Report else "ranking",
            "quarter": quarter, "issued_on": reports.issued_day(found.version,
                                                                  found.created_at, quarter),
            "current": current, "superseded": current.version > found.version,
            "current_issued_on": reports.issued_day(current.version, current.created_at,
                                                    quarter)}


def regions_by_id(ids) -> dict[int, Region]:
    return {r.id: r for r in db.session.scalars(select(Region).where(Region.id.in_(ids or [0]))
                                                .order_by(Region.code))}
