"""Checking a work order's input against every rule before anything is written.

Forms and imports hand the same plain dict to :func:`check_order_input`; it resolves ids to
catalog rows of the order's product line and raises DomainError (with the field) for the first
rule broken: identity and authorization, timestamps in order and not in the future, on-site
fields, engineers of the agency, catalog links, stock and what a completed order needs.
"""
import re
from decimal import Decimal

from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from certification.models import Engineer
from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from service import stock
from service.common import CLOCK_SKEW, db_id
from service.models import FaultCode, Part, RepairCode, WorkOrder, WorkOrderPart
from tenants.models import Agency, AgencyProductLine, ProductModel, ServiceType

NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-/.]{0,31}$")
SERIAL = re.compile(r"^[A-Z0-9][A-Z0-9\-/.]{2,63}$")
PHONE = re.compile(r"^[0-9+\- ()]{5,32}$")
MAX_PART_QUANTITY = 99
MAX_DISTANCE_KM = 2000
KM_STEP = Decimal("0.01")

TIME_LABELS = {"received_at": _l("Received"), "responded_at": _l("Responded"),
               "arrived_at": _l("Arrived on site"), "completed_at": _l("Completed")}


def normalize_serial(raw: str | None) -> str:
    return re.sub(r"\s+", "", raw or "").upper()


class Checked:
    """The input of one order, checked and resolved to catalog rows (nothing written yet)."""

    def __init__(self, data: dict, model: ProductModel, repair_codes: list[RepairCode],
                 parts: dict[int, tuple[Part, int]]):
        self.data, self.model, self.repair_codes, self.parts = data, model, repair_codes, parts


def check_order_input(agency: Agency, data: dict, order: WorkOrder | None = None) -> Checked:
    """Check one order's input against every rule; raises DomainError for the first problem."""
    data = _clean(data)
    _check_identity(agency, data, order)
    model = _check_product(agency, data)
    _check_times(data)
    _check_people(agency, data)
    repair_codes = _check_repair_codes(data, model.product_line_id)
    _check_fault_code(data, model.product_line_id)
    parts = _check_parts(data, model.product_line_id)
    if data.get("completed_at"):
        _check_completion(data, repair_codes)
    current = {p.part_id: p.quantity for p in order_parts(order)} if order else {}
    stock.check_available(agency.id, {pid: qty - current.get(pid, 0)
                                      for pid, (_part, qty) in parts.items()},
                          {pid: part for pid, (part, _qty) in parts.items()})
    return Checked(data, model, repair_codes, parts)


def _clean(data: dict) -> dict:
    out = dict(data)
    for key in ("number", "customer_name", "customer_phone", "customer_address"):
        out[key] = clean(out.get(key))
    for key in ("fault_description", "resolution"):
        out[key] = clean(out.get(key), multiline=True)
    out["serial_number"] = normalize_serial(clean(out.get("serial_number")))
    out["repair_code_ids"] = sorted(set(out.get("repair_code_ids") or []))
    out["is_first_time_fix"] = bool(out.get("is_first_time_fix", True))
    return out


def _check_identity(agency: Agency, data: dict, order: WorkOrder | None) -> None:
    number = data["number"]
    if number and not NUMBER.match(number):
        raise DomainError(_("Use up to 32 letters, digits and - _ / . for the order number."),
                          field="number")
    if number:
        taken = select(func.count(WorkOrder.id)).where(WorkOrder.agency_id == agency.id,
                                                       WorkOrder.number == number)
        if order is not None and order.id is not None:
            taken = taken.where(WorkOrder.id != order.id)
        if db.session.scalar(taken):
            raise DomainError(_("Order number %(number)s is already used.", number=number),
                              field="number")
    if data.get("service_type") not in {s.value for s in ServiceType}:
        raise DomainError(_("Choose a service type."), field="service_type")
    if data["service_type"] not in agency.service_type_list:
        raise DomainError(_("Your agency is not authorized for this service type."),
                          field="service_type")
    if not data["customer_name"] or len(data["customer_name"]) > 64:
        raise DomainError(_("Enter the customer's name (up to 64 characters)."),
                          field="customer_name")
    if not PHONE.match(data["customer_phone"]):
        raise DomainError(_("Enter a valid phone number."), field="customer_phone")
    if len(data["customer_address"]) > 300:
        raise DomainError(_("The address is too long."), field="customer_address")
    if not SERIAL.match(data["serial_number"]):
        raise DomainError(_("Enter the serial number (3 to 64 letters, digits, - / .)."),
                          field="serial_number")


def _check_product(agency: Agency, data: dict) -> ProductModel:
    model_id = db_id(data.get("product_model_id"))
    model = None if model_id is None else db.session.scalars(select(ProductModel).where(
        ProductModel.id == model_id)).one_or_none()
    if model is None:
        raise DomainError(_("Choose a product model."), field="product_model_id")
    authorized = db.session.scalar(select(func.count(AgencyProductLine.id)).where(
        AgencyProductLine.agency_id == agency.id,
        AgencyProductLine.product_line_id == model.product_line_id))
    if not authorized:
        raise DomainError(_("Your agency is not authorized for this product line."),
                          field="product_model_id")
    purchase = data.get("purchase_date")
    received = data.get("received_at")
    if purchase is not None and received is not None and purchase > clock.local_day(received):
        raise DomainError(_("The purchase date is after the order was received."),
                          field="purchase_date")
    return model


