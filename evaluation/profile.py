"""The evaluation area on an agency's 360 (portal.profile): the grade trend, the latest result
with its elimination warning, the consequences waiting for HQ, this quarter's KPIs so far; and
the evidence that speaks against promoting the agency.

Drafts: HQ (and the regional manager who enters inspection scores) read a quarter still in
draft; an agency reads published quarters only (the publication guard of evaluation.queries
hides the rest, and the panel filters them out again), and its staff and engineers read no
evaluation at all (policy.READERS).
"""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from evaluation import figures, format_2, kpis, queries
from evaluation.models import (
    RESULT_STATUS_LABELS,
    Proposal,
    ProposalStatus,
    Quarter,
    QuarterStatus,
    Result,
)
from evaluation.policy import READERS
from evaluation.schemes import scheme_in_force, scheme_terms
from portal import charts
from portal.clock import current_quarter
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.profile import add_concern, add_panel
from tenants.models import AgencyStatus

TREND_QUARTERS = 8
# Lifecycle moves that give an agency more standing than it has.
PROMOTIONS = {(AgencyStatus.APPLICANT, AgencyStatus.PROBATION),
              (AgencyStatus.PROBATION, AgencyStatus.ACTIVE),
              (AgencyStatus.SUSPENDED, AgencyStatus.PROBATION),
              (AgencyStatus.SUSPENDED, AgencyStatus.ACTIVE)}


def _visible(results: list[Result], user) -> list[Result]:
    """An agency's user never sees a quarter still in draft (the guard hides them already)."""
    if user.agency_id is None:
        return results
    return [r for r in results if r.quarter.status != QuarterStatus.DRAFT]


def _trend_label(result: Result) -> str:
    label = f"{result.quarter.label} {result.grade or '—'}"
    return label if result.status != "draft" else _("%(label)s (draft)", label=label)


def _panel(agency, user) -> dict:
    results = _visible(queries.agency_results(agency.id, limit=TREND_QUARTERS), user)
    oldest_first = list(reversed(results))
    chart = charts.line(_("Score and grade by quarter"),
                        [_trend_label(r) for r in oldest_first],
                        [(_("Score"), [r.score for r in oldest_first])],
                        name="profile-grades", formatter=format_2, value_range=(0, 100))
    proposals = []
    if user.agency_id is None:  # consequences are HQ admin's decisions
        proposals = list(db.session.scalars(
            select(Proposal).options(joinedload(Proposal.result).joinedload(Result.quarter))
            .where(Proposal.agency_id == agency.id, Proposal.status == ProposalStatus.PROPOSED)
            .order_by(Proposal.created_at.desc(), Proposal.id.desc())))
    latest = results[0] if results else None
    return {"chart": chart, "latest": latest, "proposals": proposals,
            "links": {"latest": url_for("evaluation.result", result_id=latest.id)
                      if latest else None,
                      "all": url_for("evaluation.index") if user.agency_id is not None
                      else url_for("evaluation.proposals")}}


def _kpis(agency, user) -> dict:
    """This quarter's KPIs so far, counted live from the agency's records (no points and no
    score: those come when HQ computes the quarter)."""
    period = current_quarter()
    # The records they count: the agency's orders of the quarter (HQ narrows the list to it).
    narrow = {} if user.agency_id is not None else {"agency_code": agency.code}
    link = url_for("service.orders", status="completed", sort="-completed", **narrow,
                   **{"from": period.first_day.isoformat(), "to": period.last_day.isoformat()})
    try:
        scheme = scheme_in_force(period)
    except DomainError:
        return {"period": period, "rows": [], "scheme": None, "link": link}
    counts = figures.count_figures(period, scheme.sla_minutes, None, agency_id=agency.id,
                                   clocks=scheme.dispatch_clocks).get(agency.id, {})
    terms = scheme_terms(scheme)
    rows = []
    for kpi in kpis.KPIS:
        if kpi.source == "inspection" or kpi.code not in terms:
            continue  # the regional manager's score (entered on the draft), or not a KPI
            # of the version in force
        weight, min_count, _curve, _position = terms[kpi.code]
        numerator, denominator = counts.get(kpi.code, (0, 0))
        raw = kpis.raw_value(kpi, numerator, denominator)
        rows.append({"kpi": kpi, "numerator": numerator, "denominator": denominator,
                     "raw": raw, "weight": weight, "min_count": min_count,
                     "sufficient": raw is not None and denominator >= max(min_count, 1)})
    return {"period": period, "rows": rows, "scheme": scheme, "link": link}


def _standing(agency, target_status) -> list[str]:
    """Promoting an agency whose latest evaluation (a draft too) warns of elimination, or
    grades it D, contradicts the evidence."""
    if (agency.status, target_status) not in PROMOTIONS:
        return []
    latest = db.session.execute(
        select(Result.grade, Result.elimination_warning, Result.status, Quarter.year,
               Quarter.quarter)
        .join(Quarter, Quarter.id == Result.quarter_id)
        .where(Result.agency_id == agency.id)
        .order_by(Quarter.year.desc(), Quarter.quarter.desc()).limit(1)).first()
    if latest is None:
        return []
    quarter = f"{latest.year}Q{latest.quarter}"
    status = RESULT_STATUS_LABELS.get(latest.status, latest.status)
    if latest.elimination_warning:
        return [_("The latest evaluation of %(code)s (%(quarter)s, %(status)s) carries an "
                  "elimination warning (淘汰预警): grade D in two quarters in a row.",
                  code=agency.code, quarter=quarter, status=status)]
    if latest.grade == "D":
        return [_("The latest evaluation of %(code)s (%(quarter)s, %(status)s) is grade D.",
                  code=agency.code, quarter=quarter, status=status)]
    return []


def register() -> None:
    add_panel("evaluation/_profile_grades.html", READERS, _panel, order=10)
    add_panel("evaluation/_profile_kpis.html", READERS, _kpis, order=15)
    add_concern(_standing)
