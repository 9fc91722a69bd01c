"""The synthetic network: as big as asked, reproducible, and obeying the rules the services
keep (owners, rework, warranty, certificates, stock, settlement sums), so that benchmarks
measure the portal on data it could have written itself."""
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import and_, func, select
from sqlalchemy.dialects import sqlite

from certification.models import Certificate, Engineer
from certification.queries import valid_certificate_exists
from evaluation.models import Quarter, Result
from portal import clock, synth
from portal.auth.models import User
from portal.extensions import db
from portal.models import UTCDateTime
from portal.tenancy import unscoped
from service.common import is_in_warranty
from service.models import PartStock, WorkOrder, WorkOrderPart
from settlement.models import Claim, Settlement, SettlementLine
from tenants.models import Agency, ProductModel

SIZES = synth.Sizes(agencies=6, orders=600, engineers=60, quarters=2)
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def net(app, _transaction):
    with app.app_context():
        return synth.build_network(SIZES, seed=7, commit=False)


def _tagged(net):
    return Agency.code.like(f"{net.tag}-%")


def _scalar(stmt):
    with unscoped("the test reads the whole synthetic network"):
        return db.session.scalar(stmt)


def _rows(stmt):
    with unscoped("the test reads the whole synthetic network"):
        return db.session.execute(stmt).all()


def test_network_has_the_sizes_asked_for(app, net):
    with app.app_context():
        agencies = select(Agency.id).where(_tagged(net))
        assert _scalar(select(func.count()).select_from(agencies.subquery())) == 6
        assert _scalar(select(func.count(WorkOrder.id))
                       .where(WorkOrder.agency_id.in_(agencies))) == 600
        assert _scalar(select(func.count(Engineer.id))
                       .where(Engineer.agency_id.in_(agencies))) == 60
        quarters = {(p.year, p.quarter) for p in net.quarters}
        assert len(quarters) == 2
        computed = _rows(select(Quarter.year, Quarter.quarter, func.count(Result.id))
                         .join(Result, Result.quarter_id == Quarter.id)
                         .where(Result.agency_id.in_(agencies))
                         .group_by(Quarter.year, Quarter.quarter))
        assert {(y, q) for y, q, n in computed if n} == quarters
    assert sum(net.writer.counts.values()) > 600 * 3  # orders and what hangs on them


def test_owner_columns_agree_with_parents(app, net):
    with app.app_context():
        assert _scalar(select(func.count(WorkOrderPart.id)).join(
            WorkOrder, WorkOrder.id == WorkOrderPart.work_order_id)
            .where(WorkOrder.agency_id != WorkOrderPart.agency_id)) == 0
        assert _scalar(select(func.count(SettlementLine.id)).join(
            Settlement, Settlement.id == SettlementLine.settlement_id)
            .where(Settlement.agency_id != SettlementLine.agency_id)) == 0
        assert _scalar(select(func.count(Certificate.id)).join(
            Engineer, Engineer.id == Certificate.engineer_id)
            .where(Engineer.agency_id != Certificate.agency_id)) == 0
        # Engineer accounts belong to the agency of the engineer they are.
        assert _scalar(select(func.count(Engineer.id)).join(User, User.id == Engineer.user_id)
                       .where(User.agency_id != Engineer.agency_id)) == 0
        linked = _scalar(select(func.count(Engineer.id)).where(
            Engineer.user_id.is_not(None), Engineer.agency_id.in_(
                select(Agency.id).where(_tagged(net)))))
        assert linked == 6


def _orders(net):
    return _rows(select(WorkOrder.id, WorkOrder.agency_id, WorkOrder.serial_number,
                        WorkOrder.service_type, WorkOrder.status, WorkOrder.received_at,
                        WorkOrder.completed_at, WorkOrder.is_rework, WorkOrder.rework_of_id,
                        WorkOrder.purchase_date, WorkOrder.is_in_warranty,
                        ProductModel.warranty_months)
                 .join(ProductModel, ProductModel.id == WorkOrder.product_model_id)
                 .join(Agency, Agency.id == WorkOrder.agency_id).where(_tagged(net)))


