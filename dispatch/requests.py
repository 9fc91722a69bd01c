"""Service requests (服务请求): the hotline's calls, taken by HQ's dispatchers on a clock that
starts at the call, and the rules of taking them (one open request per product serial).

A request is HQ's row, not an agency's: agencies never read it (they will read offers, and
their own work order once they accept one).

Status: ``new`` (waiting for dispatch), ``offered`` (an agency has an open offer),
``accepted`` (an agency's work order serves it) or ``cancelled`` (with its reason). A
refused, expired or withdrawn offer returns the request to ``new``.

The request carries the accept clock (dispatch/sla.py): from the call until an agency
accepts, on the network calendar.
"""
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatch import policy
from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.masking import mask_name, mask_phone
from portal.models import Stamped, UTCDateTime, Versioned, utcnow
from portal.numbering import next_number
from portal.text import bounded, clean
from portal.transitions import describe, note, transition
from tenants.models import SERVICE_TYPE_LABELS, ProductLine, ProductModel, Province, ServiceType

# A call about the serial of an open request this recent links to it instead of a new one.
DUPLICATE_DAYS = 30
# A preferred window may start this much before the call (the minute the dispatcher typed).
WINDOW_GRACE = timedelta(minutes=5)
SERIAL = re.compile(r"^[A-Z0-9][A-Z0-9\-/.]{2,63}$")
PHONE = re.compile(r"^[0-9+\- ()]{5,32}$")
CALL_KEY = re.compile(r"^[0-9a-f]{32}$")


class RequestStatus(StrEnum):
    NEW = "new"              # waiting for dispatch
    OFFERED = "offered"      # an agency has an open offer
    ACCEPTED = "accepted"    # an agency's work order serves it
    CANCELLED = "cancelled"  # with its reason; no longer catches duplicate calls


REQUEST_STATUS_LABELS = {RequestStatus.NEW: _l("Waiting for dispatch"),
                         RequestStatus.OFFERED: _l("Offered"),
                         RequestStatus.ACCEPTED: _l("Accepted by the agency"),
                         RequestStatus.CANCELLED: _l("Cancelled")}
