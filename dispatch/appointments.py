"""Appointments (预约): the agency assigns an engineer to an open order and books a window with
the customer; a reschedule carries its reason (the customer asked, or the agency could not).

The rows are the agency's; the current appointment is the one not superseded. Booking stops
the order's appointment clock (dispatch/sla.py); when the customer asks for a later date, the
next milestone's clock (arrival or diagnosis) pauses from the booking until the window opens.
Arrival inside the window is "kept" (预约达成); the arrival clock's recorded moment decides.
"""
from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatch import policy, sla
from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import AgencyOwned, owner_fk
from portal.text import bounded
from portal.transitions import describe, note, transition
from service.services import assign_engineer
from tenants.models import ServiceType

# A window is a visit's slot: at least 30 minutes, at most a working day, booked at most
# 60 days ahead; it may start a few minutes before the booking (the minute typed).
MIN_WINDOW, MAX_WINDOW = timedelta(minutes=30), timedelta(hours=10)
MAX_AHEAD = timedelta(days=60)
GRACE = timedelta(minutes=5)


class Reschedule(StrEnum):
    CUSTOMER = "customer"  # the customer asked for another time
    AGENCY = "agency"      # the agency could not keep the window


RESCHEDULE_LABELS = {Reschedule.CUSTOMER: _l("The customer asked for another time"),
                     Reschedule.AGENCY: _l("We could not keep the window")}


class Kept(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    EARLY = "early"
    LATE = "late"
    MISSED = "missed"


KEPT_LABELS = {Kept.PENDING: _l("Ahead"), Kept.KEPT: _l("Kept"),
               Kept.EARLY: _l("Arrived before the window"),
               Kept.LATE: _l("Arrived after the window"), Kept.MISSED: _l("Missed")}


class Appointment(AgencyOwned, db.Model):
    """One booked window of an order; a reschedule supersedes it with a new row."""

    __tablename__ = "appointments"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="CASCADE"),
        owner_fk("engineer_id", "engineers", ondelete="RESTRICT"),
        Index("uq_appointments_current", "agency_id", "work_order_id", unique=True,
              postgresql_where=text("superseded_at IS NULL"),
              sqlite_where=text("superseded_at IS NULL")),
        Index("ix_appointments_agency_id_window_from", "agency_id", "window_from"),
        CheckConstraint("window_to > window_from", name="window_in_order"),
        CheckConstraint("reason IN ('', 'customer', 'agency')", name="reason_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int]
    engineer_id: Mapped[int]
    window_from: Mapped[datetime] = mapped_column(UTCDateTime)
    window_to: Mapped[datetime] = mapped_column(UTCDateTime)
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                ondelete="SET NULL"))
    customer_later: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(16), default="")  # "" for the first booking
    note: Mapped[str] = mapped_column(Text, default="")
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    engineer = relationship("Engineer", viewonly=True)

    @property
    def reason_label(self):
        return RESCHEDULE_LABELS.get(self.reason, "")


describe(Appointment, _l("appointment"))


def kept(window_from: datetime, window_to: datetime, arrived: datetime | None,
         moment: datetime) -> Kept:
    """Was the window kept? Arrival inside it (inclusive) is kept."""
    if arrived is None:
        return Kept.MISSED if moment > window_to else Kept.PENDING
    if arrived < window_from:
        return Kept.EARLY
    return Kept.KEPT if arrived <= window_to else Kept.LATE


def current(agency_id: int, work_order_id: int) -> Appointment | None:
    return db.session.scalars(select(Appointment).where(
        Appointment.agency_id == agency_id, Appointment.work_order_id == work_order_id,
        Appointment.superseded_at.is_(None))).one_or_none()


def history(agency_id: int, work_order_id: int) -> list[Appointment]:
    return list(db.session.scalars(select(Appointment).where(
        Appointment.agency_id == agency_id, Appointment.work_order_id == work_order_id)
        .order_by(Appointment.booked_at, Appointment.id)))


