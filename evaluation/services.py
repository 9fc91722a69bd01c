"""The lifecycle of a quarter after computation: inspection scores, acknowledgement and appeal,
HQ's decision on appeals, finalization, consequence proposals and the agencies' ratings of HQ.

Each change is a declared transition (portal.transitions): the decorator checks who may (the
area's policy), the starting state and the page's version, flushes, writes the one audit entry
and sends the signal; the bodies keep the business rules and raise a translated DomainError.
Nothing here commits.
"""
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import func, select, update

from evaluation import figures, kpis, policy, publication, reports
from evaluation.compute import clocks_measured, rank_one, warning_of
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
from evaluation.schemes import scheme_terms, whole
from portal import transitions as tr
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.i18n import datetime_filter as local_datetime
from portal.models import utcnow
from portal.periods import Period
from portal.policy import refusal
from portal.text import clean
from portal.transitions import transition
from tenants.models import Agency

MAX_TEXT = 4000


def _text(value, field: str, message: str, low: int = 1, high: int = MAX_TEXT) -> str:
    text = clean(value, multiline=True)
    if not low <= len(text) <= high:
        raise DomainError(message, field=field)
    return text


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


def _status(record) -> dict:
    return {"status": record.status}


# --- inspection scores (regional managers) --------------------------------------------------------


@transition("evaluation.inspection_entered", Inspection, creates=True,
            permission=policy.INSPECT, label=_l("Inspection score entered"))
def enter_inspection(result: Result, score, note: str, *, acting_user) -> Inspection:
    """Enter or correct the on-site inspection score of a draft result (0–100).

    Raises DomainError once the quarter is published or for a score out of range. The tenant
    guard refuses a regional manager's entry for an agency outside their region.
    """
    if result.status != ResultStatus.DRAFT:
        raise DomainError(_("Inspection scores are entered before the quarter is published."))
    score = whole(score, 0, 100, "score")
    note = clean(note, multiline=True)
    if len(note) > MAX_TEXT:
        raise DomainError(_("The note is too long."), field="note")
    inspection = db.session.scalars(select(Inspection).where(
        Inspection.agency_id == result.agency_id,
        Inspection.quarter_id == result.quarter_id)).one_or_none()
    if inspection is None:
        inspection = Inspection(agency_id=result.agency_id, quarter_id=result.quarter_id,
                                score=score)
        db.session.add(inspection)
    else:
        tr.note(before={"score": inspection.score})
    inspection.score, inspection.note = score, note
    inspection.entered_at, inspection.entered_by_id = utcnow(), getattr(acting_user, "id", None)
    quarter, values = _quarter(result), _values(result)
    with db.session.no_autoflush:  # the counts and their points change together
        for value in values:
            if kpis.BY_CODE[value.code].source == "inspection":
                value.numerator, value.denominator = score, 1
        rescore(result, values, quarter)
    db.session.flush()
    tr.note(after={"score": score, "result_score": result.score, "grade": result.grade})
    return inspection


# --- the agency: acknowledge or appeal ------------------------------------------------------------

NOT_AWAITING = _l("This result is not awaiting your acknowledgement.")


def _check_open(result: Result, quarter: Quarter) -> None:
    if result.status != ResultStatus.PUBLISHED:
        raise DomainError(str(NOT_AWAITING))
    if _deadline_passed(quarter):
        raise DomainError(_("The 7 days to acknowledge or appeal ended on %(at)s.",
                            at=local_datetime(quarter.appeal_deadline_at)))


@transition("evaluation.acknowledged", Result, source={ResultStatus.PUBLISHED},
            target=ResultStatus.FINAL, permission=policy.ACKNOWLEDGE,
            label=_l("Result acknowledged"), audit=_status, wrong_state=NOT_AWAITING)
def acknowledge_result(result: Result, *, acting_user) -> None:
    """The agency accepts its published result, which becomes final. Raises DomainError after
    the deadline or when the result is not awaiting acknowledgement."""
    _check_open(result, _quarter(result))
    now = utcnow()
    result.final_reason = "acknowledged"
    result.acknowledged_at, result.finalized_at = now, now
    result.acknowledged_by_id = getattr(acting_user, "id", None)
    tr.note(after={"grade": result.grade})


@transition("evaluation.appealed", Appeal, creates=True, permission=policy.APPEAL,
            label=_l("Result appealed"))
