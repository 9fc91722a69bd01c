"""Demo evaluations: four published quarters (2025Q4–2026Q3) computed, inspected, published,
acknowledged and appealed through the area's own services, and the agencies' ratings of HQ.

The services stamp "now"; older quarters are then moved to the days they happened, so that
their appeal windows are closed and they can be made final.
"""
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update

from evaluation import compute, publication, services
from evaluation.models import Appeal, Proposal, Quarter, Report, Result, ResultStatus
from evaluation.periods import Period
from portal import demo
from portal.extensions import db
from portal.tenancy import unscoped

QUARTERS = (Period(2025, 4), Period(2026, 1), Period(2026, 2), Period(2026, 3))
APPEAL_REASONS = (
    "回访评分中有两单为其他网点的客户,请核实后剔除。",
    "第三季度有三张工单因客户改约导致上门超时,已附客户确认记录,申请复核及时率。",
    "旧件已按期寄出,物流单号可查,系总部签收延迟,申请复核旧件返还合规率。",
)
REJECT_NOTE = "经核实,相关工单的时间记录准确,超时原因不属于客户改约,维持原评分。"
UPHOLD_NOTE = "经核实,部分回访记录归属错误,已按更正后的数据重新计算并重新出具报告。"


def register() -> None:
    demo.register("evaluation", load, order=50)


def load(ctx: dict) -> None:
    users = ctx.get("users", {})
    hq = users.get("service@hq.demo")
    managers = {u.region_id: u for u in users.values() if u.role == "regional_manager"}
    owners = {u.agency_id: u for u in users.values() if u.role == "agency_owner"}
    admin = users.get("admin@hq.demo")
    rng = ctx["rng"]
    codes = {code: agency.id for code, agency in ctx.get("agencies", {}).items()}
    with unscoped("demo data evaluates the whole network"):
        for n, period in enumerate(QUARTERS):
            last = n == len(QUARTERS) - 1
            quarter = compute.compute_quarter(period, actor=hq)
            _inspect(quarter, managers, hq, rng)
            publication.publish_quarter(quarter, actor=hq)
            _answer(quarter, owners, hq, rng, last=last, codes=codes)
            _rate(quarter, owners, rng)
            if not last:
                _backdate(quarter, period)
                services.finalize_quarter(_reload(quarter), actor=hq)
                _decide_proposals(quarter, admin)
        db.session.flush()


def _reload(quarter: Quarter) -> Quarter:
    return db.session.scalars(select(Quarter).where(Quarter.id == quarter.id)).one()


def _results(quarter: Quarter) -> list[Result]:
    return list(db.session.scalars(select(Result).where(Result.quarter_id == quarter.id)
                                   .order_by(Result.agency_id)))


def _inspect(quarter: Quarter, managers: dict, hq, rng) -> None:
    """Regional managers enter their region's scores; HQ service quality the others'."""
    for result in _results(quarter):
        inspector = managers.get(result.region_id, hq)
        score = rng.choice([68, 74, 78, 82, 85, 88, 90, 92, 95])
        services.enter_inspection(result, score, "门店形象、备件管理与维修记录现场抽查。",
                                  inspector)


def _answer(quarter: Quarter, owners: dict, hq, rng, *, last: bool, codes: dict) -> None:
    """Most agencies acknowledge; appeals are upheld and rejected. In the last quarter the
    demo agency A (SH-C01) has not answered yet and agency B (GD-C01) has an open appeal."""
    results = [r for r in _results(quarter) if r.status == ResultStatus.PUBLISHED]
    waiting = {codes.get("SH-C01")} if last else set()
    open_appeal = codes.get("GD-C01") if last else None
    appealing = [r for r in results if r.grade in ("C", "D")
                 and r.agency_id not in waiting | {open_appeal}][:2]
    for n, result in enumerate(appealing):
        appeal = _appeal(result, owners, n)
        if n == 0:
            services.resolve_appeal(appeal, upheld=True, note=UPHOLD_NOTE,
                                    resolution="recompute", actor=hq)
        else:
            services.resolve_appeal(appeal, upheld=False, note=REJECT_NOTE, actor=hq)
    for result in results:
        if result.agency_id == open_appeal:
            _appeal(result, owners, 2)
        elif result in appealing or result.agency_id in waiting or rng.random() < 0.2:
            continue
        else:
            services.acknowledge_result(result, owners.get(result.agency_id))


def _appeal(result: Result, owners: dict, n: int):
    return services.lodge_appeal(result, APPEAL_REASONS[n % 3],
                                 ("satisfaction", "timeliness", "returns")[n % 3],
                                 owners.get(result.agency_id))


def _rate(quarter: Quarter, owners: dict, rng) -> None:
    for result in _results(quarter):
        if rng.random() < 0.25:
            continue
        services.rate_hq(result.agency_id, quarter, {
            "parts": rng.choice([3, 4, 4, 5]), "settlement": rng.choice([2, 3, 4, 4, 5]),
            "support": rng.choice([3, 4, 5, 5]), "training": rng.choice([3, 4, 4, 5]),
            "comment": rng.choice(["", "备件到货及时。", "结算周期偏长,希望缩短。",
                                   "技术培训很有帮助。"])}, owners.get(result.agency_id))


def _backdate(quarter: Quarter, period: Period) -> None:
    """Publication ten days after the quarter's end; answers within the following week."""
    published = datetime.combine(period.last_day + timedelta(days=10), time(2), tzinfo=UTC)
    deadline = published + timedelta(days=publication.APPEAL_DAYS)
    answered = published + timedelta(days=3)
    db.session.execute(update(Quarter).where(Quarter.id == quarter.id).values(
        computed_at=published - timedelta(days=2), published_at=published,
        appeal_deadline_at=deadline), execution_options={"synchronize_session": False})
    for model, columns in ((Result, ("acknowledged_at", "finalized_at")),
                           (Appeal, ("lodged_at", "resolved_at")),
                           (Report, ("created_at",)), (Proposal, ("created_at",))):
        for column in columns:
            owner = model.result_id if model is not Result else model.id
            quarter_results = select(Result.id).where(Result.quarter_id == quarter.id)
            db.session.execute(
                update(model).where(owner.in_(quarter_results),
                                    getattr(model, column).is_not(None))
                .values({column: answered}), execution_options={"synchronize_session": False})
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
                                 "暂缓执行,下季度复核。", admin)
