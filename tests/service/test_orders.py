"""The rules of work orders: warranty, timestamps, engineers, parts, certification, rework."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from portal.audit.models import AuditEntry
from portal.clock import add_months, local_day
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service import services
from service.common import is_in_warranty
from service.models import OrderStatus, PartReturn, PartStock, WorkOrder, WorkOrderPart
from tests.service import factories as f


@pytest.fixture
def a(ctx, world):
    """Agency A's scope, as its users have it."""
    with scoped(agency_scope(world.a.id)):
        yield world


def _count(model, **where) -> int:
    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    with unscoped("tests count rows of every agency"):
        return db.session.scalar(stmt)


def _audits(action_prefix="work_order") -> int:
    with unscoped("tests read the audit log"):
        return db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action.like(action_prefix + "%")))


# --- warranty ----------------------------------------------------------------------------------


def test_add_months_clamps_to_month_end():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 15), 14) == date(2027, 1, 15)


@pytest.mark.parametrize("purchase, service_day, months, expected", [
    (date(2025, 3, 10), date(2026, 3, 9), 12, True),    # last covered day
    (date(2025, 3, 10), date(2026, 3, 10), 12, False),  # first day out
    (date(2025, 3, 10), date(2025, 3, 10), 12, True),   # bought that day
    (date(2025, 3, 10), date(2025, 3, 9), 12, False),   # bought after the service day
    (None, date(2025, 3, 9), 12, False),                # no proof of purchase
    (date(2025, 3, 10), date(2025, 3, 10), 0, False),   # no warranty at all
])
def test_warranty_window(purchase, service_day, months, expected):
    assert is_in_warranty(purchase, months, service_day) is expected


def test_order_warranty_follows_the_models_months(a):
    model = f.model_of(a.line)
    model.warranty_months = 6
    received = f.ago(days=2)
    inside = f.make_order(a.a, a.line, received_at=received,
                          purchase_date=local_day(received) - timedelta(days=170))
    outside = f.make_order(a.a, a.line, received_at=received,
                           purchase_date=add_months(local_day(received), -6))
    unknown = f.make_order(a.a, a.line, received_at=received, purchase_date=None)
    assert (inside.is_in_warranty, outside.is_in_warranty, unknown.is_in_warranty) == (
        True, False, False)


def test_purchase_after_receipt_is_refused(a):
    data = f.order_data(a.line, purchase_date=local_day(f.ago(days=3)) + timedelta(days=1))
    with pytest.raises(DomainError) as error:
        services.create_work_order(a.a, data, acting_user=f.staff(a.a))
    assert error.value.field == "purchase_date"


# --- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, field", [
    ({"responded_at": f.ago(days=4)}, "responded_at"),
    ({"responded_at": f.ago(days=2), "completed_at": f.ago(days=2, hours=1)}, "completed_at"),
    ({"completed_at": f.ago(days=5)}, "completed_at"),
    ({"service_type": "onsite", "responded_at": f.ago(days=2),
      "arrived_at": f.ago(days=2, hours=2)}, "arrived_at"),
    ({"received_at": f.ago(days=-1)}, "received_at"),
    ({"received_at": None}, "received_at"),
])
def test_nothing_happens_before_it_was_received(a, changes, field):
    data = f.order_data(a.line, received_at=f.ago(days=3), **{
        k: v for k, v in changes.items() if k != "received_at"})
    if "received_at" in changes:
        data["received_at"] = changes["received_at"]
    with pytest.raises(DomainError) as error:
        services.create_work_order(a.a, data, acting_user=f.staff(a.a))
    assert error.value.field == field
    assert _count(WorkOrder, number=data["number"]) == 0