def lodge_appeal(result: Result, reason: str, kpi_code: str | None, *,
                 acting_user) -> Appeal:
    """The agency appeals its published result within 7 days, with a reason (once).

    Raises DomainError after the deadline, for a short reason or an unknown KPI.
    """
    _check_open(result, _quarter(result))
    reason = _text(reason, "reason", _("Give the reason of the appeal (10 to 4000 characters)."),
                   low=10)
    if kpi_code and kpi_code not in kpis.CODES:
        raise DomainError(_("Choose one of the KPIs."), field="kpi_code")
    appeal = Appeal(agency_id=result.agency_id, result_id=result.id, reason=reason,
                    kpi_code=kpi_code or None, lodged_by_id=getattr(acting_user, "id", None))
    db.session.add(appeal)
    result.status = ResultStatus.APPEALED
    db.session.flush()
    tr.note(after={"result_id": result.id, "kpi_code": appeal.kpi_code})
    return appeal


# --- HQ: appeals, finalization --------------------------------------------------------------------


def _check_correction(code: str, numerator, denominator) -> tuple[int, int]:
    if code not in kpis.CODES:
        raise DomainError(_("Choose the KPI to correct."), field="kpi_code")
    numerator = whole(numerator, 0, 10**9, "numerator")
    denominator = whole(denominator, 0, 10**9, "denominator")
    kpi = kpis.BY_CODE[code]
    if kpi.unit == "points":  # one score, entered as score ÷ 1
        denominator = whole(denominator, 1, 1, "denominator")
        whole(numerator, 0, 100, "numerator")
    elif kpi.unit == "mean" and not denominator <= numerator <= 5 * denominator:
        raise DomainError(_("The sum of scores lies between 1 and 5 times the revisits."),
                          field="numerator")
    elif kpi.unit == "percent" and numerator > denominator:
        raise DomainError(_("The count cannot exceed its total."), field="numerator")
    return numerator, denominator


APPEAL_DECIDED = _l("This appeal is already decided.")


def resolve_appeal(appeal: Appeal, *, upheld: bool, note: str, resolution: str | None = None,
                   kpi_code: str | None = None, numerator=None, denominator=None,
                   acting_user, issued_on: date | None = None) -> None:
    """HQ decides an open appeal (`uphold_appeal` or `reject_appeal`)."""
    if upheld:
        uphold_appeal(appeal, note=note, resolution=resolution, kpi_code=kpi_code,
                      numerator=numerator, denominator=denominator, issued_on=issued_on,
                      acting_user=acting_user)
    else:
        reject_appeal(appeal, note=note, acting_user=acting_user)


def _decide(appeal: Appeal, note: str, upheld: bool, resolution, files: dict,
            result: Result, before: dict) -> None:
    now = utcnow()
    appeal.resolution = resolution if upheld else None
    appeal.resolution_note, appeal.resolved_at = note, now
    result.status, result.finalized_at = ResultStatus.FINAL, now
    result.final_reason = "appeal_upheld" if upheld else "appeal_rejected"
    tr.note(before=before, after={"score": result.score, "grade": result.grade,
                                  "resolution": appeal.resolution, "reports": files},
            reason=note)


def _result_of(appeal: Appeal) -> Result:
    return db.session.scalars(select(Result).where(Result.id == appeal.result_id)).one()


@transition("evaluation.appeal_rejected", Appeal, source={AppealStatus.OPEN},
            target=AppealStatus.REJECTED, permission=policy.RESOLVE_APPEAL,
            label=_l("Appeal rejected"), wrong_state=APPEAL_DECIDED)
def reject_appeal(appeal: Appeal, *, note: str, acting_user) -> None:
    """Rejected: the result stands, final, the reason shown. Raises DomainError for a closed
    appeal or a missing reason."""
    note = _text(note, "note", _("Explain the decision (5 to 4000 characters)."), low=5)
    result = _result_of(appeal)
    appeal.resolved_by_id = getattr(acting_user, "id", None)
    _decide(appeal, note, False, None, {}, result,
            {"score": result.score, "grade": result.grade})


@transition("evaluation.appeal_upheld", Appeal, source={AppealStatus.OPEN},
            target=AppealStatus.UPHELD, permission=policy.RESOLVE_APPEAL,
            label=_l("Appeal upheld"), wrong_state=APPEAL_DECIDED)
def uphold_appeal(appeal: Appeal, *, note: str, resolution: str | None,
                  kpi_code: str | None = None, numerator=None, denominator=None,
                  acting_user, issued_on: date | None = None) -> None:
    """Upheld: the KPI figures are recomputed from the data as it now stands (`recompute`) or
    one KPI is corrected (`correct`), the result is re-scored and re-ranked, its proposals
    remade, and a new report version issued, dated `issued_on` (by default today). Raises
    DomainError for a closed appeal or bad input."""
    note = _text(note, "note", _("Explain the decision (5 to 4000 characters)."), low=5)
    result = _result_of(appeal)
    before = {"score": result.score, "grade": result.grade}
    if resolution not in ("recompute", "correct"):
        raise DomainError(_("Choose how the result is corrected."), field="resolution")
    files = _correct(result, resolution, kpi_code, numerator, denominator, note, acting_user,
                     issued_on)
    appeal.resolved_by_id = getattr(acting_user, "id", None)
    _decide(appeal, note, True, resolution, files, result, before)


