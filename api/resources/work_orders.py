"""Work orders: the agencies' systems read their orders with the SLA milestones and the current
appointment, and record what the order pages record (arrival, diagnosis, completion,
cancellation, the appointment); HQ's readers read every order (the regional manager the
region's), engineers the orders assigned to them, as on the pages.

Every change names the version read (``If-Match``: the order's ETag, which moves with the order
and with its current appointment); send an ``Idempotency-Key`` so a retry after a timeout gets
the first answer again. The changes run the order page's services (service.services for the
order, dispatch.appointments for the visit): the same rules, the same SLA clocks.
"""
from flask import abort
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.core import (
    PageArgs,
    api_allow,
    api_performs,
    idempotent,
    if_match,
    page,
    page_schema,
    perform,
)
from api.openapi import needs_if_match, sends_etag
from dispatch import appointments, sla
from dispatch.appointments import Appointment, Kept, Reschedule
from dispatch.views_offers import ORDER_READERS
from portal import clock
from portal.extensions import db
from portal.tenancy import get_or_404
from service import queries, services
from service.models import OrderStatus, WorkOrder, WorkOrderPart, WorkOrderRepair
from service.policy import EVERYONE
from service.views import load_order, sees_customer
from tenants.models import Agency, ServiceType

blp = Blueprint("api_work_orders", __name__, url_prefix="/api/v1/work-orders",
                description="Work orders with their SLA milestones and appointment (the agency "
                            "records the work; HQ reads).")

KM = {"as_string": True, "places": 2}  # out: 12.50; in: as sent (the rule checks it)


# --- schemas ----------------------------------------------------------------------------------


class MilestoneOut(Schema):
    milestone = fields.String(required=True, metadata={"enum": [m.value for m in sla.Milestone]})
    state = fields.String(required=True, metadata={
        "enum": [s.value for s in sla.ClockState],
        "description": "on_time, warning, breached, breached_2 (escalated), paused, met or "
                       "met_late."})
    started_at = fields.DateTime(required=True, metadata={"description": "The call."})
    warn_at = fields.DateTime(required=True)
    due_at = fields.DateTime(required=True)
    escalate_at = fields.DateTime(required=True)
    met_at = fields.DateTime(allow_none=True)


class AppointmentOut(Schema):
    id = fields.Integer(required=True)
    engineer_id = fields.Integer(required=True)
    window_from = fields.DateTime(required=True)
    window_to = fields.DateTime(required=True)
    booked_at = fields.DateTime(required=True)
    customer_later = fields.Boolean(required=True, metadata={
        "description": "The customer asked for a later date: the next milestone's clock "
                       "waits until the window opens."})
    reason = fields.String(required=True, metadata={
        "enum": ["", *(r.value for r in Reschedule)],
        "description": "Why it moved (empty for the first booking)."})
    note = fields.String(required=True)
    kept = fields.String(allow_none=True, metadata={
        "enum": [k.value for k in Kept],
        "description": "Was the window kept (on-site: the arrival decides)?"})


class PartOut(Schema):
    part_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.Decimal(as_string=True, required=True)


class WorkOrderSummary(Schema):
    """An order as the list shows it (the customer masked, as on the list page)."""

    id = fields.Integer(required=True)
    agency_id = fields.Integer(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in OrderStatus]})
    service_type = fields.String(required=True,
                                 metadata={"enum": [t.value for t in ServiceType]})
    customer_name = fields.String(attribute="masked_customer_name", required=True)
    customer_phone = fields.String(attribute="masked_customer_phone", required=True)
    product_line_id = fields.Integer(required=True)
    product_model_id = fields.Integer(required=True)
    serial_number = fields.String(required=True)
    purchase_date = fields.Date(allow_none=True)
    is_in_warranty = fields.Boolean(required=True)
    received_at = fields.DateTime(required=True)
    responded_at = fields.DateTime(allow_none=True)
    arrived_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    service_date = fields.Date(required=True)
    distance_km = fields.Decimal(allow_none=True, **KM)
    engineer_id = fields.Integer(allow_none=True)
    is_engineer_certified = fields.Boolean(required=True)
    fault_code_id = fields.Integer(allow_none=True)
    fault_description = fields.String(required=True)
    resolution = fields.String(required=True)
    is_first_time_fix = fields.Boolean(required=True)
    is_rework = fields.Boolean(required=True)
    rework_of_id = fields.Integer(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


class WorkOrderOut(WorkOrderSummary):
    """One order, as its pages show it to the reader."""

    customer_name = fields.String(required=True, metadata={
        "description": "In full for the agency and HQ; masked for the regional manager."})
    customer_phone = fields.String(required=True)
    customer_address = fields.String(allow_none=True, metadata={
        "description": "Null when the reader sees the customer masked."})
    repair_code_ids = fields.List(fields.Integer(), required=True)
    parts = fields.List(fields.Nested(PartOut), required=True)
    request_number = fields.String(allow_none=True, metadata={
        "description": "The service request it was dispatched from (null: entered by the "
                       "agency)."})
    milestones = fields.List(fields.Nested(MilestoneOut), allow_none=True, metadata={
        "description": "The SLA clocks of a dispatched order (empty for one entered by the "
                       "agency; null for readers of the order who do not read its clocks)."})
    appointment = fields.Nested(AppointmentOut, allow_none=True, metadata={
        "description": "The current appointment, if any."})


class WorkOrderArgs(PageArgs):
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in OrderStatus]),
                           metadata={"description": "Only orders in this state."})


