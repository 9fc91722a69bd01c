"""Business-hours arithmetic of the network calendar: worked cases, library facts, properties."""

import time as wallclock
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.calendar import (
    DEFAULT_HOURS,
    KNOWN_UNTIL,
    SOURCE_LABELS,
    Calendar,
    add_business,
    business_seconds,
    clock_state,
)

SH = ZoneInfo("Asia/Shanghai")
H = 3600
NETWORK = Calendar()
OFFICE = Calendar(hours={d: (time(9), time(17)) for d in range(5)})  # Mon–Fri only


def at(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=SH)


# --- library facts the module docstring relies on (a version bump that changes them fails here)

def test_chinese_calendar_knows_2026_exactly_and_refuses_2027():
    assert not any(chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(date(2026, 9, 20))  # Sunday worked for National Day
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # Saturday worked for National Day
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))


def test_holidays_estimates_2027_without_adjusted_weekend_workdays():
    table = holidays.China(years=2027)
    assert date(2027, 10, 1) in table and date(2027, 10, 5) in table  # in lieu, estimated
    assert not [day for day in table.weekend_workdays if day.year == 2027]
    assert date(2026, 10, 10) in holidays.China(years=2026).weekend_workdays
    assert not holidays.China(years=2101)
    assert KNOWN_UNTIL == 2026


# --- which hours a day has

@pytest.mark.parametrize(("day", "source", "hours"), [
    (date(2026, 3, 16), "weekday", DEFAULT_HOURS[0]),
    (date(2026, 3, 14), "weekday", (time(9), time(17))),  # a Saturday: Saturday hours
    (date(2026, 3, 15), "weekend", None),
    (date(2026, 10, 1), "holiday", None),
    (date(2026, 10, 3), "holiday", None),  # a holiday on an open Saturday
    (date(2026, 10, 7), "holiday", None),  # in lieu
    (date(2026, 9, 20), "adjusted_workday", DEFAULT_HOURS[0]),  # Sunday, Monday's hours
    (date(2026, 10, 10), "adjusted_workday", DEFAULT_HOURS[0]),  # not Saturday's 09:00–17:00
    (date(2027, 10, 4), "holiday", None),  # holidays' estimate
    (date(2027, 10, 9), "weekday", (time(9), time(17))),  # no 调休 known for 2027
    (date(2101, 10, 3), "weekday", DEFAULT_HOURS[0]),  # no library: plain weekdays
])
def test_day_sources(day, source, hours):
    assert NETWORK.source(day) == source
    assert NETWORK.working_hours(day) == hours
    assert NETWORK.is_working_day(day) is (hours is not None)
    assert source in SOURCE_LABELS


def test_exceptions_win_over_everything():
    cal = Calendar(exceptions={
        date(2026, 3, 16): None,  # a closed Monday
        date(2026, 3, 15): (time(10), time(16)),  # an open Sunday
        date(2026, 10, 2): (time(9), time(12)),  # open on National Day
        date(2026, 10, 10): None,  # adjusted workday cancelled
    })
    assert [cal.source(d) for d in cal.exceptions] == ["exception"] * 4
    assert not cal.is_working_day(date(2026, 3, 16))
    assert cal.working_hours(date(2026, 10, 2)) == (time(9), time(12))
    assert not cal.is_working_day(date(2026, 10, 10))


def test_adjusted_workday_uses_first_open_weekday_hours():
    cal = Calendar(hours={0: None, 1: (time(10), time(18)), 5: (time(9), time(12))})
    assert cal.working_hours(date(2026, 10, 10)) == (time(10), time(18))


@pytest.mark.parametrize("hours", [(time(17), time(9)), (time(9), time(9)),
                                   (time(9, 0, 0, 5), time(17))])
def test_bad_hours_are_refused(hours):
    with pytest.raises(ValueError):
        Calendar(hours={0: hours})


# --- worked cases

CLOSED_MONDAY = Calendar(exceptions={date(2026, 3, 16): None})
OPEN_SUNDAY = Calendar(exceptions={date(2026, 3, 15): (time(10), time(16))})
HQ_2027 = Calendar(exceptions={date(2027, 9, 26): DEFAULT_HOURS[0]})  # a 调休 Sunday HQ adds

