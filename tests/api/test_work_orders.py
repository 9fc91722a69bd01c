"""Work orders through the API: the agency reads its dispatched order with the customer, the
SLA milestones and the appointment; books and moves the visit, records the arrival, the
diagnosis and the completion (each clock stops), cancels an order; every change names the
version read (none: 428, stale: 412, and the ETag moves with the appointment too); an agency
reads its own orders only (another agency's, a sibling's and a missing one are the same 404);
HQ lists every order and never writes; errors are problem documents."""
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import func, select

from dispatch.appointments import Appointment
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import WorkOrder
from tenants.models import Agency
from tests.api.helpers import caller
from tests.dispatch.test_offers import FRIDAY_1700, NAME, PHONE, Net, local
from tests.isolation_params import AREA_PARAMS
from tests.service.factories import catalog_of, make_engineer, make_order

PROBLEM = "application/problem+json"
ACCEPTED = FRIDAY_1700 + timedelta(minutes=5)
SATURDAY_10, SATURDAY_12 = local(2026, 11, 21, 10, 0), local(2026, 11, 21, 12, 0)


def iso(moment) -> str:
    return moment.isoformat()


@pytest.fixture
def friday(app):
    with time_machine.travel(FRIDAY_1700, tick=False) as traveller:
        yield traveller


@pytest.fixture
def net(app, world, friday):
    with app.test_request_context():
        made = Net(world)
        with unscoped("test fixtures"):
            made.engineer = make_engineer(made.a, world.line).id
        db.session.commit()
    return made


def _dispatched(app, net, friday, service_type="onsite") -> int:
    """A call at 17:00 accepted by A at 17:05 (committed): the order's id."""
    with app.test_request_context():
        friday.move_to(FRIDAY_1700)
        offer = net.offer(net.call(service_type=service_type))
        friday.move_to(ACCEPTED)
        order = net.accept(offer)
        db.session.commit()
        return order.id


def _order_of(app, world, agency) -> int:
    """A dispatched open order of `agency` (the isolation test's factory)."""
    with app.test_request_context(), unscoped("test fixtures"):
        order_id = AREA_PARAMS["dispatch"]["work_order_id"].make(world, agency)
        db.session.commit()
        return order_id


