"""Offer races on PostgreSQL: two users of the agency accept the same offer at once, and an
accept races the expiry tick. Each party runs on its own thread, app context, session and
connection against a portal with its own database (tests/realapp.Site, as
tests/test_concurrency.py); a barrier inside the write path makes both hold the same version
before either writes, so only the database (the version column, the row lock, SKIP LOCKED)
can decide. Exactly one wins; the other changes nothing."""
import os
import threading
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from dispatch import sla
from dispatch.coverage import decide_coverage, declare_coverage
from dispatch.offers import Offer, OfferStatus, accept_offer, expire_offers, make_offer
from dispatch.requests import RequestStatus, ServiceRequest, take_call
from portal import clock, transitions
from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service.models import WorkOrder
from tenants.models import ProductModel
from tests.factories import make_agency, make_product_line, make_region, make_user
from tests.realapp import Site

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="offer races need PostgreSQL (row locks, SKIP LOCKED): set "
                              "DATABASE_URL=postgresql://… (.ci/run sets it)"),
]
STALE = "Someone else changed this record meanwhile"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.conftest import answering_grades

    with answering_grades(None):
        made = Site(tmp_path_factory.mktemp("offer-race"), migrate=True, TENANCY_STRICT=False)
        yield made
        made.close()


@pytest.fixture(scope="module")
def net(site):
    """An agency covering its city for on-site repairs, its owner and staff, a dispatcher."""
    with site.app.test_request_context(), unscoped("race fixtures"):
        g._audit_actor = None
        line = make_product_line()
        agency = make_agency(make_region(), product_lines=[line])
        row = declare_coverage(agency, province_id=agency.province_id, city=agency.city,
                               product_line_id=line.id, service_type="onsite", acting_user=None)
        decide_coverage(row, approve=True, acting_user=None, seen_version=row.version)
        people = {"owner": make_user(Role.AGENCY_OWNER, agency=agency),
                  "staff": make_user(Role.AGENCY_STAFF, agency=agency),
                  "dispatcher": make_user(Role.HQ_DISPATCHER)}
        model = db.session.scalar(select(ProductModel.id).where(
            ProductModel.product_line_id == line.id))
        db.session.commit()
        return {"agency": agency.id, "province": agency.province_id, "city": agency.city,
                "line": line.id, "model": model, "people": {k: u.id for k, u in people.items()},
                "serial": iter(range(1, 10_000))}


def _offered(site, net, *, at=None) -> tuple[int, int, int]:
    """A call taken and offered to the agency (at `at`, default now), committed:
    (request id, offer id, offer version)."""
    at = at or clock.now()
    with site.app.test_request_context(), unscoped("race fixtures"):
        dispatcher = db.session.get(User, net["people"]["dispatcher"])
        taken = take_call({
            "customer_name": "王小明", "customer_phone": "13912345678",
            "province_id": net["province"], "city": net["city"], "district": "南山区",
            "street": "科技园路 1 号", "product_line_id": net["line"],
            "product_model_id": net["model"], "serial_number": f"SN-RACE-{next(net['serial'])}",
            "purchase_date": None, "service_type": "onsite", "fault_description": "不制冷",
            "note": ""}, acting_user=dispatcher, now=at)
        offer = make_offer(taken.request, net["agency"], acting_user=dispatcher, now=at)
        db.session.commit()
        return taken.request.id, offer.id, offer.version


class Held:
    """Wrap `module.name` so each thread's first call, once run, waits for every party."""

    def __init__(self, monkeypatch, module, name, parties=2):
        self.barrier = threading.Barrier(parties, timeout=30)
        self.seen = threading.local()
        original = getattr(module, name)

        def held(*args, **kwargs):
            result = original(*args, **kwargs)
            if not getattr(self.seen, "done", False):
                self.seen.done = True
                self.barrier.wait()
            return result

        monkeypatch.setattr(module, name, held)