def _correct(result: Result, resolution, kpi_code, numerator, denominator, note, acting_user,
             issued_on: date | None) -> dict:
    quarter = _quarter(result)
    values = _values(result)
    scheme = quarter.scheme
    if resolution == "recompute":
        period = Period(quarter.year, quarter.quarter)
        counts = figures.count_figures(period, scheme.sla_minutes, quarter.id,
                                       agency_id=result.agency_id,
                                       clocks=scheme.dispatch_clocks).get(result.agency_id, {})
        wanted = {v.code: counts.get(v.code, (0, 0)) for v in values}
        for value in values:
            value.by_clocks = clocks_measured(scheme.dispatch_clocks, counts, value.code)
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
    db.session.flush()
    rank_one(result)
    db.session.execute(update(Proposal).where(
        Proposal.agency_id == result.agency_id, Proposal.result_id == result.id,
        Proposal.status == ProposalStatus.PROPOSED).values(status=ProposalStatus.WITHDRAWN),
        execution_options={"synchronize_session": False})
    context = reports.load_context(quarter, [result])
    for proposal in publication.proposals_for(result, context):
        db.session.add(proposal)
    db.session.flush()
    return publication.reissue(result, acting_user=acting_user, issued_on=issued_on)


@transition("evaluation.finalized", Quarter, source={QuarterStatus.PUBLISHED},
            target=QuarterStatus.FINAL, permission=policy.FINALIZE,
            label=_l("Quarter made final"),
            wrong_state=_l("Only a published quarter can be made final."))
def finalize_quarter(quarter: Quarter, *, acting_user) -> int:
    """Close a published quarter: results nobody acknowledged or appealed become final.

    Raises DomainError while appeals are open, or before the deadline while some agencies
    have not answered yet. Returns how many results it made final.
    """
    counts = dict(db.session.execute(select(Result.status, func.count()).where(
        Result.quarter_id == quarter.id).group_by(Result.status)).all())
    if counts.get(ResultStatus.APPEALED):
        raise DomainError(ngettext("%(num)s appeal is still open: decide it first.",
                                   "%(num)s appeals are still open: decide them first.",
                                   counts[ResultStatus.APPEALED]))
    waiting = counts.get(ResultStatus.PUBLISHED, 0)
    if waiting and not _deadline_passed(quarter):
        raise DomainError(ngettext(
            "%(num)s agency may still acknowledge or appeal until %(at)s.",
            "%(num)s agencies may still acknowledge or appeal until %(at)s.",
            waiting, at=local_datetime(quarter.appeal_deadline_at)))
    now = utcnow()
    table = Result.__table__
    db.session.execute(update(table).where(table.c.quarter_id == quarter.id,
                                           table.c.status == ResultStatus.PUBLISHED)
                       .values(status=ResultStatus.FINAL, finalized_at=now,
                               final_reason="deadline"))
    quarter.finalized_at = now
    tr.note(after={"period": quarter.label, "deemed_accepted": waiting})
    return waiting


# --- consequences ---------------------------------------------------------------------------------

PROPOSAL_DECIDED = _l("This proposal is already decided.")


def decide_proposal(proposal: Proposal, accept: bool, note: str, *, acting_user) -> None:
    """HQ admin accepts or rejects a proposal. Accepting changes the agency through the
    network's own services (status) or a tier change of this area, with the evaluation as the
    reason. Raises DomainError for a decided proposal, a result not final yet (accepting), or
    an agency that changed since."""
    if not accept:
        reject_proposal(proposal, note, acting_user=acting_user)
    elif proposal.kind in (ProposalKind.PROMOTE, ProposalKind.DEMOTE):
        change_tier(proposal, note, acting_user=acting_user)
    else:
        _accept_status_change(proposal, note, acting_user=acting_user)


def _decided(proposal: Proposal, status: str, note: str, acting_user) -> str:
    note = clean(note, multiline=True, limit=MAX_TEXT)
    proposal.status = status
    proposal.decided_at, proposal.decision_note = utcnow(), note
    proposal.decided_by_id = getattr(acting_user, "id", None)
    return note


