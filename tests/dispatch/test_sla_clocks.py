"""SLA targets and clocks, service level: the SQL state and the Python state agree on every
instant of a table (at, before and after each boundary); targets come from the line's
override, else the type's SlaTarget, else DEFAULT_MINUTES; set_target validates and is
audited; the work order's arrival saved through service's write path stops the arrival clock
at the moment the portal learns it (not the typed time)."""
from datetime import timedelta

import pytest
from sqlalchemy import literal, select

from dispatch import calendar, network_calendar, sla
from dispatch.sla import (
    DEFAULT_MINUTES,
    MAX_MINUTES,
    ClockState,
    SlaClock,
    SlaTarget,
    clock_state_of,
    set_target,
    state_sql,
    targets_for,
)
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import UTCDateTime
from portal.tenancy import unscoped
from service.services import PLAIN_FIELDS, update_work_order
from tests.dispatch.test_offers import (  # the shared helpers, not tests
    FRIDAY_1700,
    Net,
    as_agency,
    as_hq,
    audit,
    count,
    local,
)
from tests.factories import make_product_line

T = local(2026, 11, 23, 9, 0)  # a Monday morning
WARN, DUE, ESCALATE = T + timedelta(minutes=45), T + timedelta(minutes=60), \
    T + timedelta(minutes=90)
S = timedelta(seconds=1)

# (met_at, moment, expected): every boundary, a second either side.
TABLE = [
    (None, T, ClockState.ON_TIME),
    (None, WARN - S, ClockState.ON_TIME),
    (None, WARN, ClockState.WARNING),
    (None, WARN + S, ClockState.WARNING),
    (None, DUE - S, ClockState.WARNING),
    (None, DUE, ClockState.BREACHED),
    (None, DUE + S, ClockState.BREACHED),
    (None, ESCALATE - S, ClockState.BREACHED),
    (None, ESCALATE, ClockState.ESCALATED),
    (None, ESCALATE + timedelta(days=40), ClockState.ESCALATED),
    (T + S, T, ClockState.MET),  # met: the moment no longer matters
    (DUE - S, ESCALATE + S, ClockState.MET),
    (DUE, ESCALATE + S, ClockState.MET),  # on the due second: within the target
    (DUE + S, DUE + S, ClockState.MET_LATE),
    (ESCALATE + S, T, ClockState.MET_LATE),
]


def _sql_state(met, moment) -> str:
    instant = UTCDateTime()
    return db.session.scalar(select(state_sql(
        literal(met, instant), literal(WARN, instant), literal(DUE, instant),
        literal(ESCALATE, instant), moment)))


@pytest.mark.parametrize("met,moment,expected", TABLE)
def test_state_sql_and_clock_state_of_agree(ctx, met, moment, expected):
    assert clock_state_of(met, WARN, DUE, ESCALATE, moment) == expected
    assert _sql_state(met, moment) == expected.value


@pytest.fixture
def friday(ctx):
    import time_machine

    with time_machine.travel(FRIDAY_1700, tick=False) as traveller:
        yield traveller


@pytest.fixture
def net(ctx, world, friday):
    return Net(world)


def _data(order, **changes) -> dict:
    """The order's input as its edit form posts it, with changes."""
    data = {key: getattr(order, key) for key in PLAIN_FIELDS}
    data.update(number=order.number, product_model_id=order.product_model_id,
                product_line_id=order.product_line_id, repair_code_ids=[], parts=[])
    return {**data, **changes}


def test_state_sql_over_stored_clocks_agrees_with_each_clocks_state(net, friday):
    _request, _offer, order = net.accepted_order()
    with as_agency(net.owner):
        clocks = sla.order_clocks(net.a.id, order.id)
        clocks[0].met_at = clocks[0].due_at + S  # the appointment booked late
        db.session.flush()
        moments = sorted({m for c in clocks for m in (
            c.warn_at - S, c.warn_at, c.due_at - S, c.due_at, c.escalate_at - S,
            c.escalate_at, c.escalate_at + timedelta(days=3))})
        for moment in moments:
            rows = dict(db.session.execute(select(SlaClock.id, state_sql(
                SlaClock.met_at, SlaClock.warn_at, SlaClock.due_at, SlaClock.escalate_at,
                moment)).where(SlaClock.work_order_id == order.id)).all())
            assert rows == {c.id: c.state(moment).value for c in clocks}, moment
    assert rows[clocks[0].id] == "met_late"


