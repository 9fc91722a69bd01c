"""Publishing a quarter: rank, propose consequences, render every report, then write.

Every PDF is rendered before anything is written, from the figures as publication will store
them (ranks included, computed in memory). As a job the rendering (a few tenths of a second a
report: minutes for a big network) runs in a read transaction that locks nothing, and the
writes follow in one short transaction that reads the figures again: a report whose figures
changed meanwhile (an inspection score entered, an agency renamed, midnight passed) is
rendered again before the quarter is published. A render failure raises before any write,
the job's transaction is rolled back, and the quarter stays an unpublished draft that can be
published again. Reports are stored as issued, dated the local day of their publication; a
re-issue is a new version beside the old ones, dated the day it is issued.
"""
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from evaluation import consequences, policy, reports
from evaluation.compute import _actor, quarter_ranks, rank_quarter, warning_of
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
from portal.clock import local_day
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.periods import Period
from portal.policy import roles as policy_roles
from portal.tenancy import ALL
from portal.transitions import note, transition

APPEAL_DAYS = 7


def _already_published(quarter: Quarter) -> str:
    return _("%(period)s is already published.", period=quarter.label)


def check_publishable(quarter: Quarter) -> None:
    """Raises DomainError unless the quarter is a draft and no earlier computed quarter is
    still a draft: quarters are published oldest first, since a report shows the previous
    quarter's grade and the trend of the last four (§2.5)."""
    if quarter.status != QuarterStatus.DRAFT:
        raise DomainError(_already_published(quarter))
    if not quarter.agency_count:
        raise DomainError(_("Nothing to publish: compute the quarter first."))
    earlier = db.session.scalars(
        select(Quarter).where(Quarter.status == QuarterStatus.DRAFT, Quarter.agency_count > 0,
                              Quarter.year * 4 + Quarter.quarter < quarter.year * 4
                              + quarter.quarter)
        .order_by(Quarter.year, Quarter.quarter).limit(1)).first()
    if earlier is not None:
        raise DomainError(_("Publish %(earlier)s first: it is computed but not published, "
                            "and the reports of %(period)s would show its figures.",
                            earlier=earlier.label, period=quarter.label))


def previous_grades(quarter: Quarter) -> dict[int, str | None]:
    """{agency_id: grade} of the quarter before, if published or final (else empty): the
    grades computed drafts carry may come from a draft or predate an appeal's decision."""
    before = Period(quarter.year, quarter.quarter).previous()
    return dict(db.session.execute(
        select(Result.agency_id, Result.grade).join(Quarter, Quarter.id == Result.quarter_id)
        .where(Quarter.year == before.year, Quarter.quarter == before.quarter,
               Quarter.status != QuarterStatus.DRAFT)).all())


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


@dataclass
class Plan:
    """A publication prepared without writing: every rendered file set, by the fingerprint of
    the figures it shows (a set is valid for exactly those figures, date included)."""

    issued_on: date | None = None  # the caller's date for the reports; else publication's
    files: dict[str, list[dict]] = field(default_factory=dict)

    def day(self, moment) -> date:
        return self.issued_on or local_day(moment)


@dataclass
class _Figures:
    """What a publication stores, from the database as it stands."""

    reports: list[tuple[Result, dict, list[Proposal]]]  # (result, figures, proposals)
    ranking: dict


def _figures(quarter: Quarter, day: date, ranks: dict | None = None) -> _Figures:
    """Every report's figures and proposals, and the ranking's; with `ranks`, the results
    carry those ranks in memory only (nothing to write, nothing flushed). The previous grade
    and the elimination warning are those of the previous quarter as published, in memory
    too (`_store_previous` writes them)."""
    results = reports.results_for_reports(quarter.id, fresh=True)
    previous = previous_grades(quarter)
    for result in results:
        if ranks is not None:
            found = ranks.get(result.id, (None, None, None, None))
            for name, value in zip(("rank_national", "rank_national_of", "rank_region",
                                    "rank_region_of"), found, strict=True):
                set_committed_value(result, name, value)
        grade = previous.get(result.agency_id)
        set_committed_value(result, "previous_grade", grade)
        set_committed_value(result, "elimination_warning", warning_of(result.grade, grade))
    context = reports.load_context(quarter, results)
    out = []
    for result in results:
        made = proposals_for(result, context)
        out.append((result, reports.report_figures(quarter, result, context, version=1,
                                                   proposals=made, issued_on=day), made))
    return _Figures(out, reports.ranking_figures(quarter, results, 1, issued_on=day))