CASES = [
    # calendar, start, end, working hours between, what it shows
    (NETWORK, at(2026, 3, 13, 16, 30), at(2026, 3, 16, 9, 30), 10, "Fri 1 + Sat 8 + Mon 1"),
    (OFFICE, at(2026, 3, 13, 16, 0), at(2026, 3, 16, 10, 0), 2, "weekend closed"),
    (NETWORK, at(2026, 9, 30, 16, 30), at(2026, 10, 8, 9, 30), 2, "National Day Oct 1–7 off"),
    (NETWORK, at(2026, 10, 9, 17, 0), at(2026, 10, 10, 9, 0), 1, "Sat Oct 10 opens 08:30"),
    (OFFICE, at(2026, 10, 9, 16, 0), at(2026, 10, 12, 10, 0), 10, "Fri 1 + Sat 8 + Mon 1"),
    (NETWORK, at(2026, 9, 19, 16, 0), at(2026, 9, 21, 9, 0), 10.5, "Sat 1 + Sun 9 + Mon 0.5"),
    (NETWORK, at(2026, 3, 17, 17, 0), at(2026, 3, 18, 10, 0), 2, "across local midnight"),
    (NETWORK, at(2026, 3, 17, 6, 0), at(2026, 3, 17, 9, 30), 1, "start before opening"),
    (NETWORK, at(2026, 3, 15, 10, 0), at(2026, 3, 16, 9, 30), 1, "start on a closed Sunday"),
    (NETWORK, at(2026, 3, 17, 20, 0), at(2026, 3, 17, 23, 0), 0, "only closed time"),
    (CLOSED_MONDAY, at(2026, 3, 13, 17, 0), at(2026, 3, 17, 9, 30), 9.5, "Fri .5+Sat 8+Tue 1"),
    (OPEN_SUNDAY, at(2026, 3, 14, 16, 0), at(2026, 3, 16, 9, 0), 7.5, "Sat 1 + Sun 6 + Mon .5"),
    (NETWORK, at(2027, 9, 30, 17, 0), at(2027, 10, 6, 9, 30), 1.5, "2027: Oct 1–5 estimated"),
    (NETWORK, at(2027, 10, 8, 17, 0), at(2027, 10, 9, 10, 0), 1.5, "2027: Sat Oct 9 Sat hours"),
    (HQ_2027, at(2027, 9, 25, 16, 0), at(2027, 9, 27, 9, 0), 10.5, "2027: HQ's 调休 Sunday"),
    (NETWORK, at(2101, 10, 1, 16, 0), at(2101, 10, 3, 9, 30), 2, "2101: plain weekly hours"),
]


@pytest.mark.parametrize(("cal", "start", "end", "hours", "why"), CASES,
                         ids=[case[-1] for case in CASES])
def test_worked_cases(cal, start, end, hours, why):
    assert business_seconds(cal, start, end) == hours * H
    due = add_business(cal, start, int(hours * H))
    if hours:  # the clock runs out exactly at `end` (all cases end inside working hours)
        assert due == end and due.tzinfo == SH
    assert business_seconds(cal, end, start) == 0


def test_midnight_start_given_in_utc():
    start = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    assert add_business(NETWORK, start, 2 * H) == at(2026, 3, 18, 10, 0)


def test_pause_removes_exactly_its_working_overlap():
    start, end = at(2026, 3, 16, 9, 0), at(2026, 3, 18, 12, 0)
    assert business_seconds(NETWORK, start, end) == (8.5 + 9 + 3.5) * H
    customer_later = [(at(2026, 3, 16, 16, 0), at(2026, 3, 17, 10, 0))]  # 1.5 h + 1.5 h
    assert business_seconds(NETWORK, start, end, customer_later) == 18 * H
    overnight = [(at(2026, 3, 16, 18, 0), at(2026, 3, 17, 8, 0))]
    assert business_seconds(NETWORK, start, end, overnight) == 21 * H
    assert add_business(NETWORK, start, 9 * H, customer_later) == at(2026, 3, 17, 12, 0)


def test_open_pause_lasts_until_end_and_overlapping_pauses_count_once():
    start, end = at(2026, 3, 16, 8, 30), at(2026, 3, 16, 17, 30)
    still = [(at(2026, 3, 16, 12, 0), None)]
    assert business_seconds(NETWORK, start, end, still) == 3.5 * H
    twice = [(at(2026, 3, 16, 9, 0), at(2026, 3, 16, 11, 0)),
             (at(2026, 3, 16, 10, 0), at(2026, 3, 16, 12, 0))]
    assert business_seconds(NETWORK, start, end, twice) == 6 * H
    with pytest.raises(ValueError):
        add_business(NETWORK, start, H, still)


def test_refusals():
    with pytest.raises(ValueError):
        business_seconds(NETWORK, datetime(2026, 3, 16, 9), at(2026, 3, 17))
    with pytest.raises(ValueError):
        add_business(NETWORK, at(2026, 3, 16), -1)
    with pytest.raises(ValueError):  # never open: no endless search
        add_business(Calendar(hours={}), at(2026, 3, 16), 1)
    with pytest.raises(TypeError):
        NETWORK.source(at(2026, 3, 16))


