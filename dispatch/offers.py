"""Offers (派单): HQ's dispatcher offers a service request to one agency, which accepts it (its
work order, with the clock already running since the call) or refuses it with a reason.

An offer is the agency's row and carries a copy of the request's non-personal facts only:
area (province, city, district), product, fault, service type, the preferred time. Agencies
never read ``service_requests``; accepting creates the work order through service's write
path and copies the customer into it, which is the only way customer data reaches an
agency. A refused, expired or withdrawn offer leaves the agency nothing personal.

States: ``open`` → ``accepted`` | ``refused`` | ``expired`` (the answer window passed; the
tick returns it, :func:`expire_offers`) | ``withdrawn`` (the dispatcher took it back, or the
request was cancelled). At most one open offer per request (a partial unique index), and the
offer's version column makes two answers (two users of the agency, or an accept racing the
expiry) end with one winner: the other sees the stale-page message and changes nothing.
"""
from datetime import datetime
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatch import coverage, policy, sla
from dispatch.requests import RequestStatus, ServiceRequest
from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import UTCDateTime, Versioned
from portal.tenancy import AgencyOwned, owner_fk, unscoped
from portal.text import bounded
from portal.transitions import STALE, describe, note, signals, transition
from tenants.models import SERVICE_TYPE_LABELS, Agency, ServiceType


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


OFFER_STATUS_LABELS = {
    OfferStatus.OPEN: _l("Waiting for the agency"),
    OfferStatus.ACCEPTED: _l("Accepted by the agency"),
    OfferStatus.REFUSED: _l("Refused"),
    OfferStatus.EXPIRED: _l("Expired unanswered"),
    OfferStatus.WITHDRAWN: _l("Withdrawn"),
}
REFUSAL_REASONS = {
    "capacity": _l("No engineer free in time"),
    "area": _l("Outside the area we can reach"),
    "product": _l("We cannot repair this product or fault"),
    "parts": _l("Parts not available"),
    "other": _l("Other reason"),
}
OPEN_SQL = "status = 'open'"


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Offer(AgencyOwned, Versioned, db.Model):
    """A request offered to one agency: what it may know before it accepts."""

    __tablename__ = "dispatch_offers"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="RESTRICT"),
        Index("uq_dispatch_offers_open_request", "request_id", unique=True,
              postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
        Index("ix_dispatch_offers_agency_id_status", "agency_id", "status", "expires_at"),
        Index("ix_dispatch_offers_request_id", "request_id"),
        Index("ix_dispatch_offers_open_expires", "expires_at",
              postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
        CheckConstraint(_in("status", OfferStatus), name="status_known"),
        CheckConstraint(_in("service_type", ServiceType), name="service_type_known"),
        CheckConstraint("expires_at > offered_at", name="expires_after_offer"),
        CheckConstraint("(status = 'open') = (answered_at IS NULL)", name="answered_when"),
        CheckConstraint("(status = 'accepted') = (work_order_id IS NOT NULL)",
                        name="accepted_has_order"),
        CheckConstraint("status <> 'refused' OR refusal_reason <> ''",
                        name="refused_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id",
                                                       ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.OPEN)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    refusal_reason: Mapped[str] = mapped_column(String(16), default="")
    refusal_note: Mapped[str] = mapped_column(Text, default="")
    work_order_id: Mapped[int | None]
    # The request's non-personal facts, copied: the agency reads these, never the request.
    request_number: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id", ondelete="RESTRICT"))
    city: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64))
    product_line_id: Mapped[int] = mapped_column(ForeignKey("product_lines.id",
                                                            ondelete="RESTRICT"))
    product_model_id: Mapped[int] = mapped_column(ForeignKey("product_models.id",
                                                             ondelete="RESTRICT"))
    service_type: Mapped[str] = mapped_column(String(16))
    fault_description: Mapped[str] = mapped_column(Text)
    preferred_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    preferred_to: Mapped[datetime | None] = mapped_column(UTCDateTime)

    agency = relationship("Agency", viewonly=True)
    province = relationship("Province", viewonly=True)
    product_line = relationship("ProductLine", viewonly=True)
    product_model = relationship("ProductModel", viewonly=True)
    work_order = relationship("WorkOrder", viewonly=True)

    @property
    def status_label(self):
        return OFFER_STATUS_LABELS.get(self.status, self.status)

    @property
    def service_type_label(self):
        return SERVICE_TYPE_LABELS.get(self.service_type, self.service_type)

    @property
    def refusal_label(self):
        return REFUSAL_REASONS.get(self.refusal_reason, "")

    @property
    def is_open(self) -> bool:
        return self.status == OfferStatus.OPEN

    def area(self, lang: str) -> str:
        return " · ".join(p for p in (self.province.name(lang) if self.province else "",
                                      self.city, self.district) if p)


