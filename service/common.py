"""Small helpers the service rules share: local days, months, settings and safe flushing."""
import calendar
from datetime import date, timedelta
from functools import wraps

from flask import current_app
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from portal.errors_domain import DomainError
from portal.extensions import db

# Seconds a typed timestamp may lie in the future (clocks of phones and PCs drift).
CLOCK_SKEW = timedelta(minutes=10)


def setting(name: str, default: int) -> int:
    """An integer setting of the area (``SERVICE_*`` in the app config)."""
    return int(current_app.config.get(name, default))


def rework_days() -> int:
    return setting("SERVICE_REWORK_DAYS", 30)


def return_due_days() -> int:
    return setting("SERVICE_RETURN_DUE_DAYS", 30)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def warranty_ends_on(purchase_date: date, warranty_months: int) -> date:
    """The first day that is no longer covered."""
    return add_months(purchase_date, warranty_months)


def is_in_warranty(purchase_date: date | None, warranty_months: int, on: date) -> bool:
    """Covered on `on` when bought on or before it and within the warranty months."""
    if purchase_date is None:
        return False
    return purchase_date <= on < warranty_ends_on(purchase_date, warranty_months)


MAX_ID = 2**63 - 1


def db_id(value) -> int | None:
    """An id as the database can hold it; anything else (junk, 0, huge) is no id at all."""
    return value if isinstance(value, int) and 0 < value <= MAX_ID else None


def clean_text(value) -> str:
    """User text, stripped, without NUL characters (PostgreSQL refuses them in text)."""
    return (value or "").replace("\x00", "").strip() if isinstance(value, str) else ""


def actor_id() -> int | None:
    return current_user.id if current_user and current_user.is_authenticated else None


def _conflict() -> DomainError:
    return DomainError(_("Someone else changed this record meanwhile. Reload the page and "
                         "try again."))


def flush_or_conflict() -> None:
    """Flush; a row changed by someone else meanwhile becomes a clear error, not a 500."""
    try:
        db.session.flush()
    except StaleDataError:
        raise _conflict() from None


def refuses_stale(service):
    """Turn a version conflict anywhere in `service` (an autoflush too) into a DomainError."""

    @wraps(service)
    def wrapped(*args, **kwargs):
        try:
            return service(*args, **kwargs)
        except StaleDataError:
            raise _conflict() from None

    return wrapped
