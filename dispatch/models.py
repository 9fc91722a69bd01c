"""The network calendar's tables: working hours per weekday and HQ's exceptions.

China's statutory holidays and adjusted workdays (调休) come from the holidays libraries
(dispatch/calendar.py); HQ edits only what the libraries cannot know: its own hours, and
days it closes or opens against the rule."""
from datetime import date, datetime, time

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, String, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import UTCDateTime, utcnow

WEEKDAY_LABELS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
                  _l("Saturday"), _l("Sunday"))


class WorkingHours(db.Model):
    """The network's working hours on one weekday (0 Monday … 6 Sunday); none: closed."""

    __tablename__ = "network_working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("(opens IS NULL) = (closes IS NULL)", name="both_or_neither"),
        CheckConstraint("opens IS NULL OR opens < closes", name="opens_before_closes"),
    )

    weekday: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    opens: Mapped[time | None] = mapped_column(Time)
    closes: Mapped[time | None] = mapped_column(Time)


class CalendarException(db.Model):
    """A day HQ decides against the rule: closed (a company holiday, a typhoon), or open with
    its hours (a Sunday campaign, an adjusted workday a library does not know yet)."""

    __tablename__ = "calendar_exceptions"
    __table_args__ = (
        CheckConstraint("(opens IS NULL) = (closes IS NULL)", name="both_or_neither"),
        CheckConstraint("opens IS NULL OR opens < closes", name="opens_before_closes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(unique=True)
    opens: Mapped[time | None] = mapped_column(Time)
    closes: Mapped[time | None] = mapped_column(Time)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by = relationship("User")

    @property
    def is_closed(self) -> bool:
        return self.opens is None