def test_a_year_is_fast_and_counts_the_published_workdays():
    started = wallclock.perf_counter()
    used = business_seconds(OFFICE, at(2026, 1, 1), at(2027, 1, 1))
    workdays = chinese_calendar.get_workdays(date(2026, 1, 1), date(2026, 12, 31))
    assert used == len(workdays) * 8 * H
    assert add_business(OFFICE, at(2026, 1, 1), used) == at(2026, 12, 31, 17, 0)
    assert wallclock.perf_counter() - started < 0.5


# --- clock state

def test_clock_state_thresholds():
    start, target = at(2026, 3, 16, 8, 30), 10 * H  # Mon 9 h, then Tue from 08:30
    states = {
        at(2026, 3, 16, 15, 59): "on_time",
        at(2026, 3, 16, 16, 0): "warning",  # 75 %
        at(2026, 3, 17, 9, 29): "warning",
        at(2026, 3, 17, 9, 30): "breached",  # 100 %
        at(2026, 3, 17, 14, 30): "breached_2",  # 150 %
    }
    for now, state in states.items():
        clock = clock_state(NETWORK, start, now, target)
        assert clock.state == state, now
        assert clock.due_at == at(2026, 3, 17, 9, 30)
        assert clock.warn_at == at(2026, 3, 16, 16, 0)
        assert clock.second_at == at(2026, 3, 17, 14, 30)
    clock = clock_state(NETWORK, start, at(2026, 3, 16, 16, 0), target)
    assert (clock.used_seconds, clock.share, clock.remaining_seconds) == (
        7.5 * H, Decimal("0.75"), 2.5 * H)


def test_clock_state_custom_levels_and_refusals():
    start = at(2026, 3, 16, 8, 30)
    clock = clock_state(NETWORK, start, at(2026, 3, 16, 13, 30), 10 * H,
                        warn_at=0.5, second_level=2)
    assert clock.state == "warning" and clock.second_at == at(2026, 3, 18, 10, 30)
    for kwargs in ({"warn_at": 0}, {"warn_at": 1.2}, {"second_level": 0.9}):
        with pytest.raises(ValueError):
            clock_state(NETWORK, start, start, H, **kwargs)
    with pytest.raises(ValueError):
        clock_state(NETWORK, start, start, 0)


def test_paused_clock_stops_and_its_due_time_assumes_resuming_now():
    start = at(2026, 3, 16, 8, 30)
    pauses = [(at(2026, 3, 16, 10, 30), None)]
    for now in (at(2026, 3, 16, 12, 0), at(2026, 3, 20, 12, 0)):
        clock = clock_state(NETWORK, start, now, 4 * H, pauses)
        assert clock.paused and clock.used_seconds == 2 * H and clock.state == "on_time"
        assert clock.due_at == add_business(NETWORK, now, 2 * H)
    resumed = [(at(2026, 3, 16, 10, 30), at(2026, 3, 16, 12, 0))]
    clock = clock_state(NETWORK, start, at(2026, 3, 16, 14, 0), 4 * H, resumed)
    assert not clock.paused and clock.used_seconds == 4 * H and clock.state == "breached"


# --- properties

BASE = at(2026, 9, 10)  # spans National Day 2026 and its adjusted workdays
SPAN = 70 * 24 * H
HQ = Calendar(exceptions={date(2026, 9, 27): (time(10), time(15)), date(2026, 10, 12): None})
calendars = st.sampled_from([NETWORK, OFFICE, HQ])
offsets = st.integers(min_value=0, max_value=SPAN)


def instant(offset, in_utc=False):
    moment = BASE + timedelta(seconds=offset)
    return moment.astimezone(UTC) if in_utc else moment


# edges where off-by-a-little bugs live: openings, closings, midnight, give or take seconds
EDGES = [t.hour * H + t.minute * 60 for t in (time(0), time(8, 30), time(9), time(10), time(15),
                                               time(17), time(17, 30))]
near_edges = st.builds(lambda day, edge, delta: max(0, day * 24 * H + edge + delta),
                       st.integers(0, 69), st.sampled_from(EDGES), st.integers(-90, 90))
offsets = st.one_of(offsets, near_edges)
moments = st.builds(instant, offsets, st.booleans())
lengths = st.one_of(st.integers(0, 5 * 24 * H), st.integers(0, 120))
pause_lists = st.lists(
    st.tuples(offsets, st.one_of(st.none(), lengths)).map(
        lambda p: (instant(p[0]), None if p[1] is None else instant(p[0] + p[1]))),
    max_size=3)
