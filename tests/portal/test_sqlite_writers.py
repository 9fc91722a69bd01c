"""SQLite's one write lock under people working at once, on a real database file (not the
suite's rolled-back transaction): several clients saving forms on their own threads and
connections all succeed, none answers 5xx or "database is locked"; the busy page, when the
lock stays taken beyond the busy timeout, is translated and asks to try again.
"""
import os
import threading
import time
from itertools import count

import pytest
from flask import g
from sqlalchemy import event, func, select

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.realapp import POSTGRES, Site

pytestmark = pytest.mark.skipif(
    POSTGRES or os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="SQLite's single write lock; PostgreSQL locks rows, not the database")

SERIALS = count(1)


def agency_site(folder, *, evaluation: bool = False, **settings):
    """A migrated portal with the standard world, agency A's catalog and an engineer; with
    `evaluation` also the worked example's quarter computed as a draft. Returns (site, ids)."""
    from tests.factories import PASSWORD, build_world
    from tests.service import factories as sf

    site = Site(folder, migrate=True, TENANCY_STRICT=False, **settings)
    with site.app.test_request_context(), unscoped("the test builds its world"):
        g._audit_actor = None
        world = build_world()
        codes = sf.catalog_of(world.line)
        engineer = sf.make_engineer(world.a, world.line, user=world.user(Role.ENGINEER))
        ids = {"model": sf.model_of(world.line).id, "engineer": engineer.id,
               "fault": codes["fault"].id, "password": PASSWORD,
               "editors": [world.user(Role.AGENCY_OWNER).email,
                           world.user(Role.AGENCY_STAFF).email],
               "hq_service": world.user(Role.HQ_SERVICE).id}
        if evaluation:
            from tests.evaluation import factories as ef
            from tests.evaluation.test_compute import build_worked_example

            build_worked_example(world)
            quarter = ef.computed()
            ids.update(quarter=quarter.id, seen=quarter.version)
        db.session.commit()
    return site, ids


def order_form(ids: dict) -> dict:
    from tests.service.test_views import order_form as filled

    return filled(ids, serial_number=f"SN-LOCK-{next(SERIALS)}")


class Clock:
    """Every request a client sent: (what, status, seconds)."""

    def __init__(self):
        self.calls: list[tuple[str, int, float]] = []
        self.lock = threading.Lock()

    def send(self, what: str, call):
        started = time.monotonic()
        response = call()
        with self.lock:
            self.calls.append((what, response.status_code, time.monotonic() - started))
        return response

    @property
    def failures(self) -> list:
        return [c for c in self.calls if c[1] >= 500]

    @property
    def slowest(self) -> float:
        return max((c[2] for c in self.calls), default=0.0)

    def p95(self) -> float:
        times = sorted(c[2] for c in self.calls)
        return times[int(0.95 * (len(times) - 1))] if times else 0.0


def sign_in_and_save(app, ids: dict, email: str, clock: Clock) -> None:
    """A person signs in and saves a new work order; both must succeed."""
    client = app.test_client()
    signed = clock.send("sign-in", lambda: client.post("/auth/sign-in", data={
        "email": email, "password": ids["password"]}))
    assert signed.status_code == 302 and "sign-in" not in signed.headers["Location"], (
        signed.status_code, signed.get_data(as_text=True)[:300])
    saved = clock.send("save order", lambda: client.post("/service/orders/new",
                                                         data=order_form(ids)))
    assert saved.status_code == 302 and "/service/orders/" in saved.headers["Location"], (
        saved.status_code, saved.get_data(as_text=True)[:300])


def test_eight_clients_saving_forms_at_once_all_succeed(tmp_path, capsys):
    """8 clients, each on its own thread and connection, sign in and save work orders for a
    few seconds: every request succeeds (before, losing a race for the write lock answered
    503 "database is locked")."""
    site, ids = agency_site(tmp_path / "writers")
    app, clock, errors = site.app, Clock(), []
    stop = time.monotonic() + 4

    def writer(n: int) -> None:
        try:
            while time.monotonic() < stop:
                sign_in_and_save(app, ids, ids["editors"][n % 2], clock)
        except AssertionError as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        with app.app_context(), unscoped("count the saved orders"):
            from service.models import WorkOrder

            saved = db.session.scalar(select(func.count(WorkOrder.id)).where(
                WorkOrder.serial_number.like("SN-LOCK-%")))
    finally:
        site.close()
    with capsys.disabled():
        print(f"\n8 writers on SQLite: {len(clock.calls)} requests, "
              f"{len(clock.failures)} × 5xx, p95 {clock.p95() * 1000:.0f} ms, "
              f"slowest {clock.slowest * 1000:.0f} ms")
    assert not errors, errors[0]
    assert not clock.failures
    assert saved == sum(1 for what, status, _s in clock.calls if what == "save order")
    assert saved >= 8


