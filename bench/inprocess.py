"""Measurements made inside the bench process, on the same database the server uses: SQL
statements per page, the full-network quarter against one raw aggregate over the same rows,
a settlement of 5,000 orders, and one agency's evaluation PDF (stored for the download test).

Everything that writes is rolled back, except the one stored report the download needs.
"""
import os
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import g
from sqlalchemy import Integer, event, func, select

from bench.databases import Database
from portal import create_app, synth
from portal.config import normalize_database_url
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import unscoped

PASSWORD = synth.SYNTH_PASSWORD


@dataclass
class Subject:
    """The network's busiest active agency and the accounts and objects the pages show."""

    tag: str
    agency_id: int
    agency_code: str
    orders: int
    settlement_id: int
    settlement_lines: int
    quarter_id: int | None
    period: Period | None
    result_id: int | None

    def email(self, key: str) -> str:
        if key in ("owner", "staff", "engineer"):
            return f"{key}@{self.agency_code.lower()}.synth"
        return f"{key}@{self.tag.lower()}.synth"


def make_app(database: Database):
    os.environ["PORTAL_INSTANCE_PATH"] = str(database.instance)
    return create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(database.app_url),
                       "MIGRATION_DATABASE_URL": database.owner_url,
                       "SECRET_KEY": "bench-secret-key", "WTF_CSRF_ENABLED": False})


def subject(app) -> Subject:
    from evaluation.models import Quarter, Result
    from service.models import WorkOrder
    from settlement.models import Settlement
    from tenants.models import Agency, Region

    with app.app_context(), unscoped("the benchmark picks what to measure"):
        code = db.session.scalar(select(Region.code).where(Region.code.like("Y%-%"))
                                 .order_by(Region.id).limit(1))
        busiest = (select(WorkOrder.agency_id, func.count().label("n"))
                   .group_by(WorkOrder.agency_id).subquery())
        agency_id, agency_code, orders = db.session.execute(
            select(Agency.id, Agency.code, busiest.c.n)
            .join(busiest, busiest.c.agency_id == Agency.id)
            .where(Agency.status == "active").order_by(busiest.c.n.desc()).limit(1)).one()
        settlement_id, lines = db.session.execute(
            select(Settlement.id, Settlement.line_count).where(Settlement.agency_id == agency_id)
            .order_by(Settlement.line_count.desc()).limit(1)).one()
        quarter = db.session.scalars(select(Quarter).order_by(
            Quarter.year.desc(), Quarter.quarter.desc()).limit(1)).first()
        result_id = quarter and db.session.scalar(select(Result.id).where(
            Result.agency_id == agency_id, Result.quarter_id == quarter.id))
        return Subject(code.split("-")[0], agency_id, agency_code, orders, settlement_id, lines,
                       quarter and quarter.id,
                       quarter and Period(quarter.year, quarter.quarter), result_id)


def queries_per_page(app, pages: list[dict], subject_: Subject) -> dict:
    """{page name: SQL statements} for one request of each page, as its user."""
    statements = []

    def count(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE",
                                                      "ROLLBACK", "COMMIT",
                                                      "SELECT SET_CONFIG")):
            statements.append(statement)

    out, clients = {}, {}
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for page in pages:
            client = clients.get(page["user"])
            if client is None:
                client = clients[page["user"]] = app.test_client()
                response = client.post("/auth/sign-in", data={
                    "email": subject_.email(page["user"]), "password": PASSWORD})
                assert response.status_code == 302, page["user"]
            client.get(page["url"])  # warm
            statements.clear()
            status = client.get(page["url"]).status_code
            out[page["name"]] = len(statements) if status == 200 else None
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return out


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


