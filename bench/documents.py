"""The official documents on the demo at 00:30 local: each rendered as its reader downloads it,
timed, kept as PDF and as PNG pages for a person to look at.

``.venv/bin/python -m bench.documents`` (``make bench`` runs it) loads the demo into a
scratch instance with the clock at 00:30 Asia/Shanghai today (the hour at which a UTC date
would still say yesterday), then downloads, in Chinese and in English:

- an engineer's certificate (rendered on each download),
- a paid settlement statement (rendered on each download),
- an agency's quarterly evaluation report (rendered once at publication and stored: the
  download is the stored bytes; the rendering is timed separately, as publication runs it).

Target (PRODUCT.md §3): each document renders in under 1 s; a stored report downloads in
milliseconds. The files go to test-artifacts/documents/demo/ (PDF, and PNG pages through
Debian's pdftoppm); the results to bench/results/documents.md and .json.

Settings (environment):
  BENCH_DOCUMENT_RUNS  timed downloads per document and language (default 5)
  BENCH_WORK_DIR       where the scratch instance lives (default /tmp/portal-bench)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS", ROOT / "test-artifacts")) / \
    "documents" / "demo"
RESULTS = ROOT / "bench" / "results"
TARGET_SECONDS = 1.0
LOCALES = ("zh_CN", "en")


def _at_half_past_midnight() -> datetime:
    from portal import clock

    return datetime.combine(clock.local_today(), clock_time(0, 30), tzinfo=clock.local_zone())


def _app(instance: Path):
    from portal import create_app

    os.environ["PORTAL_INSTANCE_PATH"] = str(instance)
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'portal.sqlite3'}",
                       "SECRET_KEY": "bench-documents", "WTF_CSRF_ENABLED": False,
                       "RATELIMIT_STORAGE_URI": "memory://"})


def _subjects(app) -> dict:
    """What to download: a valid certificate, a paid statement, a stored evaluation report."""
    from sqlalchemy import select

    from certification.models import Certificate
    from evaluation.models import Report
    from portal.extensions import db
    from portal.tenancy import unscoped
    from settlement.models import Settlement

    with app.app_context(), unscoped("the benchmark picks the documents"):
        certificate = db.session.scalar(select(Certificate.id).where(
            Certificate.revoked_at.is_(None)).order_by(Certificate.valid_to.desc()).limit(1))
        statement = db.session.scalar(select(Settlement.id).where(
            Settlement.status == "paid").order_by(Settlement.paid_on.desc(),
                                                  Settlement.id).limit(1))
        reports = {locale: db.session.scalar(select(Report.id).where(Report.locale == locale)
                                             .order_by(Report.id.desc()).limit(1))
                   for locale in LOCALES}
    return {"certificate": certificate, "statement": statement, "report": reports}


def _download(client, url: str, runs: int) -> tuple[bytes, list[float]]:
    timings, body = [], b""
    for _n in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - start)
        if response.status_code != 200 or response.mimetype != "application/pdf":
            raise SystemExit(f"{url} answered {response.status_code} {response.mimetype}")
        body = response.data
    return body, timings


def _render_report(app, report_id: int, locale: str, runs: int) -> list[float]:
    """The evaluation report rendered again as publication renders it (not stored)."""
    from sqlalchemy import select

    from evaluation import reports
    from evaluation.models import Quarter, Report, Result
    from portal.extensions import db
    from portal.tenancy import unscoped

    timings = []
    with app.test_request_context(), unscoped("the benchmark renders a report again"):
        stored = db.session.scalars(select(Report).where(Report.id == report_id)).one()
        result = db.session.scalars(select(Result).where(Result.id == stored.result_id)).one()
        quarter = db.session.scalars(select(Quarter).where(Quarter.id == result.quarter_id)
                                     ).one()
        for _n in range(runs):
            start = time.perf_counter()
            figures = reports.report_figures(quarter, result,
                                             reports.load_context(quarter, [result]),
                                             version=stored.version)
            reports.render_report(figures, locale)
            timings.append(time.perf_counter() - start)
    return timings


def _pngs(pdf: Path) -> list[str]:
    if not shutil.which("pdftoppm"):
        return []
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(pdf.with_suffix(""))],  # noqa: S603, S607 - Debian's pdftoppm on our own file
                   check=True)
    return sorted(p.name for p in pdf.parent.glob(pdf.stem + "-*.png"))


def _summary(timings: list[float]) -> dict:
    return {"first_ms": round(timings[0] * 1000, 1),
            "median_ms": round(statistics.median(timings[1:] or timings) * 1000, 1),
            "max_ms": round(max(timings) * 1000, 1)}


def main() -> int:
    import time_machine

    from portal.demo import DEMO_PASSWORD

    runs = int(os.environ.get("BENCH_DOCUMENT_RUNS", "5"))
    work = Path(os.environ.get("BENCH_WORK_DIR")
                or Path(tempfile.gettempdir()) / "portal-bench") / "documents"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    at = _at_half_past_midnight()
    results: dict = {"at": at.isoformat(), "runs": runs, "target_ms": TARGET_SECONDS * 1000,
                     "documents": {}}
    with time_machine.travel(at, tick=True):  # this process's clock: the demo loads here
        app = _app(work)
        print(f"loading the demo at {at:%Y-%m-%d %H:%M %Z}…", flush=True)
        setup = app.test_cli_runner().invoke(args=["setup"])
        if setup.exit_code != 0:
            print(setup.output[-3000:], setup.exception)
            return 1
        subjects = _subjects(app)
        client = app.test_client()
        response = client.post("/auth/sign-in", data={"email": "admin@hq.demo",
                                                      "password": DEMO_PASSWORD})
        if response.status_code != 302:
            print("cannot sign in as admin@hq.demo")
            return 1
        urls = {"certificate": lambda loc: f"/certification/certificates/"
                                           f"{subjects['certificate']}/pdf?lang={loc}",
                "statement": lambda loc: f"/settlements/{subjects['statement']}/statement.pdf"
                                         f"?lang={loc}",
                "report": lambda loc: f"/evaluation/reports/{subjects['report'][loc]}.pdf"}
        for kind, url in urls.items():
            for locale in LOCALES:
                if kind == "statement":  # the statement speaks the reader's language
                    client.post("/locale", data={"locale": locale})
                body, timings = _download(client, url(locale), runs)
                pdf = ARTIFACTS / f"{kind}-{locale}.pdf"
                pdf.write_bytes(body)
                entry = {"download": _summary(timings), "bytes": len(body),
                         "pngs": _pngs(pdf)}
                if kind == "report":
                    entry["render"] = _summary(_render_report(
                        app, subjects["report"][locale], locale, runs))
                results["documents"][f"{kind} {locale}"] = entry
                print(f"{kind} {locale}: {entry}", flush=True)
    slowest = max(max(e.get("render", e["download"])["median_ms"], e["download"]["median_ms"])
                  for e in results["documents"].values())
    results["verdict"] = "pass" if slowest < TARGET_SECONDS * 1000 else "FAIL"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "documents.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (RESULTS / "documents.md").write_text(_markdown(results))
    print(f"documents: slowest median {slowest} ms ({results['verdict']}); images in {ARTIFACTS}")
    return 0 if results["verdict"] == "pass" else 1


def _markdown(results: dict) -> str:
    lines = ["# Official documents on the demo",
             "",
             f"Clock at {results['at']} (00:30 local); {results['runs']} downloads each; "
             f"target: each renders in under {results['target_ms']:.0f} ms.",
             "",
             "| Document | Download median (ms) | Max (ms) | Render median (ms) | Bytes |",
             "|---|---:|---:|---:|---:|"]
    for name, e in results["documents"].items():
        render = e.get("render", {}).get("median_ms", "")
        lines.append(f"| {name} | {e['download']['median_ms']} | {e['download']['max_ms']} | "
                     f"{render} | {e['bytes']:,} |")
    lines += ["", "The certificate and the statement are rendered on each download; the "
              "evaluation report downloads as stored, and its render column is publication's "
              "rendering of it.", f"Verdict: {results['verdict']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
