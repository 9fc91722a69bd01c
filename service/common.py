"""Small helpers the service rules share: settings, warranty and ids.

Text cleaning (portal.text), months (portal.clock), masking (portal.masking), document numbers
(portal.numbering) and stale pages (portal.transitions) are the core's.
"""
from datetime import date, timedelta

from flask import current_app

from portal.clock import add_months

# Seconds a typed timestamp may lie in the future (clocks of phones and PCs drift).
CLOCK_SKEW = timedelta(minutes=10)


def setting(name: str, default: int) -> int:
    """An integer setting of the area (``SERVICE_*`` in the app config)."""
    return int(current_app.config.get(name, default))


def rework_days() -> int:
    return setting("SERVICE_REWORK_DAYS", 30)


def return_due_days() -> int:
    return setting("SERVICE_RETURN_DUE_DAYS", 30)


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
