"""The SLA board and the targets page: the live clocks (requests waiting for an agency, the
milestones of open dispatched orders) sorted by time to breach, with filters; a constant
number of queries whatever the size; the regional manager's region only; agencies never; the
targets table and HQ admin's form (validation, audit); a change of the network calendar moves
the running clocks."""
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from dispatch import board, network_calendar, sla
from dispatch.board import Filters
from dispatch.requests import ServiceRequest
from dispatch.sla import SlaClock, SlaTarget
from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import AGENCY_ROLES, Role
from portal.extensions import db
from portal.tenancy import region_scope, scoped, unscoped
from tests.dispatch.test_offers import Net, as_agency
from tests.factories import sign_in

SHANGHAI = ZoneInfo("Asia/Shanghai")
URL, TARGETS = "/dispatch/sla", "/dispatch/sla/targets"


def local(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


# Monday 23 November 2026, 09:00 in Shanghai: an ordinary working day.
MONDAY_0900 = local(2026, 11, 23, 9, 0)


@pytest.fixture
def monday():
    with time_machine.travel(MONDAY_0900, tick=False) as traveller:
        yield traveller


class Board:
    """Calls in agency A's city: one waiting for dispatch, one offered to A, one accepted by
    A (its order's clocks), and one accepted by B of the other region."""

    def __init__(self, app, world, *, waiting=1):
        with app.test_request_context():
            self.net = net = Net(world)
            net.cover(world.b)
            self.waiting = [net.call().id for _ in range(waiting)]
            self.offered = net.offer(net.call()).request_id
            request, _offer, order = net.accepted_order()
            self.a_order, self.a_request = order.id, request.id
            b_owner = world.b_users[Role.AGENCY_OWNER]
            b_offer = net.offer(net.call(), world.b)
            with as_agency(b_owner):
                from dispatch.offers import accept_offer

                self.b_order = accept_offer(b_offer, acting_user=b_owner,
                                            seen_version=b_offer.version).id
            db.session.commit()


def rows(moment=None, **filters):
    with unscoped("the test reads the whole board"):
        return db.session.execute(board.board(moment or clock.now(),
                                              Filters(**filters))).all()


def keys(found) -> list[tuple]:
    return [(r.kind, r.subject_id, r.milestone) for r in found]


# --- the statement ----------------------------------------------------------------------------


def test_the_board_lists_every_running_clock_by_time_to_breach(app, world, monday):
    made = Board(app, world)
    with app.app_context():
        found = rows()
        assert [r.due_at for r in found] == sorted(r.due_at for r in found)
        requests = [r for r in found if r.kind == "request"]
        assert {r.subject_id for r in requests} == {*made.waiting, made.offered}
        offered = next(r for r in requests if r.subject_id == made.offered)
        assert offered.agency_code == "A-OWN" and offered.milestone == "accept"
        assert next(r for r in requests if r.subject_id == made.waiting[0]).agency_code is None
        orders = [r for r in found if r.kind == "order"]
        assert {(r.subject_id, r.milestone) for r in orders} == {
            (o, m) for o in (made.a_order, made.b_order)
            for m in ("appointment", "arrival", "completion")}
        assert all(r.state == "on_time" for r in found)
        # The accepted requests are off the board (their clock stopped).
        assert made.a_request not in {r.subject_id for r in requests}


def test_filters_narrow_the_board(app, world, monday):
    made = Board(app, world)
    with app.app_context():
        assert {r.kind for r in rows(kind="order")} == {"order"}
        assert set(keys(rows(milestone="arrival"))) == {("order", made.a_order, "arrival"),
                                                        ("order", made.b_order, "arrival")}
        assert {r.subject_id for r in rows(agency_code="b-for")} == {made.b_order}
        assert {r.agency_code for r in rows(region_id=world.region2.id)} == {"B-FOR"}
        assert {r.service_type for r in rows(service_type="onsite")} == {"onsite"}
        assert rows(service_type="phone") == []
        # Junk is no filter.
        assert len(rows(state="nonsense", kind="x", milestone="'; --")) == len(rows())


def test_states_follow_the_clock_and_a_pause(app, world, monday):
    made = Board(app, world)
    with app.app_context(), unscoped("the test reads the clocks"):
        appointment = db.session.scalars(select(SlaClock).where(
            SlaClock.work_order_id == made.a_order, SlaClock.milestone == "appointment")).one()
        warn_at, due_at, escalate_at = (appointment.warn_at, appointment.due_at,
                                        appointment.escalate_at)
        waiting = db.session.get(ServiceRequest, made.waiting[0])
        accept_due = waiting.accept_due_at

    def state_of(moment, kind, subject_id, milestone):
        with app.app_context():
            return next(r.state for r in rows(moment) if (r.kind, r.subject_id, r.milestone)
                        == (kind, subject_id, milestone))

    order = ("order", made.a_order, "appointment")
    assert state_of(warn_at - timedelta(minutes=1), *order) == "on_time"
    assert state_of(warn_at, *order) == "warning"
    assert state_of(due_at, *order) == "breached"
    assert state_of(escalate_at, *order) == "breached_2"
    assert state_of(accept_due, "request", made.waiting[0], "accept") == "breached"
    with app.app_context(), unscoped("the test counts the whole board"):
        counts = board.state_counts(due_at)
        assert counts["breached"] + counts["breached_2"] >= 1
        assert sum(counts.values()) == len(rows(due_at))
        with unscoped("the customer asked for later"):
            clock_row = db.session.get(SlaClock, appointment.id)
            sla.pause(clock_row, warn_at, warn_at + timedelta(days=2), "customer_later")
            db.session.commit()
    assert state_of(warn_at + timedelta(hours=1), *order) == "paused"
    with app.app_context():
        assert made.a_order in {r.subject_id for r in rows(warn_at + timedelta(hours=1),
                                                           state="paused")}


def test_the_regional_manager_sees_the_regions_agencies_only(app, world, monday):
    made = Board(app, world)
    manager = world.user(Role.REGIONAL_MANAGER)
    with app.app_context(), scoped(region_scope(world.region1.id, manager.id)):
        found = db.session.execute(board.board(clock.now())).all()
        seen = {(r.kind, r.subject_id) for r in found}
        assert seen == {("request", made.offered), ("order", made.a_order)}
        assert {r.agency_code for r in found} == {"A-OWN"}
        assert set(board.state_counts(clock.now()).values()) >= {0}
        assert sum(board.state_counts(clock.now()).values()) == len(found)


# --- the page ---------------------------------------------------------------------------------


def test_the_dispatcher_reads_the_board_with_links_and_times(app, client, world, monday):
    made = Board(app, world)
    sign_in(client, world.user(Role.HQ_DISPATCHER))
    page = client.get(URL).get_data(as_text=True)
    assert "SLA board" in page and 'hx-trigger="every 60s"' in page
    assert f"/dispatch/requests/{made.offered}" in page
    assert f"/dispatch/orders/{made.a_order}" in page and f"/dispatch/orders/{made.b_order}" in page
    assert "due in 1 hour" in page and "A-OWN" in page and "B-FOR" in page
    assert "Not offered yet" in page and "at 75 % of the target" in page and "%%" not in page
    assert "CANARY-NAME" not in page and "13912345678" not in page  # nothing personal
    # Two hours later the waiting calls' accept clocks are breached.
    monday.shift(timedelta(hours=2))
    page = client.get(URL + "?kind=request&state=breached_2").get_data(as_text=True)
    assert "breached 1 hour ago" in page and "/dispatch/orders/" not in page
    assert client.get(URL + "?page=abc&region=x&state=<script>").status_code == 200


def test_the_regional_managers_page_shows_their_region(app, client, world, monday):
    made = Board(app, world)
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    page = client.get(URL).get_data(as_text=True)
    assert f"/dispatch/orders/{made.a_order}" in page
    assert f"/dispatch/orders/{made.b_order}" not in page and "B-FOR" not in page
    assert f"/dispatch/requests/{made.offered}\"" in page
    assert f"/dispatch/requests/{made.waiting[0]}\"" not in page


@pytest.mark.parametrize("role", sorted(AGENCY_ROLES))
def test_agencies_have_no_board_and_no_targets(client, world, role):
    sign_in(client, world.user(role))
    assert client.get(URL).status_code == 403
    assert client.get(TARGETS).status_code == 403
    assert client.post(TARGETS, data={"service_type": "onsite", "milestone": "arrival",
                                      "product_line_id": "0", "minutes": "60"}).status_code == 403


def _measure(client, query_counter, url=URL) -> int:
    client.get(url)  # warm: the session's user, the nav's caches
    with query_counter as counted:
        assert client.get(url).status_code == 200
    return counted.count


def test_the_board_runs_the_same_number_of_queries_for_3_and_30_rows(app, client, world,
                                                                     monday, query_counter,
                                                                     capsys):
    made = Board(app, world, waiting=2)  # 3 requests + 6 order clocks
    sign_in(client, world.user(Role.HQ_DISPATCHER))
    with app.app_context(), unscoped("count"):
        few_rows = len(rows(kind="request"))
    few = _measure(client, query_counter, URL + "?kind=request")
    with app.test_request_context():
        for _ in range(27):
            made.net.call()
        db.session.commit()
    with app.app_context(), unscoped("count"):
        many_rows = len(rows(kind="request"))
    many = _measure(client, query_counter, URL + "?kind=request")
    everything = _measure(client, query_counter)
    with capsys.disabled():
        print(f"\nSLA board queries: {few} with {few_rows} rows, {many} with {many_rows} rows, "
              f"{everything} unfiltered")
    assert (few_rows, many_rows) == (3, 30)
    assert few == many == everything


# --- targets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.HQ_DISPATCHER, Role.REGIONAL_MANAGER, Role.AUDITOR,
                                  Role.HQ_SERVICE])