# --- targets ----------------------------------------------------------------------------------


def test_targets_come_from_the_line_then_the_type_then_the_network_defaults(net):
    admin = net.world.user(Role.HQ_ADMIN)
    line, other = net.world.line.id, None
    with unscoped("test fixtures"):
        other = make_product_line().id
    assert targets_for("onsite", line) == {
        k: v * 60 for k, v in DEFAULT_MINUTES["onsite"].items()}
    with as_hq():
        set_target("onsite", "arrival", 900, None, acting_user=admin)
        set_target("onsite", "arrival", 600, line, acting_user=admin)
        set_target("onsite", "completion", 2000, None, acting_user=admin)
        set_target("carry_in", "diagnosis", 100, line, acting_user=admin)
    found = targets_for("onsite", line)
    assert found["arrival"] == 600 * 60  # the line's override
    assert found["completion"] == 2000 * 60  # the type's row
    assert found["appointment"] == DEFAULT_MINUTES["onsite"]["appointment"] * 60
    assert targets_for("onsite", other)["arrival"] == 900 * 60
    assert targets_for("onsite", None)["arrival"] == 900 * 60
    assert targets_for("carry_in", other)["diagnosis"] == DEFAULT_MINUTES["carry_in"][
        "diagnosis"] * 60
    assert targets_for("carry_in", line)["diagnosis"] == 100 * 60
    assert set(targets_for("phone", line)) == {"answer", "accept", "completion"}


def test_set_target_replaces_the_row_and_is_audited(net):
    admin = net.world.user(Role.HQ_ADMIN)
    with as_hq():
        first = set_target("onsite", "arrival", 900, None, acting_user=admin)
        again = set_target("onsite", "arrival", 960, None, acting_user=admin)
    assert first.id == again.id and again.minutes == 960 and again.updated_by_id == admin.id
    assert count(SlaTarget) == 1
    entries = audit("sla.target_set")
    assert [(e.before, e.actor_id) for e in entries] == [
        ({"minutes": DEFAULT_MINUTES["onsite"]["arrival"]}, admin.id),
        ({"minutes": 900}, admin.id)]
    assert entries[-1].after == {"service_type": "onsite", "milestone": "arrival",
                                 "product_line_id": None, "minutes": 960}


@pytest.mark.parametrize("service_type,milestone,minutes,field", [
    ("onsite", "diagnosis", 60, "milestone"),     # carry-in's milestone
    ("carry_in", "arrival", 60, "milestone"),     # on-site's
    ("phone", "appointment", 60, "milestone"),
    ("onsite", "teleport", 60, "milestone"),
    ("teleport", "arrival", 60, "service_type"),
    ("onsite", "arrival", 0, "minutes"),
    ("onsite", "arrival", -5, "minutes"),
    ("onsite", "arrival", MAX_MINUTES + 1, "minutes"),
    ("onsite", "arrival", "60", "minutes"),
    ("onsite", "arrival", 60.0, "minutes"),
    ("onsite", "arrival", None, "minutes"),
], ids=["diagnosis-onsite", "arrival-carry-in", "appointment-phone", "unknown-milestone",
        "unknown-type", "zero", "negative", "too-big", "text", "float", "none"])
def test_set_target_refuses_bad_input(net, service_type, milestone, minutes, field):
    admin = net.world.user(Role.HQ_ADMIN)
    with pytest.raises(DomainError) as refused, as_hq():
        set_target(service_type, milestone, minutes, None, acting_user=admin)
    assert refused.value.field == field
    assert count(SlaTarget) == 0 and audit("sla.target_set") == []