WorkOrderPage = page_schema(WorkOrderSummary, "WorkOrderPage")

_ID = {"strict": True, "validate": validate.Range(min=1, max=2**31 - 1)}


class ArrivalIn(Schema):
    arrived_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "When the engineer arrived (default: now)."})
    distance_km = fields.Decimal(load_default=None, allow_none=True, as_string=True)


class DiagnosisIn(Schema):
    fault_code_id = fields.Integer(required=True, **_ID)
    fault_description = fields.String(load_default=None, validate=validate.Length(max=4000))


class PartIn(Schema):
    part_id = fields.Integer(required=True, **_ID)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(1, 99))


class CompletionIn(Schema):
    """What completing needs; a field left out keeps the order's value (parts and repair
    codes, when sent, replace the order's)."""

    completed_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "When the work was completed (default: now)."})
    resolution = fields.String(required=True, validate=validate.Length(1, 4000))
    responded_at = fields.AwareDateTime()
    arrived_at = fields.AwareDateTime()
    distance_km = fields.Decimal(allow_none=True, as_string=True)
    engineer_id = fields.Integer(**_ID)
    fault_code_id = fields.Integer(allow_none=True, **_ID)
    fault_description = fields.String(validate=validate.Length(max=4000))
    repair_code_ids = fields.List(fields.Integer(**_ID), validate=validate.Length(max=50))
    parts = fields.List(fields.Nested(PartIn), validate=validate.Length(max=50))
    is_first_time_fix = fields.Boolean()


class CancelIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(2, 2000))


class AppointmentIn(Schema):
    engineer_id = fields.Integer(required=True, **_ID)
    window_from = fields.AwareDateTime(required=True)
    window_to = fields.AwareDateTime(required=True)
    customer_later = fields.Boolean(load_default=False, metadata={
        "description": "First booking only: the customer asked for a later date."})
    reason = fields.String(load_default="", validate=validate.OneOf(
        ["", *(r.value for r in Reschedule)]), metadata={
        "description": "Required to reschedule: customer or agency."})
    note = fields.String(load_default="", validate=validate.Length(max=1000))


# --- reading ----------------------------------------------------------------------------------


def _etag(order: WorkOrder, current: Appointment | None) -> str:
    """The order's version and its current appointment: either moving changes the ETag."""
    return f'"workorder-{order.id}-a{current.id if current else 0}-v{order.version}"'


def _if_match(order: WorkOrder) -> Appointment | None:
    """428 without If-Match, 412 when the order or its appointment moved on; the current
    appointment otherwise."""
    current = appointments.current(order.agency_id, order.id)
    if_match(order, _etag(order, current))
    return current


class _Detail:
    """An order with what its pages show beside it (the schema reads both)."""

    def __init__(self, order: WorkOrder, **extra):
        self._order, self._extra = order, extra

    def __getattr__(self, name):
        if name in self._extra:
            return self._extra[name]
        return getattr(self._order, name)


