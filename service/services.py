"""Work orders: create, edit, complete and cancel, with the rules settlement relies on.

Every derived field is computed here when an order is saved: warranty status, service date,
the engineer's certification on that date, rework links, stock taken for parts used and the
defective-part return obligations of a completed in-warranty order.

The changes are transitions (portal.transitions) of :class:`WorkOrder`: ``work_order.created``
(open), ``work_order.updated`` (still open), ``work_order.completed`` (new or open →
completed) and ``work_order.cancelled``; :func:`create_work_order` and
:func:`update_work_order` choose between them by the input's completion time.
"""
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from certification.models import Engineer
from certification.queries import valid_certificate_exists
from portal.audit.services import changes, snapshot
from portal.clock import local_day
from portal.clock import now as clock_now
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.numbering import next_number
from portal.text import clean
from portal.transitions import describe, note, transition
from service import policy, stock
from service.common import db_id, is_in_warranty, return_due_days, rework_days
from service.models import (
    ORDER_STATUS_LABELS,
    OrderStatus,
    Part,
    PartReturn,
    RepairCode,
    WorkOrder,
    WorkOrderPart,
    WorkOrderRepair,
    mask_name,
    mask_phone,
)
from service.order_checks import (  # noqa: F401 - check_order_input is part of the API
    Checked,
    check_order_input,
    normalize_serial,
    order_parts,
)
from tenants.models import Agency, ProductModel, ServiceType

describe(WorkOrder, _l("work order"), lambda o: ORDER_STATUS_LABELS.get(o.status, o.status))

# Fields copied from the input onto the order as they are.
PLAIN_FIELDS = ("service_type", "customer_name", "customer_phone", "customer_address",
                "serial_number", "purchase_date", "received_at", "responded_at", "arrived_at",
                "completed_at", "distance_km", "engineer_id", "fault_code_id",
                "fault_description", "resolution", "is_first_time_fix")


# --- writing ----------------------------------------------------------------------------------


def next_order_number(agency_id: int, day) -> str:
    """``WO20261204-0001``: the agency's next free number of the local day."""
    return next_number(WorkOrder.number, f"WO{day:%Y%m%d}-", width=4, agency_id=agency_id)


def write_order(agency: Agency, checked: Checked, order: WorkOrder | None = None, *,
                acting_user=None) -> dict:
    """Write a checked order (new when `order` is None); returns what changed besides it.

    No audit entry: the transition (or the import) that calls it writes one.
    """
    data = checked.data
    number = data["number"] or (order.number if order is not None else None) or \
        next_order_number(agency.id, local_day(data["received_at"]))
    if order is None:
        order = WorkOrder(agency_id=agency.id)
    if order.id is None:
        order.created_by_id = getattr(acting_user, "id", None)
    order.number = number
    for key in PLAIN_FIELDS:
        setattr(order, key, data.get(key))
    order.product_model_id = checked.model.id
    order.product_line_id = checked.model.product_line_id
    order.status = OrderStatus.COMPLETED if order.completed_at else OrderStatus.OPEN
    order.service_date = local_day(order.completed_at or order.received_at)
    order.is_in_warranty = is_in_warranty(order.purchase_date, checked.model.warranty_months,
                                          local_day(order.received_at))
    order.is_engineer_certified = _engineer_certified(order)
    db.session.add(order)
    db.session.flush()
    _sync_repairs(order, checked.repair_codes)
    used = _sync_parts(order, checked.parts)
    origin = find_rework_origin(order)
    order.is_rework, order.rework_of_id = origin is not None, origin.id if origin else None
    effects = {"order": order, "parts": used, "reworks": [], "returns": []}
    if order.status == OrderStatus.COMPLETED:
        effects["reworks"] = mark_later_reworks(order)
        effects["returns"] = _create_returns(order, used, checked.parts)
    db.session.flush()
    return effects


def assign_engineer(order: WorkOrder, engineer_id, *, field: str = "engineer_id") -> None:
    """Put an engineer of the order's agency, still employed, on an open order (dispatch's
    appointment); no audit entry: the caller's transition writes it."""
    found = None if db_id(engineer_id) is None else db.session.execute(
        select(Engineer.id, Engineer.left_on).where(
            Engineer.id == db_id(engineer_id), Engineer.agency_id == order.agency_id)
    ).one_or_none()
    if found is None:
        raise DomainError(_("Choose an engineer of your agency."), field=field)
    if found.left_on is not None and found.left_on < local_day(clock_now()):
        raise DomainError(_("This engineer has left your agency."), field=field)
    order.engineer_id = found.id
    order.is_engineer_certified = _engineer_certified(order)


def _engineer_certified(order: WorkOrder) -> bool:
    if not order.engineer_id:
        return False
    return bool(db.session.scalar(select(valid_certificate_exists(
        order.engineer_id, order.product_line_id, order.service_date))))


