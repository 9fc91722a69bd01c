"""Demo evaluations of the four quarters the service demo's year of work orders covers: the
last quarter that ended (L) and the three before it, run through the area's own services.

- L−3 and L−2: published, acknowledged or appealed (upheld, rejected), made final, their
  consequence proposals decided by HQ admin;
- L−1: published, most agencies answered, one appeal still open (GD-C01), some agencies never
  answered (the 7 days passed: their results stand), proposals waiting for HQ admin;
- L: computed as drafts with the regional managers' inspection scores, for HQ to publish:
  ``flask --app wsgi evaluation compute <L>`` recomputes it, ``… evaluation publish <L>``
  issues its reports (on 2026-11-30, L is 2026Q3).

The services stamp "now"; the published quarters are then moved to the days they happened.
"""
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update

from evaluation import compute, publication, services
from evaluation.models import (
    Appeal,
    Proposal,
    Quarter,
    RankingReport,
    Report,
    Result,
    ResultStatus,
)
from portal import demo
from portal.clock import local_day, local_today
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import unscoped

APPEAL_REASONS = (
    "回访评分中有两单为其他网点的客户,请核实后剔除。",
    "第三季度有三张工单因客户改约导致上门超时,已附客户确认记录,申请复核及时率。",
    "旧件已按期寄出,物流单号可查,系总部签收延迟,申请复核旧件返还合规率。",
)
REJECT_NOTE = "经核实,相关工单的时间记录准确,超时原因不属于客户改约,维持原评分。"
UPHOLD_NOTE = "经核实,部分回访记录归属错误,已按更正后的数据重新计算并重新出具报告。"
INSPECTION_NOTE = "门店形象、备件管理与维修记录现场抽查。"


def register() -> None:
    demo.register("evaluation", load, order=50)


def demo_quarters(today=None) -> list[Period]:
    """The last quarter that ended and the three before it, oldest first."""
    return Period.of_day(today or local_today()).previous().last(4)


def load(ctx: dict) -> None:
    users = ctx.get("users", {})
    people = {"hq": users.get("service@hq.demo"), "admin": users.get("admin@hq.demo"),
              "managers": {u.region_id: u for u in users.values()
                           if u.role == "regional_manager"},
              "owners": {u.agency_id: u for u in users.values() if u.role == "agency_owner"}}
    codes = {code: agency.id for code, agency in ctx.get("agencies", {}).items()}
    rng = ctx["rng"]
    *published, draft = demo_quarters()
    with unscoped("demo data evaluates the whole network"):
        for n, period in enumerate(published):
            current = n == len(published) - 1
            quarter = compute.compute_quarter(period, acting_user=people["hq"])
            _inspect(quarter, people, rng)
            demo.checkpoint()  # reports render with no write lock held when loading in steps
            published_on = local_day(_published_at(period))
            publication.publish_quarter(quarter, acting_user=people["hq"],
                                        issued_on=published_on)
            demo.checkpoint()
            _answer(quarter, people, rng, current=current, codes=codes,
                    answered_on=local_day(_published_at(period) + timedelta(days=3)))
            _rate(quarter, people["owners"], rng)
            _backdate(quarter, period)
            if not current:
                services.finalize_quarter(_reload(quarter), acting_user=people["hq"])
                _decide_proposals(quarter, people["admin"])
        quarter = compute.compute_quarter(draft, acting_user=people["hq"])
        _inspect(quarter, people, rng)
        db.session.flush()


def _reload(quarter: Quarter) -> Quarter:
    return db.session.scalars(select(Quarter).where(Quarter.id == quarter.id)).one()


def _results(quarter: Quarter) -> list[Result]:
    return list(db.session.scalars(select(Result).where(Result.quarter_id == quarter.id)
                                   .order_by(Result.agency_id)))


def _inspect(quarter: Quarter, people: dict, rng) -> None:
    """Regional managers enter their region's scores; HQ service quality the others'."""
    for result in _results(quarter):
        inspector = people["managers"].get(result.region_id, people["hq"])
        score = rng.choice([68, 74, 78, 82, 85, 88, 90, 92, 95])
        services.enter_inspection(result, score, INSPECTION_NOTE, acting_user=inspector)