def test_the_boards_readers_read_the_targets_and_change_nothing(client, world, role):
    sign_in(client, world.user(role))
    page = client.get(TARGETS).get_data(as_text=True)
    assert "SLA targets" in page and "On-site repair" in page and "1,080" in page
    assert "Set a target" not in page and "at 150 %." in page and "%%" not in page
    assert client.post(TARGETS, data={"service_type": "onsite", "milestone": "arrival",
                                      "product_line_id": "0", "minutes": "60"}).status_code == 403


def _targets(app):
    with app.app_context():
        return [(t.service_type, t.milestone, t.product_line_id, t.minutes)
                for t in db.session.scalars(select(SlaTarget).order_by(SlaTarget.id))]


def test_hq_admin_sets_a_target_audited(app, client, world):
    admin = world.user(Role.HQ_ADMIN)
    sign_in(client, admin)
    assert "Set a target" in client.get(TARGETS).get_data(as_text=True)
    response = client.post(TARGETS, data={"service_type": "onsite", "milestone": "arrival",
                                          "product_line_id": "0", "minutes": "900"})
    assert response.status_code == 302
    response = client.post(TARGETS, data={"service_type": "onsite", "milestone": "arrival",
                                          "product_line_id": str(world.line.id),
                                          "minutes": "600"})
    assert response.status_code == 302
    assert _targets(app) == [("onsite", "arrival", None, 900),
                             ("onsite", "arrival", world.line.id, 600)]
    page = client.get(TARGETS).get_data(as_text=True)
    assert "900" in page and "15" in page and "600 min (10 h)" in page and "set by HQ" in page
    with app.app_context(), unscoped("the test reads the audit log"):
        entries = list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "sla.target_set").order_by(AuditEntry.id)))
    assert [e.actor_id for e in entries] == [admin.id, admin.id]
    assert entries[0].before == {"minutes": 1080} and entries[0].after["minutes"] == 900