# The states in which a new call about the same serial is the same case.
OPEN_STATUSES = frozenset({RequestStatus.NEW, RequestStatus.OFFERED, RequestStatus.ACCEPTED})
# The states HQ can still cancel (an accepted request is the agency's order to cancel).
CANCELLABLE = frozenset({RequestStatus.NEW, RequestStatus.OFFERED})


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class ServiceRequest(Versioned, Stamped, db.Model):
    """One customer's case as the hotline took it; the clock starts at `received_at`."""

    __tablename__ = "service_requests"
    __table_args__ = (
        Index("ix_service_requests_status_received_at", "status", "received_at"),
        Index("ix_service_requests_duplicate", "product_line_id", "serial_key", "status"),
        Index("ix_service_requests_accept_due", "accept_due_at",
              postgresql_where=text("accepted_at IS NULL"),
              sqlite_where=text("accepted_at IS NULL")),
        CheckConstraint(_in("status", RequestStatus), name="status_known"),
        CheckConstraint(_in("service_type", ServiceType), name="service_type_known"),
        CheckConstraint("preferred_from IS NULL OR preferred_to IS NULL "
                        "OR preferred_to > preferred_from", name="window_in_order"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)",
                        name="cancelled_when"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.NEW)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    customer_name: Mapped[str] = mapped_column(String(64))
    customer_phone: Mapped[str] = mapped_column(String(32))
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id", ondelete="RESTRICT"),
                                             index=True)
    city: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64))
    street: Mapped[str] = mapped_column(String(200), default="")
    product_line_id: Mapped[int] = mapped_column(ForeignKey("product_lines.id",
                                                            ondelete="RESTRICT"))
    product_model_id: Mapped[int] = mapped_column(ForeignKey("product_models.id",
                                                             ondelete="RESTRICT"), index=True)
    serial_number: Mapped[str] = mapped_column(String(64))
    serial_key: Mapped[str] = mapped_column(String(64))  # trimmed, upper case: the lookup
    purchase_date: Mapped[date | None]
    fault_description: Mapped[str] = mapped_column(Text)
    service_type: Mapped[str] = mapped_column(String(16))
    preferred_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    preferred_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                               ondelete="RESTRICT"), index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    # The accept clock (dispatch/sla.py), from the call until an agency accepts.
    accept_target_seconds: Mapped[int | None]
    accept_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    province = relationship("Province")
    product_line = relationship("ProductLine")
    product_model = relationship("ProductModel")
    taken_by = relationship("User")
    calls = relationship("ServiceRequestCall", back_populates="request",
                         order_by="ServiceRequestCall.id", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def masked_customer_name(self) -> str:
        return mask_name(self.customer_name)

    @property
    def masked_customer_phone(self) -> str:
        return mask_phone(self.customer_phone)

    @property
    def status_label(self):
        return REQUEST_STATUS_LABELS[RequestStatus(self.status)]

    @property
    def accept_state(self):
        """The accept clock's state now (dispatch/sla.py), None before it was set."""
        from dispatch.sla import clock_state_of

        if self.accept_due_at is None:
            return None
        return clock_state_of(self.accepted_at, self.accept_warn_at, self.accept_due_at,
                              self.accept_escalate_at, clock.now())

    @property
    def service_type_label(self):
        return SERVICE_TYPE_LABELS[ServiceType(self.service_type)]


class ServiceRequestCall(db.Model):
    """One call about a request: the first, and each later one linked to it."""

    __tablename__ = "service_request_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id",
                                                       ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                               ondelete="RESTRICT"), index=True)
    # The form's one-time key: a second submit of the same form finds its call, not a new one.
    call_key: Mapped[str | None] = mapped_column(String(32), unique=True)

    request = relationship("ServiceRequest", back_populates="calls")
    taken_by = relationship("User")


describe(ServiceRequest, _l("service request"), state_label=lambda r: r.status_label)


# --- checking a call's input ------------------------------------------------------------------


def serial_key(raw: str | None) -> str:
    """A serial as the duplicate lookup compares it: no spaces, upper case."""
    return re.sub(r"\s+", "", clean(raw)).upper()


def _text(data: dict, key: str, limit: int, message, *, required: bool = True) -> str:
    value = clean(data.get(key))
    if (required and not value) or len(value) > limit:
        raise DomainError(str(message), field=key)
    return value


def _window(data: dict, now: datetime) -> tuple[datetime | None, datetime | None]:
    start, end = data.get("preferred_from"), data.get("preferred_to")
    for key, value in (("preferred_from", start), ("preferred_to", end)):
        if value is not None and value < now - WINDOW_GRACE:
            raise DomainError(_("The preferred time cannot be in the past."), field=key)
    if start is not None and end is not None and end <= start:
        raise DomainError(_("The end of the preferred time must be after its start."),
                          field="preferred_to")
    return start, end


def _product(data: dict) -> tuple[ProductLine, ProductModel]:
    line = db.session.get(ProductLine, data.get("product_line_id") or 0)
    if line is None or not line.is_active:
        raise DomainError(_("Choose a product line."), field="product_line_id")
    model = db.session.get(ProductModel, data.get("product_model_id") or 0)
    if model is None:
        raise DomainError(_("Choose a product model."), field="product_model_id")
    if model.product_line_id != line.id:
        raise DomainError(_("Model %(model)s is not of the chosen product line.",
                            model=model.code), field="product_model_id")
    return line, model


