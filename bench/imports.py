"""HQ's customer revisits for the whole network imported from one file: 100,000 rows by the
background job, the way the import page starts it (PRODUCT.md §3: "a 100,000-row import runs
as a job in under a minute in constant memory").

``.venv/bin/python -m bench.imports`` builds (or reuses) a synthetic network with
bench/databases.py, tops it up with completed orders until it has enough that no revisit
scores yet, writes the revisits file (CSV, and XLSX unless BENCH_IMPORT_XLSX=0), then for
each file: stores it as the page does (checked whole: type, header, rows), starts the job and
runs it to the end in this process, and reads what it wrote. Each run works on a copy of the
SQLite database, so that runs repeat (on PostgreSQL the revisits it wrote are deleted again).
Writes bench/results/imports.md and imports.json.

Settings (environment):
  BENCH_IMPORT_ROWS   revisit rows in the file (default 100000)
  BENCH_SIZES         agencies of the network (first value; default "20")
  BENCH_IMPORT_XLSX   also import the same rows as an XLSX workbook (default 1)
  BENCH_REUSE=1       reuse a network a previous run built (same size and seed)
  BENCH_WORK_DIR      where databases live (default /tmp/portal-bench)
  DATABASE_URL        PostgreSQL as a role that may create databases (default: SQLite)
"""
import csv
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from flask import g
from sqlalchemy import delete, exists, func, select

from bench import databases, report
from bench.databases import Database, Network
from portal import clock, create_app, jobs
from portal.config import normalize_database_url
from portal.extensions import db
from portal.tenancy import unscoped

TARGET_SECONDS = 60
REASON = "the benchmark imports HQ's revisits of the whole network"


def settings() -> dict:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "20").split(",") if s]
    return {"rows": int(os.environ.get("BENCH_IMPORT_ROWS", 100_000)), "agencies": sizes[0],
            "xlsx": os.environ.get("BENCH_IMPORT_XLSX", "1") != "0",
            "reuse": os.environ.get("BENCH_REUSE") == "1", "seed": 2026,
            "work": Path(os.environ.get("BENCH_WORK_DIR")
                         or Path(tempfile.gettempdir()) / "portal-bench")}


def make_app(database: Database):
    os.environ["PORTAL_INSTANCE_PATH"] = str(database.instance)
    return create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(database.app_url),
                       "MIGRATION_DATABASE_URL": database.owner_url,
                       "SECRET_KEY": "bench-secret-key",
                       "UPLOAD_ROOT": str(database.instance / "files"),
                       "SERVICE_IMPORT_MAX_BYTES": 64 * 1024 * 1024})


def _unrevisited():
    from service.models import OrderStatus, Revisit, WorkOrder

    return (WorkOrder.status == OrderStatus.COMPLETED, ~exists().where(
        Revisit.agency_id == WorkOrder.agency_id, Revisit.work_order_id == WorkOrder.id))


def top_up(app, rows: int) -> int:
    """Completed orders without a revisit: at least `rows`, added evenly across the active
    agencies (one executemany INSERT) when the network has fewer."""
    from service.models import OrderStatus, WorkOrder
    from tenants.models import Agency, AgencyProductLine, ProductModel

    with app.app_context(), unscoped(REASON):
        have = db.session.scalar(select(func.count(WorkOrder.id)).where(*_unrevisited()))
        missing = rows - have
        if missing <= 0:
            return have
        models = db.session.execute(
            select(Agency.id, ProductModel.id, ProductModel.product_line_id)
            .join(AgencyProductLine, AgencyProductLine.agency_id == Agency.id)
            .join(ProductModel, ProductModel.product_line_id == AgencyProductLine.product_line_id)
            .where(Agency.status == "active").order_by(Agency.id, ProductModel.id)).all()
        chosen = list({agency: (agency, model, line) for agency, model, line in models}.values())
        batch = db.session.scalar(select(func.count(WorkOrder.id)).where(
            WorkOrder.number.like("BI%")))
        done = clock.now().replace(microsecond=0) - timedelta(days=2)
        print(f"  adding {missing:,} completed orders", flush=True)
        rows_ = [{"agency_id": agency, "number": f"BI{batch + n:07d}", "service_type": "carry_in",
                  "status": OrderStatus.COMPLETED, "customer_name": "回访客户",
                  "customer_phone": "13900000000", "customer_address": "",
                  "product_line_id": line, "product_model_id": model,
                  "serial_number": f"SNBI{batch + n:08d}", "is_in_warranty": False,
                  "received_at": done - timedelta(hours=4), "completed_at": done,
                  "service_date": clock.local_day(done), "fault_description": "",
                  "resolution": "已修复", "version": 1}
                 for n, (agency, model, line) in
                 ((n, chosen[n % len(chosen)]) for n in range(missing))]
        db.session.connection().execute(WorkOrder.__table__.insert(), rows_)
        db.session.commit()
        return db.session.scalar(select(func.count(WorkOrder.id)).where(*_unrevisited()))


