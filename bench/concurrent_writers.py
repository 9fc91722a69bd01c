"""People writing at once on the embedded SQLite database, through HTTP under gunicorn.

Two measurements on a fresh copy of the demo database (built once with `flask setup`):

- publication: HQ service quality publishes the demo's draft quarter from its page (the job
  runs inside the portal, as it does without Redis) while another person signs in and saves
  a work order, again and again until the publication is done: the status and latency of
  each of that person's requests (max, p95) and how long the publication took;
- writers: N people (default 8) sign in and save work orders at once for S seconds (default
  30): requests, answers 5xx, latency p50 / p95 / max.

    .venv/bin/python -m bench.concurrent_writers [--seconds 30] [--writers 8]
        [--workers 4] [--threads 2] [--work /tmp/portal-bench/writers] [--only writers]

Results: printed, and written to bench/results/concurrent-writers.{json,md}.
"""
import argparse
import html
import json
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from http.cookiejar import CookieJar
from itertools import count
from pathlib import Path

from bench.databases import PROJECT
from bench.load import serve

DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - the published demo password
# The demo's agency accounts that may save work orders (owner and staff of two agencies).
EDITORS = ("staff@sh-c01.demo", "owner@sh-c01.demo", "staff@gd-c01.demo", "owner@gd-c01.demo")
PUBLISHER = "service@hq.demo"
RESULTS = PROJECT / "bench" / "results"
SERIALS = count(1)


def _env(instance: Path) -> dict:
    import os

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{instance / 'portal.sqlite3'}",
           "PORTAL_INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-writers-secret",
           "PYTHONPATH": str(PROJECT)}
    for name in ("REDIS_URL", "MIGRATION_DATABASE_URL"):
        env.pop(name, None)
    return env


def demo_database(work: Path) -> Path:
    """The demo database, built once (`flask setup`), checkpointed into one file."""
    base = work / "base"
    marker = base / "built"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        print("building the demo database (about a minute)…", flush=True)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "setup"],  # noqa: S603
                       cwd=PROJECT, env=_env(base), check=True, capture_output=True)
        with sqlite3.connect(base / "portal.sqlite3") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        marker.write_text("demo")
    return base


def fresh_copy(base: Path, work: Path, label: str) -> Path:
    instance = work / label
    shutil.rmtree(instance, ignore_errors=True)
    instance.mkdir(parents=True)
    shutil.copy(base / "portal.sqlite3", instance / "portal.sqlite3")
    # the demo was built by an earlier version, perhaps: bring its schema up to date
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],  # noqa: S603
                   cwd=PROJECT, env=_env(instance), check=True, capture_output=True)
    return instance


@contextmanager
def portal(instance: Path, workers: int, threads: int):
    """The portal (wsgi:app) under gunicorn on loopback; yields its base URL."""
    with serve(["--workers", str(workers), "--threads", str(threads), "--timeout", "300",
                "wsgi:app"], _env(instance), instance / "gunicorn.log") as base:
        yield base


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """One person's browser: cookies, CSRF tokens, and the time of every request sent."""

    def __init__(self, base: str, record):
        self.base, self.record = base, record
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirects)

    def send(self, what: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        """(status, body, Location) of one request; its time goes to `record`."""
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data)  # noqa: S310 - loopback
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=120) as response:
                status, body, location = response.status, response.read().decode(), ""
        except urllib.error.HTTPError as answer:
            status, body = answer.code, answer.read().decode(errors="replace")
            location = answer.headers.get("Location") or ""
        self.record(what, status, time.monotonic() - started)
        return status, body, location

    def sign_in(self, email: str) -> bool:
        _status, page, _ = self.send("sign-in page", "/auth/sign-in")
        status, _body, location = self.send("sign in", "/auth/sign-in", {
            "email": email, "password": DEMO_PASSWORD, "csrf_token": _token(page)})
        return status == 302 and "sign-in" not in location

    def save_order(self) -> bool:
        status, page, _ = self.send("order form", "/service/orders/new")
        if status != 200:
            return False
        status, _body, location = self.send("save order", "/service/orders/new",
                                            _order(page))
        return status == 302 and "/service/orders/" in location


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else ""