def test_arrival_and_distance_belong_to_on_site_repairs(a):
    with pytest.raises(DomainError) as error:
        services.create_work_order(a.a, f.order_data(a.line, arrived_at=f.ago(days=2)),
                                   acting_user=f.staff(a.a))
    assert error.value.field == "arrived_at"
    with pytest.raises(DomainError) as error:
        services.create_work_order(a.a, f.order_data(a.line, distance_km=Decimal("3")),
                                   acting_user=f.staff(a.a))
    assert error.value.field == "distance_km"
    for bad in (Decimal("-1"), Decimal("2001"), Decimal("1.234"), Decimal("NaN")):
        with pytest.raises(DomainError):
            services.create_work_order(a.a, f.order_data(a.line, service_type="onsite",
                                                         distance_km=bad), acting_user=f.staff(a.a))


def test_database_refuses_completion_before_receipt(a):
    order = f.make_order(a.a, a.line)
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(text(
                "UPDATE work_orders SET status = 'completed', completed_at = :t "
                "WHERE agency_id = :a AND id = :id"),
                {"t": "2000-01-01 00:00:00.000000", "a": a.a.id, "id": order.id})


def test_completion_needs_engineer_response_and_repair(a):
    engineer = f.make_engineer(a.a, a.line)
    base = f.completed_data(a.line, engineer)
    for missing, field in (("engineer_id", "engineer_id"), ("responded_at", "responded_at"),
                           ("repair_code_ids", "repair_code_ids"), ("resolution", "resolution")):
        data = dict(base, **{missing: [] if missing == "repair_code_ids" else None})
        with pytest.raises(DomainError) as error:
            services.create_work_order(a.a, data, acting_user=f.staff(a.a))
        assert error.value.field == field
    onsite = dict(base, service_type="onsite", arrived_at=base["responded_at"])
    with pytest.raises(DomainError) as error:
        services.create_work_order(a.a, onsite, acting_user=f.staff(a.a))
    assert error.value.field == "distance_km"
    phone = dict(base, service_type="phone", repair_code_ids=[])
    assert services.create_work_order(a.a, phone,
                                      acting_user=f.staff(a.a)).status == OrderStatus.COMPLETED


# --- numbers, engineers and catalog links ------------------------------------------------------


def test_order_numbers_are_unique_per_agency(ctx, world):
    with unscoped("two agencies"):
        f.make_order(world.a, world.line, number="SAME-1")
        f.make_order(world.b, world.line, number="SAME-1")
        with pytest.raises(DomainError) as error:
            f.make_order(world.a, world.line, number="SAME-1")
        assert error.value.field == "number"


def test_numbers_are_given_when_left_empty(a):
    first = f.make_order(a.a, a.line, number="")
    second = f.make_order(a.a, a.line, number="")
    assert first.number.startswith("WO") and first.number != second.number


def test_engineer_of_another_agency_is_refused(ctx, world):
    with unscoped("make B's engineer"):
        foreign = f.make_engineer(world.b, world.line)
    with scoped(agency_scope(world.a.id)):
        with pytest.raises(DomainError) as error:
            services.create_work_order(world.a, f.order_data(world.line,
                                                             engineer_id=foreign.id),
                                                             acting_user=f.staff(world.a))
        assert error.value.field == "engineer_id"
        # Even past the service, the composite key refuses it.
        order = f.make_order(world.a, world.line)
        with pytest.raises(IntegrityError):
            with db.session.begin_nested():
                db.session.execute(text("UPDATE work_orders SET engineer_id = :e "
                                        "WHERE agency_id = :a AND id = :id"),
                                   {"e": foreign.id, "a": world.a.id, "id": order.id})


