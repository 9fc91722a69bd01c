"""Parts requests (states, quantities, stock) and defective-part returns."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service import queries, supply
from service.models import (
    LineDecision,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    RequestStatus,
    ReturnStatus,
)
from tests.service import factories as f


@pytest.fixture
def a(ctx, world):
    with scoped(agency_scope(world.a.id)):
        yield world


def _audit_actions(obj) -> list[str]:
    with unscoped("tests read the audit log"):
        return list(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == type(obj).__name__,
            AuditEntry.object_id == str(obj.id)).order_by(AuditEntry.id)))


def _line(request) -> PartsRequestLine:
    return supply._lines(request)[0]


# --- requests ----------------------------------------------------------------------------------


def test_a_request_walks_every_state_with_one_audit_entry_each(a):
    request = f.make_request(a.a, a.line, quantity=4, state="received")
    assert request.status == RequestStatus.RECEIVED
    assert request.submitted_at <= request.decided_at <= request.shipped_at <= request.received_at
    assert _audit_actions(request) == ["parts_request.submitted", "parts_request.decided",
                                       "parts_request.shipped", "parts_request.received"]
    stock = f.give_stock(a.a, f.catalog_of(a.line)["part"], 0)
    assert (stock.quantity, stock.received_total) == (4, 4)


@pytest.mark.parametrize("lines", [
    [],
    [{"part_id": None, "quantity": 1}],
    [{"part_id": 987654, "quantity": 1}],
    [{"part_id": "PART", "quantity": 0}],
    [{"part_id": "PART", "quantity": -3}],
    [{"part_id": "PART", "quantity": 1000}],
    [{"part_id": "PART", "quantity": None}],
    [{"part_id": "PART", "quantity": 1, "reason": "gift"}],
    [{"part_id": "PART", "quantity": 1, "reason": "work_order"}],
    [{"part_id": "PART", "quantity": 1, "reason": "work_order", "work_order_id": 987654}],
    [{"part_id": "PART", "quantity": 1}] * 21,
])
def test_bad_request_lines_are_refused(a, lines):
    part = f.catalog_of(a.line)["part"]
    lines = [{**line, "part_id": part.id if line["part_id"] == "PART" else line["part_id"]}
             for line in lines]
    with pytest.raises(DomainError):
        supply.create_parts_request(a.a, lines, acting_user=f.staff(a.a))
    assert db.session.scalar(select(func.count(PartsRequest.id))) == 0


def test_a_line_for_another_agencys_order_is_refused(ctx, world):
    with unscoped("B's order"):
        foreign = f.make_order(world.b, world.line)
        part = f.catalog_of(world.line)["part"]
    with scoped(agency_scope(world.a.id)):
        with pytest.raises(DomainError):
            supply.create_parts_request(world.a, [{"part_id": part.id, "quantity": 1,
                                                   "reason": "work_order",
                                                   "work_order_id": foreign.id}],
                                                   acting_user=f.staff(world.a))
        own = f.make_order(world.a, world.line)
        request = supply.create_parts_request(world.a, [{
            "part_id": part.id, "quantity": 1, "reason": "work_order",
            "work_order_id": own.id}], acting_user=f.staff(world.a))
        assert _line(request).work_order_id == own.id


def test_approved_quantity_is_at_most_the_requested_one(a):
    request = f.make_request(a.a, a.line, quantity=3)
    line = _line(request)
    for quantity in (0, 4, -1, None):
        with pytest.raises(DomainError):
            supply.decide_parts_request(request, {line.id: {"decision": "approved",
                                                            "approved_quantity": quantity}},
                                                            acting_user=f.parts_desk())
    with pytest.raises(DomainError):
        supply.decide_parts_request(request, {line.id: {"decision": "rejected",
                                                        "reject_reason": "  "}},
                                                        acting_user=f.parts_desk())
    with pytest.raises(DomainError):
        supply.decide_parts_request(request, {}, acting_user=f.parts_desk())
    with pytest.raises(DomainError):
        supply.decide_parts_request(request, {line.id: {"decision": "maybe"}},
                                    acting_user=f.parts_desk())
    assert request.status == RequestStatus.SUBMITTED
    supply.decide_parts_request(request, {line.id: {"decision": "approved",
                                                    "approved_quantity": 2}},
                                                    acting_user=f.parts_desk())
    assert (request.status, line.approved_quantity) == (RequestStatus.APPROVED, 2)
    with pytest.raises(DomainError):
        supply.decide_parts_request(request, {line.id: {"decision": "approved",
                                                        "approved_quantity": 1}},
                                                        acting_user=f.parts_desk())


def test_a_fully_rejected_request_cannot_be_shipped(a):
    request = f.make_request(a.a, a.line)
    supply.decide_parts_request(request, {_line(request).id: {
        "decision": "rejected", "reject_reason": "库存不足"}}, acting_user=f.parts_desk())
    assert request.status == RequestStatus.REJECTED
    with pytest.raises(DomainError):
        supply.ship_parts_request(request, "顺丰", "SF1", acting_user=f.parts_desk())


def test_shipping_twice_and_receiving_before_shipping_are_refused(a):
    request = f.make_request(a.a, a.line, state="approved")
    line = _line(request)
    with pytest.raises(DomainError):
        supply.receive_parts_request(request, {line.id: {"received_quantity": 3}},
                                     acting_user=f.staff(request.agency))
    for carrier, tracking in (("", "SF1"), ("顺丰", ""), ("顺丰", "x" * 65)):
        with pytest.raises(DomainError):
            supply.ship_parts_request(request, carrier, tracking, acting_user=f.parts_desk())
    supply.ship_parts_request(request, "顺丰", "SF123", acting_user=f.parts_desk())
    with pytest.raises(DomainError):
        supply.ship_parts_request(request, "顺丰", "SF456", acting_user=f.parts_desk())
    assert request.tracking_number == "SF123"
    supply.receive_parts_request(request, {line.id: {"received_quantity": 3}},
                                 acting_user=f.staff(request.agency))
    with pytest.raises(DomainError):
        supply.receive_parts_request(request, {line.id: {"received_quantity": 3}},
                                     acting_user=f.staff(request.agency))
    assert f.give_stock(a.a, f.catalog_of(a.line)["part"], 0).quantity == 3


def test_receipt_with_discrepancy_needs_a_note_and_stocks_what_arrived(a):
    request = f.make_request(a.a, a.line, quantity=5, state="shipped")
    line = _line(request)
    for receipt in ({"received_quantity": 4}, {"received_quantity": 6},
                    {"received_quantity": -1}, {"received_quantity": None}):
        with pytest.raises(DomainError):
            supply.receive_parts_request(request, {line.id: receipt},
                                         acting_user=f.staff(request.agency))
    supply.receive_parts_request(request, {line.id: {"received_quantity": 4,
                                                     "discrepancy_note": "少发一件"}},
                                                     acting_user=f.staff(request.agency))
    assert line.has_discrepancy and line.discrepancy_note == "少发一件"
    assert f.give_stock(a.a, f.catalog_of(a.line)["part"], 0).quantity == 4


def test_rejected_lines_are_not_received(a):
    codes = f.catalog_of(a.line)
    request = supply.create_parts_request(a.a, [
        {"part_id": codes["part"].id, "quantity": 2, "reason": "stock"},
        {"part_id": codes["cheap"].id, "quantity": 50, "reason": "stock"}],
        acting_user=f.staff(a.a))
    first, second = supply._lines(request)
    supply.decide_parts_request(request, {
        first.id: {"decision": LineDecision.APPROVED, "approved_quantity": 2},
        second.id: {"decision": LineDecision.REJECTED, "reject_reason": "请使用通用件"}},
        acting_user=f.parts_desk())
    supply.ship_parts_request(request, "EMS", "E1", acting_user=f.parts_desk())
    with pytest.raises(DomainError):
        supply.receive_parts_request(request, {first.id: {"received_quantity": 2},
                                               second.id: {"received_quantity": 0}},
                                               acting_user=f.staff(request.agency))
    supply.receive_parts_request(request, {first.id: {"received_quantity": 2}},
                                 acting_user=f.staff(request.agency))
    assert second.received_quantity is None


# --- returns -----------------------------------------------------------------------------------


def test_a_return_is_shipped_once_then_inspected_once(a):
    ret = f.make_return(a.a, a.line)
    with pytest.raises(DomainError):
        supply.inspect_return(ret, True, acting_user=f.parts_desk())
    with pytest.raises(DomainError):
        supply.ship_return(ret, "顺丰", "", acting_user=f.staff(ret.agency))
    supply.ship_return(ret, "顺丰", "SF9", acting_user=f.staff(ret.agency))
    assert ret.status == ReturnStatus.SHIPPED and ret.shipped_on == local_today()
    with pytest.raises(DomainError):
        supply.ship_return(ret, "顺丰", "SF10", acting_user=f.staff(ret.agency))
    with pytest.raises(DomainError):
        supply.inspect_return(ret, False, "", acting_user=f.parts_desk())
    supply.inspect_return(ret, False, "非原装件", acting_user=f.parts_desk())
    assert (ret.status, ret.reject_reason) == (ReturnStatus.REJECTED, "非原装件")
    with pytest.raises(DomainError):
        supply.inspect_return(ret, True, acting_user=f.parts_desk())
    assert _audit_actions(ret) == ["part_return.shipped", "part_return.inspected"]


def test_overdue_returns_are_listed_for_both_sides(ctx, world):
    with unscoped("returns of two agencies"):
        late_a = f.make_return(world.a, world.line)
        on_time = f.make_return(world.a, world.line)
        late_b = f.make_return(world.b, world.line)
        shipped_late = f.make_return(world.a, world.line)
        for ret in (late_a, late_b, shipped_late):
            ret.due_on = local_today() - timedelta(days=1)
        supply.ship_return(shipped_late, "顺丰", "SF1", acting_user=f.staff(shipped_late.agency))
        db.session.flush()
        network = set(db.session.scalars(select(PartReturn.id).where(
            PartReturn.id.in_(select(queries.overdue_returns_statement().subquery().c.id)))))
    assert {late_a.id, late_b.id, shipped_late.id} <= network and on_time.id not in network
    with scoped(agency_scope(world.a.id)):
        mine = set(db.session.scalars(queries.overdue_returns_statement().with_only_columns(
            PartReturn.id)))
        assert mine == {late_a.id, shipped_late.id}
        assert queries.agency_figures(world.a.id)["overdue_returns"] == 1


def test_a_change_made_meanwhile_is_a_clear_error_not_a_second_write(a):
    from sqlalchemy import text

    request = f.make_request(a.a, a.line, state="approved")
    # Another request (another worker) shipped it in the meantime.
    db.session.execute(text("UPDATE parts_requests SET version = version + 1 "
                            "WHERE agency_id = :a AND id = :id"), {"a": a.a.id, "id": request.id})
    with pytest.raises(DomainError) as error:
        supply.ship_parts_request(request, "顺丰", "SF777", acting_user=f.parts_desk())
    assert "changed this record meanwhile" in error.value.message