def test_rework_flags_follow_the_rule(app, net):
    """The latest completed non-phone repair of the same serial number, in the same agency,
    within the 30 days before receipt (services.find_rework_origin)."""
    with app.app_context():
        orders = _orders(net)
        from portal.clock import local_day

        repairs: dict = {}
        for o in orders:
            if o.status == "completed" and o.service_type != "phone":
                repairs.setdefault((o.agency_id, o.serial_number), []).append(
                    (o.completed_at, o.id))
        wrong, reworks = [], 0
        for o in orders:
            origin = None
            if o.service_type != "phone":
                found = [(c, i) for c, i in repairs.get((o.agency_id, o.serial_number), [])
                         if i != o.id and o.received_at - timedelta(days=30) <= c <= o.received_at]
                origin = max(found)[1] if found else None
            reworks += origin is not None
            if (o.rework_of_id, o.is_rework) != (origin, origin is not None):
                wrong.append(o.id)
            day = local_day(o.received_at)
            if o.is_in_warranty != is_in_warranty(o.purchase_date, o.warranty_months, day):
                wrong.append(o.id)
        assert not wrong
        assert reworks >= 5  # the network has reworks to judge


def test_certified_flags_match_the_certificates(app, net):
    with app.app_context():
        mismatched = _scalar(select(func.count(WorkOrder.id)).where(
            WorkOrder.engineer_id.is_not(None),
            WorkOrder.is_engineer_certified != valid_certificate_exists(
                WorkOrder.engineer_id, WorkOrder.product_line_id, WorkOrder.service_date)))
        certified = _scalar(select(func.count(WorkOrder.id))
                            .where(WorkOrder.is_engineer_certified.is_(True)))
        assert mismatched == 0 and certified > 100


def test_stock_balances_what_was_received_and_used(app, net):
    with app.app_context():
        used = dict(((a, p), n) for a, p, n in _rows(
            select(WorkOrderPart.agency_id, WorkOrderPart.part_id,
                   func.sum(WorkOrderPart.quantity))
            .group_by(WorkOrderPart.agency_id, WorkOrderPart.part_id)))
        stocks = _rows(select(PartStock.agency_id, PartStock.part_id, PartStock.quantity,
                              PartStock.received_total, PartStock.used_total))
        assert stocks and used
        for agency_id, part_id, quantity, received, used_total in stocks:
            assert used_total == used.get((agency_id, part_id), 0)
            assert quantity == received - used_total >= 0


def test_settlements_hold_their_lines_and_sums(app, net):
    with app.app_context():
        totals = _rows(select(Settlement.id, Settlement.claimed_total, Settlement.line_count,
                              func.sum(SettlementLine.claimed_amount),
                              func.count(SettlementLine.id))
                       .join(SettlementLine, and_(
                           SettlementLine.agency_id == Settlement.agency_id,
                           SettlementLine.settlement_id == Settlement.id))
                       .group_by(Settlement.id))
        assert len(totals) > 20
        for _id, claimed, count, line_sum, line_count in totals:
            assert claimed == line_sum
            assert count == line_count
        # Claimed orders are completed and in warranty, and claimed once.
        bad = _scalar(select(func.count(Claim.id)).join(
            WorkOrder, and_(WorkOrder.agency_id == Claim.agency_id,
                            WorkOrder.id == Claim.work_order_id))
            .where((WorkOrder.status != "completed") | WorkOrder.is_in_warranty.is_(False)))
        twice = _scalar(select(func.count()).select_from(
            select(Claim.work_order_id).where(Claim.work_order_id.is_not(None))
            .group_by(Claim.work_order_id).having(func.count() > 1).subquery()))
        assert bad == 0 and twice == 0
        statuses = {s for (s,) in _rows(select(Settlement.status).distinct())}
        assert {"paid", "submitted"} <= statuses


def test_pages_render_for_an_agency_user_and_hq(app, net):
    owner = net.data["network"].agencies[0].accounts["agency_owner"]
    admin = net.data["network"].hq["admin"]
    with app.app_context():
        settlement_id = _scalar(select(func.max(Settlement.id))
                                .where(Settlement.agency_id == net.data["network"]
                                       .agencies[0].id))
    for account in (owner, admin):
        client = app.test_client()
        response = client.post("/auth/sign-in", data={"email": account.email,
                                                      "password": synth.SYNTH_PASSWORD})
        assert response.status_code == 302, account.email
        for url in ("/", "/service/orders/?status=completed", "/settlements/",
                    f"/settlements/{settlement_id}", "/evaluation/", "/service/returns/",
                    "/certification/engineers/"):
            assert client.get(url).status_code == 200, (account.email, url)
        if account is admin:
            for url in ("/agencies/", "/audit/", "/evaluation/proposals/"):
                assert client.get(url).status_code == 200, url