def test_an_engineer_who_left_takes_no_new_orders(a):
    with unscoped("the engineer record"):
        engineer = f.make_engineer(a.a, a.line)
        engineer.status, engineer.left_on = "left", local_day(f.ago(days=10))
        db.session.flush()
    before = (_count(WorkOrder), _audits())
    with pytest.raises(DomainError) as error:
        services.create_work_order(a.a, f.order_data(a.line, engineer_id=engineer.id,
                                                     received_at=f.ago(days=3)),
                                                     acting_user=f.staff(a.a))
    assert error.value.field == "engineer_id" and "left your agency" in error.value.message
    assert (_count(WorkOrder), _audits()) == before
    # Received while they still worked here, but completed after they left: not theirs.
    with pytest.raises(DomainError):
        services.create_work_order(a.a, f.completed_data(a.line, engineer,
                                                         received_at=f.ago(days=12)),
                                                         acting_user=f.staff(a.a))
    assert (_count(WorkOrder), _audits()) == before
    # Work done while they still worked here (entered late, or imported) is theirs.
    order = services.create_work_order(a.a, f.completed_data(
        a.line, engineer, received_at=f.ago(days=12), responded_at=f.ago(days=11),
        completed_at=f.ago(days=10)), acting_user=f.staff(a.a))
    assert order.engineer_id == engineer.id and order.status == "completed"


def test_unknown_and_unauthorized_catalog_links_are_refused(a):
    with unscoped("another product line"):
        other_line = f.make_product_line()
        other = f.make_catalog(other_line)
    codes = f.catalog_of(a.line)
    cases = [({"product_model_id": 987654}, "product_model_id"),
             ({"product_model_id": f.model_of(other_line).id}, "product_model_id"),
             ({"fault_code_id": other["fault"].id}, "fault_code_id"),
             ({"repair_code_ids": [other["repair"].id]}, "repair_code_ids"),
             ({"repair_code_ids": [987654]}, "repair_code_ids"),
             ({"parts": [(other["part"].id, 1)]}, "parts"),
             ({"parts": [(987654, 1)]}, "parts"),
             ({"parts": [(codes["part"].id, 0)]}, "parts"),
             ({"parts": [(codes["part"].id, -2)]}, "parts"),
             ({"service_type": "teleport"}, "service_type"),
             ({"customer_phone": "call me"}, "customer_phone"),
             ({"serial_number": "!"}, "serial_number"),
             ({"number": "bad number with spaces"}, "number")]
    for changes, field in cases:
        with pytest.raises(DomainError) as error:
            services.create_work_order(a.a, f.order_data(a.line, **changes),
                                       acting_user=f.staff(a.a))
        assert error.value.field == field, changes


# --- parts and stock ---------------------------------------------------------------------------


def test_parts_used_come_from_stock(a):
    codes = f.catalog_of(a.line)
    part = codes["part"]
    with pytest.raises(DomainError) as error:
        f.make_order(a.a, a.line, parts=[(part.id, 1)])
    assert error.value.field == "parts"
    f.give_stock(a.a, part, 3)
    order = f.make_order(a.a, a.line, parts=[(part.id, 2)])
    stock = f.give_stock(a.a, part, 0)
    assert (stock.quantity, stock.used_total, stock.received_total) == (1, 2, 3)
    with pytest.raises(DomainError):
        f.make_order(a.a, a.line, parts=[(part.id, 2)])
    # Editing gives back and takes the difference only.
    data = f.order_data(a.line, number=order.number, serial_number=order.serial_number,
                        parts=[(part.id, 3)])
    services.update_work_order(a.a, order, data, acting_user=f.staff(a.a))
    db.session.refresh(stock)
    assert stock.quantity == 0
    services.cancel_work_order(order, "客户取消", acting_user=f.staff(order.agency))
    db.session.refresh(stock)
    assert (stock.quantity, stock.used_total) == (3, 0)
    assert _count(WorkOrderPart, work_order_id=order.id) == 0


def test_stock_never_goes_below_zero_in_the_database(a):
    stock = f.give_stock(a.a, f.catalog_of(a.line)["part"], 1)
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(update(PartStock).where(PartStock.agency_id == a.a.id,
                                                       PartStock.id == stock.id)
                               .values(quantity=-1, used_total=2))


def test_another_agencys_stock_does_not_count(ctx, world):
    part = None
    with unscoped("B receives parts"):
        part = f.catalog_of(world.line)["part"]
        f.give_stock(world.b, part, 5)
    with scoped(agency_scope(world.a.id)):
        with pytest.raises(DomainError):
            f.make_order(world.a, world.line, parts=[(part.id, 1)])


