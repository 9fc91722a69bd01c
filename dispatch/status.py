"""The public status check (服务进度查询): a customer's service request by its number and the
last four digits of the phone given at the call, with nobody signed in.

Why the service request number (SR20261206-0001) and not the work order number: the hotline
tells the customer the request number at the call, and it is unique across the network. A
work order number (WO20261204-0001) is the agency's own and repeats between agencies, so it
would name several orders; the customer may not even hear it. The request leads to its
accepted offer and from there to the agency's work order, so the timeline is the same.

The answer holds nothing personal: no name, phone, address, serial, fault text or engineer;
only the request's number, status, time of the call, product line, service type, the agency's
name once it accepted, the milestones (the request's accept clock, then the work order's
clocks) and the booked appointment window. A wrong number and wrong digits give the same
answer (None), and the digits are compared in constant time.
"""
import hmac
import re
import unicodedata
from datetime import datetime

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from dispatch import appointments, sla
from dispatch.offers import Offer, OfferStatus
from dispatch.requests import REQUEST_STATUS_LABELS, RequestStatus, ServiceRequest
from portal import clock
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import WorkOrder
from service.states import OrderStatus
from tenants.models import SERVICE_TYPE_LABELS, Agency, ServiceType

# The request number as dispatch.requests numbers it: SR, the local day, a sequence.
NUMBER = re.compile(r"^SR[0-9]{8}-[0-9]{4,6}\Z", re.ASCII)
NUMBER_MAX = 20  # the column's width
DIGITS = re.compile(r"^[0-9]{4}\Z", re.ASCII)
# Compared with the digits when no request matches, so both answers take the same work.
_NO_DIGITS = "\x00\x00\x00\x00"

# What a customer reads of a clock's state: done, running, late or paused (the SLA board's
# warning and second level are the network's business, not the customer's).
PUBLIC_STATE_LABELS = {
    sla.ClockState.MET: _l("Done"),
    sla.ClockState.MET_LATE: _l("Done"),
    sla.ClockState.ON_TIME: _l("In progress"),
    sla.ClockState.WARNING: _l("In progress"),
    sla.ClockState.BREACHED: _l("Later than promised"),
    sla.ClockState.ESCALATED: _l("Later than promised"),
    sla.ClockState.PAUSED: _l("Paused at your request"),
}
PUBLIC_STATE_STYLES = {
    sla.ClockState.MET: "success", sla.ClockState.MET_LATE: "success",
    sla.ClockState.ON_TIME: "primary", sla.ClockState.WARNING: "primary",
    sla.ClockState.BREACHED: "warning", sla.ClockState.ESCALATED: "warning",
    sla.ClockState.PAUSED: "secondary",
}
# The milestones in the customer's words where the board's would mislead ("Accepted" alone
# reads as an inspection passed in Chinese: 验收合格); the others are the board's labels.
PUBLIC_MILESTONE_LABELS = {
    **sla.MILESTONE_LABELS,
    sla.Milestone.ACCEPT: _l("Accepted by a service agency"),
}
# A request the agency has not accepted yet is "waiting for dispatch" to the customer,
# whether or not an offer is out (which agency was asked is not the customer's business).
PUBLIC_STATUS_LABELS = {
    RequestStatus.NEW: REQUEST_STATUS_LABELS[RequestStatus.NEW],
    RequestStatus.OFFERED: REQUEST_STATUS_LABELS[RequestStatus.NEW],
    RequestStatus.ACCEPTED: PUBLIC_MILESTONE_LABELS[sla.Milestone.ACCEPT],
    RequestStatus.CANCELLED: REQUEST_STATUS_LABELS[RequestStatus.CANCELLED],
}


def normal_number(raw) -> str:
    """A typed request number as it is stored: full-width forms folded, spaces dropped,
    upper case (" sr２０２６１２０６-０００１ " → "SR20261206-0001")."""
    if not isinstance(raw, str):
        return ""
    text = unicodedata.normalize("NFKC", raw)
    return re.sub(r"\s+", "", text).upper()


def normal_digits(raw) -> str:
    """Typed digits: full-width folded, spaces dropped."""
    if not isinstance(raw, str):
        return ""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", raw))


