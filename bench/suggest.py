"""The dispatcher's suggestion at the network's size: dispatch.suggest.suggestions() for 50
waiting service requests of a synthetic network of 2,000 agencies.

``.venv/bin/python -m bench.suggest`` builds (or reuses) the network of bench/databases.py
(the portal's own `synth-network`; the dispatch generator adds coverage areas and the
hotline's waiting calls — when the network was built without it, they are added here), then
times the suggestion of each request, as HQ's dispatcher runs it: one SQL statement.

Target (issue #18): under 50 ms at 2,000 agencies (p95). Results: bench/results/suggest.md
and .json.

Settings (environment):
  BENCH_SUGGEST_AGENCIES  agencies of the network (default 2000)
  BENCH_SUGGEST_REQUESTS  requests timed (default 50)
  BENCH_SUGGEST_ROUNDS    timed rounds over them, after one warm-up round (default 3)
  BENCH_ORDERS            work orders per agency (default 10)
  BENCH_ENGINEERS         engineers per agency (default 10)
  BENCH_QUARTERS          evaluated quarters (default 4: the grades)
  BENCH_REUSE=1           reuse a network a previous run built (same sizes and seed)
  BENCH_WORK_DIR          where databases live (default /tmp/portal-bench)
  DATABASE_URL            PostgreSQL as a role that may create databases (default: SQLite)
"""
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench import databases, inprocess, report
from portal import clock
from portal.extensions import db
from portal.tenancy import unscoped

TARGET_MS = 50
RESULTS = Path(__file__).resolve().parent / "results"
REASON = "the benchmark acts as HQ's dispatcher"


def settings() -> dict:
    env = os.environ.get
    return {"agencies": int(env("BENCH_SUGGEST_AGENCIES", "2000")),
            "requests": int(env("BENCH_SUGGEST_REQUESTS", "50")),
            "rounds": int(env("BENCH_SUGGEST_ROUNDS", "3")),
            "orders_per_agency": int(env("BENCH_ORDERS", "10")),
            "engineers_per_agency": int(env("BENCH_ENGINEERS", "10")),
            "quarters": int(env("BENCH_QUARTERS", "4")), "seed": 2026,
            "reuse": env("BENCH_REUSE") == "1",
            "work": Path(env("BENCH_WORK_DIR") or Path(tempfile.gettempdir()) / "portal-bench")}


def _tag() -> str:
    from tenants.models import Region

    code = db.session.scalar(select(Region.code).where(Region.code.like("Y%-%"))
                             .order_by(Region.code.desc()).limit(1))
    return code.split("-", 1)[0]