# --- returns -----------------------------------------------------------------------------------


def test_returnable_parts_in_warranty_create_return_obligations(a):
    codes = f.catalog_of(a.line)
    f.give_stock(a.a, codes["part"], 2)
    f.give_stock(a.a, codes["cheap"], 5)
    engineer = f.make_engineer(a.a, a.line)
    order = services.create_work_order(a.a, f.completed_data(
        a.line, engineer, parts=[(codes["part"].id, 2), (codes["cheap"].id, 5)]),
        acting_user=f.staff(a.a))
    returns = list(db.session.scalars(select(PartReturn).where(
        PartReturn.work_order_id == order.id)))
    assert len(returns) == 1
    assert returns[0].part_id == codes["part"].id and returns[0].quantity == 2
    assert returns[0].due_on == order.service_date + timedelta(days=30)
    assert returns[0].unit_price == Decimal("860.50")
    f.give_stock(a.a, codes["part"], 1)
    out = services.create_work_order(a.a, f.completed_data(
        a.line, engineer, purchase_date=None, parts=[(codes["part"].id, 1)]),
        acting_user=f.staff(a.a))
    assert _count(PartReturn, work_order_id=out.id) == 0


def test_return_due_days_are_configurable(a, app):
    app.config["SERVICE_RETURN_DUE_DAYS"] = 10
    try:
        ret = f.make_return(a.a, a.line)
        order = db.session.scalars(select(WorkOrder).where(WorkOrder.id == ret.work_order_id)
                                   ).one()
        assert ret.due_on == order.service_date + timedelta(days=10)
    finally:
        del app.config["SERVICE_RETURN_DUE_DAYS"]


# --- certification -----------------------------------------------------------------------------


def test_engineer_certification_is_stored_for_the_service_date(a):
    engineer = f.make_engineer(a.a, a.line)
    uncertified = f.make_order(a.a, a.line, completed=True, engineer=engineer)
    assert uncertified.is_engineer_certified is False
    day = local_day(f.ago(days=1))
    cert = f.certify(engineer, a.line, day - timedelta(days=30), day)
    certified = f.make_order(a.a, a.line, completed=True, engineer=engineer)
    assert certified.is_engineer_certified is True
    # Expired before the service date, or revoked by then: not certified.
    cert.valid_to = day - timedelta(days=1)
    assert f.make_order(a.a, a.line, completed=True,
                        engineer=engineer).is_engineer_certified is False
    cert.valid_to, cert.revoked_on = day, day
    assert f.make_order(a.a, a.line, completed=True,
                        engineer=engineer).is_engineer_certified is False


def test_certificate_of_another_product_line_does_not_count(a):
    with unscoped("another line"):
        other = f.make_product_line()
    engineer = f.make_engineer(a.a, a.line)
    day = local_day(f.ago(days=1))
    f.certify(engineer, other, day - timedelta(days=30), day + timedelta(days=300))
    assert f.make_order(a.a, a.line, completed=True,
                        engineer=engineer).is_engineer_certified is False


# --- rework ------------------------------------------------------------------------------------


def _completed(a, engineer, serial, completed_days_ago, **kw):
    received = f.ago(days=completed_days_ago + 1)
    return services.create_work_order(a.a, f.completed_data(
        a.line, engineer, serial_number=serial, received_at=received,
        responded_at=received + timedelta(hours=1), completed_at=f.ago(days=completed_days_ago),
        **kw), acting_user=f.staff(a.a))


def test_repeat_repair_within_30_days_is_rework(a):
    engineer = f.make_engineer(a.a, a.line)
    first = _completed(a, engineer, "SN-REPEAT", 20)
    again = f.make_order(a.a, a.line, serial_number="sn-repeat", received_at=f.ago(days=2))
    assert again.is_rework and again.rework_of_id == first.id
    other = f.make_order(a.a, a.line, serial_number="SN-OTHER", received_at=f.ago(days=2))
    assert not other.is_rework


