"""Dates typed by users; the clock itself (zone, local days) lives in portal.clock."""
from datetime import date

from portal.clock import local_day_bounds, local_zone  # noqa: F401  (re-exported)


def parse_date(raw: str | None) -> date | None:
    """An ISO date from user input, or None for anything else (never an error page)."""
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw.strip()[:10])
    except ValueError:
        return None
    return value if date(1990, 1, 1) <= value <= date(2200, 1, 1) else None
