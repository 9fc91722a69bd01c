"""Computing a quarter: drafts for every evaluated agency, in a handful of set-based queries.

The counts come from one GROUP BY per source (figures.py); scoring the aggregates is pure
Python per agency (kpis.py), without a query; results and KPI figures go in with two bulk
inserts; ranks come from one UPDATE over window functions (RANK() OVER (PARTITION BY region)).

As a job the counting (seconds on a big network) runs in a read transaction that locks
nothing; the drafts are written in one short transaction afterwards, with the inspection
scores read there (regional managers enter them while drafts stand).
"""
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, delete, func, insert, select, update

from evaluation import figures, kpis, policy
from evaluation.models import Inspection, KpiValue, Quarter, QuarterStatus, Result, ServiceLevel
from evaluation.schemes import local_today, scheme_in_force, scheme_terms
from portal import jobs
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.periods import Period
from portal.policy import roles as policy_roles
from portal.tenancy import ALL
from portal.transitions import note, transition


def quarter_of(period: Period) -> Quarter | None:
    return db.session.scalars(select(Quarter).where(Quarter.year == period.year,
                                                    Quarter.quarter == period.quarter)
                              ).one_or_none()


def check_computable(period: Period | None) -> Period:
    """Raises DomainError unless `period` is a quarter that ended and is not published."""
    if period is None:
        raise DomainError(_("Enter a quarter such as 2026Q3."), field="period")
    if not period.has_ended(local_today()):
        raise DomainError(_("%(period)s has not ended yet.", period=period.label),
                          field="period")
    quarter = quarter_of(period)
    if quarter is not None and quarter.status != QuarterStatus.DRAFT:
        raise DomainError(_("%(period)s is already published; published results change only "
                            "through appeals.", period=period.label), field="period")
    scheme_in_force(period)
    return period


# --- scoring one agency (pure, no query) ----------------------------------------------------------


def score_counts(terms: dict, counts: dict) -> tuple[list, Decimal | None, str | None]:
    """Figures of the scheme's KPIs (`terms`) from {code: (numerator, denominator)}, the score
    and the grade."""
    out = []
    for kpi in kpis.KPIS:
        if kpi.code not in terms:
            continue  # not a KPI of this scheme version
        weight, minimum, curve, _position = terms[kpi.code]
        numerator, denominator = counts.get(kpi.code, (0, 0))
        out.append(kpis.figure(kpi, int(numerator), int(denominator), weight, minimum, curve))
    score = kpis.score_of(out)
    return out, score, kpis.grade_of(score)


def kpi_row(figure: kpis.Figure, effective: dict, position: int,
            by_clocks: int | None = None) -> dict:
    return {"code": figure.code, "position": position, "weight": figure.weight,
            "min_count": figure.min_count, "numerator": figure.numerator,
            "denominator": figure.denominator, "raw": figure.raw, "points": figure.points,
            "effective_weight": effective[figure.code], "is_sufficient": figure.is_sufficient,
            "by_clocks": by_clocks}


def clocks_measured(clocks: bool, counts: dict, code: str) -> int | None:
    """How many of a timed KPI's orders the clocks measured (a version with the clocks),
    else None."""
    if not clocks or not kpis.BY_CODE[code].timed:
        return None
    return int(counts.get(figures.BY_CLOCKS, {}).get(code, 0))


def warning_of(grade: str | None, previous_grade: str | None) -> bool:
    """A second D in a row raises the elimination warning (淘汰预警)."""
    return grade == "D" and previous_grade == "D"


# --- the whole network ----------------------------------------------------------------------------

# The job's steps and the notes its progress shows (in the language the job runs in).
STEPS = {"agencies": _l("Agencies evaluated"), "orders": _l("Completed orders"),
         "revisits": _l("Revisits"), "complaints": _l("Substantiated complaints"),
         "returns": _l("Returns due"), "settlements": _l("Settlement lines"),
         "inspections": _l("Inspection scores"), "history": _l("Previous quarter and coverage"),
         "service levels": _l("HQ service level"), "scoring": _l("Scores and grades"),
         "writing": _l("Writing the drafts"), "ranking": _l("Ranks")}


def compute_quarter(period: Period, *, acting_user=None, progress=None) -> Quarter:
    """Compute (or recompute) the drafts of `period` for every evaluated agency, in the
    caller's transaction (`acting_user` None: the system, a command or the demo).

    Raises DomainError for a quarter that has not ended, is published or has no scheme.
    Inspection scores already entered are kept and counted.
    """
    check_computable(period)
    tick = _ticker(progress)
    return write_drafts(period, gather(period, tick), acting_user=acting_user, tick=tick)


@transition("evaluation.compute_requested", jobs.Job, creates=True, permission=policy.COMPUTE,
            label=_l("Quarter computation requested"))