def _check_times(data: dict) -> None:
    if data.get("received_at") is None:
        raise DomainError(_("Enter when the order was received."), field="received_at")
    latest = clock.now() + CLOCK_SKEW
    if data["service_type"] != ServiceType.ONSITE and data.get("arrived_at"):
        raise DomainError(_("Only on-site repairs have an arrival time."), field="arrived_at")
    previous = "received_at"
    for name in ("received_at", "responded_at", "arrived_at", "completed_at"):
        value = data.get(name)
        if value is None:
            continue
        if value > latest:
            raise DomainError(_("%(moment)s cannot be in the future.",
                                moment=TIME_LABELS[name]), field=name)
        if value < data[previous]:
            raise DomainError(_("%(later)s cannot be before %(earlier)s.",
                                later=TIME_LABELS[name], earlier=TIME_LABELS[previous]),
                              field=name)
        previous = name
    distance = data.get("distance_km")
    if distance is None:
        return
    if data["service_type"] != ServiceType.ONSITE:
        raise DomainError(_("Only on-site repairs have a distance."), field="distance_km")
    if (not isinstance(distance, Decimal) or not distance.is_finite()
            or not 0 <= distance <= MAX_DISTANCE_KM or distance != distance.quantize(KM_STEP)):
        raise DomainError(_("Enter the distance in km, between 0 and %(max)s, with at most two "
                            "decimals.", max=MAX_DISTANCE_KM), field="distance_km")


def _check_people(agency: Agency, data: dict) -> None:
    if not data.get("engineer_id"):
        data["engineer_id"] = None
        return
    engineer_id = db_id(data["engineer_id"])
    found = None if engineer_id is None else db.session.execute(select(Engineer.id,
                                                                       Engineer.left_on).where(
        Engineer.id == engineer_id, Engineer.agency_id == agency.id)).one_or_none()
    if found is None:
        raise DomainError(_("Choose an engineer of your agency."), field="engineer_id")
    # Orders entered late may name an engineer who left since; work after that day cannot be
    # theirs (the service day: completion, else receipt).
    left_on = found.left_on
    if left_on is not None and left_on < clock.local_day(data.get("completed_at")
                                                   or data["received_at"]):
        raise DomainError(_("This engineer left your agency on %(day)s, before this service.",
                            day=format_date(left_on)), field="engineer_id")


def _check_repair_codes(data: dict, product_line_id: int) -> list[RepairCode]:
    ids = data["repair_code_ids"]
    if not ids:
        return []
    if any(db_id(i) is None for i in ids):
        raise DomainError(_("Choose repair codes of the order's product line."),
                          field="repair_code_ids")
    codes = list(db.session.scalars(select(RepairCode).where(RepairCode.id.in_(ids))
                                    .order_by(RepairCode.code)))
    if len(codes) != len(ids) or any(c.product_line_id != product_line_id for c in codes):
        raise DomainError(_("Choose repair codes of the order's product line."),
                          field="repair_code_ids")
    if any(not c.is_active for c in codes):
        raise DomainError(_("A chosen repair code is no longer in use."),
                          field="repair_code_ids")
    return codes


def _check_fault_code(data: dict, product_line_id: int) -> None:
    if not data.get("fault_code_id"):
        data["fault_code_id"] = None
        return
    fault_id = db_id(data["fault_code_id"])
    fault = None if fault_id is None else db.session.scalars(
        select(FaultCode).where(FaultCode.id == fault_id)).one_or_none()
    if fault is None or fault.product_line_id != product_line_id:
        raise DomainError(_("Choose a fault code of the order's product line."),
                          field="fault_code_id")


def _check_parts(data: dict, product_line_id: int) -> dict[int, tuple[Part, int]]:
    wanted: dict[int, int] = {}
    for part_id, quantity in data.get("parts") or []:
        if not isinstance(quantity, int) or not 1 <= quantity <= MAX_PART_QUANTITY:
            raise DomainError(_("Each part's quantity must be between 1 and %(max)s.",
                                max=MAX_PART_QUANTITY), field="parts")
        if db_id(part_id) is None:
            raise DomainError(_("Unknown part."), field="parts")
        wanted[part_id] = wanted.get(part_id, 0) + quantity
    if not wanted:
        return {}
    parts = {p.id: p for p in db.session.scalars(select(Part).where(Part.id.in_(wanted)))}
    for part_id in wanted:
        part = parts.get(part_id)
        if part is None:
            raise DomainError(_("Unknown part."), field="parts")
        if part.product_line_id != product_line_id:
            raise DomainError(_("Part %(number)s is not for the order's product line.",
                                number=part.part_number), field="parts")
    return {pid: (parts[pid], qty) for pid, qty in wanted.items()}


def _check_completion(data: dict, repair_codes: list) -> None:
    if not data.get("engineer_id"):
        raise DomainError(_("A completed order needs its engineer."), field="engineer_id")
    if data.get("responded_at") is None:
        raise DomainError(_("A completed order needs its response time."),
                          field="responded_at")
    if data["service_type"] == ServiceType.ONSITE:
        if data.get("arrived_at") is None:
            raise DomainError(_("A completed on-site repair needs its arrival time."),
                              field="arrived_at")
        if data.get("distance_km") is None:
            raise DomainError(_("A completed on-site repair needs its distance."),
                              field="distance_km")
    if data["service_type"] != ServiceType.PHONE and not repair_codes:
        raise DomainError(_("A completed repair needs at least one repair code."),
                          field="repair_code_ids")
    if not data["resolution"]:
        raise DomainError(_("Describe the resolution of a completed order."),
                          field="resolution")


def order_parts(order: WorkOrder | None) -> list[WorkOrderPart]:
    """The parts an order uses now (none for a new order)."""
    if order is None or order.id is None:
        return []
    return list(db.session.scalars(select(WorkOrderPart).where(
        WorkOrderPart.agency_id == order.agency_id, WorkOrderPart.work_order_id == order.id)))