def _sync_repairs(order: WorkOrder, codes: list[RepairCode]) -> None:
    existing = {r.repair_code_id: r for r in db.session.scalars(select(WorkOrderRepair).where(
        WorkOrderRepair.agency_id == order.agency_id,
        WorkOrderRepair.work_order_id == order.id))}
    wanted = {c.id: c for c in codes}
    for code_id, row in existing.items():
        if code_id not in wanted:
            db.session.delete(row)
    for code_id, code in wanted.items():
        if code_id not in existing:
            db.session.add(WorkOrderRepair(agency_id=order.agency_id, work_order_id=order.id,
                                           repair_code_id=code_id,
                                           standard_hours=code.standard_hours))


def _sync_parts(order: WorkOrder, wanted: dict[int, tuple[Part, int]]) -> list[WorkOrderPart]:
    existing = {p.part_id: p for p in order_parts(order)}
    for part_id, row in existing.items():
        if part_id not in wanted:
            stock.take(order.agency_id, part_id, -row.quantity)
            db.session.delete(row)
    rows = []
    for part_id, (part, quantity) in wanted.items():
        row = existing.get(part_id)
        delta = quantity - (row.quantity if row else 0)
        if delta:
            stock.take(order.agency_id, part_id, delta, part=part)
        if row is None:
            row = WorkOrderPart(agency_id=order.agency_id, work_order_id=order.id,
                                part_id=part_id, quantity=quantity, unit_price=part.unit_price)
            db.session.add(row)
        row.quantity = quantity
        rows.append(row)
    db.session.flush()
    return rows


def find_rework_origin(order: WorkOrder) -> WorkOrder | None:
    """The completed repair this order repeats, if any.

    Rework (返修) is judged within the agency's own orders: the same serial number may
    legitimately reach another agency (the customer moved), whose repair is not this agency's
    rework. Phone consultations are no repairs: they neither start nor count as a rework.
    """
    if order.service_type == ServiceType.PHONE:
        return None
    window = timedelta(days=rework_days())
    return db.session.scalars(
        select(WorkOrder).where(
            WorkOrder.agency_id == order.agency_id,
            WorkOrder.serial_number == order.serial_number,
            WorkOrder.id != order.id,
            WorkOrder.status == OrderStatus.COMPLETED,
            WorkOrder.service_type != ServiceType.PHONE,
            WorkOrder.completed_at <= order.received_at,
            WorkOrder.completed_at >= order.received_at - window,
        ).order_by(WorkOrder.completed_at.desc(), WorkOrder.id.desc()).limit(1)
    ).first()


def mark_later_reworks(order: WorkOrder) -> list[int]:
    """Orders received after this one completed (entered or imported out of order) repeat it."""
    if order.service_type == ServiceType.PHONE:
        return []
    window = timedelta(days=rework_days())
    later = list(db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == order.agency_id,
        WorkOrder.serial_number == order.serial_number,
        WorkOrder.id != order.id,
        WorkOrder.is_rework.is_(False),
        WorkOrder.status != OrderStatus.CANCELLED,
        WorkOrder.service_type != ServiceType.PHONE,
        WorkOrder.received_at >= order.completed_at,
        WorkOrder.received_at <= order.completed_at + window,
    )))
    for other in later:
        other.is_rework, other.rework_of_id = True, order.id
    return [o.id for o in later]


def _create_returns(order: WorkOrder, used: list[WorkOrderPart],
                    parts: dict[int, tuple[Part, int]]) -> list[int]:
    """Each returnable part used on a completed in-warranty order goes back to HQ."""
    if not order.is_in_warranty:
        return []
    due = order.service_date + timedelta(days=return_due_days())
    created = []
    for row in used:
        if not parts[row.part_id][0].is_returnable:
            continue
        obligation = PartReturn(agency_id=order.agency_id, work_order_part_id=row.id,
                                work_order_id=order.id, part_id=row.part_id,
                                quantity=row.quantity, unit_price=row.unit_price, due_on=due)
        db.session.add(obligation)
        created.append(obligation)
    db.session.flush()
    return [r.id for r in created]


def order_snapshot(order: WorkOrder, effects: dict | None = None) -> dict:
    out = snapshot(order)
    out["customer_name"] = mask_name(order.customer_name)
    out["customer_phone"] = mask_phone(order.customer_phone)
    out.pop("customer_address", None)
    out.pop("updated_at", None)
    out.pop("version", None)
    if effects:
        out["parts"] = sorted((p.part_id, p.quantity) for p in effects["parts"])
        out["repair_code_ids"] = sorted(
            db.session.scalars(select(WorkOrderRepair.repair_code_id).where(
                WorkOrderRepair.agency_id == order.agency_id,
                WorkOrderRepair.work_order_id == order.id)))
        if effects["reworks"]:
            out["marked_rework"] = effects["reworks"]
        if effects["returns"]:
            out["return_ids"] = effects["returns"]
    return out