def _first_option(page: str, name: str) -> str:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    values = re.findall(r'<option[^>]*value="([^"]*)"', select.group(1)) if select else []
    chosen = [v for v in values if v not in ("", "0")]
    return chosen[0] if chosen else "0"


def _order(page: str) -> dict:
    from portal.clock import local_now

    received = local_now() - timedelta(days=1)
    stamp = "%Y-%m-%dT%H:%M"
    return {"csrf_token": _token(page), "number": "", "service_type": "onsite",
            "customer_name": "压测客户", "customer_phone": "13700000000",
            "customer_address": "上海市浦东新区 1 号",
            "product_model_id": _first_option(page, "product_model_id"),
            "serial_number": f"SN-BENCH-{next(SERIALS)}",
            "purchase_date": (received - timedelta(days=90)).date().isoformat(),
            "received_at": received.strftime(stamp),
            "responded_at": (received + timedelta(hours=1)).strftime(stamp),
            "arrived_at": "", "completed_at": "", "distance_km": "",
            "engineer_id": _first_option(page, "engineer_id"),
            "fault_code_id": _first_option(page, "fault_code_id"),
            "fault_description": "不制冷", "resolution": "", "is_first_time_fix": "y",
            "parts-0-part_id": "0", "parts-0-quantity": ""}


class Tally:
    """Requests by what they were: status and seconds."""

    def __init__(self):
        self.calls: list[tuple[str, int, float, float]] = []  # what, status, seconds, at
        self.refused: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, what: str, status: int, seconds: float) -> None:
        with self.lock:
            self.calls.append((what, status, seconds, time.monotonic()))

    def summary(self) -> dict:
        times = sorted(c[2] for c in self.calls)

        def pick(share: float) -> float | None:
            return round(times[int(share * (len(times) - 1))] * 1000, 1) if times else None

        return {"requests": len(times), "5xx": sum(c[1] >= 500 for c in self.calls),
                "not_done": len(self.refused), "p50_ms": pick(0.5), "p95_ms": pick(0.95),
                "max_ms": round(times[-1] * 1000, 1) if times else None,
                "mean_ms": round(statistics.fmean(times) * 1000, 1) if times else None,
                "over_1s": sum(s > 1 for s in times)}


def _work(base: str, email: str, tally: Tally, until) -> None:
    """Sign in and save an order, as a new browser each time, until `until()` says stop."""
    while not until():
        browser = Browser(base, tally)
        if not browser.sign_in(email):
            tally.refused.append(f"{email}: sign-in")
            continue
        if not browser.save_order():
            tally.refused.append(f"{email}: save")


def writers(base: str, count_: int, seconds: float) -> dict:
    tally, stop = Tally(), time.monotonic() + seconds
    people = [threading.Thread(target=_work, args=(base, EDITORS[n % len(EDITORS)], tally,
                                                   lambda: time.monotonic() > stop))
              for n in range(count_)]
    for person in people:
        person.start()
    for person in people:
        person.join()
    return {"writers": count_, "seconds": seconds, **tally.summary(),
            "refused": tally.refused[:10]}


