"""Dates typed by users are local (Asia/Shanghai by default); the database keeps UTC."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def parse_date(raw: str | None) -> date | None:
    """An ISO date from user input, or None for anything else (never an error page)."""
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw.strip()[:10])
    except ValueError:
        return None
    return value if date(1990, 1, 1) <= value <= date(2200, 1, 1) else None


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC."""
    start = datetime.combine(day, time.min, tzinfo=local_zone())
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
