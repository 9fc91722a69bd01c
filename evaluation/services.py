"""The lifecycle of a quarter after computation: inspection scores, acknowledgement and appeal,
HQ's decision on appeals, finalization, consequence proposals and the agencies' ratings of HQ.

Each service checks its rules, raises a translated DomainError, flushes, writes exactly one
audit entry and never commits.
"""
from datetime import date

from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import StaleDataError

from evaluation import figures, kpis, publication, reports
from evaluation.compute import rank_one, warning_of
from evaluation.models import (
    Appeal,
    AppealStatus,
    HqRating,
    Inspection,
    KpiValue,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Quarter,
    QuarterStatus,
    Result,
    ResultStatus,
)
from evaluation.schemes import scheme_terms
from portal.audit.services import record
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.periods import Period
from tenants.models import Agency

MAX_TEXT = 4000


def _text(value, field: str, message: str, low: int = 1, high: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if not low <= len(text) <= high:
        raise DomainError(message, field=field)
    return text


def _whole(value, low: int, high: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError(_("Enter a whole number from %(low)s to %(high)s.", low=low,
                            high=high), field=field)
    return value


def _flush() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        raise DomainError(_("Someone else changed this meanwhile. Reload the page and try "
                            "again.")) from None


def _quarter(result: Result) -> Quarter:
    return db.session.scalars(select(Quarter).where(Quarter.id == result.quarter_id)).one()


def _values(result: Result) -> list[KpiValue]:
    return list(db.session.scalars(select(KpiValue).where(
        KpiValue.agency_id == result.agency_id, KpiValue.result_id == result.id)
        .order_by(KpiValue.position)))


def _deadline_passed(quarter: Quarter) -> bool:
    return quarter.appeal_deadline_at is not None and utcnow() > quarter.appeal_deadline_at


def rescore(result: Result, values: list[KpiValue], quarter: Quarter) -> None:
    """Points, weights, score, grade and warning of a result from its KPI counts."""
    terms = scheme_terms(quarter.scheme)
    found = [kpis.figure(kpis.BY_CODE[v.code], v.numerator, v.denominator, v.weight,
                         v.min_count, terms[v.code][2]) for v in values]
    effective = kpis.effective_weights(found)
    for value, fig in zip(values, found, strict=True):
        value.raw, value.points, value.is_sufficient = fig.raw, fig.points, fig.is_sufficient
        value.effective_weight = effective[fig.code]
    result.score = kpis.score_of(found)
    result.grade = kpis.grade_of(result.score)
    result.elimination_warning = warning_of(result.grade, result.previous_grade)


# --- inspection scores (regional managers) --------------------------------------------------------


def enter_inspection(result: Result, score, note: str, actor=None) -> Inspection:
    """Enter or correct the on-site inspection score of a draft result (0–100).

    Raises DomainError once the quarter is published or for a score out of range. The tenant
    guard refuses a regional manager's entry for an agency outside their region.
    """
    if result.status != ResultStatus.DRAFT:
        raise DomainError(_("Inspection scores are entered before the quarter is published."))
    score = _whole(score, 0, 100, "score")
    note = (note or "").strip()
    if len(note) > MAX_TEXT:
        raise DomainError(_("The note is too long."), field="note")
    inspection = db.session.scalars(select(Inspection).where(
        Inspection.agency_id == result.agency_id,
        Inspection.quarter_id == result.quarter_id)).one_or_none()
    before = None if inspection is None else {"score": inspection.score}
    if inspection is None:
        inspection = Inspection(agency_id=result.agency_id, quarter_id=result.quarter_id,
                                score=score)
        db.session.add(inspection)
    inspection.score, inspection.note = score, note
    inspection.entered_at, inspection.entered_by_id = utcnow(), getattr(actor, "id", None)
    quarter, values = _quarter(result), _values(result)
    with db.session.no_autoflush:  # the counts and their points change together
        for value in values:
            if value.code == "inspection":
                value.numerator, value.denominator = score, 1
        rescore(result, values, quarter)
    _flush()
    record("evaluation.inspection_entered", inspection, actor=actor, before=before,
           after={"score": score, "result_score": result.score, "grade": result.grade})
    return inspection


# --- the agency: acknowledge or appeal ------------------------------------------------------------


def _check_open(result: Result, quarter: Quarter) -> None:
    if result.status != ResultStatus.PUBLISHED:
        raise DomainError(_("This result is not awaiting your acknowledgement."))
    if _deadline_passed(quarter):
        raise DomainError(_("The 7 days to acknowledge or appeal ended on %(at)s.",
                            at=format_datetime(quarter.appeal_deadline_at, "short")))


def acknowledge_result(result: Result, actor=None) -> None:
    """The agency accepts its published result, which becomes final. Raises DomainError after
    the deadline or when the result is not awaiting acknowledgement."""
    _check_open(result, _quarter(result))
    now = utcnow()
    result.status, result.final_reason = ResultStatus.FINAL, "acknowledged"
    result.acknowledged_at, result.finalized_at = now, now
    result.acknowledged_by_id = getattr(actor, "id", None)
    _flush()
    record("evaluation.acknowledged", result, actor=actor,
           before={"status": ResultStatus.PUBLISHED.value},
           after={"status": result.status, "grade": result.grade})


def lodge_appeal(result: Result, reason: str, kpi_code: str | None, actor=None) -> Appeal:
    """The agency appeals its published result within 7 days, with a reason (once).

    Raises DomainError after the deadline, for a short reason or an unknown KPI.
    """
    _check_open(result, _quarter(result))
    reason = _text(reason, "reason", _("Give the reason of the appeal (10 to 4000 characters)."),
                   low=10)
    if kpi_code and kpi_code not in kpis.CODES:
        raise DomainError(_("Choose one of the KPIs."), field="kpi_code")
    appeal = Appeal(agency_id=result.agency_id, result_id=result.id, reason=reason,
                    kpi_code=kpi_code or None, lodged_by_id=getattr(actor, "id", None))
    db.session.add(appeal)
    result.status = ResultStatus.APPEALED
    _flush()
    record("evaluation.appealed", appeal, actor=actor,
           after={"result_id": result.id, "kpi_code": appeal.kpi_code})
    return appeal


# --- HQ: appeals, finalization --------------------------------------------------------------------


def _check_correction(code: str, numerator, denominator) -> tuple[int, int]:
    if code not in kpis.CODES:
        raise DomainError(_("Choose the KPI to correct."), field="kpi_code")
    numerator = _whole(numerator, 0, 10**9, "numerator")
    denominator = _whole(denominator, 0, 10**9, "denominator")
    kpi = kpis.BY_CODE[code]
    if code == "inspection":
        denominator = _whole(denominator, 1, 1, "denominator")
        _whole(numerator, 0, 100, "numerator")
    elif kpi.unit == "mean" and not denominator <= numerator <= 5 * denominator:
        raise DomainError(_("The sum of scores lies between 1 and 5 times the revisits."),
                          field="numerator")
    elif kpi.unit == "percent" and numerator > denominator:
        raise DomainError(_("The count cannot exceed its total."), field="numerator")
    return numerator, denominator


def resolve_appeal(appeal: Appeal, *, upheld: bool, note: str, resolution: str | None = None,
                   kpi_code: str | None = None, numerator=None, denominator=None,
                   actor=None, issued_on: date | None = None) -> None:
    """HQ decides an open appeal. Rejected: the result stands, final, the reason shown.
    Upheld: the KPI figures are recomputed from the data as it now stands (`recompute`) or one
    KPI is corrected (`correct`), the result is re-scored and re-ranked, its proposals remade,
    and a new report version issued, dated `issued_on` (by default today). Raises DomainError
    for a closed appeal or bad input."""
    if appeal.status != AppealStatus.OPEN:
        raise DomainError(_("This appeal is already decided."))
    note = _text(note, "note", _("Explain the decision (5 to 4000 characters)."), low=5)
    result = db.session.scalars(select(Result).where(Result.id == appeal.result_id)).one()
    before = {"score": result.score, "grade": result.grade}
    now, actor_id = utcnow(), getattr(actor, "id", None)
    files = {}
    if upheld:
        if resolution not in ("recompute", "correct"):
            raise DomainError(_("Choose how the result is corrected."), field="resolution")
        files = _correct(result, resolution, kpi_code, numerator, denominator, note, actor,
                         issued_on)
    appeal.status = AppealStatus.UPHELD if upheld else AppealStatus.REJECTED
    appeal.resolution = resolution if upheld else None
    appeal.resolution_note, appeal.resolved_at, appeal.resolved_by_id = note, now, actor_id
    result.status, result.finalized_at = ResultStatus.FINAL, now
    result.final_reason = "appeal_upheld" if upheld else "appeal_rejected"
    _flush()
    record("evaluation.appeal_upheld" if upheld else "evaluation.appeal_rejected", appeal,
           actor=actor, before=before, after={"score": result.score, "grade": result.grade,
                                              "resolution": appeal.resolution,
                                              "reports": files}, reason=note)


def _correct(result: Result, resolution, kpi_code, numerator, denominator, note, actor,
             issued_on: date | None) -> dict:
    quarter = _quarter(result)
    values = _values(result)
    scheme = quarter.scheme
    if resolution == "recompute":
        period = Period(quarter.year, quarter.quarter)
        counts = figures.count_figures(period, scheme.sla_minutes, quarter.id,
                                       agency_id=result.agency_id).get(result.agency_id, {})
        wanted = {v.code: counts.get(v.code, (0, 0)) for v in values}
    else:
        numerator, denominator = _check_correction(kpi_code, numerator, denominator)
        wanted = {kpi_code: (numerator, denominator)}
    with db.session.no_autoflush:  # the counts and their points change together
        for value in values:
            if value.code in wanted:
                value.numerator, value.denominator = wanted[value.code]
                if resolution == "correct":
                    value.correction_note = note
        rescore(result, values, quarter)
    _flush()
    rank_one(result)
    db.session.execute(update(Proposal).where(
        Proposal.agency_id == result.agency_id, Proposal.result_id == result.id,
        Proposal.status == ProposalStatus.PROPOSED).values(status=ProposalStatus.WITHDRAWN),
        execution_options={"synchronize_session": False})
    context = reports.load_context(quarter, [result])
    for proposal in publication.proposals_for(result, context):
        db.session.add(proposal)
    _flush()
    return publication.reissue(result, actor, issued_on)


def finalize_quarter(quarter: Quarter, actor=None) -> int:
    """Close a published quarter: results nobody acknowledged or appealed become final.

    Raises DomainError while appeals are open, or before the deadline while some agencies
    have not answered yet. Returns how many results it made final.
    """
    if quarter.status != QuarterStatus.PUBLISHED:
        raise DomainError(_("Only a published quarter can be made final."))
    counts = dict(db.session.execute(select(Result.status, func.count()).where(
        Result.quarter_id == quarter.id).group_by(Result.status)).all())
    if counts.get(ResultStatus.APPEALED):
        raise DomainError(_("%(n)s appeals are still open: decide them first.",
                            n=counts[ResultStatus.APPEALED]))
    waiting = counts.get(ResultStatus.PUBLISHED, 0)
    if waiting and not _deadline_passed(quarter):
        raise DomainError(_("%(n)s agencies may still acknowledge or appeal until %(at)s.",
                            n=waiting, at=format_datetime(quarter.appeal_deadline_at, "short")))
    now = utcnow()
    table = Result.__table__
    db.session.execute(update(table).where(table.c.quarter_id == quarter.id,
                                           table.c.status == ResultStatus.PUBLISHED)
                       .values(status=ResultStatus.FINAL, finalized_at=now,
                               final_reason="deadline"))
    quarter.status, quarter.finalized_at = QuarterStatus.FINAL, now
    _flush()
    record("evaluation.finalized", quarter, actor=actor,
           after={"period": quarter.label, "deemed_accepted": waiting})
    return waiting


# --- consequences ---------------------------------------------------------------------------------


def decide_proposal(proposal: Proposal, accept: bool, note: str, actor=None) -> None:
    """HQ admin accepts or rejects a proposal. Accepting changes the agency through the
    network's own services (status) or a tier change of this area, with the evaluation as the
    reason. Raises DomainError for a decided proposal, a result not final yet (accepting), or
    an agency that changed since."""
    if proposal.status != ProposalStatus.PROPOSED:
        raise DomainError(_("This proposal is already decided."))
    note = (note or "").strip()[:MAX_TEXT]
    result = db.session.scalars(select(Result).where(Result.id == proposal.result_id)).one()
    quarter = _quarter(result)
    if accept and not stands_final(result.status, quarter.appeal_deadline_at):
        raise DomainError(_("Accept a proposal once the result is final."))
    now, actor_id = utcnow(), getattr(actor, "id", None)
    proposal.decided_at, proposal.decided_by_id, proposal.decision_note = now, actor_id, note
    if not accept:
        proposal.status = ProposalStatus.REJECTED
        _flush()
        record("evaluation.proposal_rejected", proposal, actor=actor,
               after={"kind": proposal.kind}, reason=note or None)
        return
    proposal.status = ProposalStatus.ACCEPTED
    agency = db.session.scalars(select(Agency).where(Agency.id == proposal.agency_id)).one()
    reason = _("Quarterly evaluation %(period)s, grade %(grade)s (proposal %(id)s). %(note)s",
               period=quarter.label, grade=result.grade, id=proposal.id, note=note).strip()
    _flush()
    if proposal.kind in (ProposalKind.PROMOTE, ProposalKind.DEMOTE):
        change_tier(agency, proposal.from_tier, proposal.to_tier, reason, actor)
    else:
        from tenants.services import change_agency_status

        change_agency_status(agency, proposal.to_status, reason, actor_id)


def change_tier(agency: Agency, from_tier: int, to_tier: int, reason: str, actor=None) -> None:
    """Move an agency from one tier (1–5 stars) to another. Raises DomainError when its tier
    is no longer `from_tier` or the new tier is out of range."""
    if agency.tier != from_tier:
        raise DomainError(_("The agency's tier changed since the proposal was made."))
    _whole(to_tier, 1, 5, "to_tier")
    agency.tier = to_tier
    _flush()
    record("agency.tier_changed", agency, actor=actor, before={"tier": from_tier},
           after={"tier": to_tier}, reason=reason)


# --- agencies rate HQ -----------------------------------------------------------------------------

RATING_FIELDS = ("parts", "settlement", "support", "training")


def rate_hq(agency_id: int, quarter: Quarter, data: dict, actor=None) -> HqRating:
    """The agency's one rating of HQ for a published quarter (1–5 for each of parts,
    settlement, technical support and training). Raises DomainError for a draft quarter, a
    second rating or values out of range."""
    if quarter.status == QuarterStatus.DRAFT:
        raise DomainError(_("HQ is rated once the quarter is published."))
    values = {name: _whole(data.get(name), 1, 5, name) for name in RATING_FIELDS}
    comment = (data.get("comment") or "").strip()
    if len(comment) > 2000:
        raise DomainError(_("The comment is too long."), field="comment")
    taken = db.session.scalar(select(func.count(HqRating.id)).where(
        HqRating.agency_id == agency_id, HqRating.quarter_id == quarter.id))
    if taken:
        raise DomainError(_("Your agency already rated HQ for %(period)s.",
                            period=quarter.label))
    rating = HqRating(agency_id=agency_id, quarter_id=quarter.id, comment=comment,
                      submitted_by_id=getattr(actor, "id", None), **values)
    db.session.add(rating)
    _flush()
    record("evaluation.hq_rated", rating, actor=actor, after={**values,
                                                               "period": quarter.label})
    return rating


# --- the settlement hook --------------------------------------------------------------------------


def stands_final(status: str, appeal_deadline_at) -> bool:
    """A result is final once acknowledged, decided on appeal or finalized, and also once
    published with the 7 days passed without an appeal (finalizing the quarter only records
    it)."""
    if status == ResultStatus.FINAL:
        return True
    return (status == ResultStatus.PUBLISHED and appeal_deadline_at is not None
            and utcnow() > appeal_deadline_at)


def final_grade(agency_id: int, year: int, quarter: int) -> str | None:
    """The final grade of an agency for a quarter (see `stands_final`), or None."""
    row = db.session.execute(
        select(Result.grade, Result.status, Quarter.appeal_deadline_at)
        .join(Quarter, Quarter.id == Result.quarter_id)
        .where(Result.agency_id == agency_id, Quarter.year == year,
               Quarter.quarter == quarter)).first()
    if row is None or row.grade is None:
        return None
    return row.grade if stands_final(row.status, row.appeal_deadline_at) else None
