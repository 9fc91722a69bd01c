"""Publishing a quarter: rank, propose consequences, render every report, then write.

Every PDF is rendered before anything is written: a render failure raises, the job's
transaction is rolled back, and the quarter stays an unpublished draft that can be published
again. Reports are stored as issued; a re-issue is a new version beside the old ones.
"""
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, insert, select, update

from evaluation import consequences, reports
from evaluation.compute import _actor, rank_quarter
from evaluation.models import (
    Proposal,
    ProposalStatus,
    Quarter,
    QuarterStatus,
    RankingReport,
    Report,
    Result,
    ResultStatus,
)
from portal import jobs
from portal.audit.services import record
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow

APPEAL_DAYS = 7


def check_publishable(quarter: Quarter, seen_version: int | None = None) -> None:
    """Raises DomainError unless the quarter is a draft (and the page was up to date)."""
    if quarter.status != QuarterStatus.DRAFT:
        raise DomainError(_("%(period)s is already published.", period=quarter.label))
    if seen_version is not None and seen_version != quarter.version:
        raise DomainError(_("The quarter changed meanwhile. Reload the page and try again."))
    if not quarter.agency_count:
        raise DomainError(_("Nothing to publish: compute the quarter first."))


def proposals_for(result: Result, context: dict) -> list[Proposal]:
    """Unsaved proposals of a result, from its grade, trend and certification coverage."""
    points = reports.trend_points(context, result)
    made = consequences.propose(
        grade=result.grade, previous_grade=result.previous_grade,
        scores=[score for _label, score, _grade in reversed(points)],
        tier=result.agency.tier, status=result.agency.status,
        coverage_gaps=result.coverage_gaps)
    return [Proposal(agency_id=result.agency_id, result_id=result.id, kind=p.kind,
                     from_tier=p.from_tier, to_tier=p.to_tier, to_status=p.to_status,
                     reasons=",".join(p.reasons), status=ProposalStatus.PROPOSED)
            for p in made]


def publish_quarter(quarter: Quarter, *, actor=None, progress=None) -> dict:
    """Publish a computed quarter: ranks, proposals, every report in both languages.

    Raises DomainError when it is not a draft; any render error propagates before a write.
    """
    check_publishable(quarter)
    rank_quarter(quarter.id)
    results = reports.results_for_reports(quarter.id)
    context = reports.load_context(quarter, results)
    rendered, proposals = [], []
    total = len(results) + 1
    for n, result in enumerate(results, start=1):
        made = proposals_for(result, context)
        proposals.extend(made)
        figures = reports.report_figures(quarter, result, context, version=1, proposals=made)
        rendered.append((result, reports.pdf_set(figures, reports.render_report)))
        if progress is not None:
            progress(n, total, result.agency.code)
    ranking = reports.pdf_set(reports.ranking_figures(quarter, results, 1),
                              reports.render_ranking)
    if progress is not None:
        progress(total, total, _("network ranking"))
    # Everything rendered: now write.
    actor_id = getattr(actor, "id", None)
    _store(rendered, actor_id, "published")
    _store_ranking(quarter, ranking, actor_id)
    if proposals:
        db.session.execute(insert(Proposal), [_proposal_row(p) for p in proposals])
    db.session.execute(update(Result.__table__).where(Result.__table__.c.quarter_id == quarter.id)
                       .values(status=ResultStatus.PUBLISHED, report_version=1))
    now = utcnow()
    quarter.status, quarter.published_at, quarter.published_by_id = (QuarterStatus.PUBLISHED,
                                                                     now, actor_id)
    quarter.appeal_deadline_at = now + timedelta(days=APPEAL_DAYS)
    db.session.flush()
    db.session.expire_all()
    hashes = {f["number"]: f["sha256"] for _r, files in rendered for f in files}
    record("evaluation.published", quarter, actor=actor, after={
        "period": quarter.label, "reports": hashes,
        "ranking": {f["number"]: f["sha256"] for f in ranking},
        "proposals": len(proposals)})
    return {"reports": len(hashes), "proposals": len(proposals)}


def _proposal_row(p: Proposal) -> dict:
    return {"agency_id": p.agency_id, "result_id": p.result_id, "kind": p.kind,
            "from_tier": p.from_tier, "to_tier": p.to_tier, "to_status": p.to_status,
            "reasons": p.reasons, "status": p.status}


def _store(rendered: list, actor_id, reason: str) -> None:
    rows = [{**{k: f[k] for k in ("locale", "content", "size_bytes", "sha256", "number",
                                  "fingerprint", "version")},
             "agency_id": result.agency_id, "result_id": result.id, "reason": reason,
             "created_by_id": actor_id}
            for result, files in rendered for f in files]
    if rows:
        db.session.execute(insert(Report), rows)


def _store_ranking(quarter: Quarter, files: list, actor_id) -> None:
    db.session.execute(insert(RankingReport), [
        {**{k: f[k] for k in ("locale", "content", "size_bytes", "sha256", "number",
                              "fingerprint", "version")},
         "quarter_id": quarter.id, "created_by_id": actor_id} for f in files])


def reissue(result: Result, actor=None) -> dict:
    """A new version of the result's report (both languages) and of the network ranking,
    rendered before anything is written; returns {number: sha256} of the new files."""
    quarter = db.session.scalars(select(Quarter).where(Quarter.id == result.quarter_id)).one()
    context = reports.load_context(quarter, [result])
    version = result.report_version + 1
    files = reports.pdf_set(reports.report_figures(quarter, result, context, version=version),
                            reports.render_report)
    everyone = reports.results_for_reports(quarter.id)
    ranking_version = (db.session.scalar(select(func.max(RankingReport.version)).where(
        RankingReport.quarter_id == quarter.id)) or 0) + 1
    ranking = reports.pdf_set(reports.ranking_figures(quarter, everyone, ranking_version),
                              reports.render_ranking)
    actor_id = getattr(actor, "id", None)
    _store([(result, files)], actor_id, "reissued")
    _store_ranking(quarter, ranking, actor_id)
    result.report_version = version
    return {f["number"]: f["sha256"] for f in [*files, *ranking]}


@jobs.handler("evaluation.publish")
def publish_job(params: dict, progress) -> dict:
    quarter = db.session.scalars(select(Quarter).where(Quarter.id == params["quarter_id"])
                                 ).one()
    outcome = publish_quarter(quarter, actor=_actor(params), progress=progress)
    return {"quarter_id": quarter.id, "period": quarter.label, **outcome}