def _requests(tag: str, count: int) -> list:
    """`count` waiting requests of the network, spread over it (every k-th by number), as the
    suggestion reads them (their area, line and type: transient rows)."""
    from dispatch.requests import ServiceRequest

    columns = (ServiceRequest.id, ServiceRequest.number, ServiceRequest.province_id,
               ServiceRequest.city, ServiceRequest.district, ServiceRequest.product_line_id,
               ServiceRequest.service_type)
    rows = db.session.execute(select(*columns).where(
        ServiceRequest.number.like(f"{tag}-SR%"), ServiceRequest.status == "new")
        .order_by(ServiceRequest.number)).all()
    step = max(len(rows) // max(count, 1), 1)
    chosen = rows[::step][:count]
    return [ServiceRequest(id=r.id, number=r.number, province_id=r.province_id, city=r.city,
                           district=r.district, product_line_id=r.product_line_id,
                           service_type=r.service_type) for r in chosen]


def _publish_all_but_the_latest() -> int:
    """The synthetic network computes its quarters and leaves them in draft; the grade column
    needs published ones. Mark every quarter but the latest published (status and dates
    only: no reports are rendered), so that agencies have grades and the latest quarter's
    drafts must be skipped. Returns how many quarters it published (committed)."""
    from datetime import timedelta

    from sqlalchemy import update

    from evaluation.models import Quarter, Result

    drafts = db.session.execute(select(Quarter.id).where(Quarter.status == "draft")
                                .order_by(Quarter.year, Quarter.quarter)).scalars().all()
    if db.session.scalar(select(Quarter.id).where(Quarter.status != "draft").limit(1)):
        return 0
    chosen = drafts[:-1]
    if not chosen:
        return 0
    now = clock.now()
    db.session.execute(update(Quarter).where(Quarter.id.in_(chosen)).values(
        status="published", published_at=now, appeal_deadline_at=now + timedelta(days=7)))
    db.session.execute(update(Result).where(Result.quarter_id.in_(chosen)).values(
        status="published"))
    db.session.commit()
    return len(chosen)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def measure(database, cfg: dict) -> dict:
    from dispatch import suggest
    from dispatch import synth as dispatch_synth
    from evaluation import dispatch_grades

    app = inprocess.make_app(database)
    with app.test_request_context(), unscoped(REASON):
        tag = _tag()
        started = time.monotonic()
        added = dispatch_synth.top_up(tag, seed=cfg["seed"])
        topped = round(time.monotonic() - started, 1) if added else None
        if added:
            from portal.synth import analyze

            analyze()
        if suggest.registered_grade_source() is None:  # before evaluation's init registers it
            dispatch_grades.register()
        published = _publish_all_but_the_latest()
        from dispatch.coverage import Coverage
        from service.models import WorkOrder

        counts = {"coverage_rows": db.session.scalar(select(func.count(Coverage.id))),
                  "open_orders": db.session.scalar(select(func.count(WorkOrder.id)).where(
                      WorkOrder.status == "open"))}
        requests = _requests(tag, cfg["requests"])
        if not requests:
            raise SystemExit("the network has no waiting service requests")
        candidates, sizes = [], []
        for request in requests:  # warm-up: caches, the statement's compilation
            rows = suggest.suggestions(request, limit=1000)
            candidates.append(len(rows))
            sizes.append(len(suggest.suggestions(request)))
        timings = []
        for _round in range(cfg["rounds"]):
            for request in requests:
                start = time.perf_counter()
                suggest.suggestions(request)
                timings.append((time.perf_counter() - start) * 1000)
        graded = sum(1 for r in suggest.suggestions(requests[0]) if r.grade)
        graded_agencies = db.session.scalar(select(func.count()).select_from(
            dispatch_grades.latest_grades().subquery()))
    return {"requests": len(requests), "samples": len(timings),
            "median_ms": round(statistics.median(timings), 2),
            "p95_ms": round(_percentile(timings, 0.95), 2),
            "max_ms": round(max(timings), 2),
            "candidates_median": statistics.median(candidates),
            "candidates_max": max(candidates), "shown_median": statistics.median(sizes),
            "graded_in_first": graded, "topped_up_seconds": topped,
            "quarters_published_here": published, "graded_agencies": graded_agencies,
            **counts}


def main() -> int:
    cfg = settings()
    cfg["work"].mkdir(parents=True, exist_ok=True)
    agencies = cfg["agencies"]
    network = databases.Network(agencies, agencies * cfg["orders_per_agency"],
                                agencies * cfg["engineers_per_agency"], cfg["quarters"],
                                cfg["seed"])
    started = time.monotonic()
    database, built = databases.prepare(network, cfg["work"], cfg["reuse"])
    figures = measure(database, cfg)
    data = {"when": clock.now().isoformat(timespec="seconds"), "machine": report.machine(),
            "database": database.kind, "server": databases.server_version(database),
            "network": {"agencies": agencies, "orders": network.orders,
                        "engineers": network.engineers, "quarters": network.quarters},
            "build": built, "target_ms": TARGET_MS, **figures,
            "elapsed_seconds": round(time.monotonic() - started, 1)}
    data["verdict"] = "pass" if figures["p95_ms"] < TARGET_MS else "FAIL"
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if database.kind == "sqlite" else f"-{database.kind}"
    (RESULTS / f"suggest{suffix}.json").write_text(json.dumps(data, indent=2,
                                                              ensure_ascii=False))
    (RESULTS / f"suggest{suffix}.md").write_text(markdown(data))
    print(f"suggest: median {figures['median_ms']} ms, p95 {figures['p95_ms']} ms over "
          f"{figures['samples']} runs ({data['verdict']})")
    return 0 if data["verdict"] == "pass" else 1


def markdown(d: dict) -> str:
    m, n = d["machine"], d["network"]
    return "\n".join([
        "# The dispatcher's suggestion at 2,000 agencies",
        "",
        f"{d['when']}; {d['database']} {d['server']}; {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB, Python {m['python']}, load {m['load_average']}.",
        "",
        f"Network: {n['agencies']:,} agencies, {n['orders']:,} work orders "
        f"({d['open_orders']:,} open), {n['engineers']:,} engineers, {n['quarters']} quarters "
        f"evaluated ({d['graded_agencies']:,} agencies with a published grade); "
        f"{d['coverage_rows']:,} coverage rows.",
        f"`dispatch.suggest.suggestions()` (one SQL statement, limit 20) for {d['requests']} "
        f"waiting requests, {d['samples']} timed runs after a warm-up round; candidates per "
        f"request: median {d['candidates_median']}, max {d['candidates_max']}.",
        "",
        "| measure | value |",
        "|---|--:|",
        f"| median | {d['median_ms']} ms |",
        f"| p95 | {d['p95_ms']} ms |",
        f"| max | {d['max_ms']} ms |",
        "",
        f"Target: p95 under {d['target_ms']} ms. Verdict: {d['verdict']}.",
        ""])


if __name__ == "__main__":
    sys.exit(main())
