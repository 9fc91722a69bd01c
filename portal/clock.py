"""The one clock: now (UTC, as the database keeps it) and the network's local day, month and
quarter (Asia/Shanghai unless ``BABEL_DEFAULT_TIMEZONE`` says otherwise).

Nothing else in the code reads the machine's time: tests move this clock (time-machine) and
the suite must pass at any hour, including local midnight on the last day of a year.
"""
import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from portal.periods import Period

DEFAULT_ZONE = "Asia/Shanghai"


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def local_zone() -> ZoneInfo:
    name = current_app.config.get("BABEL_DEFAULT_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or DEFAULT_ZONE)


def to_local(moment: datetime) -> datetime:
    """An instant on the network's wall clock (naive instants are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(local_zone())


def local_now() -> datetime:
    return to_local(now())


def local_day(moment: datetime) -> date:
    """The network's calendar day of an instant."""
    return to_local(moment).date()


def local_today() -> date:
    return local_day(now())


def from_local(naive: datetime) -> datetime:
    """A wall-clock time typed by a user (local zone) as an aware UTC datetime."""
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=local_zone()).astimezone(UTC)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC."""
    start = datetime.combine(day, time.min, tzinfo=local_zone())
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar month, in UTC."""
    following = date(year + month // 12, month % 12 + 1, 1)
    return local_day_bounds(date(year, month, 1))[0], local_day_bounds(following)[0]


def month_has_ended(year: int, month: int, today: date | None = None) -> bool:
    """Whether the local month is over (its last day is before today)."""
    today = today or local_today()
    return (year, month) < (today.year, today.month)


def last_ended_month(today: date | None = None) -> tuple[int, int]:
    """(year, month) of the local month before today's."""
    first = (today or local_today()).replace(day=1)
    previous = first - timedelta(days=1)
    return previous.year, previous.month


def current_quarter(today: date | None = None) -> Period:
    return Period.of_day(today or local_today())


def last_ended_quarter(today: date | None = None) -> Period:
    return current_quarter(today).previous()



def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the month's end (31 Jan + 1 →
    28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