@transition("evaluation.proposal_rejected", Proposal, source={ProposalStatus.PROPOSED},
            target=ProposalStatus.REJECTED, permission=policy.DECIDE_PROPOSAL,
            label=_l("Proposal rejected"), wrong_state=PROPOSAL_DECIDED)
def reject_proposal(proposal: Proposal, note: str, *, acting_user) -> None:
    note = _decided(proposal, ProposalStatus.REJECTED, note, acting_user)
    tr.note(after={"kind": proposal.kind}, reason=note or None)


def _accepting(proposal: Proposal) -> tuple[Agency, Result, Quarter]:
    """The agency a proposal changes, once its result stands final."""
    result = db.session.scalars(select(Result).where(Result.id == proposal.result_id)).one()
    quarter = _quarter(result)
    if not stands_final(result.status, quarter.appeal_deadline_at):
        raise DomainError(_("Accept a proposal once the result is final."))
    agency = db.session.scalars(select(Agency).where(Agency.id == proposal.agency_id)).one()
    return agency, result, quarter


def _accept(proposal: Proposal, note: str, acting_user, result: Result,
            quarter: Quarter) -> str:
    """Mark the proposal accepted; the reason the agency's change records."""
    note = _decided(proposal, ProposalStatus.ACCEPTED, note, acting_user)
    return _("Quarterly evaluation %(period)s, grade %(grade)s (proposal %(id)s). %(note)s",
             period=quarter.label, grade=result.grade, id=proposal.id, note=note).strip()


@transition("agency.tier_changed", Proposal, source={ProposalStatus.PROPOSED},
            permission=policy.DECIDE_PROPOSAL, label=_l("Agency tier changed"),
            wrong_state=PROPOSAL_DECIDED)
def change_tier(proposal: Proposal, note: str, *, acting_user) -> None:
    """HQ admin accepts a tier promotion or demotion (1–5 stars): the one audit entry is the
    agency's. Raises DomainError when the agency's tier is no longer the proposal's."""
    agency, result, quarter = _accepting(proposal)
    if agency.tier != proposal.from_tier:
        raise DomainError(_("The agency's tier changed since the proposal was made."))
    whole(proposal.to_tier, 1, 5, "to_tier")
    reason = _accept(proposal, note, acting_user, result, quarter)
    agency.tier = proposal.to_tier
    tr.note(record=agency, before={"tier": proposal.from_tier},
            after={"tier": proposal.to_tier}, reason=reason)


def _accept_status_change(proposal: Proposal, note: str, *, acting_user) -> None:
    """Probation or termination through the network's own lifecycle service, whose audit
    entry records the change; the proposal is decided in the same flush."""
    from tenants.services import change_agency_status

    refused = refusal(acting_user, policy.DECIDE_PROPOSAL, proposal)
    if refused:
        raise DomainError(refused)
    if proposal.status != ProposalStatus.PROPOSED:
        raise DomainError(str(PROPOSAL_DECIDED))
    agency, result, quarter = _accepting(proposal)
    reason = _accept(proposal, note, acting_user, result, quarter)
    change_agency_status(agency, proposal.to_status, reason, acting_user=acting_user)


# --- agencies rate HQ -----------------------------------------------------------------------------

RATING_FIELDS = ("parts", "settlement", "support", "training")


@transition("evaluation.hq_rated", HqRating, creates=True, permission=policy.RATE_HQ,
            label=_l("HQ rated"))
def rate_hq(quarter: Quarter, agency_id: int, data: dict, *, acting_user) -> HqRating:
    """The agency's one rating of HQ for a published quarter (1–5 for each of parts,
    settlement, technical support and training). Raises DomainError for a draft quarter, a
    second rating or values out of range."""
    if quarter.status == QuarterStatus.DRAFT:
        raise DomainError(_("HQ is rated once the quarter is published."))
    values = {name: whole(data.get(name), 1, 5, name) for name in RATING_FIELDS}
    comment = clean(data.get("comment"), multiline=True)
    if len(comment) > 2000:
        raise DomainError(_("The comment is too long."), field="comment")
    taken = db.session.scalar(select(func.count(HqRating.id)).where(
        HqRating.agency_id == agency_id, HqRating.quarter_id == quarter.id))
    if taken:
        raise DomainError(_("Your agency already rated HQ for %(period)s.",
                            period=quarter.label))
    rating = HqRating(agency_id=agency_id, quarter_id=quarter.id, comment=comment,
                      submitted_by_id=getattr(acting_user, "id", None), **values)
    db.session.add(rating)
    db.session.flush()
    tr.note(after={**values, "period": quarter.label})
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