def request_compute(period: Period | None, *, acting_user) -> jobs.Job:
    """Record the network-wide job that computes `period` (whole-network scope); the caller
    commits and then hands it over (`jobs.enqueue`). The job's own transition
    ("evaluation.computed") records the drafts it writes."""
    period = check_computable(period)
    user_id = getattr(acting_user, "id", None)
    job = jobs.start("evaluation.compute", {"period": period.label, "user_id": user_id},
                     scope=ALL, user_id=user_id)
    note(after={"period": period.label})
    return job


def _ticker(progress):
    done = [0]

    def tick(note: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(STEPS), str(STEPS[note]))

    return tick


@dataclass
class Gathered:
    """What the drafts are computed from, read without writing anything."""

    scheme_id: int
    scheme_version: int
    clocks: bool  # the version grades dispatched orders by the SLA clocks
    terms: dict
    agencies: list
    counts: dict  # {agency_id: {kpi code: (numerator, denominator)}}, inspections apart
    previous: dict
    gaps: dict
    levels: dict


def gather(period: Period, tick) -> Gathered:
    """Every count of the quarter (the slow part: one GROUP BY per source), with no write."""
    scheme = scheme_in_force(period)
    agencies = figures.evaluated_agencies()
    tick("agencies")
    counts = figures.count_figures(period, scheme.sla_minutes, None, tick=tick,
                                   clocks=scheme.dispatch_clocks)
    previous = figures.previous_results(period)
    gaps = figures.coverage_gaps(period.last_day)
    tick("history")
    levels = figures.service_level_sums(period)
    tick("service levels")
    return Gathered(scheme.id, scheme.version, scheme.dispatch_clocks, scheme_terms(scheme),
                    agencies, counts,
                    previous, gaps, levels)


@transition("evaluation.computed", Quarter, creates=True, permission=policy.COMPUTE,
            label=_l("Quarter computed"))
def write_drafts(period: Period, gathered: Gathered, *, acting_user, tick=None) -> Quarter:
    """Replace the quarter's drafts by those computed from `gathered` and the inspection
    scores entered so far. Raises DomainError when the quarter was published meanwhile."""
    tick = tick or (lambda note: None)
    check_computable(period)
    quarter = quarter_of(period)
    if quarter is None:
        quarter = Quarter(year=period.year, quarter=period.quarter, scheme_id=gathered.scheme_id)
        db.session.add(quarter)
        db.session.flush()
    counts = {agency_id: dict(found) for agency_id, found in gathered.counts.items()}
    for agency_id, score in db.session.execute(select(Inspection.agency_id, Inspection.score)
                                               .where(Inspection.quarter_id == quarter.id)):
        for kpi in kpis.of_source("inspection"):
            counts.setdefault(agency_id, {})[kpi.code] = (score, 1)
    results, kpi_rows = _rows(quarter, gathered.agencies, gathered.terms, counts,
                              gathered.previous, gathered.gaps, gathered.levels,
                              clocks=gathered.clocks)
    tick("scoring")
    _clear_drafts(quarter.id)
    _write(results, kpi_rows)
    _store_service_levels(quarter.id, gathered.levels)
    tick("writing")
    rank_quarter(quarter.id)
    tick("ranking")
    quarter.scheme_id, quarter.agency_count = gathered.scheme_id, len(gathered.agencies)
    quarter.compute_count += 1
    quarter.computed_at, quarter.computed_by_id = utcnow(), getattr(acting_user, "id", None)
    graded = [r for r in results if r["grade"]]
    note(after={
        "period": period.label, "scheme_version": gathered.scheme_version,
        "agencies": len(gathered.agencies), "graded": len(graded),
        "grades": {g: sum(r["grade"] == g for r in graded) for g in kpis.GRADES}})
    return quarter


def _clear_drafts(quarter_id: int) -> None:
    drafts = select(Result.id).where(Result.quarter_id == quarter_id)
    db.session.execute(delete(KpiValue).where(KpiValue.result_id.in_(drafts)),
                       execution_options={"synchronize_session": False})
    db.session.execute(delete(Result).where(Result.quarter_id == quarter_id),
                       execution_options={"synchronize_session": False})
    db.session.execute(delete(ServiceLevel).where(ServiceLevel.quarter_id == quarter_id),
                       execution_options={"synchronize_session": False})


def _rows(quarter, agencies, terms, counts, previous, gaps, levels, *, clocks=False):
    now, results, kpi_rows = utcnow(), [], {}
    for agency_id, region_id, tier, status in agencies:
        counted = counts.get(agency_id, {})
        found, score, grade = score_counts(terms, counted)
        effective = kpis.effective_weights(found)
        before = previous.get(agency_id, (None, None))[0]
        level = levels.get(agency_id, {})
        parts, settlement, verdict = (level.get(k, (0, 0)) for k in
                                      ("parts", "settlement", "verdict"))
        results.append({
            "agency_id": agency_id, "quarter_id": quarter.id, "region_id": region_id,
            "tier_at": tier, "agency_status_at": status, "score": score, "grade": grade,
            "previous_grade": before, "elimination_warning": warning_of(grade, before),
            "coverage_gaps": gaps.get(agency_id, 0), "status": "draft", "computed_at": now,
            "hq_parts_count": parts[0], "hq_parts_seconds": parts[1],
            "hq_settlement_count": settlement[0], "hq_settlement_seconds": settlement[1],
            "hq_verdict_count": verdict[0], "hq_verdict_seconds": verdict[1]})
        kpi_rows[agency_id] = [kpi_row(f, effective, n, clocks_measured(clocks, counted, f.code))
                               for n, f in enumerate(found)]
    return results, kpi_rows


