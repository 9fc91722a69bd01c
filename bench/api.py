"""The integration API's list resources at the network's size: every list under /api/v1 (its
first page of 50) as an agency owner's token and as HQ's, on a synthetic network of 2,000
agencies.

``.venv/bin/python -m bench.api`` builds (or reuses) the network of bench/databases.py, makes
a token for each account through the real service, warms each list up once, then times
BENCH_API_ROUNDS calls of each (the whole request through the Flask test client: token check,
scope, query, serialization) and counts its SQL statements on the small and the large page.

Target (issue #19): p95 under 50 ms per list at 2,000 agencies, and a constant number of
statements. Results: bench/results/api.md and .json (api-postgresql.* on PostgreSQL).

Settings (environment): BENCH_API_AGENCIES (default 2000), BENCH_API_ROUNDS (default 30),
BENCH_ORDERS, BENCH_ENGINEERS, BENCH_QUARTERS, BENCH_REUSE=1, BENCH_WORK_DIR, DATABASE_URL
(as bench/suggest.py).
"""
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, select, update

from bench import databases, inprocess, report
from portal import clock
from portal.extensions import db
from portal.tenancy import unscoped

TARGET_MS = 50
RESULTS = Path(__file__).resolve().parent / "results"
# (path, who): the lists an integration polls. "owner" is the busiest agency's owner, the
# others HQ accounts of the synthetic network.
LISTS = [
    ("/api/v1/offers/", "owner"), ("/api/v1/work-orders/", "owner"),
    ("/api/v1/settlements/", "owner"), ("/api/v1/parts-requests/", "owner"),
    ("/api/v1/certificates/", "owner"), ("/api/v1/evaluation/results/", "owner"),
    ("/api/v1/inbox/", "owner"), ("/api/v1/webhooks/", "owner"),
    ("/api/v1/service-requests/", "dispatcher"), ("/api/v1/offers/", "dispatcher"),
    ("/api/v1/work-orders/", "service"), ("/api/v1/revisits/", "service"),
    ("/api/v1/settlements/", "settlement"), ("/api/v1/parts-requests/", "parts"),
    ("/api/v1/certificates/", "certifier"), ("/api/v1/evaluation/results/", "service"),
    ("/api/v1/reference/product-lines", "dispatcher"),
]


def settings() -> dict:
    env = os.environ.get
    return {"agencies": int(env("BENCH_API_AGENCIES", "2000")),
            "rounds": int(env("BENCH_API_ROUNDS", "30")),
            "orders_per_agency": int(env("BENCH_ORDERS", "10")),
            "engineers_per_agency": int(env("BENCH_ENGINEERS", "10")),
            "quarters": int(env("BENCH_QUARTERS", "4")), "seed": 2026,
            "reuse": env("BENCH_REUSE") == "1",
            "work": Path(env("BENCH_WORK_DIR") or Path(tempfile.gettempdir()) / "portal-bench")}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def _tokens(app, subject) -> dict:
    from api.models import ApiToken
    from api.tokens import create_token
    from portal.auth.models import User

    who = {key for _path, key in LISTS}
    tokens = {}
    with app.test_request_context(), unscoped("the benchmark makes its tokens"):
        for key in sorted(who):
            user = db.session.scalars(select(User).where(
                User.email == subject.email(key))).one()
            _row, tokens[key] = create_token(user, acting_user=None, name="bench", days=1)
        # Used "just now": no last-use write while timing.
        db.session.execute(update(ApiToken).values(last_used_at=clock.now()))
        db.session.commit()
    return tokens


def measure(database, cfg: dict) -> dict:
    app = inprocess.make_app(database)
    app.config["API_RATE_LIMIT"] = "1000000/minute"
    subject = inprocess.subject(app)
    tokens = _tokens(app, subject)
    client = app.test_client()
    statements = [0]

    def count(*_args):
        statements[0] += 1

    rows = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
    try:
        for path, key in LISTS:
            headers = {"Authorization": f"Bearer {tokens[key]}"}
            sizes = {}
            for limit in (1, 50):  # the statements of a one-row page and of a full one
                statements[0] = 0
                response = client.get(f"{path}?limit={limit}" if "reference" not in path
                                      else path, headers=headers)
                assert response.status_code == 200, (path, key, response.get_data()[:300])
                sizes[limit] = (statements[0], len(response.json.get("items", [])))
            timings = []
            for _round in range(cfg["rounds"]):
                start = time.perf_counter()
                response = client.get(path, headers=headers)
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            rows.append({"path": path, "as": key, "items": sizes[50][1],
                         "statements_1": sizes[1][0], "statements_50": sizes[50][0],
                         "median_ms": round(statistics.median(timings), 2),
                         "p95_ms": round(_percentile(timings, 0.95), 2),
                         "max_ms": round(max(timings), 2)})
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", count)
    return {"subject": subject.agency_code, "rows": rows}


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
    worst = max(r["p95_ms"] for r in figures["rows"])
    constant = all(r["statements_1"] == r["statements_50"] for r in figures["rows"])
    data = {"when": clock.now().isoformat(timespec="seconds"), "machine": report.machine(),
            "database": database.kind, "server": databases.server_version(database),
            "network": {"agencies": agencies, "orders": network.orders,
                        "engineers": network.engineers, "quarters": network.quarters},
            "build": built, "target_ms": TARGET_MS, "rounds": cfg["rounds"], **figures,
            "worst_p95_ms": worst, "constant_statements": constant,
            "elapsed_seconds": round(time.monotonic() - started, 1)}
    data["verdict"] = "pass" if worst < TARGET_MS and constant else "FAIL"
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if database.kind == "sqlite" else f"-{database.kind}"
    (RESULTS / f"api{suffix}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    (RESULTS / f"api{suffix}.md").write_text(markdown(data))
    print(f"api lists: worst p95 {worst} ms, statements constant: {constant} "
          f"({data['verdict']})")
    return 0 if data["verdict"] == "pass" else 1


def markdown(d: dict) -> str:
    m, n = d["machine"], d["network"]
    lines = [
        "# The integration API's lists at 2,000 agencies", "",
        f"{d['when']}; {d['database']} {d['server']}; {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB, Python {m['python']}, load {m['load_average']}.", "",
        f"Network: {n['agencies']:,} agencies, {n['orders']:,} work orders, "
        f"{n['engineers']:,} engineers, {n['quarters']} quarters. The busiest agency "
        f"({d['subject']}) and the network's HQ accounts, each with a token; every call the "
        f"whole request (token check, scope, query, JSON), {d['rounds']} timed calls after a "
        f"warm-up, first page (50 items).", "",
        "| list | as | items | statements (1 / 50 items) | median | p95 | max |",
        "|---|---|--:|--:|--:|--:|--:|"]
    for r in d["rows"]:
        lines.append(f"| `{r['path']}` | {r['as']} | {r['items']} | {r['statements_1']} / "
                     f"{r['statements_50']} | {r['median_ms']} ms | {r['p95_ms']} ms | "
                     f"{r['max_ms']} ms |")
    lines += ["", f"Target: p95 under {d['target_ms']} ms for every list, and the same number "
              f"of statements for a page of 1 and of 50. Worst p95: {d['worst_p95_ms']} ms. "
              f"Verdict: {d['verdict']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