def publication(base: str) -> dict:
    """Publish the demo's draft quarter from its page; meanwhile one person works."""
    hq_tally = Tally()
    hq = Browser(base, hq_tally)
    if not hq.sign_in(PUBLISHER):
        raise RuntimeError(f"could not sign in as {PUBLISHER}")
    quarter, page = _draft_quarter(hq)
    seen = re.search(r'name="seen_version"[^>]*value="(\d+)"', page)
    done = threading.Event()
    tally = Tally()
    person = threading.Thread(target=_work, args=(base, EDITORS[0], tally, done.is_set))
    person.start()
    time.sleep(1)  # the person is at work when HQ publishes
    started = time.monotonic()
    status, _body, location = hq.send("publish", f"/evaluation/quarters/{quarter}/publish", {
        "csrf_token": _token(page), "seen_version": seen.group(1) if seen else ""})
    job = re.search(r"/jobs/(\d+)", location)
    if status != 302 or not job:
        done.set()
        person.join()
        raise RuntimeError(f"publishing answered {status} {location}")
    while True:
        _st, body, _ = hq.send("progress", f"/jobs/{job.group(1)}/progress.json")
        progress = json.loads(body)
        if progress["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    seconds = time.monotonic() - started
    time.sleep(1)  # and a moment after it
    done.set()
    person.join()
    result = progress.get("result") or {}
    slowest = sorted(tally.calls, key=lambda c: -c[2])[:5]
    return {"quarter_id": int(quarter), "job": progress["status"],
            "job_error": progress.get("error"), "publication_seconds": round(seconds, 1),
            "job_seconds": result.get("seconds"), "write_seconds": result.get("write_seconds"),
            "reports": result.get("reports"), "other_person": tally.summary(),
            "slowest": [f"{what} {status} {s * 1000:.0f} ms at {at - started:+.1f} s"
                        for what, status, s, at in slowest],
            "refused": tally.refused[:10]}


def _draft_quarter(hq: Browser) -> tuple[str, str]:
    _st, index, _ = hq.send("evaluation", "/evaluation/")
    for quarter in dict.fromkeys(re.findall(r"/evaluation/quarters/(\d+)", index)):
        _st, page, _ = hq.send("quarter", f"/evaluation/quarters/{quarter}")
        if f"/evaluation/quarters/{quarter}/publish" in page:
            return quarter, page
    raise RuntimeError("the demo database has no draft quarter to publish")


def lock_waits(instance: Path) -> dict:
    """The portal's log lines of waits for SQLite's write lock over half a second."""
    waits = [float(found) for found in re.findall(
        r"waited (\d+\.\d+) s for SQLite's write lock", (instance / "gunicorn.log").read_text())]
    return {"over_0.5s": len(waits), "over_1s": sum(w > 1 for w in waits),
            "longest_s": max(waits, default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/portal-bench/writers"))  # noqa: S108
    parser.add_argument("--only", choices=("publication", "writers"))
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    base_db = demo_database(args.work)
    out = {"server": f"gunicorn {args.workers} workers × {args.threads} threads",
           "sqlite": sqlite3.sqlite_version}
    if args.only in (None, "publication"):
        instance = fresh_copy(base_db, args.work, "publication")
        with portal(instance, args.workers, args.threads) as base:
            out["publication"] = publication(base)
        out["publication"]["lock_waits"] = lock_waits(instance)
        print(json.dumps({"publication": out["publication"]}, indent=2), flush=True)
    if args.only in (None, "writers"):
        instance = fresh_copy(base_db, args.work, "writers")
        with portal(instance, args.workers, args.threads) as base:
            out["writers"] = writers(base, args.writers, args.seconds)
        out["writers"]["lock_waits"] = lock_waits(instance)
        print(json.dumps({"writers": out["writers"]}, indent=2), flush=True)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "concurrent-writers.json").write_text(json.dumps(out, indent=2) + "\n")
        (RESULTS / "concurrent-writers.md").write_text(_markdown(out))


def _markdown(out: dict) -> str:
    lines = ["# People writing at once on SQLite (bench/concurrent_writers.py)", "",
             f"{out['server']}, SQLite {out['sqlite']}, the demo database.", ""]
    if "publication" in out:
        p, o = out["publication"], out["publication"]["other_person"]
        lines += [f"Publication of the demo's draft quarter: {p['job']} in "
                  f"{p['publication_seconds']} s ({p['reports']} report files; its write "
                  f"phase {p['write_seconds']} s). Meanwhile one "
                  f"person signing in and saving work orders: {o['requests']} requests, "
                  f"{o['5xx']} × 5xx, {o['not_done']} not done, p95 {o['p95_ms']} ms, "
                  f"max {o['max_ms']} ms, {o['over_1s']} over 1 s; waits for the write lock "
                  f"over 0.5 s: {p['lock_waits']['over_0.5s']} (longest "
                  f"{p['lock_waits']['longest_s']} s).", ""]
    if "writers" in out:
        w = out["writers"]
        lines += [f"{w['writers']} people signing in and saving work orders for "
                  f"{w['seconds']:.0f} s: {w['requests']} requests, {w['5xx']} × 5xx, "
                  f"{w['not_done']} not done, p50 {w['p50_ms']} ms, p95 {w['p95_ms']} ms, "
                  f"max {w['max_ms']} ms; waits for the write lock over 0.5 s: "
                  f"{w['lock_waits']['over_0.5s']}, over 1 s: {w['lock_waits']['over_1s']} "
                  f"(longest {w['lock_waits']['longest_s']} s).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
