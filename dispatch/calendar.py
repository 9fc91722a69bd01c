"""Business hours of the network calendar: SLA clocks that run only while the network works.

Which hours a local day has, first match wins:
1. HQ's exceptions (a day off, or a working day with its own hours);
2. China's statutory holidays, including weekdays given off in lieu: closed;
3. adjusted workdays (调休: a Saturday or Sunday worked to bridge a holiday): open with the hours
   of a normal weekday (the first open one from Monday), not with that weekend day's hours;
4. the weekly hours (DEFAULT_HOURS unless HQ sets others).

Where 2 and 3 come from (as pinned: chinesecalendar 1.11.0, holidays 0.109):
- 2004–2026: chinese_calendar, transcribed from the State Council's yearly notices: holidays and
  调休 workdays exactly. It raises NotImplementedError for other years; we then fall back, so a
  newer chinese_calendar extends the exact range without a code change.
- 2027–2100 (and 1950–2003): holidays.China. It computes the statutory holidays by rule (lunar
  dates included) and moves those falling on a weekend to the next weekdays (its "observed"
  rule): an estimate of the days off. Its `weekend_workdays` (the 调休 Saturdays/Sundays) come
  only from published notices (2001–2026), so from 2027 on no weekend day is a workday: such a
  Saturday keeps Saturday hours and a Sunday stays closed.
- After 2100: neither library knows anything; plain weekly hours.
The State Council publishes next year's schedule each November; until the pinned libraries know
it, HQ enters the differences as exceptions (the 调休 weekend days as working days with hours,
any day off the estimate missed as closed, a wrongly estimated day off as a working day).

Arithmetic runs on UTC instants in whole seconds (microseconds are dropped), so durations are
exact whatever the zone; working hours are local to `Calendar.zone` and never cross midnight.
A year of clock costs one step per day, not per minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
from flask_babel import lazy_gettext as _l

Hours = tuple[time, time] | None
Pause = tuple[datetime, datetime | None]

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Service networks open on Saturdays: that is when customers are at home for on-site visits and
# bring devices in. Weekdays 08:30–17:30 (the lunch hour counts: the hotline and travel go on),
# Saturday 09:00–17:00, Sunday the weekly day off. HQ can change any day or add exceptions.
DEFAULT_HOURS: dict[int, Hours] = {
    **{weekday: (time(8, 30), time(17, 30)) for weekday in range(5)},
    5: (time(9, 0), time(17, 0)),
    6: None,
}

SOURCE_LABELS = {
    "exception": _l("HQ exception"),
    "holiday": _l("Statutory holiday"),
    "adjusted_workday": _l("Adjusted workday"),
    "weekday": _l("Regular working hours"),
    "weekend": _l("Weekly day off"),
}

SECOND = timedelta(seconds=1)
# A calendar closed this many days in a row has no working time: add_business stops searching.
MAX_CLOSED_DAYS = 366


@dataclass(frozen=True)
class Calendar:
    """The network's working hours: weekday → (open, close) or None, and HQ's exceptions."""

    hours: Mapping[int, Hours] = field(default_factory=lambda: dict(DEFAULT_HOURS))
    exceptions: Mapping[date, Hours] = field(default_factory=dict)
    zone: ZoneInfo = SHANGHAI

    def __post_init__(self):
        for hours in (*self.hours.values(), *self.exceptions.values()):
            if hours is None:
                continue
            opens, closes = hours
            if any(t.tzinfo or t.microsecond for t in hours) or not opens < closes:
                raise ValueError(f"hours must be naive whole seconds, open < close: {hours}")

    def working_hours(self, day: date) -> Hours:
        return self._resolve(day)[1]

    def is_working_day(self, day: date) -> bool:
        return self.working_hours(day) is not None

    def source(self, day: date) -> str:
        """Why the day has its hours: a key of SOURCE_LABELS."""
        return self._resolve(day)[0]

    def _resolve(self, day: date) -> tuple[str, Hours]:
        if isinstance(day, datetime):
            raise TypeError("pass the local date, not a datetime")
        if day in self.exceptions:
            return "exception", self.exceptions[day]
        kind = statutory_kind(day)
        if kind == "holiday":
            return "holiday", None
        if kind == "adjusted_workday":
            return "adjusted_workday", self._workday_hours(day)
        hours = self.hours.get(day.weekday())
        return ("weekday" if hours else "weekend"), hours

    def _workday_hours(self, day: date) -> Hours:
        weekdays = (self.hours.get(weekday) for weekday in range(5))
        return next((hours for hours in weekdays if hours), self.hours.get(day.weekday()))


@lru_cache(maxsize=4096)
def statutory_kind(day: date) -> str | None:
    """"holiday", "adjusted_workday" or None (an ordinary day) by China's schedule for `day`."""
    try:
        off, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        days_off, weekend_workdays = _estimated_year(day.year)
        if day in days_off:
            return "holiday"
        return "adjusted_workday" if day in weekend_workdays else None
    if name is None:
        return None
    return "holiday" if off else "adjusted_workday"


@lru_cache(maxsize=64)
def _estimated_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    table = holidays.China(years=year)
    return frozenset(table), frozenset(table.weekend_workdays)


def _known_until() -> int:
    """The last year whose official schedule (holidays and 调休 workdays) a library has."""
    year = 2004
    while year < 2100:
        try:
            chinese_calendar.is_workday(date(year + 1, 1, 1))
        except NotImplementedError:
            break
        year += 1
    while any(day.year == year + 1 for day in _estimated_year(year + 1)[1]):
        year += 1
    return year


# For the calendar page: "the official schedule is known up to ..."; 2026 as pinned.
KNOWN_UNTIL = _known_until()