def _run(*parties):
    """Run each party on its own thread; their results in order (an exception is a result)."""
    results = [None] * len(parties)

    def run(n, party):
        try:
            results[n] = party()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion
            results[n] = ("error", repr(error))

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in enumerate(parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(t.is_alive() for t in threads), "a party is still running (deadlock?)"
    return results


def _accept(site, net, who, offer_id, version, now=None):
    def party():
        with site.app.test_request_context():
            with unscoped("load the signed-in account"):
                user = db.session.get(User, net["people"][who])
            with scoped(agency_scope(net["agency"], user.id)):
                offer = db.session.scalars(select(Offer).where(Offer.id == offer_id)).one()
                try:
                    order = accept_offer(offer, acting_user=user, seen_version=version, now=now)
                    db.session.commit()
                    return ("accepted", order.id)
                except DomainError as error:
                    db.session.rollback()
                    return ("refused", error.message)
    return party


def _expire(site, now, barrier=None):
    def party():
        if barrier is not None:
            barrier.wait()
        with site.app.test_request_context():
            g._audit_actor = None
            try:
                with unscoped("the tick"):
                    expired = expire_offers(now)
                db.session.commit()
                return ("expired", expired)
            except DomainError as error:
                db.session.rollback()
                return ("refused", error.message)
    return party


def _state(site, request_id, offer_id) -> dict:
    with site.app.app_context(), unscoped("read back"):
        offer = db.session.scalars(select(Offer).where(Offer.id == offer_id)).one()
        request = db.session.get(ServiceRequest, request_id)
        orders = db.session.scalar(select(func.count(WorkOrder.id)).where(
            WorkOrder.id == offer.work_order_id)) if offer.work_order_id else 0
        clocks = db.session.scalar(select(func.count(sla.SlaClock.id)).where(
            sla.SlaClock.request_id == request_id))
        actions = list(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "Offer", AuditEntry.object_id == str(offer_id))
            .order_by(AuditEntry.id)))
        if not actions:  # the object type as the audit log names it
            actions = list(db.session.scalars(select(AuditEntry.action).where(
                AuditEntry.action.like("dispatch_offer.%"),
                AuditEntry.object_id == str(offer_id)).order_by(AuditEntry.id)))
        return {"offer": offer.status, "request": request.status, "orders": orders,
                "clocks": clocks, "actions": actions, "work_order_id": offer.work_order_id}


def _orders_of_agency(site, net) -> int:
    with site.app.app_context(), unscoped("read back"):
        return db.session.scalar(select(func.count(WorkOrder.id)).where(
            WorkOrder.agency_id == net["agency"]))


# --- two users of the agency ----------------------------------------------------------------


def test_owner_and_staff_accepting_at_once_make_one_work_order(site, net, monkeypatch):
    request_id, offer_id, version = _offered(site, net)
    before = _orders_of_agency(site, net)
    Held(monkeypatch, transitions, "check_version")
    results = _run(_accept(site, net, "owner", offer_id, version),
                   _accept(site, net, "staff", offer_id, version))
    assert sorted(r[0] for r in results) == ["accepted", "refused"], results
    lost = next(r for r in results if r[0] == "refused")
    assert STALE in lost[1], results
    state = _state(site, request_id, offer_id)
    assert (state["offer"], state["request"], state["orders"]) == (
        OfferStatus.ACCEPTED, RequestStatus.ACCEPTED, 1)
    assert _orders_of_agency(site, net) == before + 1
    assert state["clocks"] == 3  # appointment, arrival, completion: started once
    assert state["actions"].count("dispatch_offer.accepted") == 1, state
    won = next(r for r in results if r[0] == "accepted")
    assert state["work_order_id"] == won[1]


# --- accept against the expiry tick ---------------------------------------------------------