def _write(results: list[dict], kpi_rows: dict) -> None:
    if not results:
        return
    ids = db.session.execute(insert(Result).returning(Result.id, Result.agency_id),
                             results).all()
    rows = [{**row, "agency_id": agency_id, "result_id": result_id}
            for result_id, agency_id in ids for row in kpi_rows[agency_id]]
    db.session.execute(insert(KpiValue), rows)


def _store_service_levels(quarter_id: int, levels: dict) -> None:
    totals: dict = {}
    for row in levels.values():
        for key in (row["region_id"], None):
            bucket = totals.setdefault(key, {"parts": [0, 0], "settlement": [0, 0],
                                             "verdict": [0, 0]})
            for name in ("parts", "settlement", "verdict"):
                bucket[name][0] += row[name][0]
                bucket[name][1] += row[name][1]
    rows = [{"quarter_id": quarter_id, "region_id": region,
             **{f"{name}_{part}": bucket[name][i] for name in ("parts", "settlement", "verdict")
                for i, part in enumerate(("count", "seconds"))}}
            for region, bucket in totals.items()]
    if not any(r["region_id"] is None for r in rows):
        rows.append({"quarter_id": quarter_id, "region_id": None})
    db.session.execute(insert(ServiceLevel), rows)


def _ranked(quarter_id: int):
    """Ranks of every graded result of the quarter, nationally and within each region, over
    window functions (ties share a rank; the next rank skips)."""
    return (select(Result.id.label("rid"),
                   func.rank().over(order_by=Result.score.desc()).label("national"),
                   func.count().over().label("national_of"),
                   func.rank().over(partition_by=Result.region_id,
                                    order_by=Result.score.desc()).label("regional"),
                   func.count().over(partition_by=Result.region_id).label("regional_of"))
            .where(Result.quarter_id == quarter_id, Result.score.is_not(None)))


def quarter_ranks(quarter_id: int) -> dict[int, tuple[int, int, int, int]]:
    """{result id: (national rank, of, regional rank, of)} as `rank_quarter` would store
    them, read without writing (ungraded results have none)."""
    return {rid: tuple(rest) for rid, *rest in db.session.execute(_ranked(quarter_id))}


def rank_quarter(quarter_id: int) -> None:
    """Store the ranks of every graded result of the quarter in one UPDATE (`_ranked`)."""
    ranked = _ranked(quarter_id).subquery()
    table = Result.__table__
    db.session.execute(update(table).where(table.c.quarter_id == quarter_id)
                       .values(rank_national=None, rank_national_of=None, rank_region=None,
                               rank_region_of=None))
    db.session.execute(update(table).where(table.c.id == ranked.c.rid).values(
        rank_national=ranked.c.national, rank_national_of=ranked.c.national_of,
        rank_region=ranked.c.regional, rank_region_of=ranked.c.regional_of))


def rank_one(result: Result) -> None:
    """Place one corrected result among the others' scores as they stand (one query); the
    others keep the ranks they were published with."""
    if result.score is None:
        result.rank_national = result.rank_national_of = None
        result.rank_region = result.rank_region_of = None
        return
    higher = Result.score > result.score
    same_region = Result.region_id == result.region_id
    row = db.session.execute(select(
        func.count(case((higher, 1))), func.count(),
        func.count(case((higher & same_region, 1))), func.count(case((same_region, 1))))
        .where(Result.quarter_id == result.quarter_id, Result.score.is_not(None),
               Result.id != result.id)).one()
    result.rank_national, result.rank_national_of = row[0] + 1, row[1] + 1
    result.rank_region, result.rank_region_of = row[2] + 1, row[3] + 1


# --- the background job ---------------------------------------------------------------------------


def _actor(params: dict):
    from portal.auth.models import User

    user_id = params.get("user_id")
    if not user_id:
        return None
    return db.session.scalars(select(User).where(User.id == user_id)).one_or_none()


@jobs.handler("evaluation.compute", roles=policy_roles(policy.COMPUTE),
              title=_l("Quarter computation"))
def compute_job(params: dict, progress) -> dict:
    """Count in a read transaction, then write the drafts in a short one."""
    period = Period.parse(params.get("period"))
    tick = _ticker(progress)

    def prepare() -> Gathered:
        check_computable(period)
        return gather(period, tick)

    def write(gathered: Gathered, last: bool) -> dict:
        quarter = write_drafts(period, gathered, acting_user=_actor(params), tick=tick)
        return {"quarter_id": quarter.id, "period": quarter.label,
                "agencies": quarter.agency_count}

    return jobs.in_two_phases(prepare, write)