def test_two_people_saving_orders_at_the_same_moment_both_get_a_number(tmp_path, monkeypatch):
    """Both read the day's order numbers before either saves, so both pick the same next
    number; the second to write finds it taken. Its reads were older than the first one's
    commit, so the portal runs its request once more, holding the lock from the start: both
    orders are saved, with two numbers (before: a 503; with only the lock taken at the first
    write: "This change conflicts with another one")."""
    from service import services

    site, ids = agency_site(tmp_path / "numbers")
    app, real, calls = site.app, services.next_order_number, []
    both_read = threading.Barrier(2, timeout=30)

    def numbered(*args, **kwargs):
        number = real(*args, **kwargs)
        calls.append(number)
        if len(calls) <= 2:
            both_read.wait()  # each has read the numbers taken; neither has saved yet
        return number

    monkeypatch.setattr(services, "next_order_number", numbered)
    clients = []
    for email in ids["editors"]:
        client = app.test_client()
        client.post("/auth/sign-in", data={"email": email, "password": ids["password"]})
        clients.append(client)
    answers = [None, None]

    def save(n):
        answers[n] = clients[n].post("/service/orders/new", data=order_form(ids))

    people = [threading.Thread(target=save, args=(n,)) for n in range(2)]
    try:
        for person in people:
            person.start()
        for person in people:
            person.join(timeout=60)
        with app.app_context(), unscoped("read the orders back"):
            from service.models import WorkOrder

            numbers = sorted(db.session.scalars(select(WorkOrder.number)))
    finally:
        site.close()
    assert [a.status_code for a in answers] == [302, 302], [
        a.get_data(as_text=True)[-800:] for a in answers if a.status_code != 302]
    assert calls[0] == calls[1] and len(calls) == 3  # the same number, then a new one
    assert len(numbers) == 2 and len(set(numbers)) == 2


def test_a_request_that_waited_past_the_busy_timeout_gets_a_translated_try_again_page(
        tmp_path):
    """Someone holds the write lock longer than the busy timeout: the form's sender is told
    that the portal is busy, nothing was saved and to try again (503 with Retry-After), not
    that the database is not reachable."""
    site, ids = agency_site(tmp_path / "busy")
    app = site.app
    try:
        client = app.test_client()
        client.post("/auth/sign-in", data={"email": ids["editors"][0],
                                           "password": ids["password"]})
        with app.app_context():
            engine = db.engine
        blocker = engine.raw_connection()
        try:
            blocker.driver_connection.execute("BEGIN IMMEDIATE")  # a long writer elsewhere

            def impatient(dbapi_connection, record, proxy):
                # A short patience, so that the test waits 0.2 s rather than 5.
                dbapi_connection.execute("PRAGMA busy_timeout=200")

            event.listen(engine, "checkout", impatient)
            try:
                answer = client.post("/service/orders/new", data=order_form(ids))
            finally:
                event.remove(engine, "checkout", impatient)
        finally:
            blocker.driver_connection.execute("ROLLBACK")
            blocker.close()
        text = answer.get_data(as_text=True)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert "busy" in text and "Nothing was saved" in text and "try again" in text
        assert "not reachable" not in text and "database is locked" not in text
        with app.app_context(), unscoped("count the saved orders"):
            from service.models import WorkOrder

            assert db.session.scalar(select(func.count(WorkOrder.id))) == 0
        # and once the lock is free the same form goes through
        again = client.post("/service/orders/new", data=order_form(ids))
        assert again.status_code == 302
    finally:
        site.close()


def test_people_sign_in_while_a_synthetic_network_is_written(tmp_path, capsys):
    """`flask synth-network` on a serving portal commits a few times a second: a person
    signing in meanwhile waits for the write lock a moment, never for the whole build (before,
    one transaction held it for all of it and sign-ins failed)."""
    from portal import synth

    site, ids = agency_site(tmp_path / "synth")
    app, clock, built, failed = site.app, Clock(), threading.Event(), []

    def build():
        try:
            with app.test_request_context():
                net = synth.build_network(synth.Sizes(agencies=20, orders=20000,
                                                      engineers=100, quarters=1), seed=3)
                failed.extend(net.data.get("failed_jobs", []))
                built.commits = net.writer.commits
        except Exception as error:  # reported below, with the person's requests
            failed.append(repr(error))
        finally:
            built.set()

    builder = threading.Thread(target=build)
    try:
        builder.start()
        while not built.is_set():
            client = app.test_client()
            signed = clock.send("sign-in", lambda c=client: c.post("/auth/sign-in", data={
                "email": ids["editors"][0], "password": ids["password"]}))
            assert signed.status_code == 302, signed.status_code
        builder.join()
    finally:
        site.close()
    with capsys.disabled():
        print(f"\nsynthetic network on SQLite in {getattr(built, 'commits', 0) + 1} commits: "
              f"meanwhile {len(clock.calls)} sign-ins, {len(clock.failures)} × 5xx, "
              f"p95 {clock.p95() * 1000:.0f} ms, slowest {clock.slowest * 1000:.0f} ms")
    assert not failed, failed
    assert len(clock.calls) >= 3 and not clock.failures
    assert clock.slowest < 1.5  # a moment's wait (the build shares this interpreter)