def _count(app, model, *where) -> int:
    with app.app_context(), unscoped("the test counts"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _milestones(body) -> dict:
    return {m["milestone"]: m for m in body["milestones"]}


def test_the_agency_reads_its_dispatched_order_with_the_customer_and_clocks(
        app, client, world, net, friday):
    order_id = _dispatched(app, net, friday)
    owner = caller(app, client, net.owner)
    read = owner.get(f"/api/v1/work-orders/{order_id}")
    assert read.status_code == 200, read.get_data(as_text=True)
    body = read.json
    assert (body["customer_name"], body["customer_phone"]) == (NAME, PHONE)
    assert body["status"] == "open" and body["request_number"].startswith("SR")
    assert read.headers["ETag"] == f'"workorder-{order_id}-a0-v{body["version"]}"'
    clocks = _milestones(body)
    assert list(clocks) == ["appointment", "arrival", "completion"]
    assert all(c["state"] == "on_time" and c["met_at"] is None for c in clocks.values())
    assert body["appointment"] is None

    listed = owner.get("/api/v1/work-orders/")
    assert [o["id"] for o in listed.json["items"]] == [order_id]
    assert listed.json["items"][0]["customer_name"] != NAME  # masked, as the list page

    manager = caller(app, client, world.user(Role.REGIONAL_MANAGER))
    masked = manager.get(f"/api/v1/work-orders/{order_id}").json
    assert masked["customer_name"] != NAME and masked["customer_address"] is None
    assert masked["milestones"] is not None
    settlement = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    assert settlement.get(f"/api/v1/work-orders/{order_id}").json["milestones"] is None


def test_the_agency_books_and_moves_the_visit(app, client, world, net, friday):
    order_id = _dispatched(app, net, friday)
    friday.move_to(FRIDAY_1700 + timedelta(minutes=10))
    staff = caller(app, client, net.staff)
    url = f"/api/v1/work-orders/{order_id}/appointment"
    body = {"engineer_id": net.engineer, "window_from": iso(SATURDAY_10),
            "window_to": iso(SATURDAY_12), "note": "请先电话联系"}
    missing = staff.post(url, json=body)
    assert missing.status_code == 428 and missing.mimetype == PROBLEM
    etag = staff.get(f"/api/v1/work-orders/{order_id}").headers["ETag"]
    booked = staff.post(url, json=body, headers={"If-Match": etag})
    assert booked.status_code == 200, booked.get_data(as_text=True)
    visit = booked.json["appointment"]
    assert (visit["engineer_id"], visit["window_from"], visit["reason"], visit["kept"]) == (
        net.engineer, iso(SATURDAY_10), "", "pending")
    assert booked.json["engineer_id"] == net.engineer
    assert _milestones(booked.json)["appointment"]["state"] == "met"
    moved_etag = booked.headers["ETag"]
    assert moved_etag != etag and f"-a{visit['id']}-" in moved_etag

    # The order's version is the same; the appointment moved: the old ETag is stale.
    later = {**body, "window_from": iso(SATURDAY_12), "window_to": iso(SATURDAY_12 +
                                                                        timedelta(hours=2))}
    stale = staff.post(url, json={**later, "reason": "customer"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.mimetype == PROBLEM
    no_reason = staff.post(url, json=later, headers={"If-Match": moved_etag})
    assert no_reason.status_code == 422 and no_reason.json["errors"][0]["field"] == "reason"
    moved = staff.post(url, json={**later, "reason": "customer"},
                       headers={"If-Match": moved_etag})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert moved.json["appointment"]["reason"] == "customer"
    assert moved.json["appointment"]["window_from"] == iso(SATURDAY_12)
    assert _count(app, Appointment) == 2
    assert _count(app, Appointment, Appointment.superseded_at.is_(None)) == 1

    foreign_engineer = staff.post(url, json={**later, "reason": "agency",
                                              "engineer_id": 999999},
                                  headers={"If-Match": moved.headers["ETag"]})
    assert foreign_engineer.status_code == 422
    assert foreign_engineer.json["errors"][0]["field"] == "engineer_id"


def test_arrival_then_completion_stop_their_clocks(app, client, world, net, friday):
    order_id = _dispatched(app, net, friday)
    with app.app_context(), unscoped("test fixtures"):
        repair = catalog_of(world.line)["repair"].id
        db.session.commit()
    owner = caller(app, client, net.owner)
    path = f"/api/v1/work-orders/{order_id}"
    friday.move_to(local(2026, 11, 21, 10, 30))
    etag = owner.get(path).headers["ETag"]
    arrived = owner.post(f"{path}/arrival", json={}, headers={"If-Match": etag})
    assert arrived.status_code == 200, arrived.get_data(as_text=True)
    assert arrived.json["arrived_at"] == iso(local(2026, 11, 21, 10, 30))
    assert _milestones(arrived.json)["arrival"]["met_at"] == iso(local(2026, 11, 21, 10, 30))
    assert arrived.headers["ETag"] != etag

    friday.move_to(local(2026, 11, 21, 11, 30))
    done = {"resolution": "更换主板后正常", "distance_km": "12.5", "repair_code_ids": [repair],
            "engineer_id": net.engineer}
    stale = owner.post(f"{path}/completion", json=done, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.mimetype == PROBLEM
    incomplete = owner.post(f"{path}/completion", json={**done, "repair_code_ids": []},
                            headers={"If-Match": arrived.headers["ETag"]})
    assert incomplete.status_code == 422
    assert incomplete.json["errors"][0]["field"] == "repair_code_ids"
    completed = owner.post(f"{path}/completion", json=done,
                           headers={"If-Match": arrived.headers["ETag"]})
    assert completed.status_code == 200, completed.get_data(as_text=True)
    body = completed.json
    assert (body["status"], body["distance_km"], body["repair_code_ids"]) == (
        "completed", "12.50", [repair])
    assert _milestones(body)["completion"]["met_at"] == iso(local(2026, 11, 21, 11, 30))
    again = owner.post(f"{path}/arrival", json={},
                       headers={"If-Match": completed.headers["ETag"]})
    assert again.status_code == 422 and again.mimetype == PROBLEM


def test_diagnosis_stops_the_carry_in_clock_and_cancel_needs_a_reason(app, client, world,
                                                                       net, friday):
    order_id = _dispatched(app, net, friday, service_type="carry_in")
    with app.app_context(), unscoped("test fixtures"):
        fault = catalog_of(world.line)["fault"].id
        db.session.commit()
    staff = caller(app, client, net.staff, language="zh-CN")
    path = f"/api/v1/work-orders/{order_id}"
    friday.move_to(local(2026, 11, 21, 10, 0))
    etag = staff.get(path).headers["ETag"]
    arrival = staff.post(f"{path}/arrival", json={}, headers={"If-Match": etag})
    assert arrival.status_code == 422 and arrival.json["errors"][0]["field"] == "arrived_at"
    assert arrival.headers["Content-Language"].startswith("zh")
    diagnosed = staff.post(f"{path}/diagnosis", json={"fault_code_id": fault},
                           headers={"If-Match": etag})
    assert diagnosed.status_code == 200, diagnosed.get_data(as_text=True)
    assert diagnosed.json["fault_code_id"] == fault
    assert _milestones(diagnosed.json)["diagnosis"]["state"] == "met"

    short = staff.post(f"{path}/cancel", json={"reason": "x"},
                       headers={"If-Match": diagnosed.headers["ETag"]})
    assert short.status_code == 422 and short.json["errors"][0]["field"] == "reason"
    cancelled = staff.post(f"{path}/cancel", json={"reason": "客户取消维修"},
                           headers={"If-Match": diagnosed.headers["ETag"]})
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    assert (cancelled.json["status"], cancelled.json["cancel_reason"]) == (
        "cancelled", "客户取消维修")


def test_an_agency_reads_and_changes_its_own_orders_only(app, client, world, net, friday):
    own = _dispatched(app, net, friday)
    sibling, foreign = _order_of(app, world, world.a2), _order_of(app, world, world.b)
    owner = caller(app, client, net.owner)
    assert [o["id"] for o in owner.get("/api/v1/work-orders/").json["items"]] == [own]
    body = {"engineer_id": net.engineer, "window_from": iso(SATURDAY_10),
            "window_to": iso(SATURDAY_12)}
    for other in (sibling, foreign, 999999):
        path = f"/api/v1/work-orders/{other}"
        for response in (owner.get(path),
                         owner.post(f"{path}/appointment", json=body,
                                    headers={"If-Match": "*"}),
                         owner.post(f"{path}/arrival", json={}, headers={"If-Match": "*"}),
                         owner.post(f"{path}/cancel", json={"reason": "不需要了"},
                                    headers={"If-Match": "*"})):
            assert response.status_code == 404 and response.mimetype == PROBLEM
            assert "CANARY" not in response.get_data(as_text=True)
    assert _count(app, Appointment) == 0
    assert _count(app, WorkOrder, WorkOrder.status != "open") == 0

    dispatcher = caller(app, client, net.dispatcher)
    listed = dispatcher.get("/api/v1/work-orders/?status=open")
    assert {o["id"] for o in listed.json["items"]} == {own, sibling, foreign}
    assert dispatcher.get(f"/api/v1/work-orders/{foreign}").status_code == 200
    none = dispatcher.get("/api/v1/work-orders/?status=completed")
    assert none.status_code == 200 and none.json["items"] == []


def test_hq_reads_but_never_writes(app, client, world, net, friday):
    order_id = _dispatched(app, net, friday)
    path = f"/api/v1/work-orders/{order_id}"
    for role in (Role.AUDITOR, Role.HQ_DISPATCHER):
        hq = caller(app, client, world.user(role))
        etag = hq.get(path).headers["ETag"]
        for action, body in (("appointment", {"engineer_id": net.engineer,
                                              "window_from": iso(SATURDAY_10),
                                              "window_to": iso(SATURDAY_12)}),
                             ("arrival", {}), ("completion", {"resolution": "ok"}),
                             ("cancel", {"reason": "不需要了"})):
            refused = hq.post(f"{path}/{action}", json=body, headers={"If-Match": etag})
            assert refused.status_code == 403 and refused.mimetype == PROBLEM, (role, action)
    assert _count(app, Appointment) == 0


def test_an_order_never_dispatched_has_no_appointment_here(app, client, world, net, friday):
    with app.test_request_context(), unscoped("test fixtures"):
        entered = make_order(db.session.get(Agency, world.a.id), world.line).id
        db.session.commit()
    owner = caller(app, client, net.owner)
    read = owner.get(f"/api/v1/work-orders/{entered}")
    assert read.status_code == 200 and read.json["milestones"] == []
    assert read.json["request_number"] is None
    booked = owner.post(f"/api/v1/work-orders/{entered}/appointment", headers={
        "If-Match": read.headers["ETag"]}, json={
        "engineer_id": net.engineer, "window_from": iso(SATURDAY_10),
        "window_to": iso(SATURDAY_12)})
    assert booked.status_code == 404 and booked.mimetype == PROBLEM


def test_a_booking_retried_with_its_key_books_once(app, client, world, net, friday):
    order_id = _dispatched(app, net, friday)
    staff = caller(app, client, net.staff)
    etag = staff.get(f"/api/v1/work-orders/{order_id}").headers["ETag"]
    body = {"engineer_id": net.engineer, "window_from": iso(SATURDAY_10),
            "window_to": iso(SATURDAY_12)}
    headers = {"If-Match": etag, "Idempotency-Key": "visit-1"}
    first = staff.post(f"/api/v1/work-orders/{order_id}/appointment", json=body,
                       headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    again = staff.post(f"/api/v1/work-orders/{order_id}/appointment", json=body,
                       headers=headers)
    assert again.status_code == 200 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(app, Appointment) == 1


def test_money_and_distances_are_strings(app, client, world, net, friday):
    order_id = _dispatched(app, net, friday)
    owner = caller(app, client, net.owner)
    read = owner.get(f"/api/v1/work-orders/{order_id}")
    arrived = owner.post(f"/api/v1/work-orders/{order_id}/arrival",
                         json={"distance_km": "3.25"}, headers={"If-Match": read.headers["ETag"]})
    assert arrived.status_code == 200 and arrived.json["distance_km"] == "3.25"
    assert Decimal(arrived.json["distance_km"]) == Decimal("3.25")
