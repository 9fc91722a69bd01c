"""Deliveries after the commit (the e-mail and webhook outboxes share one courier): a commit
that asked for a delivery starts one off the request, a rollback forgets the request, manual
mode leaves it to the tick, and with Redis the run goes to the job runner's queue."""
import threading

import pytest
from flask import current_app, has_app_context

from portal.background import Courier
from portal.extensions import db


class _Runs:
    """What the courier ran: the threads and whether each had an app context."""

    def __init__(self):
        self.seen, self.done = [], threading.Event()

    def __call__(self):
        self.seen.append((threading.current_thread().name,
                          has_app_context() and current_app.name))
        self.done.set()


MODE = {"manual": False}
RUNS = _Runs()
COURIER = Courier("courier-test", RUNS, manual=lambda app: MODE["manual"],
                  worker="tests.portal.test_background.run_in_worker", job_timeout=60)


def run_in_worker() -> None:
    COURIER.run_in_worker()


@pytest.fixture
def runs(app, monkeypatch):
    RUNS.seen.clear()
    RUNS.done.clear()
    monkeypatch.setitem(MODE, "manual", False)
    monkeypatch.setitem(app.config, "REDIS_URL", None)
    return RUNS


def _drain() -> None:
    """Wait until the courier's thread has run what was submitted before now."""
    COURIER._executor.submit(lambda: None).result(timeout=10)


def test_a_commit_that_asked_starts_one_delivery_off_the_request(ctx, runs):
    COURIER.after_commit()
    assert runs.seen == []  # nothing before the commit
    db.session.commit()
    assert runs.done.wait(10), "no delivery after the commit"
    _drain()
    assert runs.seen == [("portal-courier-test_0", ctx.name)]

    db.session.commit()  # a commit that asked for nothing
    _drain()
    assert len(runs.seen) == 1


def test_a_rolled_back_change_forgets_its_delivery(ctx, runs):
    db.session.begin_nested()
    COURIER.after_commit()
    db.session.rollback()
    db.session.commit()
    _drain()
    assert runs.seen == []


def test_manual_mode_leaves_the_delivery_to_the_tick(ctx, runs):
    MODE["manual"] = True
    COURIER.after_commit()
    db.session.commit()
    _drain()
    assert runs.seen == []


def test_with_redis_the_run_goes_to_the_job_queue(ctx, runs, monkeypatch):
    redis = pytest.importorskip("redis")
    from rq import Queue

    url = "redis://127.0.0.1:6379/14"
    connection = redis.Redis.from_url(url)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    queue = Queue("portal", connection=connection)
    queue.empty()
    monkeypatch.setitem(ctx.config, "REDIS_URL", url)
    try:
        COURIER.after_commit()
        db.session.commit()
        jobs = queue.get_jobs()
        assert [job.func_name for job in jobs] == ["tests.portal.test_background.run_in_worker"]
        assert jobs[0].timeout == 60
        _drain()
        assert runs.seen == []  # the worker runs it, not this process
    finally:
        queue.empty()


def test_redis_down_the_process_delivers_itself(ctx, runs, monkeypatch):
    monkeypatch.setitem(ctx.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    COURIER.after_commit()
    db.session.commit()
    assert runs.done.wait(10), "no delivery with Redis down"
