"""The network calendar as HQ keeps it: working hours per weekday and exceptions, read into the
business-hours arithmetic's Calendar (dispatch/calendar.py) and changed through the write path."""
from dataclasses import dataclass, field
from datetime import date, time

from flask import g, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch import calendar, policy
from dispatch.models import CalendarException, WorkingHours
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import describe, note, transition

# How far ahead an exception may be set, and how far back one may still be removed or changed
# (clocks of the past were measured on the calendar as it was).
HORIZON_DAYS = 3 * 366


@dataclass
class NetworkWeek:
    """The seven weekdays' working hours, as one record of the write path."""

    rows: dict[int, WorkingHours] = field(default_factory=dict)
    id: int | None = None

    def hours(self, weekday: int) -> tuple[time, time] | None:
        row = self.rows.get(weekday)
        return (row.opens, row.closes) if row is not None and row.opens else None


describe(NetworkWeek, _l("network calendar"))
describe(CalendarException, _l("calendar exception"))


def _span(hours: tuple[time, time] | None) -> str:
    return f"{hours[0]:%H:%M}–{hours[1]:%H:%M}" if hours else "closed"


def week() -> NetworkWeek:
    rows = {row.weekday: row for row in db.session.scalars(select(WorkingHours))}
    return NetworkWeek(rows)


def exceptions(start: date | None = None, end: date | None = None) -> list[CalendarException]:
    stmt = select(CalendarException).order_by(CalendarException.day)
    if start is not None:
        stmt = stmt.where(CalendarException.day >= start)
    if end is not None:
        stmt = stmt.where(CalendarException.day <= end)
    return list(db.session.scalars(stmt))


def load() -> calendar.Calendar:
    """The network calendar as the clocks read it (two queries, kept for the request)."""
    cached = g.get("_network_calendar") if has_app_context() else None
    if cached is not None:
        return cached
    current = week()
    hours = {day: current.hours(day) for day in range(7)} if current.rows else \
        dict(calendar.DEFAULT_HOURS)
    found = calendar.Calendar(
        hours=hours,
        exceptions={e.day: (e.opens, e.closes) if e.opens else None for e in exceptions()})
    if has_app_context():
        g._network_calendar = found
    return found


def _forget() -> None:
    if has_app_context():
        g.pop("_network_calendar", None)


def recompute_clocks() -> tuple[int, int]:
    """After a change of the calendar: the open clocks' instants on the new calendar (the
    work orders' milestone clocks, and the accept clocks of the requests no agency has
    accepted yet), so the board and the tick see the new due times at once.

    An accept clock keeps the target it started with (as an order's clock does); one
    without a stored target takes the current one. Returns (order clocks, accept clocks)."""
    from dispatch import sla
    from dispatch.requests import RequestStatus, ServiceRequest, start_accept_clock

    _forget()
    orders = sla.recompute_open_clocks()
    cal = load()
    waiting = db.session.scalars(select(ServiceRequest).where(
        ServiceRequest.status.in_([RequestStatus.NEW, RequestStatus.OFFERED]),
        ServiceRequest.accepted_at.is_(None), ServiceRequest.accept_due_at.isnot(None))).all()
    for request in waiting:
        if request.accept_target_seconds:
            request.accept_warn_at, request.accept_due_at, request.accept_escalate_at = \
                sla.instants(request.received_at, request.accept_target_seconds, cal=cal)
        else:
            start_accept_clock(request, cal)
    return orders, len(waiting)


def _check_hours(opens: time | None, closes: time | None, field_name: str):
    if (opens is None) != (closes is None):
        raise DomainError(_("Give both the opening and the closing time, or neither for a "
                            "closed day."), field=field_name)
    if opens is not None and opens >= closes:
        raise DomainError(_("The closing time must be after the opening time."),
                          field=field_name)
    return (opens, closes) if opens is not None else None


def _week_values(current: NetworkWeek) -> dict:
    return {f"weekday_{day}": _span(current.hours(day)) for day in range(7)}


@transition("calendar.hours_changed", NetworkWeek, label=_l("Working hours changed"),
            permission=policy.CALENDAR_EDIT, audit=_week_values)
def save_hours(current: NetworkWeek, hours: dict[int, tuple[time | None, time | None]], *,
               acting_user) -> None:
    """Set the working hours of each weekday ({weekday: (opens, closes)}; (None, None):
    closed). Every day is checked before anything is written; a week without a working day
    is refused (no clock could ever run)."""
    checked = {day: _check_hours(*hours.get(day, (None, None)), f"opens_{day}")
               for day in range(7)}
    if not any(checked.values()):
        raise DomainError(_("At least one weekday must have working hours."), field="opens_0")
    for day, span in checked.items():
        row = current.rows.get(day)
        if row is None:
            row = current.rows[day] = WorkingHours(weekday=day)
            db.session.add(row)
        row.opens, row.closes = span if span else (None, None)
    note(object_type="NetworkWeek", object_id=1)
    db.session.flush()
    recompute_clocks()


def _exception_values(row: CalendarException) -> dict:
    return {"day": row.day.isoformat(), "hours": _span((row.opens, row.closes)
                                                       if row.opens else None),
            "note": row.note}


@transition("calendar.exception_saved", CalendarException, label=_l("Calendar exception set"),
            permission=policy.EXCEPTION_SAVE, creates=True, audit=_exception_values)
def save_exception(day: date, opens: time | None, closes: time | None, note_text: str, *,
                   today: date, acting_user) -> CalendarException:
    """Close `day`, or open it with its hours, whatever the rule says; replaces an exception
    already set for that day. Only today and later days: the past was measured as it was."""
    text = clean(note_text, limit=200)
    if not text:
        raise DomainError(_("Say why (the note is shown beside the day)."), field="note")
    if day < today:
        raise DomainError(_("A past day cannot change: its clocks were measured on it."),
                          field="day")
    if (day - today).days > HORIZON_DAYS:
        raise DomainError(_("At most three years ahead."), field="day")
    span = _check_hours(opens, closes, "opens")
    row = db.session.scalars(select(CalendarException).where(CalendarException.day == day)
                             ).one_or_none()
    if row is None:
        row = CalendarException(day=day, created_by_id=getattr(acting_user, "id", None))
        db.session.add(row)
    else:
        note(before=_exception_values(row))
    row.opens, row.closes = span if span else (None, None)
    row.note = text
    db.session.flush()
    recompute_clocks()
    return row


@transition("calendar.exception_removed", CalendarException,
            label=_l("Calendar exception removed"), permission=policy.EXCEPTION_REMOVE,
            audit=_exception_values)
def remove_exception(row: CalendarException, *, today: date, acting_user) -> None:
    if row.day < today:
        raise DomainError(_("A past day cannot change: its clocks were measured on it."))
    db.session.delete(row)
    db.session.flush()
    recompute_clocks()