describe(Offer, _l("dispatch offer"), lambda o: o.status_label)

PERSONAL = ("customer_name", "customer_phone", "street")
COPIED = ("province_id", "city", "district", "product_line_id", "product_model_id",
          "service_type", "fault_description", "preferred_from", "preferred_to", "received_at")


def _values(offer: Offer) -> dict:
    return {"request_number": offer.request_number, "agency_id": offer.agency_id,
            "status": str(offer.status), "expires_at": offer.expires_at}


def _answer_values(offer: Offer) -> dict:
    return {"status": str(offer.status), "work_order_id": offer.work_order_id}


# --- offering ---------------------------------------------------------------------------------


def _candidate(request: ServiceRequest, agency: Agency | None) -> Agency:
    """The agency may receive the request: active, authorized for the line and type, with an
    approved coverage of the request's area. Raises DomainError otherwise."""
    if agency is None:
        raise DomainError(_("Choose an agency."), field="agency_id")
    if not coverage.covers(agency.id, request):
        raise DomainError(_("%(agency)s cannot take this request: it is not in service, or has "
                            "no approved coverage of %(area)s for this product line and "
                            "service type.", agency=agency.code,
                            area=f"{request.city} {request.district}".strip()),
                          field="agency_id")
    return agency


@transition("dispatch_offer.made", Offer, label=_l("Request offered to an agency"),
            permission=policy.OFFER_MAKE, creates=True, target=OfferStatus.OPEN,
            audit=_values)
def make_offer(request: ServiceRequest, agency_id: int, *, acting_user,
               now: datetime | None = None) -> Offer:
    """Offer a request waiting for dispatch to one agency; its answer window runs on the
    network calendar from now."""
    now = now or clock.now()
    if request.status != RequestStatus.NEW:
        raise DomainError(_("Only a request waiting for dispatch can be offered."))
    with unscoped("the dispatcher checks the agency it offers a request to"):
        agency = _candidate(request, db.session.get(Agency, agency_id or 0))
    seconds = sla.targets_for(request.service_type, request.product_line_id)[
        sla.Milestone.ANSWER]
    _warn, expires, _second = sla.instants(now, seconds)
    offer = Offer(agency_id=agency.id, request_id=request.id, offered_at=now,
                  expires_at=expires, offered_by_id=getattr(acting_user, "id", None),
                  request_number=request.number,
                  **{key: getattr(request, key) for key in COPIED})
    db.session.add(offer)
    request.status = RequestStatus.OFFERED
    return offer


def _answerable(offer: Offer, now: datetime) -> None:
    if offer.status != OfferStatus.OPEN:
        raise DomainError(_("This offer is no longer open: it was %(state)s.",
                            state=offer.status_label))
    if offer.expires_at <= now:
        raise DomainError(_("The time to answer this offer has passed: it goes back to HQ's "
                            "dispatcher."))


def _request_of(offer: Offer) -> ServiceRequest:
    with unscoped("the offer's answer moves HQ's request on"):
        return db.session.get(ServiceRequest, offer.request_id)


def _back_to_queue(offer: Offer) -> None:
    request = _request_of(offer)
    if request is not None and request.status == RequestStatus.OFFERED:
        request.status = RequestStatus.NEW


@transition("dispatch_offer.accepted", Offer, label=_l("Offer accepted"),
            permission=policy.OFFER_ANSWER, source={OfferStatus.OPEN},
            target=OfferStatus.ACCEPTED, versioned=True, audit=_answer_values)
def accept_offer(offer: Offer, *, acting_user, now: datetime | None = None):
    """The agency takes the request: its work order (received at the call, responded now),
    the customer copied into it, the order's SLA clocks started from the call."""
    from service.services import create_work_order

    now = now or clock.now()
    _answerable(offer, now)
    # Claim the offer before the order is written: a second answer waits on the row lock,
    # then finds a new version and gets the stale-page message (not a clash of order numbers).
    if db.session.scalar(select(Offer.id).where(
            Offer.id == offer.id, Offer.version == offer.version).with_for_update()) is None:
        raise DomainError(str(STALE))
    request = _request_of(offer)
    with unscoped("the accepting agency is checked against its own authorization"):
        agency = db.session.get(Agency, offer.agency_id)
    address = " ".join(p for p in (request.province.name_zh, request.city, request.district,
                                   request.street) if p)
    order = create_work_order(agency, {
        "number": "", "service_type": request.service_type,
        "customer_name": request.customer_name, "customer_phone": request.customer_phone,
        "customer_address": address, "product_model_id": request.product_model_id,
        "product_line_id": request.product_line_id, "serial_number": request.serial_number,
        "purchase_date": request.purchase_date, "received_at": request.received_at,
        "responded_at": now, "fault_description": request.fault_description,
        "repair_code_ids": [], "parts": [], "engineer_id": None, "fault_code_id": None,
        "resolution": "", "is_first_time_fix": True}, acting_user=acting_user)
    offer.status, offer.work_order_id = OfferStatus.ACCEPTED, order.id
    offer.answered_at, offer.answered_by_id = now, getattr(acting_user, "id", None)
    request.status = RequestStatus.ACCEPTED
    request.accepted_at = now
    sla.start_order_clocks(order, request, accepted_at=now)
    note(after={"work_order": order.number, "request_number": offer.request_number})
    return order


