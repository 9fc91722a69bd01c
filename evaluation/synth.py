"""Synthetic network, evaluation: the quarters of the history, the regional managers'
inspection scores and the agencies' ratings of HQ; then each quarter computed for the whole
network by the area's own job (``evaluation.compute``), the set-based work being measured."""
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from evaluation.figures import EVALUATED_STATUSES
from evaluation.models import HqRating, Inspection, Quarter, QuarterStatus
from evaluation.schemes import scheme_in_force
from portal import jobs, synth
from portal.auth.roles import Role
from portal.commit import committed
from portal.extensions import db
from portal.tenancy import ALL

COMMENTS = ["", "", "备件到货及时。", "结算周期偏长,希望缩短。", "技术培训很有帮助。"]




def build(net: synth.Network) -> None:
    network = net.data["network"]
    rng = net.rng("evaluation")
    evaluated = [a for a in network.agencies if a.status in EVALUATED_STATUSES]
    working = [a for a in network.agencies if a.works]
    step = net.step("evaluation: inspections", len(net.quarters) * len(evaluated))
    periods = []
    for period in net.quarters:
        quarter = db.session.execute(select(Quarter.id, Quarter.status).where(
            Quarter.year == period.year, Quarter.quarter == period.quarter)).first()
        if quarter is not None and quarter.status != QuarterStatus.DRAFT:
            continue  # published: its results change only through appeals
        if quarter is None:
            [quarter_id] = net.ids(Quarter, 1)
            net.add(Quarter, {"id": quarter_id, "year": period.year, "quarter": period.quarter,
                              "scheme_id": scheme_in_force(period).id, "status": "draft",
                              "agency_count": 0, "compute_count": 0, "version": 1})
        else:
            quarter_id = quarter.id
        at = datetime.combine(period.last_day + timedelta(days=5), time(3), tzinfo=UTC)
        for agency in evaluated:
            manager = network.managers.get(agency.region_id) or network.hq["service"]
            net.add(Inspection, {"agency_id": agency.id, "quarter_id": quarter_id,
                                 "score": rng.choice([62, 68, 74, 78, 82, 85, 88, 90, 92, 95]),
                                 "note": "门店形象、备件管理与维修记录现场抽查。",
                                 "entered_at": at, "entered_by_id": manager.id})
            step.advance()
        for agency in working:
            if rng.random() < 0.25:
                continue
            owner = agency.accounts.get(Role.AGENCY_OWNER)
            net.add(HqRating, {"agency_id": agency.id, "quarter_id": quarter_id,
                               "parts": rng.choice([3, 4, 4, 5]),
                               "settlement": rng.choice([2, 3, 4, 4, 5]),
                               "support": rng.choice([3, 4, 5, 5]),
                               "training": rng.choice([3, 4, 4, 5]),
                               "comment": rng.choice(COMMENTS), "submitted_at": at,
                               "submitted_by_id": owner.id if owner else None})
        periods.append(period)
    net.data["evaluation"] = {"periods": periods}


def compute(net: synth.Network) -> None:
    """Each quarter, oldest first, as the network-wide job HQ starts (with its progress); a
    failed job is recorded and the next quarter still computed."""
    for period in net.data.get("evaluation", {}).get("periods", []):
        with committed():
            job = jobs.start("evaluation.compute", {"period": period.label}, scope=ALL)
        label = f"evaluation: {period.label}"
        finished = jobs.run(job.id, progress=lambda done, total, note, label=label:
                            net.report(label, done, total))
        if finished.status != jobs.SUCCEEDED:  # visible as a failed job; the rows stay
            net.data.setdefault("failed_jobs", []).append(
                f"computing {period.label} (job {job.id}): {finished.error.splitlines()[0]}")
            continue
        net.timings[f"compute {period.label}"] = finished.result.get("seconds")


synth.register("evaluation", build, order=50, after_commit=compute)