def _values(row: Appointment) -> dict:
    return {"work_order_id": row.work_order_id, "engineer_id": row.engineer_id,
            "window_from": row.window_from, "window_to": row.window_to,
            "reason": row.reason, "customer_later": row.customer_later}


def _check_window(start: datetime | None, end: datetime | None, now: datetime) -> None:
    if start is None or end is None:
        raise DomainError(_("Give the window's start and end."), field="window_from")
    if start < now - GRACE:
        raise DomainError(_("The window cannot start in the past."), field="window_from")
    if start > now + MAX_AHEAD:
        raise DomainError(_("Book at most 60 days ahead."), field="window_from")
    if not MIN_WINDOW <= end - start <= MAX_WINDOW:
        raise DomainError(_("A window lasts from 30 minutes to 10 hours."), field="window_to")


def _book(order, engineer_id, start, end, *, reason: str, customer_later: bool,
          note_text: str, acting_user, now: datetime) -> Appointment:
    from service.states import OrderStatus

    if order.status != OrderStatus.OPEN:
        raise DomainError(_("Only an open order gets an appointment."))
    if order.service_type == ServiceType.PHONE:
        raise DomainError(_("A phone consultation has no appointment."))
    _check_window(start, end, now)
    assign_engineer(order, engineer_id, field="engineer_id")
    row = Appointment(agency_id=order.agency_id, work_order_id=order.id,
                      engineer_id=order.engineer_id, window_from=start, window_to=end,
                      booked_at=now, booked_by_id=getattr(acting_user, "id", None),
                      customer_later=bool(customer_later), reason=reason,
                      note=bounded(note_text, "note", required=False, high=1000))
    db.session.add(row)
    db.session.flush()
    clocks = sla.order_clocks(order.agency_id, order.id)
    sla.meet(clocks, sla.Milestone.APPOINTMENT, now)
    if customer_later:  # the next milestone waits for the customer's date
        waiting = next((c for c in clocks if c.milestone in (sla.Milestone.ARRIVAL,
                                                              sla.Milestone.DIAGNOSIS)), None)
        if waiting is not None and waiting.met_at is None and start > now:
            sla.pause(waiting, now, start, "customer_later", row.note)
    return row


@transition("appointment.booked", Appointment, label=_l("Appointment booked"),
            permission=policy.APPOINTMENT_BOOK, creates=True, audit=_values)
def book_appointment(order, engineer_id, window_from: datetime, window_to: datetime, *,
                     customer_later: bool = False, note_text: str = "", acting_user,
                     now: datetime | None = None) -> Appointment:
    """The order's first appointment, with its engineer."""
    now = now or clock.now()
    if current(order.agency_id, order.id) is not None:
        raise DomainError(_("This order already has an appointment: reschedule it."))
    return _book(order, engineer_id, window_from, window_to, reason="",
                 customer_later=customer_later, note_text=note_text, acting_user=acting_user,
                 now=now)


@transition("appointment.rescheduled", Appointment, label=_l("Appointment rescheduled"),
            permission=policy.APPOINTMENT_BOOK, creates=True, audit=_values)
def reschedule_appointment(order, engineer_id, window_from: datetime, window_to: datetime,
                           reason: str, *, note_text: str = "", acting_user,
                           now: datetime | None = None) -> Appointment:
    """A new window replacing the current one; the reason is required."""
    now = now or clock.now()
    if reason not in {r.value for r in Reschedule}:
        raise DomainError(_("Say why the appointment moves."), field="reason")
    previous = current(order.agency_id, order.id)
    if previous is None:
        raise DomainError(_("This order has no appointment yet: book one."))
    _check_window(window_from, window_to, now)
    previous.superseded_at = now
    db.session.flush()
    row = _book(order, engineer_id, window_from, window_to, reason=reason,
                customer_later=reason == Reschedule.CUSTOMER, note_text=note_text,
                acting_user=acting_user, now=now)
    note(before={"window_from": previous.window_from, "window_to": previous.window_to,
                 "engineer_id": previous.engineer_id},
         reason=str(RESCHEDULE_LABELS[Reschedule(reason)]))
    return row
