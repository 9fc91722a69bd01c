"""`make bench`: build synthetic networks of several sizes and measure the portal on each, in
one run; write bench/results/latest.md and latest.json (and a copy named after the database
and the sizes, e.g. sqlite-20-200-2000.md, so that runs on both databases stay side by side).

Settings (environment):
  BENCH_SIZES       agencies per network, comma-separated (default "20,200")
  BENCH_ORDERS      work orders per agency (default 1000: 2,000 agencies → 2,000,000 orders)
  BENCH_ENGINEERS   engineers per agency (default 10)
  BENCH_QUARTERS    evaluated quarters of history (default 4)
  BENCH_SECONDS     wrk duration per URL and load (default 4)
  BENCH_WORKERS     gunicorn workers (default: the CPU count)
  BENCH_CONNECTIONS wrk connections for throughput (default: the workers); latency is
                    measured with one connection
  BENCH_REUSE=1     reuse networks a previous run built (same sizes and seed)
  BENCH_WORK_DIR    where databases live (default /tmp/portal-bench)
  DATABASE_URL      PostgreSQL as a role that may create databases (default: SQLite)
"""
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import databases, inprocess, load, report, workplace

TARGET_P95_MS = 100
TARGET_SHARE = 0.25


def settings() -> dict:
    cpus = os.cpu_count() or 2
    workers = int(os.environ.get("BENCH_WORKERS", cpus))
    return {"sizes": [int(s) for s in os.environ.get("BENCH_SIZES", "20,200").split(",") if s],
            "orders_per_agency": int(os.environ.get("BENCH_ORDERS", 1000)),
            "engineers_per_agency": int(os.environ.get("BENCH_ENGINEERS", 10)),
            "quarters": int(os.environ.get("BENCH_QUARTERS", 4)),
            "seconds": int(os.environ.get("BENCH_SECONDS", 4)), "workers": workers,
            "connections": int(os.environ.get("BENCH_CONNECTIONS", workers)),
            "reuse": os.environ.get("BENCH_REUSE") == "1", "seed": 2026,
            "work": Path(os.environ.get("BENCH_WORK_DIR")
                         or Path(tempfile.gettempdir()) / "portal-bench")}


def key_pages(s: inprocess.Subject, report_id: int | None) -> list[dict]:
    """The pages PRODUCT.md §3 names, each with the user who opens it."""
    filters = "status=completed&type=onsite&warranty=in"
    pages = [
        ("agency dashboard", "owner", "/"),
        ("work orders, filtered", "owner", f"/service/orders/?{filters}"),
        ("settlement list", "owner", "/settlements/"),
        ("settlement detail", "owner", f"/settlements/{s.settlement_id}"),
        ("HQ network overview", "admin", "/"),
        ("HQ agency list", "admin", "/agencies/"),
        ("HQ work orders, filtered", "admin", f"/service/orders/?{filters}"),
        ("HQ settlements to review", "settlement", "/settlements/?status=submitted"),
        ("evaluation ranking", "admin", f"/evaluation/quarters/{s.quarter_id}")
        if s.quarter_id else None,
        ("audit log", "auditor", "/audit/"),
        # The daily screens of issue 16: the agency's 360, HQ's review of the biggest
        # settlement, and the order form with its dependent choices.
        ("agency 360", "admin", f"/agencies/{s.agency_id}"),
        ("settlement review", "settlement", f"/settlements/{s.settlement_id}"),
        ("new work order form", "owner", "/service/orders/new"),
        # The cost of isolation: the same rows read by HQ through a filter and by the agency's
        # own user through the tenant guard (and row-level security on PostgreSQL).
        ("isolation: agency's orders as HQ", "admin",
         f"/service/orders/?agency={s.agency_id}&{filters}"),
        ("isolation: agency's orders as the agency", "owner", f"/service/orders/?{filters}"),
    ]
    if report_id:
        pages.append(("stored report download", "owner", f"/evaluation/reports/{report_id}.pdf"))
    return [{"name": n, "user": u, "url": url} for n, u, url in filter(None, pages)]