# --- the services ---------------------------------------------------------------------------


def create_work_order(agency: Agency, data: dict, *, acting_user) -> WorkOrder:
    """Create an order (completed at once when `completed_at` is given).

    Raises DomainError for any rule the input breaks; nothing is written then.
    """
    made = _complete_new if data.get("completed_at") else _open_new
    return made(agency, data, acting_user=acting_user)


@transition("work_order.created", WorkOrder, label=_l("Work order created"),
            permission=policy.EDIT_ORDER, creates=True, target=OrderStatus.OPEN)
def _open_new(agency: Agency, data: dict, *, acting_user) -> WorkOrder:
    return _write_new(agency, data, acting_user)


@transition("work_order.completed", WorkOrder, label=_l("Work order completed"),
            permission=policy.EDIT_ORDER, source={OrderStatus.OPEN},
            target=OrderStatus.COMPLETED, wrong_state=_l("Only open orders can be changed."))
def _complete(order: WorkOrder, agency: Agency, data: dict, *, acting_user) -> WorkOrder:
    """An open order (or a new one, not yet saved) completed."""
    if order.id is None:
        return _write_new(agency, data, acting_user, order)
    return _write_changes(agency, order, data)


def _complete_new(agency: Agency, data: dict, *, acting_user) -> WorkOrder:
    new = WorkOrder(agency_id=agency.id, status=OrderStatus.OPEN)
    return _complete(new, agency, data, acting_user=acting_user)


def check_line_choice(data: dict) -> None:
    """A form names the product line as well as the model: they must agree (the line is the
    model's when not named). Raises DomainError on the model's field."""
    line_id, model_id = db_id(data.get("product_line_id")), db_id(data.get("product_model_id"))
    if line_id is None or model_id is None:
        return
    model_line = db.session.scalar(select(ProductModel.product_line_id).where(
        ProductModel.id == model_id))
    if model_line is not None and model_line != line_id:
        raise DomainError(_("This model is not of the chosen product line."),
                          field="product_model_id")


def _check(agency: Agency, data: dict, order: WorkOrder | None = None) -> Checked:
    check_line_choice(data)
    return check_order_input(agency, data, order)


def _write_new(agency: Agency, data: dict, acting_user, new: WorkOrder | None = None
               ) -> WorkOrder:
    effects = write_order(agency, _check(agency, data), new, acting_user=acting_user)
    order = effects["order"]
    note(record=order, after=order_snapshot(order, effects))
    return order


def update_work_order(agency: Agency, order: WorkOrder, data: dict, *, acting_user) -> None:
    """Change an open order, completing it when `completed_at` is given.

    Raises DomainError when the order is no longer open or the input breaks a rule.
    """
    change = _complete if data.get("completed_at") else _update
    change(order, agency, data, acting_user=acting_user)


@transition("work_order.updated", WorkOrder, label=_l("Work order changed"),
            permission=policy.EDIT_ORDER, source={OrderStatus.OPEN},
            wrong_state=_l("Only open orders can be changed."))
def _update(order: WorkOrder, agency: Agency, data: dict, *, acting_user) -> WorkOrder:
    return _write_changes(agency, order, data)


def _write_changes(agency: Agency, order: WorkOrder, data: dict) -> WorkOrder:
    before = order_snapshot(order, _effects_now(order))
    effects = write_order(agency, _check(agency, data, order), order)
    old, new = changes(before, order_snapshot(order, effects))
    note(before=old, after=new)
    return order


def _effects_now(order: WorkOrder) -> dict:
    return {"parts": order_parts(order), "reworks": [], "returns": []}


@transition("work_order.cancelled", WorkOrder, label=_l("Work order cancelled"),
            permission=policy.CANCEL_ORDER, source={OrderStatus.OPEN},
            target=OrderStatus.CANCELLED, wrong_state=_l("Only open orders can be cancelled."))
def cancel_work_order(order: WorkOrder, reason: str, *, acting_user) -> None:
    """Cancel an open order; its parts go back to stock. Raises DomainError otherwise."""
    reason = clean(reason, multiline=True)
    if not 2 <= len(reason) <= 2000:
        raise DomainError(_("Give a reason (2 to 2000 characters)."), field="reason")
    returned = []
    for row in order_parts(order):
        stock.take(order.agency_id, row.part_id, -row.quantity)
        returned.append((row.part_id, row.quantity))
        db.session.delete(row)
    order.cancel_reason = reason
    order.is_rework, order.rework_of_id = False, None
    note(before={"status": OrderStatus.OPEN.value},
         after={"status": OrderStatus.CANCELLED.value, "parts_returned_to_stock": returned},
         reason=reason)
