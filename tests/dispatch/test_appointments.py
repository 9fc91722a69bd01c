"""Appointments (预约), service level: booking stops the appointment clock at the booking
moment and assigns the engineer (of the agency, still employed); the window's rules; a
reschedule carries its reason and supersedes the previous row; the customer's later date
pauses the arrival (or diagnosis) clock until the window opens, moving its due time by the
business time of the pause exactly; phone orders have none; kept() on the window's edges."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatch import calendar, network_calendar, sla
from dispatch.appointments import (
    Appointment,
    Kept,
    book_appointment,
    current,
    history,
    kept,
    reschedule_appointment,
)
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from service.services import cancel_work_order
from tests.dispatch.test_offers import (  # the shared helpers, not tests
    FRIDAY_1700,
    Net,
    as_agency,
    audit,
    count,
    local,
)
from tests.service.factories import make_engineer

BOOKED = local(2026, 11, 20, 17, 10)  # Friday, ten minutes after the call
SATURDAY_10, SATURDAY_12 = local(2026, 11, 21, 10, 0), local(2026, 11, 21, 12, 0)


@pytest.fixture
def net(ctx, world, friday_call):
    return Net(world)


@pytest.fixture
def friday_call(ctx):
    import time_machine

    with time_machine.travel(FRIDAY_1700, tick=False) as traveller:
        yield traveller


@pytest.fixture
def order(net, friday_call):
    """An on-site order accepted at 17:05 of a call at Friday 17:00; the clock now at 17:10."""
    request = net.call()
    offer = net.offer(request)
    friday_call.move_to(FRIDAY_1700 + timedelta(minutes=5))
    made = net.accept(offer)
    friday_call.move_to(BOOKED)
    return made


@pytest.fixture
def engineer(net):
    with unscoped("test fixtures"):
        return make_engineer(net.a, net.world.line)


def book(net, order, engineer_id, start=SATURDAY_10, end=SATURDAY_12, user=None, **kw):
    user = user or net.staff
    with as_agency(user):
        return book_appointment(order, engineer_id, start, end, acting_user=user, **kw)


def clocks_of(net, order) -> dict[str, sla.SlaClock]:
    """The order's clocks with their pauses read now, in the agency's scope (on PostgreSQL
    row-level security shows the pauses to the agency only)."""
    with as_agency(net.owner):
        clocks = sla.order_clocks(net.a.id, order.id)
        for found in clocks:
            db.session.expire(found, ["pauses"])
            list(found.pauses)
        return {c.milestone: c for c in clocks}


# --- booking ----------------------------------------------------------------------------------


def test_booking_assigns_the_engineer_and_stops_the_appointment_clock_then(net, order,
                                                                          engineer):
    row = book(net, order, engineer.id, note_text="请先电话联系")
    assert (row.work_order_id, row.engineer_id, row.window_from, row.window_to) == (
        order.id, engineer.id, SATURDAY_10, SATURDAY_12)
    assert (row.booked_at, row.booked_by_id, row.reason, row.customer_later) == (
        BOOKED, net.staff.id, "", False)
    assert row.note == "请先电话联系" and row.superseded_at is None
    assert order.engineer_id == engineer.id
    clocks = clocks_of(net, order)
    assert clocks["appointment"].met_at == BOOKED
    assert clocks["appointment"].state(BOOKED) == sla.ClockState.MET
    assert clocks["arrival"].met_at is None and clocks["completion"].met_at is None
    assert not clocks["arrival"].pauses
    with as_agency(net.owner):
        assert current(net.a.id, order.id).id == row.id
    [entry] = audit("appointment.booked")
    assert entry.actor_id == net.staff.id and entry.agency_id == net.a.id
    assert entry.after["engineer_id"] == engineer.id and entry.after["reason"] == ""


def test_a_late_booking_meets_the_appointment_clock_late(net, order, engineer, friday_call):
    due = clocks_of(net, order)["appointment"].due_at
    friday_call.move_to(due + timedelta(minutes=1))
    book(net, order, engineer.id, start=local(2026, 11, 23, 14), end=local(2026, 11, 23, 16))
    found = clocks_of(net, order)["appointment"]
    assert found.met_at == due + timedelta(minutes=1)
    assert found.state() == sla.ClockState.MET_LATE


def test_a_second_booking_must_be_a_reschedule(net, order, engineer):
    book(net, order, engineer.id)
    with pytest.raises(DomainError, match="reschedule"):
        book(net, order, engineer.id)
    assert count(Appointment) == 1


def test_an_engineer_of_another_agency_is_refused(net, order):
    with unscoped("test fixtures"):
        foreign = make_engineer(net.world.b, net.world.line)
    with pytest.raises(DomainError) as refused:
        book(net, order, foreign.id)
    assert refused.value.field == "engineer_id"
    assert count(Appointment) == 0 and order.engineer_id is None
    assert clocks_of(net, order)["appointment"].met_at is None


@pytest.mark.parametrize("engineer_id", [None, 0, "x", 987654])
def test_no_engineer_or_an_unknown_one_is_refused(net, order, engineer_id):
    with pytest.raises(DomainError) as refused:
        book(net, order, engineer_id)
    assert refused.value.field == "engineer_id" and count(Appointment) == 0


def test_an_engineer_who_left_is_refused(net, order, engineer):
    with unscoped("the engineer leaves"):
        engineer.left_on = local(2026, 11, 19, 12).date()  # Thursday: before today
        db.session.flush()
    with pytest.raises(DomainError, match="left your agency") as refused:
        book(net, order, engineer.id)
    assert refused.value.field == "engineer_id" and count(Appointment) == 0
    assert clocks_of(net, order)["appointment"].met_at is None


def test_an_engineer_leaving_today_may_still_be_booked(net, order, engineer):
    with unscoped("the engineer leaves tonight"):
        engineer.left_on = local(2026, 11, 20, 12).date()
        db.session.flush()
    assert book(net, order, engineer.id).engineer_id == engineer.id


@pytest.mark.parametrize("start,end,field", [
    (BOOKED - timedelta(minutes=6), BOOKED + timedelta(hours=1), "window_from"),
    (BOOKED - timedelta(days=1), BOOKED - timedelta(hours=22), "window_from"),
    (SATURDAY_10, SATURDAY_10 + timedelta(minutes=29), "window_to"),
    (SATURDAY_10, SATURDAY_10 + timedelta(hours=10, minutes=1), "window_to"),
    (SATURDAY_10, SATURDAY_10, "window_to"),
    (SATURDAY_12, SATURDAY_10, "window_to"),
    (BOOKED + timedelta(days=60, minutes=1), BOOKED + timedelta(days=60, hours=2),
     "window_from"),
    (None, SATURDAY_12, "window_from"),
    (SATURDAY_10, None, "window_from"),
], ids=["past-beyond-grace", "yesterday", "29-minutes", "10h01", "empty", "reversed",
        "60-days-and-a-minute", "no-start", "no-end"])
def test_bad_windows_are_refused_with_nothing_written(net, order, engineer, start, end, field):
    with pytest.raises(DomainError) as refused:
        book(net, order, engineer.id, start=start, end=end)
    assert refused.value.field == field
    assert count(Appointment) == 0 and order.engineer_id is None
    assert clocks_of(net, order)["appointment"].met_at is None
    assert audit("appointment.") == []


@pytest.mark.parametrize("start,end", [
    (BOOKED - timedelta(minutes=5), BOOKED + timedelta(minutes=25)),  # the typed minute
    (SATURDAY_10, SATURDAY_10 + timedelta(minutes=30)),
    (SATURDAY_10, SATURDAY_10 + timedelta(hours=10)),
    (BOOKED + timedelta(days=60), BOOKED + timedelta(days=60, hours=2)),
], ids=["grace", "30-minutes", "10-hours", "60-days"])
def test_windows_on_the_limits_are_taken(net, order, engineer, start, end):
    row = book(net, order, engineer.id, start=start, end=end)
    assert (row.window_from, row.window_to) == (start, end)


def test_a_phone_order_has_no_appointment(net, friday_call, engineer):
    _request, _offer, phone = net.accepted_order(service_type="phone")
    with pytest.raises(DomainError, match="phone consultation"):
        book(net, phone, engineer.id)
    assert count(Appointment) == 0 and "appointment" not in clocks_of(net, phone)


def test_a_cancelled_order_gets_no_appointment(net, order, engineer):
    with as_agency(net.owner):
        cancel_work_order(order, "客户取消", acting_user=net.owner)
    with pytest.raises(DomainError, match="open order"):
        book(net, order, engineer.id)
    assert count(Appointment) == 0


def test_the_engineer_role_cannot_book(net, order, engineer):
    with pytest.raises(DomainError):
        book(net, order, engineer.id, user=net.world.user(Role.ENGINEER))
    assert count(Appointment) == 0


# --- reschedule -------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", None, "weather", "Customer"])
def test_a_reschedule_needs_its_reason(net, order, engineer, reason):
    first = book(net, order, engineer.id)
    with pytest.raises(DomainError) as refused, as_agency(net.owner):
        reschedule_appointment(order, engineer.id, SATURDAY_12, SATURDAY_12 + timedelta(hours=1),
                               reason, acting_user=net.owner)
    assert refused.value.field == "reason"
    assert first.superseded_at is None and count(Appointment) == 1


def test_a_reschedule_without_a_booking_is_refused(net, order, engineer):
    with pytest.raises(DomainError, match="book one"), as_agency(net.owner):
        reschedule_appointment(order, engineer.id, SATURDAY_10, SATURDAY_12, "agency",
                               acting_user=net.owner)
    assert count(Appointment) == 0


def test_a_reschedule_supersedes_the_previous_row_with_its_reason(net, order, engineer,
                                                                  friday_call):
    first = book(net, order, engineer.id)
    with unscoped("test fixtures"):
        other = make_engineer(net.a, net.world.line)
    moved = local(2026, 11, 20, 17, 20)
    friday_call.move_to(moved)
    with as_agency(net.owner):
        second = reschedule_appointment(order, other.id, local(2026, 11, 21, 14),
                                        local(2026, 11, 21, 16), "agency",
                                        note_text="工程师临时请假", acting_user=net.owner)
    assert first.superseded_at == moved and second.superseded_at is None
    assert (second.reason, second.engineer_id, second.booked_at, second.customer_later) == (
        "agency", other.id, moved, False)
    assert order.engineer_id == other.id
    with as_agency(net.owner):
        assert current(net.a.id, order.id).id == second.id
        assert [r.id for r in history(net.a.id, order.id)] == [first.id, second.id]
    # The appointment clock stays met at the first booking.
    assert clocks_of(net, order)["appointment"].met_at == BOOKED
    [entry] = audit("appointment.rescheduled")
    assert entry.reason == "We could not keep the window"
    assert entry.before["engineer_id"] == engineer.id
    assert entry.after["engineer_id"] == other.id and entry.after["reason"] == "agency"


def test_a_reschedule_with_a_bad_window_keeps_the_previous_one(net, order, engineer):
    """The refusal rolls back as perform() does (here: the savepoint of the call)."""
    first = book(net, order, engineer.id)
    with pytest.raises(DomainError) as refused, db.session.begin_nested(), as_agency(net.owner):
        reschedule_appointment(order, engineer.id, SATURDAY_10,
                               SATURDAY_10 + timedelta(minutes=10), "customer",
                               acting_user=net.owner)
    assert refused.value.field == "window_to"
    with as_agency(net.owner):
        assert current(net.a.id, order.id).id == first.id
    assert count(Appointment) == 1 and audit("appointment.rescheduled") == []


# --- the customer's later date ----------------------------------------------------------------


def test_customer_later_pauses_the_arrival_clock_until_the_window_by_its_business_time(
        net, order, engineer):
    cal = network_calendar.load()
    before = clocks_of(net, order)["arrival"]
    old_due, old_warn, old_escalate = before.due_at, before.warn_at, before.escalate_at
    # 1080 business minutes from Friday 17:00: 30 + Saturday 480 + Monday 540 + 30 → Tue 09:00.
    assert old_due == local(2026, 11, 24, 9, 0)
    start, end = local(2026, 11, 23, 14, 0), local(2026, 11, 23, 16, 0)  # Monday afternoon
    row = book(net, order, engineer.id, start=start, end=end, customer_later=True,
               note_text="客户周一下午在家")
    assert row.customer_later is True
    found = clocks_of(net, order)["arrival"]
    [pause] = found.pauses
    assert (pause.starts_at, pause.ends_at, pause.reason, pause.note) == (
        BOOKED, start, "customer_later", "客户周一下午在家")
    paused = calendar.business_seconds(cal, BOOKED, start)
    assert paused == (20 + 480 + 330) * 60  # Friday 17:10–17:30, Saturday, Monday to 14:00
    assert found.due_at == calendar.add_business(cal, old_due, paused)
    assert found.due_at == calendar.add_business(cal, FRIDAY_1700, found.target_seconds,
                                                 [(BOOKED, start)])
    assert found.due_at == local(2026, 11, 25, 13, 50)  # Wednesday
    assert calendar.business_seconds(cal, old_due, found.due_at) == paused
    assert found.escalate_at == calendar.add_business(cal, old_escalate, paused)
    assert found.warn_at > old_warn
    assert found.state(local(2026, 11, 21, 12)) == sla.ClockState.PAUSED
    assert found.state(start) == sla.ClockState.ON_TIME
    # The completion clock is not paused; the appointment clock is met.
    clocks = clocks_of(net, order)
    assert not clocks["completion"].pauses and clocks["appointment"].met_at == BOOKED


def test_without_customer_later_no_clock_pauses(net, order, engineer):
    due = clocks_of(net, order)["arrival"].due_at
    book(net, order, engineer.id, start=local(2026, 11, 23, 14), end=local(2026, 11, 23, 16))
    found = clocks_of(net, order)["arrival"]
    assert found.due_at == due and not found.pauses


def test_a_customer_reschedule_pauses_the_arrival_clock_again(net, order, engineer,
                                                              friday_call):
    cal = network_calendar.load()
    book(net, order, engineer.id)
    due = clocks_of(net, order)["arrival"].due_at
    moved = local(2026, 11, 21, 9, 30)  # Saturday morning the customer calls
    friday_call.move_to(moved)
    start = local(2026, 11, 23, 10, 0)
    with as_agency(net.owner):
        row = reschedule_appointment(order, engineer.id, start, start + timedelta(hours=2),
                                     "customer", acting_user=net.owner)
    assert row.customer_later is True
    found = clocks_of(net, order)["arrival"]
    assert [(p.starts_at, p.ends_at) for p in found.pauses] == [(moved, start)]
    assert found.due_at == calendar.add_business(cal, due,
                                                 calendar.business_seconds(cal, moved, start))


def test_customer_later_on_a_carry_in_order_pauses_the_diagnosis_clock(net, friday_call,
                                                                      engineer):
    _request, _offer, carry_in = net.accepted_order(service_type="carry_in")
    friday_call.move_to(BOOKED)
    start = local(2026, 11, 23, 9)
    book(net, carry_in, engineer.id, start=start, end=start + timedelta(hours=1),
         customer_later=True)
    clocks = clocks_of(net, carry_in)
    assert [(p.starts_at, p.ends_at) for p in clocks["diagnosis"].pauses] == [(BOOKED, start)]
    assert not clocks["completion"].pauses


# --- kept -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arrived,moment,expected", [
    (SATURDAY_10, SATURDAY_12, Kept.KEPT),
    (SATURDAY_12, SATURDAY_12, Kept.KEPT),
    (SATURDAY_10 + timedelta(minutes=47), SATURDAY_12, Kept.KEPT),
    (SATURDAY_10 - timedelta(seconds=1), SATURDAY_12, Kept.EARLY),
    (SATURDAY_12 + timedelta(seconds=1), SATURDAY_12 + timedelta(hours=1), Kept.LATE),
    (None, SATURDAY_12 + timedelta(seconds=1), Kept.MISSED),
    (None, SATURDAY_12, Kept.PENDING),
    (None, SATURDAY_10 - timedelta(hours=3), Kept.PENDING),
], ids=["at-start", "at-end", "inside", "early", "late", "missed", "pending-at-end",
        "pending-before"])
def test_kept_on_the_windows_edges(arrived, moment, expected):
    assert kept(SATURDAY_10, SATURDAY_12, arrived, moment) == expected


def test_appointments_are_the_agencys_rows(net, order, engineer):
    row = book(net, order, engineer.id)
    with as_agency(net.world.b_users[Role.AGENCY_OWNER]):
        assert db.session.scalars(select(Appointment.id)).all() == []
    with as_agency(net.owner):
        assert db.session.scalars(select(Appointment.id)).all() == [row.id]