def measure_size(agencies: int, cfg: dict) -> dict:
    network = databases.Network(agencies, agencies * cfg["orders_per_agency"],
                                agencies * cfg["engineers_per_agency"], cfg["quarters"],
                                cfg["seed"])
    database, built = databases.prepare(network, cfg["work"], cfg["reuse"])
    app = inprocess.make_app(database)
    subject = inprocess.subject(app)
    out = {"network": {"agencies": agencies, "orders": network.orders,
                       "engineers": network.engineers, "quarters": network.quarters},
           "database": database.kind, "server": databases.server_version(database),
           "build": built, "subject": {"agency": subject.agency_code, "orders": subject.orders,
                                       "settlement_lines": subject.settlement_lines}}
    print("  quarter computation…", flush=True)
    out["quarter"] = (inprocess.quarter_computation(app, subject) if subject.period
                      else {"error": "no quarter"})
    print("  settlement of 5,000 orders…", flush=True)
    out["settlement_build"] = inprocess.settlement_build(app, subject)
    print("  evaluation PDF…", flush=True)
    out["pdf"] = inprocess.evaluation_pdf(app, subject)
    print("  workplace…", flush=True)
    out["workplace"] = workplace.measure(database)
    pages = key_pages(subject, out["pdf"]["report_id"])
    try:
        queries = inprocess.queries_per_page(app, pages, subject)
        print("  pages under load…", flush=True)
        out["pages"], out["hello"], out["wsgi_hello"] = _under_load(database, subject, pages,
                                                                    cfg)
    finally:
        inprocess.remove_report(app, out["pdf"]["report_id"])
    for page in out["pages"]:
        page["queries"] = queries.get(page["name"])
    return out


def _under_load(database, subject, pages, cfg) -> tuple[list, dict, dict]:
    seconds, connections = cfg["seconds"], cfg["connections"]
    with load.gunicorn(database, cfg["workers"]) as base:
        sessions = {}
        for page in pages:
            if page["user"] not in sessions:
                sessions[page["user"]] = load.Session(base, subject.email(page["user"]),
                                                      inprocess.PASSWORD)
        hello = _both(base + "/__bench/hello", None, seconds, connections)
        wsgi_hello = _both(base + "/__bench/wsgi-hello", None, seconds, connections)
        measured = []
        for page in pages:
            session = sessions[page["user"]]
            began = time.perf_counter()
            status, size = session.get(page["url"])  # warm, and check it is the page
            alone_ms = round((time.perf_counter() - began) * 1000, 1)
            if status == 200:  # every worker's first request of the page is not measured
                for _worker in range(2 * cfg["workers"]):
                    session.get(page["url"])
            result = {**page, "status": status, "bytes": size}
            if status == 200:
                result.update(_both(base + page["url"], session.cookie, seconds, connections))
                if result["p95_ms"] is None:  # slower than the whole wrk run: one request
                    result.update(p50_ms=alone_ms, p95_ms=alone_ms, single_request=True)
                result["share_of_hello"] = round(result["rps"] / hello["rps"], 3)
                result["share_of_wsgi_hello"] = round(result["rps"] / wsgi_hello["rps"], 4)
            print(f"    {page['name']:<42} {status} p95 {result.get('p95_ms', '-')} ms "
                  f"(loaded {result.get('loaded_p95_ms', '-')} ms), "
                  f"{result.get('rps', '-')} req/s", flush=True)
            measured.append(result)
    return measured, hello, wsgi_hello


def _both(url: str, cookie, seconds: int, connections: int) -> dict:
    """Latency as one user sees it (one connection: the server's own time, no queue), then
    throughput with every worker busy (its p95 is mostly the wait in the queue)."""
    alone = load.wrk(url, cookie, seconds, 1)
    busy = load.wrk(url, cookie, seconds, connections)
    return {**{k: alone[k] for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")},
            "rps": busy["rps"], "loaded_p50_ms": busy["p50_ms"],
            "loaded_p95_ms": busy["p95_ms"], "single_rps": alone["rps"]}


def main() -> int:
    cfg = settings()
    cfg["work"].mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    kind = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    print(f"Benchmark on {kind}: sizes {cfg['sizes']} agencies, {cfg['orders_per_agency']} "
          f"orders per agency, wrk {cfg['seconds']} s × {cfg['connections']} connections, "
          f"{cfg['workers']} gunicorn workers", flush=True)
    results, targets = [], {"p95_ms": TARGET_P95_MS, "share": TARGET_SHARE}
    for agencies in cfg["sizes"]:
        print(f"\n{agencies} agencies", flush=True)
        results.append(measure_size(agencies, cfg))
        # Written after every size: a long run that stops keeps what it measured.
        elapsed = round(time.monotonic() - started, 1)
        paths = report.write(results, cfg, kind, elapsed, targets)
    print(f"\nWritten {', '.join(str(p) for p in paths)} in {elapsed} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
