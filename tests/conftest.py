"""Test harness: one migrated database per worker, one rolled-back transaction per test.

With DATABASE_URL pointing at PostgreSQL (as a superuser, like .ci/run sets it), each worker
gets its own database, migrated as the owner, and the application connects as the plain role
``portal_app`` so that row-level security binds it.
"""
import os
import re
import weakref
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, make_url, text

from portal import create_app
from portal.config import normalize_database_url
from portal.extensions import db, limiter
from portal.tenancy import TenantSession

APP_ROLE = "portal_app"


def _drop_orphans(conn, prefix: str) -> None:
    names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                         {"p": f"{prefix}\\_%"}).scalars()
    for name in names:
        pid = re.fullmatch(rf"{re.escape(prefix)}_\w+?_(\d+)", name)
        if pid and not _alive(int(pid.group(1))):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postgres_urls(worker: str) -> tuple[str, str] | None:
    raw = os.environ.get("DATABASE_URL")
    if not raw:
        return None
    admin = make_url(normalize_database_url(raw))
    # One database per worker and process: two runs on one server never share or drop each
    # other's database; those of runs that died are dropped here.
    name = f"{admin.database}_{worker}_{os.getpid()}"
    server = create_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        _drop_orphans(conn, admin.database)
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # Both xdist workers may get here at once: the role is shared by the cluster.
        conn.execute(text(f"""DO $$ BEGIN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"""))
    server.dispose()
    owner_url = admin.set(database=name)
    app_url = owner_url.set(username=APP_ROLE, password=None)
    return (owner_url.render_as_string(hide_password=False),
            app_url.render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def app(tmp_path_factory, worker_id):
    instance = tmp_path_factory.mktemp("instance")
    overrides = {
        "TESTING": True,
        "TENANCY_STRICT": True,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
        "RATELIMIT_STORAGE_URI": "memory://",
        "UPLOAD_ROOT": str(instance / "files"),
        "SERVER_NAME": "portal.test",
        # Tests read English unless they ask for Chinese (Accept-Language or /locale).
        "BABEL_DEFAULT_LOCALE": "en",
        "JOBS_RUN_INLINE": True,
        "HOME_FIGURES_SECONDS": 0,  # portal.memo off: every test reads fresh figures
        # The route matrix calls the API thousands of times per token; the limit's own test
        # lowers it.
        "API_RATE_LIMIT": "100000/minute",
    }
    pg = _postgres_urls(worker_id)
    if pg:
        owner_url, app_url = pg
        overrides.update(SQLALCHEMY_DATABASE_URI=app_url, MIGRATION_DATABASE_URL=owner_url)
    else:
        overrides["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(instance / "test.sqlite3")
    os.environ["PORTAL_INSTANCE_PATH"] = str(instance)
    app = create_app(overrides)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=app.extensions["migrate"].directory, revision="heads")
        if pg:
            owner = create_engine(owner_url)
            with owner.begin() as conn:
                from portal.dbsecurity import grant_app_role

                grant_app_role(conn, APP_ROLE)
            owner.dispose()
    yield app
    with app.app_context():
        db.engine.dispose()  # close pooled connections before the interpreter does
    if pg:
        server = create_engine(normalize_database_url(os.environ["DATABASE_URL"]),
                               isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            name = make_url(owner_url).database
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture
def _transaction(app):
    """Every test runs in one transaction that is rolled back; requests commit savepoints.

    No app context stays pushed while the test runs: each test-client request gets its own
    app context, `g` and session, as in production. Use `ctx` (or `with app.app_context()`)
    to touch the database directly.
    """
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = db._make_scoped_session({
            "bind": connection, "join_transaction_mode": "create_savepoint",
            "class_": TenantSession, "expire_on_commit": False,
        })
    try:
        yield connection
    finally:
        with app.app_context():
            db.session.remove()
        outer.rollback()
        connection.close()
        db.session = original


@pytest.fixture
def ctx(app, _transaction):
    """An app and request context inside the test's transaction, for service tests."""
    limiter.reset()
    with app.test_request_context():
        yield app


@pytest.fixture
def client(app, _transaction):
    limiter.reset()
    return app.test_client()


@pytest.fixture
def world(app, _transaction):
    """The standard world (see tests/factories.py), committed inside the test's transaction."""
    from tests.factories import build_world

    with app.app_context():
        return build_world()


@pytest.fixture
def query_counter(app):
    """Counts SQL statements sent while the returned counter is active."""

    class Counter:
        def __init__(self):
            self.statements: list[str] = []
            self.active = False

        def __enter__(self):
            self.statements = []
            self.active = True
            return self

        def __exit__(self, *exc):
            self.active = False

        @property
        def count(self) -> int:
            return len([s for s in self.statements
                        if not re.match(r"\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|SELECT set_config)",
                                        s)])

    counter = Counter()
    with app.app_context():
        engine = db.engine

    def _count(conn, cursor, statement, parameters, context, executemany):
        if counter.active:
            counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    yield counter
    event.remove(engine, "before_cursor_execute", _count)


@contextmanager
def answering_grades(source=None):
    """Only `source(agency_id, year, quarter)` answers settlement's grade question (none when
    None); the evaluation area's answer comes back after."""
    from settlement.api import grade_wanted

    installed = [r() if isinstance(r, weakref.ref) else r for r in grade_wanted.receivers.values()]
    for receiver in installed:
        grade_wanted.disconnect(receiver)
    answer = None
    if source is not None:
        def answer(_sender, *, agency_id, year, quarter):
            return source(agency_id, year, quarter)

        grade_wanted.connect(answer, weak=False)
    try:
        yield
    finally:
        if answer is not None:
            grade_wanted.disconnect(answer)
        for receiver in installed:
            grade_wanted.connect(receiver, weak=False)


@pytest.fixture
def no_grade_source():
    """No quarterly grades reach settlement (the evaluation area's source comes back after)."""
    with answering_grades(None):
        yield


@pytest.fixture
def grade_source():
    """``grade_source(fn)``: fn(agency_id, year, quarter) answers settlement's grade question
    for the rest of the test."""
    with ExitStack() as stack:
        yield lambda fn: stack.enter_context(answering_grades(fn))


@pytest.fixture(scope="session")
def worker_id(request):
    return getattr(request.config, "workerinput", {}).get("workerid", "gw0")


_session_clock = None


def pytest_configure(config):
    """PORTAL_TEST_AT=2026-12-31T00:30:00+08:00 runs the whole suite as if the machine's clock
    read that instant (and ran on from it): the suite must pass at any hour. time-machine moves
    only this process's clock, so helper processes (gunicorn, RQ workers) keep the real one."""
    global _session_clock
    at = os.environ.get("PORTAL_TEST_AT")
    if at:
        import time_machine

        _session_clock = time_machine.travel(datetime.fromisoformat(at), tick=True)
        _session_clock.start()


def pytest_unconfigure(config):
    if _session_clock is not None:
        _session_clock.stop()


def pytest_report_header(config):
    url = os.environ.get("DATABASE_URL")
    at = os.environ.get("PORTAL_TEST_AT")
    return (f"database: {'PostgreSQL ' + make_url(url).host if url else 'SQLite'}"
            + (f"; clock moved to {at}" if at else ""))


ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS", Path(__file__).parent.parent
                                / "test-artifacts"))


from tests.documents import own_upload_root  # noqa: E402, F401 - a shared fixture