def test_the_largest_target_and_the_answer_window_are_taken(net):
    admin = net.world.user(Role.HQ_ADMIN)
    with as_hq():
        assert set_target("onsite", "completion", MAX_MINUTES, None,
                          acting_user=admin).minutes == MAX_MINUTES
        assert set_target("phone", "answer", 15, None, acting_user=admin).minutes == 15


def test_only_hq_admin_sets_targets(net):
    for user in (net.dispatcher, net.owner):
        with pytest.raises(DomainError), as_hq():
            set_target("onsite", "arrival", 900, None, acting_user=user)
    assert count(SlaTarget) == 0


def test_a_new_target_applies_to_clocks_started_from_then_on(net, friday):
    admin = net.world.user(Role.HQ_ADMIN)
    _request, _offer, before = net.accepted_order()
    with as_hq():
        set_target("onsite", "arrival", 120, net.world.line.id, acting_user=admin)
        set_target("onsite", "answer", 10, None, acting_user=admin)
    request = net.call()
    offer = net.offer(request)
    assert offer.expires_at == FRIDAY_1700 + timedelta(minutes=10)
    after = net.accept(offer)
    with as_agency(net.owner):
        old = {c.milestone: c for c in sla.order_clocks(net.a.id, before.id)}
        new = {c.milestone: c for c in sla.order_clocks(net.a.id, after.id)}
    assert old["arrival"].target_seconds == DEFAULT_MINUTES["onsite"]["arrival"] * 60
    assert new["arrival"].target_seconds == 120 * 60
    cal = network_calendar.load()
    assert new["arrival"].due_at == calendar.add_business(cal, FRIDAY_1700, 120 * 60)


# --- milestones through the work order's write path ------------------------------------------


def test_the_arrival_saved_on_the_order_stops_the_arrival_clock_when_the_portal_learns_it(
        net, friday):
    _request, _offer, order = net.accepted_order()
    typed, learned = local(2026, 11, 21, 10, 5), local(2026, 11, 21, 11, 0)
    friday.move_to(learned)
    with as_agency(net.staff):
        update_work_order(net.a, order, _data(order, arrived_at=typed), acting_user=net.staff)
        clocks = {c.milestone: c for c in sla.order_clocks(net.a.id, order.id)}
    assert order.arrived_at == typed
    assert clocks["arrival"].met_at == learned  # the system's time, not the typed one
    assert clocks["arrival"].state() == ClockState.MET
    assert clocks["appointment"].met_at is None and clocks["completion"].met_at is None
    # A later save does not move the recorded moment.
    friday.move_to(learned + timedelta(hours=2))
    with as_agency(net.staff):
        update_work_order(net.a, order, _data(order, fault_description="压缩机不启动"),
                          acting_user=net.staff)
    assert clocks["arrival"].met_at == learned


def test_a_save_without_the_arrival_leaves_the_clock_running(net, friday):
    _request, _offer, order = net.accepted_order()
    friday.move_to(local(2026, 11, 21, 11))
    with as_agency(net.staff):
        update_work_order(net.a, order, _data(order, fault_description="噪音大"),
                          acting_user=net.staff)
        clocks = {c.milestone: c for c in sla.order_clocks(net.a.id, order.id)}
    assert all(c.met_at is None for c in clocks.values())


def test_an_arrival_saved_after_the_due_time_meets_the_clock_late(net, friday):
    _request, _offer, order = net.accepted_order()
    with as_agency(net.owner):
        due = {c.milestone: c for c in sla.order_clocks(net.a.id, order.id)}["arrival"].due_at
    friday.move_to(due + timedelta(minutes=5))
    with as_agency(net.staff):
        update_work_order(net.a, order, _data(order, arrived_at=due - timedelta(hours=1)),
                          acting_user=net.staff)
        found = {c.milestone: c for c in sla.order_clocks(net.a.id, order.id)}["arrival"]
    assert found.met_at == due + timedelta(minutes=5)
    assert found.state() == ClockState.MET_LATE
