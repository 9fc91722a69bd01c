"""Quarters as values: "2026Q3" (the one spelling), its local days, UTC bounds and neighbours."""
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_PATTERN = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]\s*([1-4])\s*$")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar quarter; ordering follows time."""

    year: int
    quarter: int

    @classmethod
    def parse(cls, text: str | None) -> "Period | None":
        """"2026Q3", "2026-Q3" or "2026 q3"; None for anything else (never an exception)."""
        match = _PATTERN.match(text or "")
        if not match:
            return None
        year = int(match.group(1))
        if not 2000 <= year <= 2199:
            return None
        return cls(year, int(match.group(2)))

    @classmethod
    def from_index(cls, index: int) -> "Period":
        return cls(index // 4, index % 4 + 1)

    @classmethod
    def of_day(cls, day: date) -> "Period":
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def index(self) -> int:
        """A number that grows by one per quarter (for ordering and storage)."""
        return self.year * 4 + self.quarter - 1

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.quarter}"

    def __str__(self) -> str:
        return self.label

    @property
    def months(self) -> tuple[int, int, int]:
        first = (self.quarter - 1) * 3 + 1
        return first, first + 1, first + 2

    @property
    def first_day(self) -> date:
        return date(self.year, self.months[0], 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> "Period":
        return Period.from_index(self.index + 1)

    def previous(self, count: int = 1) -> "Period":
        return Period.from_index(self.index - count)

    def last(self, count: int) -> list["Period"]:
        """This quarter and the `count - 1` before it, oldest first."""
        return [self.previous(n) for n in range(count - 1, -1, -1)]

    def utc_bounds(self, zone: str) -> tuple[datetime, datetime]:
        """[start, end) of the quarter's local days, in UTC."""
        tz = ZoneInfo(zone)
        start = datetime.combine(self.first_day, time.min, tzinfo=tz)
        end = datetime.combine(self.next().first_day, time.min, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    def has_ended(self, today: date) -> bool:
        return today > self.last_day