def write_files(app, rows: int, folder: Path, xlsx: bool) -> dict[str, Path]:
    """The revisits file: one row per completed order not revisited yet, every agency."""
    from service.imports import REVISIT_COLUMNS
    from service.models import WorkOrder
    from tenants.models import Agency

    folder.mkdir(parents=True, exist_ok=True)
    comments = ["满意", "师傅很专业，非常满意", "上门准时", "一般", ""]
    files = {"csv": folder / "revisits.csv"}
    book = sheet = None
    if xlsx:  # streamed, like the CSV: the import's memory is measured in this process
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        files["xlsx"] = folder / "revisits.xlsx"
    with app.app_context(), unscoped(REASON), \
            open(files["csv"], "w", encoding="utf-8-sig", newline="") as out:
        header = [str(c.label) for c in REVISIT_COLUMNS]
        writer = csv.writer(out)
        writer.writerow(header)
        if sheet is not None:
            sheet.append(header)
        orders = db.session.execute(
            select(Agency.code, WorkOrder.number).join(Agency, Agency.id == WorkOrder.agency_id)
            .where(*_unrevisited()).order_by(WorkOrder.id).limit(rows)
            .execution_options(yield_per=5000))
        for n, (code, number) in enumerate(orders):
            row = [code, number, str(5 - n % 5), comments[n % 5], ""]
            writer.writerow(row)
            if sheet is not None:
                sheet.append(row)
    if book is not None:
        book.save(files["xlsx"])
    return files


def import_file(app, path: Path) -> dict:
    """Store the file as the page does, start the job, run it here; what it took."""
    from werkzeug.datastructures import FileStorage

    from portal.auth.models import User
    from portal.auth.roles import Role
    from portal.tenancy import scoped
    from service import uploads
    from service.models import Revisit

    with app.app_context():
        with unscoped("the benchmark signs in as HQ's service desk"):
            user = db.session.scalars(select(User).where(User.role == Role.HQ_SERVICE)
                                      .order_by(User.id)).first()
            before = db.session.scalar(select(func.max(Revisit.id))) or 0
        sampler = RssSampler()
        started, cpu = time.perf_counter(), time.process_time()
        with scoped(user.scope), open(path, "rb") as handle:
            g._audit_actor = user
            outcome = uploads.import_table("revisit", None, file=FileStorage(
                handle, filename=path.name), acting_user=user)
            db.session.commit()
            job_id = outcome.job.id
        stored = time.perf_counter() - started
        job = jobs.run(job_id)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        grown = sampler.stop()
        with unscoped(REASON):
            written = db.session.scalar(select(func.count(Revisit.id)).where(
                Revisit.id > before))
        result = dict(job.result or {}, error=job.error, status=job.status)
    return {"file": path.name, "bytes": path.stat().st_size, "status": result["status"],
            "error": result["error"], "rows": result.get("rows"),
            "created": result.get("created"), "updated": result.get("updated"),
            "unchanged": result.get("unchanged"), "errors": result.get("rejected_rows"),
            "new_revisits": written, "store_seconds": round(stored, 2),
            "job_seconds": result.get("seconds"), "write_seconds": result.get("write_seconds"),
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "max_rss_growth_mib": round(grown / 2**20, 1), "load_average": os.getloadavg()[0]}