def phone_tail(phone: str | None) -> str:
    """The last four digits of a stored phone number ("+86 138-1234-5678" → "5678")."""
    digits = re.sub(r"[^0-9]", "", phone or "")
    return digits[-4:] if len(digits) >= 4 else ""


def _local(moment: datetime | None) -> datetime | None:
    return clock.to_local(moment) if moment is not None else None


def _step(milestone, due_at, met_at, state: sla.ClockState) -> dict:
    return {"milestone": str(milestone), "label": str(PUBLIC_MILESTONE_LABELS[milestone]),
            "due_at": _local(due_at), "met_at": _local(met_at), "state": state.value,
            "state_label": str(PUBLIC_STATE_LABELS[state]),
            "style": PUBLIC_STATE_STYLES[state]}


def _timeline(request: ServiceRequest, offer: Offer | None, now: datetime, *,
              stopped: bool) -> list[dict]:
    """The accept clock (the request's), then the work order's clocks in milestone order.
    A cancelled request's or order's open clocks stopped with it: only what was reached is
    shown."""
    steps = []
    if request.accept_due_at is not None:
        state = sla.clock_state_of(request.accepted_at, request.accept_warn_at,
                                   request.accept_due_at, request.accept_escalate_at, now)
        steps.append(_step(sla.Milestone.ACCEPT, request.accept_due_at, request.accepted_at,
                           state))
    if offer is not None and offer.work_order_id is not None:
        for found in sla.order_clocks(offer.agency_id, offer.work_order_id):
            steps.append(_step(sla.Milestone(found.milestone), found.due_at, found.met_at,
                               found.state(now)))
    if stopped:
        steps = [s for s in steps if s["met_at"] is not None]
    return steps


def _status(request: ServiceRequest, order_status: str | None) -> tuple[str, str]:
    """(key, label) of the case as the customer reads it: the work order's end when it has
    one, else the request's status."""
    if order_status == OrderStatus.COMPLETED:
        return "completed", str(sla.MILESTONE_LABELS[sla.Milestone.COMPLETION])
    if order_status == OrderStatus.CANCELLED:
        return "cancelled", str(REQUEST_STATUS_LABELS[RequestStatus.CANCELLED])
    status = RequestStatus(request.status)
    return status.value, str(PUBLIC_STATUS_LABELS[status])


def public_status(number, digits, now: datetime | None = None) -> dict | None:
    """What anyone holding the request number and the phone's last four digits may learn, as
    plain values; None when the number is unknown or the digits do not match (one answer)."""
    number, digits = normal_number(number), normal_digits(digits)
    if not NUMBER.match(number) or not DIGITS.match(digits):
        return None
    now = now or clock.now()
    with unscoped("the public status check by request number and phone digits"):
        request = db.session.scalars(
            select(ServiceRequest).where(ServiceRequest.number == number)
            .options(joinedload(ServiceRequest.product_line))).one_or_none()
        stored = phone_tail(request.customer_phone) if request is not None else ""
        matched = hmac.compare_digest((stored or _NO_DIGITS).encode(), digits.encode())
        if request is None or not stored or not matched:
            return None
        offer = agency = window = order_status = None
        if request.status == RequestStatus.ACCEPTED:
            offer = db.session.scalars(select(Offer).where(
                Offer.request_id == request.id, Offer.status == OfferStatus.ACCEPTED)
                .order_by(Offer.answered_at.desc(), Offer.id.desc()).limit(1)).first()
        if offer is not None and offer.work_order_id is not None:
            agency = db.session.get(Agency, offer.agency_id)
            order_status = db.session.scalar(select(WorkOrder.status).where(
                WorkOrder.agency_id == offer.agency_id, WorkOrder.id == offer.work_order_id))
            booked = appointments.current(offer.agency_id, offer.work_order_id)
            if booked is not None and order_status == OrderStatus.OPEN:
                window = {"from": _local(booked.window_from), "to": _local(booked.window_to)}
        key, label = _status(request, order_status)
        return {
            "number": request.number,
            "status": key,
            "status_label": label,
            "received_at": _local(request.received_at),
            "product_line": request.product_line.name(str(get_locale())),
            "service_type": str(SERVICE_TYPE_LABELS[ServiceType(request.service_type)]),
            "agency": agency.legal_name if agency is not None else None,
            "timeline": _timeline(request, offer, now, stopped=key == "cancelled"),
            "appointment": window,
        }