closed_pause_lists = st.lists(
    st.tuples(offsets, lengths).map(lambda p: (instant(p[0]), instant(p[0] + p[1]))),
    max_size=3)
PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(calendars, moments, moments, pause_lists)
def test_pausing_never_adds_used_time(cal, start, end, pauses):
    assert business_seconds(cal, start, end, pauses) <= business_seconds(cal, start, end)


@PROPERTY
@given(calendars, moments, st.integers(0, 200 * H), closed_pause_lists)
def test_pausing_never_makes_a_clock_due_earlier(cal, start, seconds, pauses):
    assert add_business(cal, start, seconds, pauses) >= add_business(cal, start, seconds)


@PROPERTY
@given(calendars, st.lists(moments, min_size=3, max_size=3).map(sorted), pause_lists)
def test_durations_are_additive_over_splits(cal, abc, pauses):
    a, b, c = abc
    whole = business_seconds(cal, a, c, pauses)
    # an open pause lasts to each part's end: close it at c so all three see the same pauses
    pauses = [(begin, c if finish is None else finish) for begin, finish in pauses]
    assert whole == business_seconds(cal, a, b, pauses) + business_seconds(cal, b, c, pauses)


@PROPERTY
@given(calendars, moments, st.integers(0, 200 * H), closed_pause_lists)
def test_add_business_is_the_inverse(cal, start, seconds, pauses):
    due = add_business(cal, start, seconds, pauses)
    assert business_seconds(cal, start, due, pauses) == seconds
    if seconds:  # and the first such instant
        assert business_seconds(cal, start, due - timedelta(seconds=1), pauses) == seconds - 1


@PROPERTY
@given(calendars, moments, moments, moments, pause_lists)
def test_monotonic_in_end(cal, start, end, later, pauses):
    end, later = sorted((end, later))
    pauses = [(begin, later if finish is None else finish) for begin, finish in pauses]
    assert business_seconds(cal, start, end, pauses) <= business_seconds(cal, start, later, pauses)


def reference_seconds(cal, start, end, pauses):
    """Quarter-hour stepping, for cases on a quarter-hour grid: slow and obviously right."""
    step, total, moment = timedelta(minutes=15), 0, start
    while moment < end:
        local = moment.astimezone(cal.zone)
        hours = cal.working_hours(local.date())
        paused = any(begin <= moment < finish for begin, finish in pauses)
        if hours and hours[0] <= local.time() < hours[1] and not paused:
            total += 15 * 60
        moment += step
    return total


quarters = st.integers(0, 21 * 24 * 4).map(lambda q: BASE + timedelta(minutes=15 * q))


@settings(max_examples=60, deadline=None)
@given(calendars, quarters, st.integers(0, 10 * 24 * 4),
       st.lists(st.tuples(quarters, st.integers(0, 3 * 24 * 4)), max_size=2))
def test_agrees_with_quarter_hour_stepping(cal, start, quarter_count, raw_pauses):
    end = start + timedelta(minutes=15 * quarter_count)
    pauses = [(begin, begin + timedelta(minutes=15 * n)) for begin, n in raw_pauses]
    assert business_seconds(cal, start, end, pauses) == reference_seconds(cal, start, end, pauses)


def sweep_seconds(cal, start, end, pauses):
    """Cut [start, end) at every opening, closing and pause edge; add the pieces whose middle
    is open and unpaused. Exact to the second, and built unlike the module's interval walk."""
    pauses = [(begin, end if finish is None else finish) for begin, finish in pauses]
    cuts = {start, end, *(edge for pause in pauses for edge in pause)}
    day = start.astimezone(cal.zone).date()
    while day <= end.astimezone(cal.zone).date():
        for t in cal.working_hours(day) or ():
            cuts.add(datetime.combine(day, t, cal.zone))
        day += timedelta(days=1)
    points = sorted(cut for cut in cuts if start <= cut <= end)
    total = 0
    for left, right in zip(points, points[1:], strict=False):
        middle = left + (right - left) / 2
        hours = cal.working_hours(middle.astimezone(cal.zone).date())
        open_ = hours and hours[0] <= middle.astimezone(cal.zone).time() < hours[1]
        if open_ and not any(begin <= middle < finish for begin, finish in pauses):
            total += int((right - left).total_seconds())
    return total


@PROPERTY
@given(calendars, moments, moments, pause_lists)
def test_agrees_with_a_sweep_over_all_edges(cal, start, end, pauses):
    start, end = sorted((start, end))
    assert business_seconds(cal, start, end, pauses) == sweep_seconds(cal, start, end, pauses)