def test_same_seed_same_network(app, _transaction):
    now = clock.now().replace(minute=0, second=0)

    def digest():
        with app.app_context():
            nested = _transaction.begin_nested()
            net = synth.build_network(synth.Sizes(3, 200, 12, 1), seed=11, commit=False,
                                      run_jobs=False, now=now)
            rows = _rows(select(Agency.code, WorkOrder.number, WorkOrder.serial_number,
                                WorkOrder.status, WorkOrder.received_at, WorkOrder.is_rework)
                         .join(Agency, Agency.id == WorkOrder.agency_id).where(_tagged(net))
                         .order_by(Agency.code, WorkOrder.number))
            settled = _rows(select(Settlement.number, Settlement.status,
                                   Settlement.claimed_total).order_by(Settlement.id))
            db.session.remove()
            nested.rollback()
            return rows, settled

    first, second = digest(), digest()
    assert first == second and len(first[0]) == 200


def test_sqlite_datetimes_are_stored_as_sqlalchemy_stores_them():
    """The writer formats UTC datetimes itself (millions of them); the text must be the
    very text the column type binds, or comparisons in SQL would go wrong."""
    dialect = sqlite.dialect()
    processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    for value in (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                  datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
                  datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=UTC)):
        assert synth.sqlite_datetime(value) == processor(value)


# --- a network-size job on a real RQ worker that dies ---------------------------------------------

# A Redis database of this test's own, taken under a lock (two suites running at once must not
# share the "portal" queue) and emptied first: job ids restart with the test's fresh database,
# and another run's progress or jobs must not show.
REDIS = "redis://127.0.0.1:6379/14"
LOCK = "test:rq-worker:lock"