def check_call(data: dict, *, now: datetime) -> dict:
    """A call's input checked and cleaned (nothing written); raises DomainError, with the
    field, for the first rule broken."""
    out = {
        "customer_name": _text(data, "customer_name", 64,
                               _("Enter the customer's name (up to 64 characters).")),
        "customer_phone": clean(data.get("customer_phone")),
    }
    if not PHONE.match(out["customer_phone"]):
        raise DomainError(_("Enter a valid phone number."), field="customer_phone")
    province = db.session.get(Province, data.get("province_id") or 0)
    if province is None:
        raise DomainError(_("Choose a province."), field="province_id")
    out["province_id"] = province.id
    out["city"] = _text(data, "city", 64, _("Enter the city (up to 64 characters)."))
    out["district"] = _text(data, "district", 64,
                            _("Enter the district (up to 64 characters)."))
    if data.get("service_type") not in {s.value for s in ServiceType}:
        raise DomainError(_("Choose a service type."), field="service_type")
    out["service_type"] = data["service_type"]
    out["street"] = _text(data, "street", 200, _("Enter the street and house number (up to "
                                                 "200 characters) for an on-site repair."),
                          required=out["service_type"] == ServiceType.ONSITE)
    line, model = _product(data)
    out["product_line_id"], out["product_model_id"] = line.id, model.id
    out["serial_key"] = out["serial_number"] = serial_key(data.get("serial_number"))
    if not SERIAL.match(out["serial_key"]):
        raise DomainError(_("Enter the serial number (3 to 64 letters, digits, - / .)."),
                          field="serial_number")
    purchase = data.get("purchase_date")
    if purchase is not None and purchase > clock.local_day(now):
        raise DomainError(_("The purchase date cannot be in the future."), field="purchase_date")
    out["purchase_date"] = purchase
    out["fault_description"] = bounded(data.get("fault_description"), "fault_description",
                                       required=True, low=3, high=4000)
    out["preferred_from"], out["preferred_to"] = _window(data, now)
    out["note"] = bounded(data.get("note"), "note", required=False, high=2000)
    key = data.get("call_key")
    out["call_key"] = key if isinstance(key, str) and CALL_KEY.match(key) else None
    return out


# --- the services -----------------------------------------------------------------------------


def _values(request: ServiceRequest) -> dict:
    """What the audit log keeps of a request: the customer masked, no street."""
    return {"number": request.number, "status": request.status,
            "customer_name": mask_name(request.customer_name),
            "customer_phone": mask_phone(request.customer_phone),
            "province_id": request.province_id, "city": request.city,
            "district": request.district, "product_line_id": request.product_line_id,
            "product_model_id": request.product_model_id,
            "serial_number": request.serial_number, "service_type": request.service_type,
            "received_at": request.received_at}


def _status_values(request: ServiceRequest) -> dict:
    return {"number": request.number, "status": request.status}


def _call(request: ServiceRequest, checked: dict, at: datetime, user) -> "ServiceRequestCall":
    call = ServiceRequestCall(request=request, at=at, note=checked["note"],
                              taken_by_id=getattr(user, "id", None),
                              call_key=checked["call_key"])
    db.session.add(call)
    return call


@transition("service_request.created", ServiceRequest, label=_l("Service request taken"),
            permission=policy.REQUEST_CREATE, creates=True, audit=_values)
def create_service_request(checked: dict, *, at: datetime, acting_user) -> ServiceRequest:
    """Open a request for a checked call (:func:`check_call`) received `at`; numbered
    ``SR<local yyyymmdd>-<nnnn>`` across the network."""
    number = next_number(ServiceRequest.number, f"SR{clock.local_day(at):%Y%m%d}-", width=4)
    fields = {k: v for k, v in checked.items() if k not in ("note", "call_key")}
    request = ServiceRequest(number=number, received_at=at,
                             taken_by_id=getattr(acting_user, "id", None), **fields)
    start_accept_clock(request)
    db.session.add(request)
    _call(request, checked, at, acting_user)
    return request


@transition("service_request.call_linked", ServiceRequest,
            label=_l("Call linked to the service request"), permission=policy.REQUEST_LINK,
            source=OPEN_STATUSES, audit=_status_values)