@transition("dispatch_offer.refused", Offer, label=_l("Offer refused"),
            permission=policy.OFFER_ANSWER, source={OfferStatus.OPEN},
            target=OfferStatus.REFUSED, versioned=True, audit=_answer_values)
def refuse_offer(offer: Offer, reason: str, note_text: str = "", *, acting_user,
                 now: datetime | None = None) -> None:
    """The agency declines with a reason; the request goes back to the dispatcher's queue."""
    now = now or clock.now()
    if reason not in REFUSAL_REASONS:
        raise DomainError(_("Choose why you refuse the offer."), field="reason")
    text_note = bounded(note_text, "note", required=reason == "other", low=2, high=1000)
    _answerable(offer, now)
    offer.status = OfferStatus.REFUSED
    offer.refusal_reason, offer.refusal_note = reason, text_note
    offer.answered_at, offer.answered_by_id = now, getattr(acting_user, "id", None)
    _back_to_queue(offer)
    note(reason=f"{REFUSAL_REASONS[reason]}: {text_note}" if text_note
         else str(REFUSAL_REASONS[reason]))


@transition("dispatch_offer.withdrawn", Offer, label=_l("Offer withdrawn"),
            permission=policy.OFFER_WITHDRAW, source={OfferStatus.OPEN},
            target=OfferStatus.WITHDRAWN, versioned=True, audit=_answer_values)
def withdraw_offer(offer: Offer, *, acting_user, now: datetime | None = None) -> None:
    """The dispatcher takes an open offer back (to offer the request elsewhere)."""
    offer.status = OfferStatus.WITHDRAWN
    offer.answered_at = now or clock.now()
    offer.answered_by_id = getattr(acting_user, "id", None)
    _back_to_queue(offer)


@transition("dispatch_offer.expired", Offer, label=_l("Offer expired unanswered"),
            permission=policy.OFFER_EXPIRE, source={OfferStatus.OPEN},
            target=OfferStatus.EXPIRED, versioned=True, audit=_answer_values)
def expire_offer(offer: Offer, *, acting_user=None, now: datetime | None = None) -> None:
    now = now or clock.now()
    if offer.expires_at > now:
        raise DomainError(_("The time to answer this offer has not passed yet."))
    offer.status, offer.answered_at = OfferStatus.EXPIRED, now
    _back_to_queue(offer)


def expire_offers(now: datetime | None = None) -> int:
    """The tick: every open offer past its answer window returns to the dispatcher. Each is
    its own audited transition (the few that expire in a tick); a race with an accept
    leaves one winner (the version column)."""
    now = now or clock.now()
    with unscoped("the tick expires offers of every agency"):
        due = db.session.scalars(select(Offer).where(
            Offer.status == OfferStatus.OPEN, Offer.expires_at <= now)
            .order_by(Offer.expires_at, Offer.id).with_for_update(skip_locked=True)).all()
        for offer in due:
            expire_offer(offer, acting_user=None, now=now, seen_version=offer.version)
    return len(due)


def open_offer(request_id: int) -> Offer | None:
    with unscoped("HQ's request page shows its open offer"):
        return db.session.scalars(select(Offer).where(
            Offer.request_id == request_id, Offer.status == OfferStatus.OPEN)).one_or_none()


def offers_of_request(request_id: int) -> list[Offer]:
    """Every offer of a request, newest first (HQ's request page)."""
    return list(db.session.scalars(select(Offer).where(Offer.request_id == request_id)
                                   .order_by(Offer.offered_at.desc(), Offer.id.desc())))


def declined_agencies(request_id: int):
    """A SELECT of the agencies that refused, let expire or lost an offer of this request:
    the suggestion leaves them out."""
    return select(Offer.agency_id).where(
        Offer.request_id == request_id,
        Offer.status.in_([OfferStatus.REFUSED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN]))


def _cancelled_request_withdraws(_sender, record=None, actor=None, **_kw) -> None:
    """A request HQ cancels while offered: its open offer is withdrawn with it."""
    offer = open_offer(record.id)
    if offer is not None:
        with unscoped("the cancelled request's offer is the dispatcher's to withdraw"):
            withdraw_offer(offer, acting_user=actor, seen_version=offer.version)


signals.signal("service_request.cancelled").connect(_cancelled_request_withdraws, weak=False)