def _past_offer(site, net):
    """An offer made a month ago, its window over whatever today is; the accept's now is its
    last second, the tick's the first second after. (Made yesterday, it failed on a Sunday
    evening: Saturday evening's window runs into Monday morning, after now.)"""
    at = clock.now() - timedelta(days=30)
    request_id, offer_id, version = _offered(site, net, at=at)
    with site.app.app_context(), unscoped("read back"):
        expires = db.session.scalar(select(Offer.expires_at).where(Offer.id == offer_id))
    return request_id, offer_id, version, expires


def _one_winner(state, results):
    accepted = state["offer"] == OfferStatus.ACCEPTED
    expired = state["offer"] == OfferStatus.EXPIRED
    assert accepted != expired, (state, results)
    if accepted:
        assert (state["request"], state["orders"], state["clocks"]) == (
            RequestStatus.ACCEPTED, 1, 3), (state, results)
        assert "dispatch_offer.expired" not in state["actions"], (state, results)
        assert state["actions"].count("dispatch_offer.accepted") == 1
    else:
        assert (state["request"], state["work_order_id"], state["clocks"]) == (
            RequestStatus.NEW, None, 0), (state, results)
        assert "dispatch_offer.accepted" not in state["actions"], (state, results)
        assert state["actions"].count("dispatch_offer.expired") == 1
    return "accepted" if accepted else "expired"


def test_the_tick_holding_the_offer_first_wins_and_the_accept_is_stale(site, net, monkeypatch):
    """Both pass their version check at once; the tick holds the row (FOR UPDATE), so the
    accept's update finds a new version: stale, and nothing of it stays."""
    request_id, offer_id, version, expires = _past_offer(site, net)
    before = _orders_of_agency(site, net)
    Held(monkeypatch, transitions, "check_version")
    results = _run(_accept(site, net, "owner", offer_id, version, now=expires - timedelta(
        seconds=1)), _expire(site, expires))
    state = _state(site, request_id, offer_id)
    assert _one_winner(state, results) == "expired", (state, results)
    assert results[0][0] == "refused" and STALE in results[0][1], results
    assert results[1] == ("expired", 1), results
    assert _orders_of_agency(site, net) == before


def test_an_accept_holding_the_offer_first_wins_and_the_tick_skips_it(site, net, monkeypatch):
    """The accept has written the offer (row locked, not committed) when the tick looks: SKIP
    LOCKED passes over it, the accept commits, nothing expires."""
    request_id, offer_id, version, expires = _past_offer(site, net)
    barrier = threading.Barrier(2, timeout=30)
    original = sla.start_order_clocks

    def held(*args, **kwargs):  # runs after the offer's row was flushed (locked)
        made = original(*args, **kwargs)
        barrier.wait()
        barrier.wait()  # the tick has run its SELECT … FOR UPDATE SKIP LOCKED
        return made

    monkeypatch.setattr(sla, "start_order_clocks", held)

    def tick():
        barrier.wait()
        try:
            return _expire(site, expires)()
        finally:
            barrier.wait()

    results = _run(_accept(site, net, "staff", offer_id, version,
                           now=expires - timedelta(seconds=1)), tick)
    state = _state(site, request_id, offer_id)
    assert _one_winner(state, results) == "accepted", (state, results)
    assert results == [("accepted", state["work_order_id"]), ("expired", 0)], results
    assert _orders_of_agency(site, net) >= 1


@pytest.mark.parametrize("round_", range(4))
def test_accept_and_tick_unsynchronised_never_both_win(site, net, round_):
    request_id, offer_id, version, expires = _past_offer(site, net)
    results = _run(_accept(site, net, "owner", offer_id, version,
                           now=expires - timedelta(seconds=1)), _expire(site, expires))
    state = _state(site, request_id, offer_id)
    winner = _one_winner(state, results)
    loser = results[1] if winner == "accepted" else results[0]
    assert loser in (("expired", 0),) or (loser[0] == "refused" and STALE in loser[1]) \
        or loser[0] == "refused", results