def _milestones(order: WorkOrder, clocks, now) -> list[dict]:
    paused = set()
    if clocks:
        paused = {p.clock_id for p in db.session.scalars(select(sla.SlaPause).where(
            sla.SlaPause.agency_id == order.agency_id,
            sla.SlaPause.clock_id.in_([c.id for c in clocks]))) if p.covers(now)}
    return [{"milestone": c.milestone, "started_at": c.started_at, "warn_at": c.warn_at,
             "due_at": c.due_at, "escalate_at": c.escalate_at, "met_at": c.met_at,
             "state": sla.clock_state_of(c.met_at, c.warn_at, c.due_at, c.escalate_at, now,
                                         paused=c.id in paused)} for c in clocks]


def _appointment(current: Appointment | None, clocks, now) -> dict | None:
    if current is None:
        return None
    arrival = next((c for c in clocks if c.milestone == sla.Milestone.ARRIVAL), None)
    kept = None if arrival is None else appointments.kept(
        current.window_from, current.window_to, arrival.met_at, now)
    return {"id": current.id, "engineer_id": current.engineer_id,
            "window_from": current.window_from, "window_to": current.window_to,
            "booked_at": current.booked_at, "customer_later": current.customer_later,
            "reason": current.reason, "note": current.note, "kept": kept}


def _detail(order: WorkOrder):
    """The order as its reader sees it, with its ETag: ``(body, 200, headers)``."""
    from dispatch.offers import Offer

    now = clock.now()
    shown = sees_customer()
    current = appointments.current(order.agency_id, order.id)
    extra = {
        "customer_name": order.customer_name if shown else order.masked_customer_name,
        "customer_phone": order.customer_phone if shown else order.masked_customer_phone,
        "customer_address": order.customer_address if shown else None,
        "repair_code_ids": sorted(db.session.scalars(select(WorkOrderRepair.repair_code_id)
                                                     .where(
            WorkOrderRepair.agency_id == order.agency_id,
            WorkOrderRepair.work_order_id == order.id))),
        "parts": list(db.session.scalars(select(WorkOrderPart).where(
            WorkOrderPart.agency_id == order.agency_id,
            WorkOrderPart.work_order_id == order.id).order_by(WorkOrderPart.id))),
        "request_number": db.session.scalar(select(Offer.request_number).where(
            Offer.agency_id == order.agency_id, Offer.work_order_id == order.id).limit(1)),
        "milestones": None, "appointment": None,
    }
    if current_user.role in ORDER_READERS:  # the dispatched order's page
        clocks = sla.order_clocks(order.agency_id, order.id)
        extra["milestones"] = _milestones(order, clocks, now)
        extra["appointment"] = _appointment(current, clocks, now)
    return _Detail(order, **extra), 200, {"ETag": _etag(order, current)}


@blp.route("/")
@api_allow(*EVERYONE)
@blp.arguments(WorkOrderArgs, location="query")
@blp.response(200, WorkOrderPage)
def list_work_orders(args):
    """Work orders, oldest first by id: an agency's own, the region's for its manager, every
    order for HQ, an engineer's assigned ones. Filter by state and last change."""
    stmt = queries.restrict_to_engineer(select(WorkOrder))
    if args.get("status"):
        stmt = stmt.where(WorkOrder.status == args["status"])
    return page(stmt, WorkOrder, args)


@blp.route("/<int:work_order_id>")
@api_allow(*EVERYONE)
@blp.response(200, WorkOrderOut)
@blp.doc(**sends_etag())
def get_work_order(work_order_id):
    """One work order with its SLA milestones and current appointment (ETag: the order's
    version and its appointment)."""
    return _detail(load_order(work_order_id))


# --- changing ---------------------------------------------------------------------------------


def _agency() -> Agency:
    return get_or_404(Agency, current_user.agency_id)


def _input_of(order: WorkOrder) -> dict:
    """The order as the edit form would send it back unchanged."""
    parts = db.session.scalars(select(WorkOrderPart).where(
        WorkOrderPart.agency_id == order.agency_id, WorkOrderPart.work_order_id == order.id)
        .order_by(WorkOrderPart.id))
    codes = db.session.scalars(select(WorkOrderRepair.repair_code_id).where(
        WorkOrderRepair.agency_id == order.agency_id,
        WorkOrderRepair.work_order_id == order.id))
    return {
        "number": order.number, "service_type": order.service_type,
        "customer_name": order.customer_name, "customer_phone": order.customer_phone,
        "customer_address": order.customer_address, "product_line_id": order.product_line_id,
        "product_model_id": order.product_model_id, "serial_number": order.serial_number,
        "purchase_date": order.purchase_date, "received_at": order.received_at,
        "responded_at": order.responded_at, "arrived_at": order.arrived_at,
        "completed_at": order.completed_at, "distance_km": order.distance_km,
        "engineer_id": order.engineer_id, "fault_code_id": order.fault_code_id,
        "fault_description": order.fault_description, "repair_code_ids": list(codes),
        "resolution": order.resolution, "is_first_time_fix": order.is_first_time_fix,
        "parts": [(p.part_id, p.quantity) for p in parts],
    }