def test_repeat_after_30_days_is_no_rework(a):
    engineer = f.make_engineer(a.a, a.line)
    _completed(a, engineer, "SN-OLD", 40)
    later = f.make_order(a.a, a.line, serial_number="SN-OLD", received_at=f.ago(days=5))
    assert not later.is_rework


def test_phone_consultations_neither_start_nor_count_as_rework(a):
    engineer = f.make_engineer(a.a, a.line)
    _completed(a, engineer, "SN-PHONE", 10, service_type="phone", repair_code_ids=[])
    repair = f.make_order(a.a, a.line, serial_number="SN-PHONE", received_at=f.ago(days=2))
    assert not repair.is_rework
    _completed(a, engineer, "SN-PHONE2", 10)
    call = f.make_order(a.a, a.line, service_type="phone", serial_number="SN-PHONE2",
                        received_at=f.ago(days=2))
    assert not call.is_rework


def test_rework_is_judged_within_the_agency(ctx, world):
    with unscoped("two agencies repair the same product"):
        engineer = f.make_engineer(world.b, world.line)
        services.create_work_order(world.b, f.completed_data(world.line, engineer,
                                                             serial_number="SN-MOVED"),
                                                             acting_user=f.staff(world.b))
    with scoped(agency_scope(world.a.id)):
        order = f.make_order(world.a, world.line, serial_number="SN-MOVED",
                             received_at=f.ago(hours=2))
        assert not order.is_rework


def test_an_earlier_repair_entered_later_marks_the_later_order(a):
    engineer = f.make_engineer(a.a, a.line)
    later = f.make_order(a.a, a.line, serial_number="SN-LATE", received_at=f.ago(days=2))
    assert not later.is_rework
    earlier = _completed(a, engineer, "SN-LATE", 10)
    db.session.refresh(later)
    assert later.is_rework and later.rework_of_id == earlier.id


def test_cancelled_orders_do_not_count(a):
    order = f.make_order(a.a, a.line, serial_number="SN-CXL")
    services.cancel_work_order(order, "客户取消", acting_user=f.staff(order.agency))
    assert order.status == OrderStatus.CANCELLED
    with pytest.raises(DomainError):
        services.cancel_work_order(order, "again", acting_user=f.staff(order.agency))
    with pytest.raises(DomainError):
        services.update_work_order(a.a, order, f.order_data(a.line), acting_user=f.staff(a.a))


# --- state and audit ---------------------------------------------------------------------------


def test_completed_orders_are_locked(a):
    order = f.make_order(a.a, a.line, completed=True)
    with pytest.raises(DomainError):
        services.update_work_order(a.a, order, f.order_data(a.line), acting_user=f.staff(a.a))
    with pytest.raises(DomainError):
        services.cancel_work_order(order, "too late", acting_user=f.staff(order.agency))


def test_every_order_change_writes_one_audit_entry(a):
    before = _audits()
    order = f.make_order(a.a, a.line)
    assert _audits() == before + 1
    engineer = f.make_engineer(a.a, a.line)
    services.update_work_order(a.a, order, f.completed_data(
        a.line, engineer, number=order.number, serial_number=order.serial_number),
        acting_user=f.staff(a.a))
    assert _audits() == before + 2
    assert order.status == OrderStatus.COMPLETED
    with unscoped("the audit log is HQ's"):
        entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "work_order.completed"
    assert "13812345678" not in str(entry.after)  # the customer's phone is masked


def test_a_refused_order_writes_nothing(a):
    before_orders, before_audit = _count(WorkOrder), _audits()
    with pytest.raises(DomainError):
        services.create_work_order(a.a, f.order_data(a.line, customer_name=""),
                                   acting_user=f.staff(a.a))
    assert (_count(WorkOrder), _audits()) == (before_orders, before_audit)
