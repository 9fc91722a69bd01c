"""Background jobs: long work with stored status and visible progress.

A job row records what to run, for whom (the tenant scope travels with the job, never with
the worker) and how it ended. Progress is ephemeral: kept in Redis when ``REDIS_URL`` is set
(jobs then run on RQ workers, ``flask --app wsgi worker``), else in this process, where an
in-process thread runs the job. A handler does all its writes in one transaction, so a failed
or killed job leaves nothing half done and can simply be run again.

Long jobs never hold the database's write lock for long (SQLite has one, and a sign-in waiting
behind a 15-second publication failed): a handler does its slow part (counting, rendering
PDFs) in a read transaction that locks nothing (`in_two_phases`, `reading`), then writes in
one short transaction, which checks that what it wrote from is still true.
"""
import contextvars
import logging
import re
import shutil
import threading
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, TypeVar

from flask import current_app, g
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.errors_domain import DomainError
from portal.extensions import db, write_lock
from portal.models import UTCDateTime, utcnow
from portal.tenancy import Scope, TenantScoped, owner_criteria, scoped

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STALE_AFTER = timedelta(minutes=10)


class Job(TenantScoped, db.Model):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_agency_id_created_at", "agency_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    scope: Mapped[str] = mapped_column(String(32))  # Scope.encode() of whoever started it
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        if scope.kind == "none":
            return cls.id.is_(None)
        return owner_criteria(cls.agency_id, scope)

    def check_tenant_insert(self, scope: Scope) -> None:
        if scope.kind == "agency" and self.agency_id == scope.id:
            return
        super().check_tenant_insert(scope)

    @property
    def is_finished(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)


# --- handlers --------------------------------------------------------------------------------

_handlers: dict[str, Callable] = {}
_starters: dict[str, frozenset[str]] = {}
UNTITLED = _l("Background job")


@dataclass(frozen=True)
class Kind:
    """How a kind of job speaks to people: its title, the words of its progress notes, and
    what its outcome offers (`outcome(job)` → [(text, url or None)], read on the job's page:
    the records it wrote, a file it left)."""

    title: object = UNTITLED  # lazy
    notes: dict | None = None  # note key → lazy text
    outcome: Callable | None = None


_kinds: dict[str, Kind] = {}


def handler(kind: str, *, roles: Iterable[str] = (), title=None, notes: dict | None = None,
            outcome: Callable | None = None):
    """Register `fn(params, progress) -> dict` as the job `kind` (a decorator); `roles` may
    start it, and so run it again when it failed (nobody else, whatever they may see).
    `title` (lazy) names the kind on its page; `notes` translate the progress notes it
    reports by key; `outcome(job)` lists what a finished job offers."""

    def register(fn):
        _handlers[kind] = fn
        _starters[kind] = frozenset(str(role) for role in roles)
        _kinds[kind] = Kind(title or UNTITLED, notes, outcome)
        return fn

    return register


def may_start(kind: str, role: str) -> bool:
    """Whether `role` may start (or retry) jobs of `kind`; an unknown kind: nobody."""
    return str(role) in _starters.get(kind, frozenset())


def kind_of(kind: str) -> Kind:
    return _kinds.get(kind, Kind())


def title_of(kind: str):
    """The translated name of a kind of job (never its internal name)."""
    return kind_of(kind).title


def kinds() -> dict[str, Kind]:
    return dict(_kinds)


def outcome_of(job: "Job") -> list[tuple[str, str | None]]:
    """What a finished job offers on its page (its kind says)."""
    describe = kind_of(job.kind).outcome
    if describe is None or job.status != SUCCEEDED:
        return []
    return list(describe(job))


# --- files a job leaves (an import's rows with errors) ------------------------------------------

_running: contextvars.ContextVar[int | None] = contextvars.ContextVar("portal_job", default=None)
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
KEEP_FILES = timedelta(days=7)


def files_root() -> Path:
    return Path(current_app.config["UPLOAD_ROOT"]) / "jobs"


def output_path(name: str) -> Path:
    """Where the running job writes its file `name` (its result names the file to offer)."""
    job_id = _running.get()
    if job_id is None:
        raise RuntimeError("output_path() is for a running job")
    return file_path(job_id, name)


def file_path(job_id: int, name: str) -> Path:
    if not _FILE_NAME.match(name or ""):
        raise ValueError(f"not a job file name: {name!r}")
    return files_root() / str(int(job_id)) / name


def discard_files(job_id: int) -> None:
    shutil.rmtree(files_root() / str(int(job_id)), ignore_errors=True)