def prepare_publication(quarter: Quarter, plan: Plan, progress=None) -> Plan:
    """Render every report of the quarter that `plan` does not hold yet, writing nothing.

    Raises DomainError when the quarter is not a draft; a render error propagates.
    """
    check_publishable(quarter)
    db.session.flush()  # the caller's own changes, if any, count (a job has none)
    found = _figures(quarter, plan.day(utcnow()), quarter_ranks(quarter.id))
    kept = {}
    total = len(found.reports) + 1
    for n, (result, figures, _made) in enumerate(found.reports, start=1):
        kept[reports.fingerprint(figures)] = _files(plan, figures, reports.render_report)
        if progress is not None:
            progress(n, total, result.agency.code)
    kept[reports.fingerprint(found.ranking)] = _files(plan, found.ranking,
                                                      reports.render_ranking)
    if progress is not None:
        progress(total, total, _("network ranking"))
    plan.files = kept
    return plan


def _files(plan: Plan, figures: dict, render, *, may_render: bool = True) -> list[dict]:
    known = plan.files.get(reports.fingerprint(figures))
    if known is not None:
        return known
    if not may_render:
        raise jobs.Outdated(figures["number"])
    return reports.pdf_set(figures, render)


@transition("evaluation.publish_requested", Quarter, source={QuarterStatus.DRAFT},
            versioned=True, permission=policy.PUBLISH, label=_l("Quarter publication requested"),
            wrong_state=_already_published)
def request_publication(quarter: Quarter, *, acting_user) -> jobs.Job:
    """Record the network-wide job that publishes the quarter as the page showed it; the
    caller commits and then hands it over (`jobs.enqueue`). The job renders every report
    outside its write transaction, then its own transition ("evaluation.published") writes."""
    check_publishable(quarter)
    user_id = getattr(acting_user, "id", None)
    job = jobs.start("evaluation.publish", {"quarter_id": quarter.id, "user_id": user_id},
                     scope=ALL, user_id=user_id)
    note(after={"period": quarter.label, "job_id": job.id})
    return job


@transition("evaluation.published", Quarter, source={QuarterStatus.DRAFT},
            permission=policy.PUBLISH, label=_l("Quarter published"),
            wrong_state=_already_published)
def write_publication(quarter: Quarter, plan: Plan, *, acting_user,
                      may_render: bool = True) -> dict:
    """Publish the quarter with the files of `plan`: ranks, proposals, reports, status.

    Raises DomainError when it is no longer a draft; `jobs.Outdated` when a report's figures
    changed since `plan` was prepared and `may_render` is false (else it is rendered here).
    """
    check_publishable(quarter)
    rank_quarter(quarter.id)
    now = utcnow()
    found = _figures(quarter, plan.day(now))
    rendered = [(result, _files(plan, figures, reports.render_report, may_render=may_render))
                for result, figures, _made in found.reports]
    ranking = _files(plan, found.ranking, reports.render_ranking, may_render=may_render)
    proposals = [p for _result, _figures, made in found.reports for p in made]
    actor_id = getattr(acting_user, "id", None)
    _store_previous([result for result, _figures, _made in found.reports])
    _store(rendered, actor_id, "published", created_at=now)
    _store_ranking(quarter, ranking, actor_id, created_at=now)
    if proposals:
        db.session.execute(insert(Proposal), [_proposal_row(p) for p in proposals])
    db.session.execute(update(Result.__table__).where(Result.__table__.c.quarter_id == quarter.id)
                       .values(status=ResultStatus.PUBLISHED, report_version=1))
    quarter.status, quarter.published_at, quarter.published_by_id = (QuarterStatus.PUBLISHED,
                                                                     now, actor_id)
    quarter.appeal_deadline_at = now + timedelta(days=APPEAL_DAYS)
    db.session.flush()
    db.session.expire_all()
    hashes = {f["number"]: f["sha256"] for _r, files in rendered for f in files}
    note(after={"period": quarter.label, "reports": hashes,
                "ranking": {f["number"]: f["sha256"] for f in ranking},
                "proposals": len(proposals)})
    return {"reports": len(hashes), "proposals": len(proposals)}


def publish_quarter(quarter: Quarter, *, acting_user=None, progress=None,
                    issued_on: date | None = None) -> dict:
    """Publish a computed quarter in the caller's transaction: ranks, proposals, every report
    in both languages, dated `issued_on` (by default the local day of publication);
    `acting_user` None: the system (a command, the demo).

    Raises DomainError when it is not a draft; any render error propagates before a write.
    """
    plan = prepare_publication(quarter, Plan(issued_on), progress)
    return write_publication(quarter, plan, acting_user=acting_user)