def business_seconds(cal: Calendar, start: datetime, end: datetime,
                     pauses: Iterable[Pause] = ()) -> int:
    """Working seconds from start to end, less pauses (an open pause lasts until end); 0 if
    end <= start. Raises ValueError for naive datetimes."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return 0
    openings = _openings(cal, _local_day(cal, start), last=_local_day(cal, end))
    total = 0
    for begin, finish in _running(openings, _merged(pauses, end)):
        begin, finish = max(begin, start), min(finish, end)
        if finish > begin:
            total += (finish - begin) // SECOND
    return total


def add_business(cal: Calendar, start: datetime, seconds: int,
                 pauses: Iterable[Pause] = ()) -> datetime:
    """The first instant (in cal.zone) at which `seconds` working seconds have run since start.

    Raises ValueError for negative seconds, naive datetimes, an open pause (close it, e.g. at
    now, to ask "when if it resumed now") or a calendar without working days."""
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    pauses = list(pauses)
    if any(finish is None for _, finish in pauses):
        raise ValueError("an open pause has no end: the clock's due time is unknown")
    start = _utc(start)
    left = seconds
    if left == 0:
        return start.astimezone(cal.zone)
    for begin, finish in _running(_openings(cal, _local_day(cal, start)), _merged(pauses, None)):
        begin = max(begin, start)
        if finish <= begin:
            continue
        span = (finish - begin) // SECOND
        if span >= left:
            return (begin + left * SECOND).astimezone(cal.zone)
        left -= span
    raise AssertionError("unreachable: _openings is endless or raises")  # pragma: no cover


@dataclass(frozen=True)
class ClockState:
    """One SLA clock at a moment: how much is used and when it warns, is due, escalates."""

    used_seconds: int
    target_seconds: int
    share: Decimal  # used / target, floored to 4 places
    state: str  # "on_time" | "warning" | "breached" | "breached_2"
    due_at: datetime  # 100 %
    warn_at: datetime
    second_at: datetime
    paused: bool = False  # then the instants assume the clock resumes now

    @property
    def remaining_seconds(self) -> int:
        """Working seconds to breach; negative once breached."""
        return self.target_seconds - self.used_seconds


def clock_state(cal: Calendar, start: datetime, now: datetime, target_seconds: int,
                pauses: Iterable[Pause] = (), *, warn_at: float = 0.75,
                second_level: float = 1.5) -> ClockState:
    """The clock started at start, seen at now (for a reached milestone: the moment reached).

    States switch at the first second that reaches warn_at, 100 % and second_level of the
    target. Raises ValueError for a target <= 0 or levels not in 0 < warn_at <= 1 <= second."""
    warn_ratio, second_ratio = Decimal(str(warn_at)), Decimal(str(second_level))
    if target_seconds <= 0 or not 0 < warn_ratio <= 1 <= second_ratio:
        raise ValueError("need target_seconds > 0 and 0 < warn_at <= 1 <= second_level")
    now_utc = _utc(now)
    pauses = list(pauses)
    paused = any(_utc(b) <= now_utc and (e is None or _utc(e) > now_utc) for b, e in pauses)
    resumed = [(begin, now if finish is None else finish) for begin, finish in pauses]
    used = business_seconds(cal, start, now, resumed)
    warn_s, second_s = (_ceil(ratio * target_seconds) for ratio in (warn_ratio, second_ratio))
    if used >= second_s:
        state = "breached_2"
    elif used >= target_seconds:
        state = "breached"
    elif used >= warn_s:
        state = "warning"
    else:
        state = "on_time"
    share = (Decimal(used) / target_seconds).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
    return ClockState(
        used_seconds=used, target_seconds=target_seconds, share=share, state=state,
        due_at=add_business(cal, start, target_seconds, resumed),
        warn_at=add_business(cal, start, warn_s, resumed),
        second_at=add_business(cal, start, second_s, resumed),
        paused=paused,
    )


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("SLA clocks need timezone-aware datetimes")
    return moment.astimezone(UTC).replace(microsecond=0)


def _local_day(cal: Calendar, moment: datetime) -> date:
    return moment.astimezone(cal.zone).date()


def _openings(cal: Calendar, first: date, last: date | None = None
              ) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals (UTC) day by day from `first`: to `last`, or endless without it."""
    day, closed_run = first, 0
    while last is None or day <= last:
        hours = cal.working_hours(day)
        if hours:
            closed_run = 0
            opens, closes = (datetime.combine(day, t, cal.zone).astimezone(UTC) for t in hours)
            if closes > opens:
                yield opens, closes
        else:
            closed_run += 1
            if last is None and closed_run > MAX_CLOSED_DAYS:
                raise ValueError(f"the calendar has no working day in {MAX_CLOSED_DAYS} days")
        day += timedelta(days=1)


def _merged(pauses: Iterable[Pause], until: datetime | None) -> list[tuple[datetime, datetime]]:
    """Pauses as sorted, disjoint UTC intervals; an open one ends at `until`."""
    spans = []
    for begin, finish in pauses:
        begin, finish = _utc(begin), (until if finish is None else _utc(finish))
        if finish > begin:
            spans.append((begin, finish))
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _running(openings: Iterable[tuple[datetime, datetime]],
             pauses: list[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    """The parts of the (increasing) openings that no (merged) pause covers."""
    first = 0
    for begin, finish in openings:
        while first < len(pauses) and pauses[first][1] <= begin:
            first += 1
        index = first
        while index < len(pauses) and pauses[index][0] < finish and begin < finish:
            pause_begin, pause_end = pauses[index]
            if pause_begin > begin:
                yield begin, pause_begin
            begin = max(begin, pause_end)
            index += 1
        if begin < finish:
            yield begin, finish
