"""Deliveries that run soon after a commit, off the request: the outboxes (e-mail, webhooks).

A writer marks its session (:meth:`Courier.after_commit`) in the transaction that wrote the
rows to deliver; once that session commits, the courier runs its delivery: on the job runner's
RQ queue when ``REDIS_URL`` is set (the worker process makes its own app), else on one thread
of this process. Runs do not pile up: while one is queued and has not started, a further
commit relies on it (it will see that commit's rows too). A session that rolls back forgets
its mark: what it wrote is gone. Deliveries that fail are retried by the tick, never here.
"""
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import current_app, has_app_context
from sqlalchemy import event

from portal.extensions import db
from portal.tenancy import TenantSession

log = logging.getLogger(__name__)


class Courier:
    """One kind of delivery after the commit.

    ``deliver`` sends what is waiting (in an app context, with its own session);
    ``manual(app)`` answers True where only the tick and the tests deliver; ``worker`` is the
    dotted name of the module-level function an RQ worker runs (it calls
    :meth:`run_in_worker`)."""

    def __init__(self, name: str, deliver: Callable[[], object], *,
                 manual: Callable[[object], bool], worker: str, job_timeout: int):
        self.name, self.deliver, self.manual = name, deliver, manual
        self.worker, self.job_timeout = worker, job_timeout
        self._mark = f"{name}_waiting"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"portal-{name}")
        self._lock = threading.Lock()
        self._queued = threading.Event()  # a run is queued and has not started
        event.listen(TenantSession, "after_commit", self._committed)
        event.listen(TenantSession, "after_rollback", self._rolled_back)

    def after_commit(self) -> None:
        """Deliver once the current session commits."""
        db.session.info[self._mark] = True

    def _committed(self, session) -> None:
        if session.info.pop(self._mark, False) and has_app_context():
            self.wake(current_app._get_current_object())

    def _rolled_back(self, session) -> None:
        session.info.pop(self._mark, None)

    def wake(self, app) -> None:
        """Deliver soon, off the request: RQ with REDIS_URL, else this process's thread."""
        if self.manual(app):
            return
        if app.config.get("REDIS_URL"):
            try:
                from redis import Redis
                from rq import Queue

                Queue("portal", connection=Redis.from_url(app.config["REDIS_URL"])) \
                    .enqueue(self.worker, job_timeout=self.job_timeout)
                return
            except Exception:  # noqa: BLE001 - Redis down: this process delivers instead
                log.warning("%s: Redis unreachable, delivering in this process", self.name)
        with self._lock:
            if self._queued.is_set():
                return
            self._queued.set()
            self._executor.submit(self.run_in_app, app)

    def run_in_app(self, app) -> None:
        self._queued.clear()
        with app.app_context():
            try:
                self.deliver()
            except Exception:  # noqa: BLE001 - a thread must not die silently
                log.exception("%s delivery failed", self.name)
            finally:
                db.session.remove()

    def run_in_worker(self) -> None:
        """The RQ worker's run: a fresh app in the worker process."""
        from portal import create_app

        self.run_in_app(create_app())