@pytest.mark.parametrize("data, message", [
    ({"minutes": "0"}, "from 1 to"),
    ({"minutes": str(sla.MAX_MINUTES + 1)}, "from 1 to"),
    ({"minutes": "abc"}, "Not a valid integer value"),
    ({"minutes": ""}, "This field is required"),
    ({"service_type": "phone", "milestone": "arrival"}, "does not apply"),
    ({"service_type": "teleport"}, "Choose a service type"),
    ({"milestone": "nonsense"}, "does not apply"),
    ({"product_line_id": "999999"}, "Choose a product line"),
    ({"product_line_id": "x"}, "Not a valid choice"),
])
def test_bad_targets_are_refused_on_the_form(app, client, world, data, message):
    sign_in(client, world.user(Role.HQ_ADMIN))
    form = {"service_type": "onsite", "milestone": "arrival", "product_line_id": "0",
            "minutes": "60", **data}
    response = client.post(TARGETS, data=form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page or message.replace("Not a valid choice",
                                              "could not coerce") in page, page[-3000:]
    assert _targets(app) == []


# --- the calendar moves the clocks -------------------------------------------------------------


def test_a_closed_day_moves_the_running_clocks(app, world, monday):
    made = Board(app, world)
    admin = world.user(Role.HQ_ADMIN)

    def instants():
        with app.app_context(), unscoped("the test reads the clocks"):
            order = {c.milestone: c.due_at for c in db.session.scalars(
                select(SlaClock).where(SlaClock.work_order_id == made.a_order))}
            request = db.session.get(ServiceRequest, made.waiting[0]).accept_due_at
            return order, request

    before, accept_before = instants()
    with app.test_request_context(), unscoped("HQ admin closes tomorrow"):
        network_calendar.save_exception(date(2026, 11, 24), None, None, "停电",
                                        today=date(2026, 11, 23), acting_user=admin)
        db.session.commit()
    after, accept_after = instants()
    # Today's clocks stay; those running into Tuesday move by the closed day.
    assert after["appointment"] == before["appointment"]
    assert accept_after == accept_before
    assert after["arrival"] > before["arrival"] and after["completion"] > before["completion"]
    assert after["arrival"] - before["arrival"] >= timedelta(days=1)

    # Closing today moves the accept clock too; removing the exception moves them back.
    with app.test_request_context(), unscoped("HQ admin closes today"):
        row = network_calendar.save_exception(date(2026, 11, 23), None, None, "停电",
                                              today=date(2026, 11, 23), acting_user=admin)
        db.session.commit()
    _order, accept_closed = instants()
    assert accept_closed > accept_before
    with app.test_request_context(), unscoped("HQ admin reopens"):
        from dispatch.models import CalendarException

        for day in (date(2026, 11, 23), date(2026, 11, 24)):
            row = db.session.scalars(select(CalendarException).where(
                CalendarException.day == day)).one()
            network_calendar.remove_exception(row, today=date(2026, 11, 23), acting_user=admin)
        db.session.commit()
    assert instants() == (before, accept_before)


def test_time_to_breach_reads_in_two_units(app):
    from dispatch.views_sla import time_to_breach

    now = MONDAY_0900
    with app.test_request_context():
        assert time_to_breach(now + timedelta(hours=1, minutes=20), now) == \
            "due in 1 hour 20 minutes"
        assert time_to_breach(now - timedelta(minutes=40), now) == "breached 40 minutes ago"
        assert time_to_breach(now + timedelta(days=2, hours=3), now) == "due in 2 days 3 hours"
        assert time_to_breach(now, now) == "breached 1 minute ago"