def _redis_up() -> bool:
    try:
        from redis import Redis

        return bool(Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001 - no server, no test
        return False


def _portal(env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run a portal command as an operator would; it must succeed."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],  # noqa: S603
                          env=env, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"flask {' '.join(args)}:\n{done.stderr[-2000:]}"
    return done


def _worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"],  # noqa: S603
                            env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"waited {seconds} s for {what}")


def _running(web, job_id: int) -> dict | None:
    """The job's progress once its worker has reported some, as the job page's script reads
    it."""
    progress = web.get(f"/jobs/{job_id}/progress.json").get_json()
    return progress if progress["status"] == "running" and progress["done"] >= 1 else None


def _session(sid: int) -> list[int]:
    """The processes of a session: the worker and the work horse it forked (which RQ moves
    to a process group of its own, so that killing the worker's group would spare it)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _kill_session(sid: int, sig=signal.SIGKILL) -> None:
    for pid in _session(sid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


@pytest.mark.skipif(not _redis_up(), reason="needs Redis at 127.0.0.1:6379")
def test_publication_on_a_killed_rq_worker_is_failed_cleanly_and_runs_again(tmp_path):
    """Publishing a synthetic network's quarter (every agency's report PDFs) on a real RQ
    worker: the job page shows its progress; the worker is killed half-way; reap-jobs marks
    the job failed and nothing of the publication was kept; run again, it publishes."""
    from redis import Redis

    redis = Redis.from_url(REDIS)
    with redis.lock(LOCK, timeout=900, blocking_timeout=900), _database(tmp_path) as urls:
        for key in redis.scan_iter():
            if key.decode() != LOCK:
                redis.delete(key)
        _kill_a_publishing_worker(tmp_path, *urls)


@contextmanager
def _database(tmp_path):
    """(application URL, owner URL) of a database of this test's own, which the worker
    processes can see: a SQLite file, or with DATABASE_URL a PostgreSQL database where the
    worker connects as the plain role row-level security binds (dropped afterwards)."""
    from sqlalchemy import make_url

    from tests.conftest import APP_ROLE
    from tests.realapp import scratch_database

    with scratch_database(tmp_path, "rq") as owner:
        if owner.startswith("sqlite"):
            yield owner, None
        else:
            yield (make_url(owner).set(username=APP_ROLE, password=None)
                   .render_as_string(hide_password=False), owner)


def _kill_a_publishing_worker(tmp_path, database: str, owner: str | None):
    from redis import Redis

    from portal import create_app
    from portal.config import normalize_database_url

    redis = Redis.from_url(REDIS)
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": REDIS, "SECRET_KEY": "jobs",
           "PORTAL_INSTANCE_PATH": str(tmp_path)}
    env.pop("MIGRATION_DATABASE_URL", None)
    if owner:
        env["MIGRATION_DATABASE_URL"] = owner
        _portal({**env, "DATABASE_URL": owner}, "db", "upgrade", "heads")
        _portal({**env, "DATABASE_URL": owner}, "grant-app-role", "portal_app")
    else:
        _portal(env, "db", "upgrade", "heads")
    _portal(env, "synth-network", "--agencies", "30", "--orders", "3000", "--quarters", "1")
    app = create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(database),
                      "MIGRATION_DATABASE_URL": owner, "REDIS_URL": REDIS,
                      "WTF_CSRF_ENABLED": False, "SECRET_KEY": "jobs"})
    try:
        _publish_kill_reap_and_retry(app, env, redis, tmp_path)
    finally:
        with app.app_context():
            db.engine.dispose()  # before the database goes: no connection left behind


def _publish_kill_reap_and_retry(app, env, redis, tmp_path):
    from evaluation.models import Quarter, QuarterStatus, Report
    from portal import jobs
    from portal.models import utcnow
    from portal.tenancy import ALL

    def job_row(job_id):
        with app.app_context(), unscoped("the test watches the job"):
            return db.session.scalars(select(jobs.Job).where(jobs.Job.id == job_id)).one()

    with app.app_context(), unscoped("the test starts the network's publication"):
        quarter = db.session.scalars(select(Quarter)).one()
        job = jobs.start("evaluation.publish", {"quarter_id": quarter.id}, scope=ALL)
        db.session.commit()
        job_id, quarter_id = job.id, quarter.id
        jobs.enqueue(job_id)
    web = app.test_client()
    assert web.post("/auth/sign-in", data={"email": "service@y1.synth",
                                           "password": synth.SYNTH_PASSWORD}).status_code == 302
    with open(tmp_path / "worker.log", "w") as log:
        worker = _worker(env, log)
        try:
            progress = _wait(lambda: _running(web, job_id), 240, "the worker's progress")
            assert 1 <= progress["done"] < progress["total"] and progress["percent"] < 100
            page = web.get(f"/jobs/{job_id}").get_data(as_text=True)
            assert "progress" in page and f'{progress["percent"]}' in page
        finally:
            _kill_session(worker.pid)  # the machine dies: worker and work horse, no clean-up
            worker.wait()
            _wait(lambda: not _session(worker.pid), 30, "the worker's work horse to die")
    assert job_row(job_id).status == jobs.RUNNING
    # Time passes: the job's last sign of life (its start, its last progress) is long past —
    # by any clock: reap-jobs runs in its own process, whose clock a suite run with
    # PORTAL_TEST_AT does not move.
    an_hour_ago = utcnow() - timedelta(days=3650)
    with app.app_context(), unscoped("the test moves the job back in time"):
        db.session.scalars(select(jobs.Job).where(jobs.Job.id == job_id)).one().started_at = (
            an_hour_ago)
        db.session.commit()
    redis.hset(f"portal:job:{job_id}", "at", an_hour_ago.timestamp())
    reaped = _portal(env, "reap-jobs").stdout
    failed = job_row(job_id)
    assert "1 stale jobs marked failed" in reaped
    assert failed.status == jobs.FAILED and "nothing of it was kept" in failed.error
    with app.app_context(), unscoped("the test looks for half a publication"):
        assert db.session.scalar(select(func.count(Report.id))) == 0
        assert db.session.scalars(select(Quarter)).one().status == QuarterStatus.DRAFT
    assert web.post(f"/jobs/{job_id}/retry").status_code == 302  # queued again
    with open(tmp_path / "worker2.log", "w") as log:
        worker = _worker(env, log)
        try:
            done = _wait(lambda: (lambda j: j if j.is_finished else None)(job_row(job_id)),
                         300, "the job run again")
        finally:
            _kill_session(worker.pid, signal.SIGTERM)
            worker.wait()
            _wait(lambda: not _session(worker.pid), 60, "the worker to stop")
    assert done.status == jobs.SUCCEEDED and done.attempts == 2, done.error
    with app.app_context(), unscoped("the test counts the publication"):
        published = db.session.scalars(select(Quarter).where(Quarter.id == quarter_id)).one()
        assert published.status == QuarterStatus.PUBLISHED
        assert db.session.scalar(select(func.count(Report.id))) == 2 * published.agency_count