def remove_old_files(now: float | None = None) -> int:
    """Delete the files of jobs that finished more than KEEP_FILES ago (by their age)."""
    root, limit = files_root(), (now or time.time()) - KEEP_FILES.total_seconds()
    removed = 0
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


# Housekeeping the areas add (a kept upload's expiry): `flask reap-jobs` runs it.
_housekeeping: list[Callable[[], int]] = []


def housekeeping(fn: Callable[[], int]) -> Callable[[], int]:
    """Register `fn() -> count` to run with `flask reap-jobs` (a decorator)."""
    _housekeeping.append(fn)
    return fn


def run_housekeeping() -> dict[str, int]:
    done = {"job files": remove_old_files()}
    for fn in _housekeeping:
        done[fn.__name__] = fn()
    return done


# --- short transactions for long work ---------------------------------------------------------


class Outdated(Exception):  # noqa: N818 - a signal between the two phases, not a failure
    """What the write phase re-read no longer matches what the read phase prepared from."""


@contextmanager
def reading():
    """A job's slow preparation in a read transaction of its own: on SQLite (WAL) it takes no
    lock, so people keep writing while it counts or renders, however long that takes. The
    transaction before it is ended (it must have nothing unsaved) and so is this one, so that
    the writes that follow begin afresh and take the write lock only for themselves."""
    session = db.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a job's read phase starts with unsaved changes")
    session.rollback()
    try:
        with write_lock(False):
            yield
    finally:
        session.rollback()


Planned = TypeVar("Planned")


def in_two_phases(prepare: Callable[[], Planned], write: Callable[[Planned, bool], dict],
                  attempts: int = 3) -> dict:
    """Run `prepare()` inside `reading()`, then `write(planned, last)` in a write transaction
    that the runner commits with the job's status. `write` raises `Outdated` when what it
    re-reads changed since (someone wrote meanwhile): everything is prepared again, reusing
    whatever the prepared value kept. On the last attempt (`last` true) `write` must finish
    the work itself, even if slowly, rather than raise."""
    for attempt in range(1, attempts + 1):
        with reading():
            planned = prepare()
        started = time.monotonic()
        try:
            result = write(planned, attempt == attempts)
            # How long the write phase took (waiting for the lock included): what others
            # may have waited for.
            return {**result, "write_seconds": round(time.monotonic() - started, 3)}
        except Outdated:
            db.session.rollback()
            log.info("job inputs changed during its read phase; preparing again (%s)", attempt)
    raise RuntimeError("unreachable: the last attempt may not be outdated")


# --- progress ----------------------------------------------------------------------------------

_local_progress: dict[int, tuple[int, int, str, float]] = {}


def _redis():
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    from redis import Redis

    return Redis.from_url(url)


def report(job_id: int, done: int, total: int, note: str = "") -> None:
    redis = _redis()
    if redis is not None:
        redis.hset(f"portal:job:{job_id}", mapping={"done": done, "total": total, "note": note,
                                                    "at": time.time()})
        redis.expire(f"portal:job:{job_id}", 86400)
    else:
        _local_progress[job_id] = (done, total, note, time.time())


def progress_of(job: Job) -> dict:
    redis = _redis()
    if redis is not None:
        raw = {k.decode(): v.decode() for k, v in redis.hgetall(f"portal:job:{job.id}").items()}
        done, total, note = int(raw.get("done", 0)), int(raw.get("total", 0)), raw.get("note", "")
    else:
        done, total, note, _at = _local_progress.get(job.id, (0, 0, "", 0.0))
    if job.status == SUCCEEDED:
        done, total, note = max(total, 1), max(total, 1), ""
    percent = int(100 * done / total) if total else 0
    notes = kind_of(job.kind).notes or {}
    if note in notes:
        note = str(notes[note])  # in the reader's language
    return {"id": job.id, "status": job.status, "done": done, "total": total, "note": note,
            "percent": percent, "error": job.error if job.status == FAILED else None,
            "result": job.result if job.status == SUCCEEDED else None}


# --- starting and running ------------------------------------------------------------------

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-job")
_executor_lock = threading.Lock()


def start(kind: str, params: dict, *, scope: Scope, agency_id=None, user_id=None) -> Job:
    """Record a job and queue it after the caller's commit (the caller commits)."""
    if kind not in _handlers:
        raise KeyError(f"no job handler {kind!r}")
    job = Job(kind=kind, params=params, scope=scope.encode(), agency_id=agency_id,
              created_by_id=user_id)
    db.session.add(job)
    db.session.flush()
    return job