def link_call(request: ServiceRequest, checked: dict, *, at: datetime,
              acting_user) -> ServiceRequestCall:
    """Record another call about an open request (the same product serial)."""
    call = _call(request, checked, at, acting_user)
    db.session.flush()
    count = db.session.scalar(select(func.count(ServiceRequestCall.id)).where(
        ServiceRequestCall.request_id == request.id))
    note(after={"call": count, "caller_phone": mask_phone(checked["customer_phone"])})
    return call


def start_accept_clock(request: ServiceRequest, cal=None) -> None:
    """Set the request's accept clock from its call (again after a calendar change)."""
    from dispatch import sla

    seconds = sla.targets_for(request.service_type, request.product_line_id)[
        sla.Milestone.ACCEPT]
    request.accept_target_seconds = seconds
    request.accept_warn_at, request.accept_due_at, request.accept_escalate_at = sla.instants(
        request.received_at, seconds, cal=cal)


@transition("service_request.cancelled", ServiceRequest, label=_l("Service request cancelled"),
            permission=policy.REQUEST_CANCEL, source=CANCELLABLE,
            target=RequestStatus.CANCELLED, versioned=True, audit=_status_values)
def cancel_service_request(request: ServiceRequest, reason: str, *, acting_user) -> None:
    """Cancel a request waiting for dispatch; the reason is required."""
    text = bounded(reason, "reason", required=True, low=2, high=2000)
    request.cancel_reason = text
    request.cancelled_at = clock.now()
    note(reason=text)


@dataclass(frozen=True)
class Taken:
    """What a call came to: its request, its place among the request's calls, and whether it
    opened the request, was linked to an open one, or was this form submitted again."""

    request: ServiceRequest
    call_number: int
    linked: bool = False
    repeated: bool = False


def open_duplicate(line_id: int, key: str, now: datetime) -> ServiceRequest | None:
    """The latest open request about this product serial received in the last 30 days."""
    return db.session.scalars(
        select(ServiceRequest).where(
            ServiceRequest.product_line_id == line_id, ServiceRequest.serial_key == key,
            ServiceRequest.status.in_(OPEN_STATUSES),
            ServiceRequest.received_at >= now - timedelta(days=DUPLICATE_DAYS))
        .order_by(ServiceRequest.received_at.desc(), ServiceRequest.id.desc()).limit(1)
    ).first()


def _call_number(request: ServiceRequest, call: ServiceRequestCall) -> int:
    return db.session.scalar(select(func.count(ServiceRequestCall.id)).where(
        ServiceRequestCall.request_id == request.id, ServiceRequestCall.id <= call.id))


def take_call(data: dict, *, acting_user, now: datetime | None = None) -> Taken:
    """The hotline's one entry: check the call; the same form submitted again finds its call;
    a call about the serial of an open request links to it; any other opens a new request.
    Raises DomainError for bad input or an actor the policy refuses."""
    now = now or clock.now()
    checked = check_call(data, now=now)
    seen = _call_of(checked["call_key"])
    if seen is not None:
        return Taken(seen.request, _call_number(seen.request, seen), repeated=True)
    existing = open_duplicate(checked["product_line_id"], checked["serial_key"], now)
    try:
        # A savepoint: the same form sent twice at the same instant (two requests racing past
        # the look-up above) ends at the call key's unique index; the second finds the first.
        with db.session.begin_nested():
            if existing is not None:
                call = link_call(existing, checked, at=now, acting_user=acting_user)
                return Taken(existing, _call_number(existing, call), linked=True)
            request = create_service_request(checked, at=now, acting_user=acting_user)
            return Taken(request, 1)
    except IntegrityError:
        seen = _call_of(checked["call_key"])
        if seen is None:
            raise
        return Taken(seen.request, _call_number(seen.request, seen), repeated=True)


def _call_of(key: str | None) -> "ServiceRequestCall | None":
    if not key:
        return None
    return db.session.scalars(select(ServiceRequestCall).where(
        ServiceRequestCall.call_key == key)).one_or_none()