def quarter_computation(app, subject_: Subject) -> dict:
    """The full-network computation of the latest quarter (the evaluation job's work), and one
    raw GROUP BY over the same completed orders; the computation is rolled back."""
    from evaluation import compute
    from evaluation.figures import completed_in
    from service.models import WorkOrder

    raw = (select(WorkOrder.agency_id, func.count(WorkOrder.id),
                  func.sum(WorkOrder.is_first_time_fix.cast(Integer)))
           .where(completed_in(subject_.period)).group_by(WorkOrder.agency_id))
    with app.app_context(), unscoped("the benchmark computes the whole network"):
        g._audit_actor = None
        db.session.execute(raw).all()  # both measured with a warm cache
        started = time.perf_counter()
        try:
            quarter = compute.compute_quarter(subject_.period)
        except Exception as error:  # noqa: BLE001 - the product's failure is a result too
            failed = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            return {"period": subject_.period.label, "error": failed,
                    "seconds_to_failure": round(time.perf_counter() - started, 3)}
        finally:
            db.session.rollback()
        seconds = time.perf_counter() - started
        agencies = quarter.agency_count
        raw_seconds, rows = _timed(lambda: db.session.execute(raw).all())
        orders = sum(r[1] for r in rows)
        db.session.rollback()
    return {"period": subject_.period.label, "seconds": round(seconds, 3),
            "agencies": agencies, "orders": orders, "raw_seconds": round(raw_seconds, 4),
            "ratio": round(seconds / raw_seconds, 1) if raw_seconds else None}


def settlement_build(app, subject_: Subject, count: int = 5000) -> dict:
    """Open a claim for a month in which the agency completed `count` more orders (rolled
    back): the area's own open_settlement, checks and totals."""
    from portal.auth.models import User
    from service.synth import add_orders
    from settlement import services
    from tenants.models import Agency

    with app.app_context(), unscoped("the benchmark claims a big month"):
        g._audit_actor = None
        from portal.clock import local_today

        today = local_today()
        first = today.replace(day=1)
        added_seconds, added = _timed(add_orders, subject_.agency_id, count, first, today)
        agency = db.session.scalars(select(Agency).where(Agency.id == subject_.agency_id)).one()
        owner = db.session.scalars(select(User).where(User.email == subject_.email("owner"))
                                   ).one()
        # A month is claimed once it has ended: this one, as on the first day of the next.
        claimed_on = (first + timedelta(days=31)).replace(day=1)
        seconds, settlement = _timed(services.open_settlement, agency, first.year, first.month,
                                     acting_user=owner, today=claimed_on)
        lines = settlement.line_count
        db.session.rollback()
    return {"orders_added": added, "add_seconds": round(added_seconds, 2), "lines": lines,
            "seconds": round(seconds, 2)}


def evaluation_pdf(app, subject_: Subject) -> dict:
    """Render one agency's report (zh_CN) as publication does, then store it so that the
    server can be measured downloading it (remove_report takes it away again)."""
    from evaluation import reports
    from evaluation.models import Quarter, Report, Result

    if subject_.result_id is None:
        return {"error": "no computed result to render", "report_id": None}
    with app.app_context(), unscoped("the benchmark renders one agency's report"):
        result = db.session.scalars(select(Result).where(Result.id == subject_.result_id)).one()
        quarter = db.session.scalars(select(Quarter).where(Quarter.id == result.quarter_id)
                                     ).one()
        timings = []
        for _n in range(4):
            seconds, body = _timed(_render, reports, quarter, result)
            timings.append(seconds)
        files = reports.pdf_set(reports.report_figures(
            quarter, result, reports.load_context(quarter, [result]), version=1),
            reports.render_report)
        stored = db.session.scalar(select(Report.id).where(
            Report.agency_id == result.agency_id, Report.result_id == result.id,
            Report.version == 1, Report.locale == "zh_CN"))
        if stored is None:
            zh = files[0]
            report = Report(agency_id=result.agency_id, result_id=result.id, version=1,
                            locale="zh_CN", number=zh["number"], sha256=zh["sha256"],
                            fingerprint=zh["fingerprint"], size_bytes=zh["size_bytes"],
                            content=zh["content"], reason="published")
            db.session.add(report)
            db.session.commit()
            stored = report.id
    return {"first_seconds": round(timings[0], 3),
            "seconds": round(statistics.median(timings[1:]), 3), "bytes": len(body),
            "report_id": stored}


def remove_report(app, report_id: int | None) -> None:
    """The stored report was only there to be downloaded: a draft quarter has no reports, and
    the next run computes the quarter again."""
    from evaluation.models import Report

    if report_id is None:
        return
    with app.app_context(), unscoped("the benchmark removes the report it stored"):
        db.session.execute(Report.__table__.delete().where(Report.__table__.c.id == report_id))
        db.session.commit()


def _render(reports, quarter, result) -> bytes:
    context = reports.load_context(quarter, [result])
    figures = reports.report_figures(quarter, result, context, version=1)
    return reports.render_report(figures, "zh_CN")