def _proposal_row(p: Proposal) -> dict:
    return {"agency_id": p.agency_id, "result_id": p.result_id, "kind": p.kind,
            "from_tier": p.from_tier, "to_tier": p.to_tier, "to_status": p.to_status,
            "reasons": p.reasons, "status": p.status}


def _store_previous(results: list[Result]) -> None:
    """Write the previous grade and warning the results carry in memory (see `_figures`)."""
    table = Result.__table__
    rows = [{"rid": r.id, "before": r.previous_grade, "warned": r.elimination_warning}
            for r in results]
    if rows:
        db.session.execute(update(table).where(table.c.id == bindparam("rid")).values(
            previous_grade=bindparam("before"), elimination_warning=bindparam("warned")), rows)


FILE_COLUMNS = ("locale", "content", "size_bytes", "sha256", "number", "fingerprint", "version")


def _store(rendered: list, actor_id, reason: str, created_at=None) -> None:
    rows = [{**{k: f[k] for k in FILE_COLUMNS}, "agency_id": result.agency_id,
             "result_id": result.id, "reason": reason, "created_by_id": actor_id,
             "created_at": created_at or utcnow()}
            for result, files in rendered for f in files]
    if rows:
        db.session.execute(insert(Report), rows)


def _store_ranking(quarter: Quarter, files: list, actor_id, created_at=None) -> None:
    db.session.execute(insert(RankingReport), [
        {**{k: f[k] for k in FILE_COLUMNS}, "quarter_id": quarter.id,
         "created_by_id": actor_id, "created_at": created_at or utcnow()} for f in files])


def reissue(result: Result, *, acting_user=None, issued_on: date | None = None) -> dict:
    """A new version of the result's report (both languages) and of the network ranking,
    dated `issued_on` (by default today) and naming the versions they supersede, rendered
    before anything is written; returns {number: file SHA-256} of the new files."""
    quarter = db.session.scalars(select(Quarter).where(Quarter.id == result.quarter_id)).one()
    context = reports.load_context(quarter, [result])
    version = result.report_version + 1
    moment = utcnow()  # the files' issue moment: the day they print is its local day
    day = issued_on or local_day(moment)
    files = reports.pdf_set(reports.report_figures(
        quarter, result, context, version=version, issued_on=day,
        supersedes=_previous(quarter, Report, Report.result_id == result.id)),
        reports.render_report)
    everyone = reports.results_for_reports(quarter.id)
    before = _previous(quarter, RankingReport, RankingReport.quarter_id == quarter.id)
    ranking = reports.pdf_set(reports.ranking_figures(
        quarter, everyone, (before or {"version": 0})["version"] + 1, issued_on=day,
        supersedes=before), reports.render_ranking)
    actor_id = getattr(acting_user, "id", None)
    _store([(result, files)], actor_id, "reissued", created_at=moment)
    _store_ranking(quarter, ranking, actor_id, created_at=moment)
    result.report_version = version
    return {f["number"]: f["sha256"] for f in [*files, *ranking]}


def _previous(quarter: Quarter, model, of_report) -> dict | None:
    """The latest stored version of a report (`model` rows matching `of_report`), as the next
    version names it (`reports.superseding`); None when there is none."""
    row = db.session.execute(select(model.version, model.created_at).where(of_report)
                             .order_by(model.version.desc()).limit(1)).first()
    if row is None:
        return None
    return reports.superseding(row.version, reports.issued_day(row.version, row.created_at,
                                                               quarter))


def _quarter(quarter_id: int, *, lock: bool = False) -> Quarter:
    stmt = select(Quarter).where(Quarter.id == quarter_id)
    if lock:  # PostgreSQL: one publication of a quarter at a time (SQLite: one writer anyway)
        stmt = stmt.with_for_update()
    return db.session.scalars(stmt).one()


@jobs.handler("evaluation.publish", roles=policy_roles(policy.PUBLISH),
              title=_l("Quarter publication"))
def publish_job(params: dict, progress) -> dict:
    """Render every report in a read transaction, then write them in a short one.

    `issued_on` (ISO date, optional) dates the reports; by default the day of publication.
    """
    issued_on = params.get("issued_on")
    plan = Plan(date.fromisoformat(issued_on) if issued_on else None)

    def prepare() -> Plan:
        return prepare_publication(_quarter(params["quarter_id"]), plan, progress)

    def write(prepared: Plan, last: bool) -> dict:
        quarter = _quarter(params["quarter_id"], lock=True)
        outcome = write_publication(quarter, prepared, acting_user=_actor(params),
                                    may_render=last)
        return {"quarter_id": quarter.id, "period": quarter.label, **outcome}

    return jobs.in_two_phases(prepare, write)