def _answer(quarter: Quarter, people: dict, rng, *, current: bool, codes: dict,
            answered_on) -> None:
    """Most agencies acknowledge; one appeal is upheld and one rejected. In the current
    quarter agency GD-C01's appeal stays open and SH-C01 never answers."""
    owners, hq = people["owners"], people["hq"]
    results = [r for r in _results(quarter) if r.status == ResultStatus.PUBLISHED]
    silent = {codes.get("SH-C01")} if current else set()
    open_appeal = codes.get("GD-C01") if current else None
    appealing = [r for r in results if r.grade in ("C", "D")
                 and r.agency_id not in silent | {open_appeal}][:2]
    for n, result in enumerate(appealing):
        appeal = _appeal(result, owners, n)
        if n == 0:
            services.resolve_appeal(appeal, upheld=True, note=UPHOLD_NOTE,
                                    resolution="recompute", acting_user=hq,
                                    issued_on=answered_on)
        else:
            services.resolve_appeal(appeal, upheld=False, note=REJECT_NOTE, acting_user=hq)
    for result in results:
        if result.agency_id == open_appeal:
            _appeal(result, owners, 2)
        elif result in appealing or result.agency_id in silent or rng.random() < 0.2:
            continue
        else:
            services.acknowledge_result(result, acting_user=owners.get(result.agency_id))


def _appeal(result: Result, owners: dict, n: int):
    return services.lodge_appeal(result, APPEAL_REASONS[n % 3],
                                 ("satisfaction", "timeliness", "returns")[n % 3],
                                 acting_user=owners.get(result.agency_id))


def _rate(quarter: Quarter, owners: dict, rng) -> None:
    for result in _results(quarter):
        if rng.random() < 0.25:
            continue
        services.rate_hq(quarter, result.agency_id, {
            "parts": rng.choice([3, 4, 4, 5]), "settlement": rng.choice([2, 3, 4, 4, 5]),
            "support": rng.choice([3, 4, 5, 5]), "training": rng.choice([3, 4, 4, 5]),
            "comment": rng.choice(["", "备件到货及时。", "结算周期偏长,希望缩短。",
                                   "技术培训很有帮助。"])},
            acting_user=owners.get(result.agency_id))


def _published_at(period: Period) -> datetime:
    """Demo quarters are published ten days after their end (10:00 in Shanghai)."""
    return datetime.combine(period.last_day + timedelta(days=10), time(2), tzinfo=UTC)


def _backdate(quarter: Quarter, period: Period) -> None:
    """Publication ten days after the quarter's end; answers within the following week."""
    published = _published_at(period)
    deadline = published + timedelta(days=publication.APPEAL_DAYS)
    answered = published + timedelta(days=3)
    db.session.execute(update(Quarter).where(Quarter.id == quarter.id).values(
        computed_at=published - timedelta(days=2), published_at=published,
        appeal_deadline_at=deadline), execution_options={"synchronize_session": False})
    quarter_results = select(Result.id).where(Result.quarter_id == quarter.id)
    for model, columns in ((Result, ("acknowledged_at", "finalized_at")),
                           (Appeal, ("lodged_at", "resolved_at")),
                           (Report, ("created_at",)), (Proposal, ("created_at",))):
        owner = model.result_id if model is not Result else model.id
        for column in columns:
            db.session.execute(
                update(model).where(owner.in_(quarter_results),
                                    getattr(model, column).is_not(None))
                .values({column: answered}), execution_options={"synchronize_session": False})
    # A ranking re-issued after an upheld appeal: dated the day of the answer, like the reports.
    db.session.execute(update(RankingReport).where(
        RankingReport.quarter_id == quarter.id, RankingReport.version > 1).values(
        created_at=answered), execution_options={"synchronize_session": False})
    db.session.expire_all()


def _decide_proposals(quarter: Quarter, admin) -> None:
    """HQ admin decides the older quarters' proposals: promotions and one demotion accepted,
    the rest rejected (the demo network keeps its agencies)."""
    found = db.session.scalars(select(Proposal).join(
        Result, (Result.agency_id == Proposal.agency_id) & (Result.id == Proposal.result_id))
        .where(Result.quarter_id == quarter.id, Proposal.status == "proposed")
        .order_by(Proposal.id)).all()
    demoted = False
    for proposal in found:
        accept = proposal.kind == "promote" or (proposal.kind == "demote" and not demoted)
        demoted = demoted or (accept and proposal.kind == "demote")
        services.decide_proposal(proposal, accept, "季度考核结果确认。" if accept else
                                 "暂缓执行,下季度复核。", acting_user=admin)