class RssSampler:
    """The process's resident memory sampled every 50 ms from /proc: how far it grew above
    where it started (ru_maxrss keeps the peak of the whole process)."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * self.page
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return max(self.peak, self._rss()) - self.start


def _copy(database: Database, label: str) -> Database:
    """A scratch copy of an SQLite network (a run changes it); PostgreSQL as it is."""
    if database.kind != "sqlite":
        return database
    source = Path(database.app_url.removeprefix("sqlite:///"))
    target = source.with_name(f"imports-{label}.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copy(source, target)
    return Database("sqlite", f"sqlite:///{target}", None, database.instance)


def _undo(app, database: Database, before: int) -> None:
    """PostgreSQL: delete the revisits a run wrote (SQLite runs worked on a copy)."""
    from service.models import Revisit

    if database.kind == "sqlite":
        Path(database.app_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    with app.app_context(), unscoped(REASON):
        db.session.execute(delete(Revisit).where(Revisit.id > before))
        db.session.commit()


def main() -> int:
    cfg = settings()
    cfg["work"].mkdir(parents=True, exist_ok=True)
    network = Network(cfg["agencies"], cfg["agencies"] * 100, cfg["agencies"] * 10, 0,
                      cfg["seed"])
    print(f"Import benchmark: {cfg['rows']:,} revisit rows on {network.label}", flush=True)
    database, built = databases.prepare(network, cfg["work"], cfg["reuse"])
    app = make_app(database)
    available = top_up(app, cfg["rows"])
    files = write_files(app, min(cfg["rows"], available), database.instance / "import-files",
                        cfg["xlsx"])
    runs = []
    for fmt, path in files.items():
        copy = _copy(database, fmt)
        run_app = make_app(copy)
        with run_app.app_context(), unscoped(REASON):
            from service.models import Revisit

            before = db.session.scalar(select(func.max(Revisit.id))) or 0
        print(f"  importing {path.name} ({path.stat().st_size / 2**20:.1f} MiB)…", flush=True)
        measured = import_file(run_app, path)
        measured["format"] = fmt
        runs.append(measured)
        print(f"    {measured['status']}: {measured['created']:,} created, "
              f"{measured['updated']} updated, {measured['errors']} errors in "
              f"{measured['seconds']} s, {measured['cpu_seconds']} s of CPU (stored in "
              f"{measured['store_seconds']} s, write "
              f"transaction {measured['write_seconds']} s), max RSS +"
              f"{measured['max_rss_growth_mib']} MiB", flush=True)
        with run_app.app_context():
            db.engine.dispose()
        _undo(run_app, copy, before)
    paths = write_results(cfg, database, built, runs)
    print(f"Written {', '.join(str(p) for p in paths)}")
    return 0 if all(r["status"] == "succeeded" and r["seconds"] < TARGET_SECONDS
                    for r in runs) else 1


def write_results(cfg: dict, database: Database, built: dict, runs: list) -> list[Path]:
    data = {"rows": cfg["rows"], "agencies": cfg["agencies"], "database": database.kind,
            "server": databases.server_version(database), "machine": report.machine(),
            "target_seconds": TARGET_SECONDS, "build": built, "runs": runs,
            "measured_at": clock.now().isoformat(timespec="seconds")}
    report.RESULTS.mkdir(exist_ok=True)
    json_path = report.RESULTS / "imports.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    lines = [f"# Import benchmark: {cfg['rows']:,} revisit rows ({database.kind})", "",
             f"{data['server']}; {data['machine']['cpu']}, {data['machine']['cores']} cores. "
             f"Target: under {TARGET_SECONDS} s, constant memory.", "",
             "| file | size MiB | rows | created | updated | errors | stored s | job s | "
             "write transaction s | total s | CPU s | load average | max RSS growth MiB "
             "| within target |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        ok = "yes" if r["status"] == "succeeded" and r["seconds"] < TARGET_SECONDS else "NO"
        lines.append(f"| {r['file']} | {r['bytes'] / 2**20:.1f} | {r['rows']} | {r['created']}"
                     f" | {r['updated']} | {r['errors']} | {r['store_seconds']} | "
                     f"{r['job_seconds']} | {r['write_seconds']} | {r['seconds']} | "
                     f"{r['cpu_seconds']} | {r['load_average']:.1f} | "
                     f"{r['max_rss_growth_mib']} | {ok} |")
    md_path = report.RESULTS / "imports.md"
    md_path.write_text("\n".join(lines) + "\n")
    return [md_path, json_path]


if __name__ == "__main__":
    sys.exit(main())