def enqueue(job_id: int) -> None:
    """Hand a committed job to RQ (REDIS_URL) or to this process's runner."""
    app = current_app._get_current_object()
    if app.config.get("JOBS_RUN_INLINE"):
        # Tests: the job shares the request's connection, so it runs right here.
        run(job_id)
        return
    redis = _redis()
    if redis is not None:
        from rq import Queue

        Queue("portal", connection=redis).enqueue(run_in_worker, job_id, job_timeout=3600)
        return
    with _executor_lock:
        _executor.submit(_run_in_app, app, job_id)


def _run_in_app(app, job_id: int) -> None:
    with app.app_context():
        run(job_id)


def run_in_worker(job_id: int) -> None:
    """RQ entry point: a fresh app per worker process."""
    from portal import create_app

    _run_in_app(create_app(), job_id)


def _decode(scope: str) -> Scope:
    kind, _, ident = scope.partition(":")
    return Scope(kind, int(ident) if ident else None)


def run(job_id: int, progress: Callable | None = None) -> Job:
    """Run a job to the end in the current app context; returns the finished job.

    The handler's writes and the final status are committed together: a failure rolls the
    handler's work back and records only the failure.
    """
    # The runner's own writes, and a handler's unless it reads first (`reading`), take the
    # write lock when their transaction begins: they wait their turn instead of failing.
    with write_lock():
        _run(job_id, progress)
    with write_lock(False), scoped(Scope("all")):
        return db.session.scalars(select(Job).where(Job.id == job_id)).one()


def _run(job_id: int, progress: Callable | None) -> None:
    from portal.tenancy import unscoped

    with unscoped("the runner reads the job row before taking on the job's own scope"):
        job = db.session.scalars(select(Job).where(Job.id == job_id)).one()
        job.status, job.started_at, job.heartbeat_at = RUNNING, utcnow(), utcnow()
        job.attempts += 1
        job.error = None
        db.session.commit()
        kind, params, scope = job.kind, dict(job.params or {}), _decode(job.scope)
    report(job_id, 0, 0)  # a retried job starts its progress afresh
    discard_files(job_id)  # and its files

    def tick(done: int, total: int, note: str = "") -> None:
        report(job_id, done, total, note)
        if progress is not None:
            progress(done, total, note)

    g._audit_actor = None
    started = time.monotonic()
    token = _running.set(job_id)
    try:
        with scoped(scope):
            result = _handlers[kind](params, tick) or {}
            result["seconds"] = round(time.monotonic() - started, 3)
            db.session.flush()  # the job's own writes, checked under the job's scope
        # The status and the work are committed together.
        _finish(job_id, SUCCEEDED, result=result)
    except Exception as error:  # the job failed: nothing of it stays
        db.session.rollback()
        discard_files(job_id)
        log.error("job %s (%s) failed: %s", job_id, kind, error)
        # A refusal the handler explains (a file no longer kept) is shown as it is.
        text = error.message if isinstance(error, DomainError) else \
            f"{type(error).__name__}: {error}"
        _finish(job_id, FAILED, error=text[:2000], trace=traceback.format_exc())
    finally:
        _running.reset(token)


def _finish(job_id: int, status: str, *, result=None, error=None, trace=None) -> None:
    from portal.tenancy import unscoped

    with unscoped("the runner records how the job ended"):
        job = db.session.scalars(select(Job).where(Job.id == job_id)).one()
        job.status, job.finished_at = status, utcnow()
        job.result, job.error = result, error
        if trace:
            log.debug("job %s trace:\n%s", job_id, trace)
        # Commit while the row is visible: on PostgreSQL the scope in force at the flush
        # decides which rows row-level security lets the UPDATE touch.
        db.session.commit()


def _last_sign_of_life(job: Job) -> float:
    redis = _redis()
    if redis is not None:
        at = redis.hget(f"portal:job:{job.id}", "at")
        return float(at) if at else 0.0
    return _local_progress.get(job.id, (0, 0, "", 0.0))[3]


def reap_stale(now: datetime | None = None) -> int:
    """Mark running jobs that gave no sign of life for a while as failed (their worker died;
    their transaction was rolled back with it), so that they can be run again."""
    from portal.tenancy import unscoped

    now = now or utcnow()
    limit = now - STALE_AFTER
    with unscoped("housekeeping over every agency's jobs"):
        running = db.session.scalars(select(Job).where(Job.status == RUNNING,
                                                       Job.started_at < limit)).all()
        stale = [j for j in running if _last_sign_of_life(j) < limit.timestamp()]
        for job in stale:
            job.status, job.finished_at = FAILED, now
            job.error = "the worker stopped before the job finished; nothing of it was kept"
        # Flush while every job is visible: on PostgreSQL row-level security judges the
        # UPDATE by the scope in force when it is sent.
        db.session.flush()
        return len(stale)