def _change(work_order_id: int, changes: dict):
    """Apply `changes` to the order through the edit page's service (completing it when they
    name ``completed_at``); answers the order."""
    order = load_order(work_order_id)
    _if_match(order)
    data = {**_input_of(order), **changes}
    perform(services.update_work_order, _agency(), order, data)
    return _detail(order)


@blp.route("/<int:work_order_id>/arrival", methods=["POST"])
@api_performs("work_order.updated")
@idempotent
@blp.arguments(ArrivalIn)
@blp.response(200, WorkOrderOut)
@blp.doc(**needs_if_match("the work order"))
@blp.doc(**sends_etag())
def record_arrival(data, work_order_id):
    """The engineer is on site (on-site orders): stops the arrival clock."""
    changes = {"arrived_at": data["arrived_at"] or clock.now()}
    if data["distance_km"] is not None:
        changes["distance_km"] = data["distance_km"]
    return _change(work_order_id, changes)


@blp.route("/<int:work_order_id>/diagnosis", methods=["POST"])
@api_performs("work_order.updated")
@idempotent
@blp.arguments(DiagnosisIn)
@blp.response(200, WorkOrderOut)
@blp.doc(**needs_if_match("the work order"))
@blp.doc(**sends_etag())
def record_diagnosis(data, work_order_id):
    """The fault is diagnosed (its fault code): stops the diagnosis clock (carry-in)."""
    changes = {"fault_code_id": data["fault_code_id"]}
    if data["fault_description"] is not None:
        changes["fault_description"] = data["fault_description"]
    return _change(work_order_id, changes)


@blp.route("/<int:work_order_id>/completion", methods=["POST"])
@api_performs("work_order.completed")
@idempotent
@blp.arguments(CompletionIn)
@blp.response(200, WorkOrderOut)
@blp.doc(**needs_if_match("the work order"))
@blp.doc(**sends_etag())
def complete(data, work_order_id):
    """Complete an open order with what a completed order needs (engineer, response time,
    on-site arrival and distance, repair codes, resolution): stops the completion clock."""
    changes = dict(data)
    changes["completed_at"] = data.get("completed_at") or clock.now()
    if "parts" in changes:
        changes["parts"] = [(p["part_id"], p["quantity"]) for p in changes["parts"]]
    return _change(work_order_id, changes)


@blp.route("/<int:work_order_id>/cancel", methods=["POST"])
@api_performs("work_order.cancelled")
@idempotent
@blp.arguments(CancelIn)
@blp.response(200, WorkOrderOut)
@blp.doc(**needs_if_match("the work order"))
@blp.doc(**sends_etag())
def cancel(data, work_order_id):
    """Cancel an open order with a reason; its parts go back to stock."""
    order = load_order(work_order_id)
    _if_match(order)
    perform(services.cancel_work_order, order, data["reason"])
    return _detail(order)


@blp.route("/<int:work_order_id>/appointment", methods=["POST"])
@api_performs("appointment.booked", "appointment.rescheduled")
@idempotent
@blp.arguments(AppointmentIn)
@blp.response(200, WorkOrderOut)
@blp.doc(**needs_if_match("the work order"))
@blp.doc(**sends_etag())
def book(data, work_order_id):
    """Book the visit with its engineer, or move the booked one (with the reason): as the
    dispatched order's page. Only a dispatched, open order that is not a phone consultation
    has one."""
    order = load_order(work_order_id)
    if not sla.order_clocks(order.agency_id, order.id):
        abort(404)  # the dispatched order's page: none for an order never dispatched
    current = _if_match(order)
    window = data["window_from"], data["window_to"]
    if current is None:
        perform(appointments.book_appointment, order, data["engineer_id"], *window,
                customer_later=data["customer_later"], note_text=data["note"])
    else:
        perform(appointments.reschedule_appointment, order, data["engineer_id"], *window,
                data["reason"], note_text=data["note"])
    return _detail(order)
