"""Flask extension instances, created once and bound in create_app."""
import logging
import re
import sqlite3
import time
from contextlib import contextmanager
from contextvars import ContextVar

from flask import current_app, g, has_request_context, request, session
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase

from portal.client import client_address

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _session_class():
    from portal.tenancy import TenantSession

    return TenantSession


db = SQLAlchemy(model_class=Base, session_options={"class_": _session_class()})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
bootstrap = Bootstrap5()
mail = Mail()  # SMTP from the standard MAIL_* settings (the workplace's e-mail)
limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=False)


# --- SQLite: one writer at a time ---------------------------------------------------------------
# SQLite in WAL mode lets readers run beside its one writer. A transaction that read and then
# writes cannot wait for the write lock, though: it fails at once ("database is locked") when
# another connection holds the lock or wrote since its reads. So every transaction begins as
# a reader, and its first write restarts it as a writer (nothing was written yet: the reads
# end, BEGIN IMMEDIATE waits its turn for up to the busy timeout). From then on it holds the
# lock until it commits: the lock is held for the writing part of a request, not for its
# reads, password checks or page rendering. Like PostgreSQL's READ COMMITTED, the reads may
# predate a change committed meanwhile; the version columns and constraints that guard the
# same races on PostgreSQL guard them here, and a request that meets such a conflict after a
# stale read is run once more, this time holding the lock from its start (`dispatch`).
# The job runner, jobs' write phases and the synthetic network's bulk load take the lock when
# their transactions begin (`write_lock`). A writer waiting for the lock tries every 2 ms
# (`_begin_immediate`) and logs waits over half a second. PostgreSQL ignores all of this.

_write_lock: ContextVar[bool] = ContextVar("portal_write_lock", default=False)
log = logging.getLogger("portal.sqlite")
SLOW_LOCK_SECONDS = 0.5  # a wait for the write lock worth a line in the log
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def takes_write_lock() -> bool:
    """Whether a transaction begun now takes SQLite's write lock at its start."""
    return _write_lock.get()


@contextmanager
def write_lock(wanted: bool = True):
    """Transactions begun inside take SQLite's write lock at their start (`wanted`), or
    begin as readers that become writers at their first write (`wanted=False`)."""
    token = _write_lock.set(wanted)
    try:
        yield
    finally:
        _write_lock.reset(token)


def is_lock_timeout(error: BaseException) -> bool:
    """Whether a database error is SQLite's "database is locked": the one writer's lock was
    not free within the busy timeout (or a reader tried to become a writer in place)."""
    orig = getattr(error, "orig", error)
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(orig)


def tune_sqlite(engine) -> None:
    """Foreign keys, WAL, a busy timeout, and transactions that become writers at their
    first write (see above)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):
        # pysqlite's own transaction handling breaks SAVEPOINT and skips BEGIN before reads.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        writer = takes_write_lock()
        conn.info["sqlite_writer"], conn.info["sqlite_read"] = True, False  # BEGIN is no write
        if writer:
            _begin_immediate(conn.connection.dbapi_connection)
        else:
            conn.exec_driver_sql("BEGIN")
        conn.info["sqlite_writer"] = writer

    @event.listens_for(engine, "before_cursor_execute")
    def _before_execute(conn, cursor, statement, parameters, context, executemany):
        if conn.info.get("sqlite_writer", True):
            return
        kind = _kind(statement)
        if kind == "read":
            conn.info["sqlite_read"] = True
        elif kind == "savepoint":
            # A savepoint would not outlive a restart: this transaction never restarts, its
            # first write takes the lock in place (failing at once if another writer has it).
            conn.info["sqlite_writer"] = True
        elif kind == "write":
            _become_writer(conn)


def _kind(statement: str) -> str:
    """"read", "savepoint", "control" (transactions) or "write" (anything else, to be
    safe: a read taken for a write costs a needless restart, never a lost write)."""
    head = statement.lstrip()[:10].upper()
    if head.startswith("SELECT") or (head.startswith("PRAGMA") and "=" not in statement) or (
            head.startswith("WITH") and not _WRITES.search(statement)):
        return "read"
    if head.startswith("SAVEPOINT"):
        return "savepoint"
    if head.startswith(("BEGIN", "COMMIT", "ROLLBACK", "RELEASE", "EXPLAIN")):
        return "control"
    return "write"


def _committed(session) -> None:
    if has_request_context():
        g._portal_committed = True


event.listen(db.session.session_factory.class_, "after_commit", _committed)


def _become_writer(conn) -> None:
    """End the transaction's reads and take the write lock (waiting for up to the busy
    timeout); note when someone committed in between: the reads may be outdated."""
    info, raw = conn.info, conn.connection.dbapi_connection
    info["sqlite_writer"] = True
    seen = raw.execute("PRAGMA data_version").fetchone()[0] if info["sqlite_read"] else None
    raw.execute("COMMIT")  # nothing was written: this only ends the reads
    _begin_immediate(raw)
    if seen is not None and raw.execute("PRAGMA data_version").fetchone()[0] != seen \
            and has_request_context():
        g._portal_stale_read = True


def _begin_immediate(raw) -> None:
    """BEGIN IMMEDIATE, trying again every 2 ms for up to the connection's busy timeout.
    SQLite's own wait naps up to 100 ms between tries and keeps missing the moment a busy
    writer (a bulk load committing batch after batch) lets go: a sign-in waited seconds."""
    patience = raw.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
    raw.execute("PRAGMA busy_timeout=0")
    try:
        started = time.monotonic()
        deadline = started + patience
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                waited = time.monotonic() - started
                if waited > SLOW_LOCK_SECONDS:
                    log.warning("waited %.2f s for SQLite's write lock", waited)
                return
            except sqlite3.OperationalError as error:
                if not is_lock_timeout(error) or time.monotonic() >= deadline:
                    # as SQLAlchemy reports the driver's errors
                    raise OperationalError("BEGIN IMMEDIATE", (), error) from error
            time.sleep(0.002)
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(patience * 1000)}")


def let_writers_in() -> None:
    """After a commit of a long series (bulk loads): a pause long enough for a writer that
    waits (`_begin_immediate`) to take the lock before the series goes on."""
    time.sleep(0.01)


def dispatch(view):
    """Run the request's view; on SQLite, a request that met a conflict (a unique key taken,
    say the next order number) after reading data older than a change committed meanwhile
    is run once more, holding the write lock from its start: then nothing can change under
    it. Only when that is the same as running it once: nothing was committed and no file
    was uploaded (its stream is spent); messages flashed by the first run are dropped."""
    flashes = list(session.get("_flashes", ()))
    try:
        return view()
    except IntegrityError:
        if not g.pop("_portal_stale_read", False) or g.get("_portal_committed") \
                or request.files:
            raise
    current_app.logger.info("%s %s met a conflict after a stale read: run once more",
                            request.method, request.path)
    db.session.rollback()
    if flashes:
        session["_flashes"] = flashes
    else:
        session.pop("_flashes", None)
    with write_lock():
        return view()
