"""The tick chases the SLA clocks: a warning (75 %) is the agency's task, a breach goes to the
region's manager (HQ service where the region has none), one and a half times the target to
HQ's dispatchers; a request no agency accepted warns and then breaches to the dispatchers.
Once per clock and level whatever how often the tick runs; a paused clock is not chased; the
items close when the clock stops; offers past their answer window expire in the tick."""
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from dispatch import sla
from dispatch.offers import Offer, OfferStatus
from dispatch.requests import RequestStatus, ServiceRequest
from dispatch.sla import SlaClock
from inbox import reminders
from inbox.models import InboxItem
from inbox.outbox import item_link, item_title
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.dispatch.test_offers import Net, as_agency
from tests.dispatch.test_sla_board import MONDAY_0900

OWNER, STAFF = Role.AGENCY_OWNER, Role.AGENCY_STAFF
SLA_EVENTS = ("sla.warning", "sla.breached", "sla.escalated", "sla.accept_warning",
              "sla.accept_breached")


@pytest.fixture
def monday(ctx):
    with time_machine.travel(MONDAY_0900, tick=False) as traveller:
        yield traveller


@pytest.fixture
def net(ctx, world):
    return Net(world)


def items(*where) -> list[InboxItem]:
    with unscoped("the test reads every inbox"):
        db.session.flush()
        found = list(db.session.scalars(select(InboxItem).where(
            InboxItem.event.in_(SLA_EVENTS), *where).order_by(InboxItem.id)))
        for item in found:
            db.session.refresh(item)
        return found


def told(event: str) -> set[tuple[int, int]]:
    """{(recipient, subject)} of an event's items."""
    return {(i.recipient_id, i.subject_id) for i in items(InboxItem.event == event)}


def clocks_of(order) -> dict[str, SlaClock]:
    with unscoped("the test reads the clocks"):
        return {c.milestone: c for c in db.session.scalars(select(SlaClock).where(
            SlaClock.work_order_id == order.id))}


def tick(monday, moment):
    monday.move_to(moment)
    with unscoped("the tick"):
        return reminders.tick()


def test_each_level_reaches_its_people_once(net, world, monday):
    _request, _offer, order = net.accepted_order()
    appointment = clocks_of(order)["appointment"]
    owner, staff = world.user(OWNER), world.user(STAFF)
    manager, dispatcher = world.user(Role.REGIONAL_MANAGER), world.user(Role.HQ_DISPATCHER)

    made = tick(monday, appointment.warn_at - timedelta(minutes=1))
    assert not made["sla.warning"] and not told("sla.warning")

    made = tick(monday, appointment.warn_at)
    assert made["sla.warning"] == 2
    assert told("sla.warning") == {(owner.id, appointment.id), (staff.id, appointment.id)}
    [item, _] = items(InboxItem.event == "sla.warning")
    assert item.kind == "task" and item.due_at == appointment.due_at
    assert item.subject_type == "sla_clocks" and item.agency_id == world.a.id
    title = item_title(item)
    assert title == (f"Milestone “Appointment booked” of order A-OWN {order.number} is due "
                     "soon"), title
    assert item_link(item) == f"/dispatch/orders/{order.id}"
    assert not told("sla.breached") and not told("sla.escalated")

    made = tick(monday, appointment.due_at)
    assert told("sla.breached") == {(manager.id, appointment.id)}
    [breach] = items(InboxItem.event == "sla.breached")
    assert "is overdue" in item_title(breach) and breach.due_at == appointment.escalate_at
    assert not told("sla.escalated")

    made = tick(monday, appointment.escalate_at)
    assert made["sla.escalated"] == 1
    assert told("sla.escalated") == {(dispatcher.id, appointment.id)}

    # Again and again: nothing new.
    before = [i.id for i in items()]
    again = tick(monday, appointment.escalate_at + timedelta(minutes=5))
    assert not any(again[e] for e in SLA_EVENTS), again
    assert [i.id for i in items()] == before
    # Nobody outside: agency B, the sibling A2, other HQ roles.
    strangers = {world.b_users[OWNER].id, world.a2_users[OWNER].id,
                 world.user(Role.HQ_SETTLEMENT).id, world.user(Role.AUDITOR).id}
    assert not {i.recipient_id for i in items()} & strangers


def test_a_breach_in_a_region_without_a_manager_goes_to_hq_service(net, world, monday):
    net.cover(world.b)
    b_owner = world.b_users[OWNER]
    offer = net.offer(net.call(), world.b)
    with as_agency(b_owner):
        from dispatch.offers import accept_offer

        order = accept_offer(offer, acting_user=b_owner, seen_version=offer.version)
    appointment = clocks_of(order)["appointment"]
    tick(monday, appointment.due_at)
    assert told("sla.breached") == {(world.user(Role.HQ_SERVICE).id, appointment.id)}
    assert (b_owner.id, appointment.id) in told("sla.warning")
    assert (world.user(OWNER).id, appointment.id) not in told("sla.warning")


def test_a_paused_clock_is_not_chased_and_a_met_one_closes_its_items(net, world, monday):
    _request, _offer, order = net.accepted_order()
    clocks = clocks_of(order)
    appointment, arrival = clocks["appointment"], clocks["arrival"]
    with unscoped("the customer asks for later"):
        sla.pause(arrival, MONDAY_0900, MONDAY_0900 + timedelta(days=10), "customer_later")
        db.session.flush()
    tick(monday, appointment.due_at)
    assert {s for _r, s in told("sla.warning")} == {appointment.id}, "the paused clock waits"

    with unscoped("the appointment is booked"):
        sla.meet([appointment], "appointment", appointment.due_at)
        db.session.flush()
    tick(monday, appointment.due_at + timedelta(minutes=1))
    closed = items(InboxItem.subject_id == appointment.id)
    assert closed and all(i.closed_at is not None and i.closed_by == "sla.clock_stopped"
                          for i in closed)


def test_a_request_nobody_accepts_warns_then_breaches_to_the_dispatchers(net, world, monday):
    request = net.call()
    dispatcher = world.user(Role.HQ_DISPATCHER)
    with unscoped("the test's dispatchers"):
        dispatchers = set(db.session.scalars(select(User.id).where(
            User.role == str(Role.HQ_DISPATCHER))))
    tick(monday, request.accept_warn_at)
    assert told("sla.accept_warning") == {(d, request.id) for d in dispatchers}
    [warning] = [i for i in items(InboxItem.event == "sla.accept_warning")
                 if i.recipient_id == dispatcher.id]
    assert request.number in item_title(warning)
    assert item_link(warning) == f"/dispatch/requests/{request.id}"
    tick(monday, request.accept_due_at)
    assert told("sla.accept_breached") == {(d, request.id) for d in dispatchers}
    warning = items(InboxItem.id == warning.id)[0]
    assert warning.closed_by == "sla.accept_breached", "the breach supersedes the warning"
    tick(monday, request.accept_due_at + timedelta(minutes=3))
    assert len(items(InboxItem.event.like("sla.accept%"))) == 2 * len(dispatchers)


def test_an_accepted_request_is_not_chased_and_closes_its_items(net, world, monday):
    request = net.call()
    tick(monday, request.accept_warn_at)
    assert told("sla.accept_warning")
    net.accept(net.offer(request))
    tick(monday, request.accept_due_at)
    assert not told("sla.accept_breached")
    assert all(i.closed_by == "sla.clock_stopped"
               for i in items(InboxItem.event == "sla.accept_warning"))


def test_the_tick_expires_offers_past_their_window(net, world, monday):
    request = net.call()
    offer = net.offer(request)
    made = tick(monday, offer.expires_at - timedelta(seconds=1))
    assert made["offers_expired"] == 0
    made = tick(monday, offer.expires_at)
    assert made["offers_expired"] == 1
    with unscoped("the test reads the offer"):
        offer = db.session.get(Offer, offer.id)
        assert offer.status == OfferStatus.EXPIRED
        assert db.session.get(ServiceRequest, request.id).status == RequestStatus.NEW
    assert tick(monday, offer.expires_at + timedelta(minutes=1))["offers_expired"] == 0
