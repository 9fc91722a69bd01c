"""The one clock (portal/clock.py): the network's day, month and quarter at local midnight, and
no other code reading the machine's time."""
import ast
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from portal import clock
from portal.periods import Period

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Where code lives: every package, the entry point, the migrations and the tests.
SOURCES = ["portal", "tenants", "certification", "service", "dispatch", "settlement", "evaluation",
           "inbox", "bench", "migrations", "tests", "wsgi.py"]
# datetime.now(), datetime.utcnow(), datetime.today(), date.today(): the machine's clock,
# called or passed as a default.
READS_THE_MACHINE = {"date": {"today"}, "datetime": {"now", "utcnow", "today"}}


def _python_files():
    for name in SOURCES:
        path = ROOT / name
        yield from [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


def _machine_reads(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        owner_name = (owner.id if isinstance(owner, ast.Name)
                      else owner.attr if isinstance(owner, ast.Attribute) else None)
        if node.attr in READS_THE_MACHINE.get(owner_name, ()):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {owner_name}.{node.attr}")
    return sorted(found, key=lambda hit: int(hit.split(":")[1]))


def test_nothing_but_the_clock_reads_the_machine_time():
    """Tests move portal.clock (time-machine); code that reads the machine's clock (in UTC on
    a server) gets the network's day wrong from 00:00 to 08:00 in Shanghai."""
    offenders = [hit for path in _python_files() if path != ROOT / "portal" / "clock.py"
                 for hit in _machine_reads(path)]
    assert not offenders, "use portal.clock instead:\n" + "\n".join(offenders)


def test_the_grep_sees_every_spelling(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import datetime as dt\nfrom datetime import date, datetime\n"
                      "a = date.today()\nb = datetime.now(UTC)\nc = dt.datetime.utcnow()\n"
                      "d = datetime.today()\ne = Column(default=datetime.now)\n"
                      "f = 'date.today() in a string is only text'  # datetime.now() too\n"
                      "g = clock.now()\nh = utcnow()\n")
    hits = [hit.split(": ")[1] for hit in _machine_reads(sample, tmp_path)]
    assert hits == ["date.today", "datetime.now", "datetime.utcnow", "datetime.today",
                    "datetime.now"]


# --- the clock at local midnight ----------------------------------------------------------------


def local(*args) -> datetime:
    """A wall-clock time in Shanghai, as an aware instant."""
    return datetime(*args, tzinfo=SHANGHAI)


NEW_YEAR = local(2027, 1, 1, 0, 30)      # 2026-12-31 16:30 UTC
NEW_YEARS_EVE = local(2026, 12, 31, 23, 45)  # 2026-12-31 15:45 UTC


def test_half_past_midnight_on_new_years_day_is_still_the_old_year_in_utc():
    with time_machine.travel(NEW_YEAR, tick=False):
        now = clock.now()
        assert now.tzinfo == UTC and now == datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
        assert now.date() == date(2026, 12, 31)
        assert clock.local_today() == date(2027, 1, 1)
        assert clock.local_now().replace(tzinfo=None) == datetime(2027, 1, 1, 0, 30)


def test_the_local_day_turns_at_16_utc():
    assert clock.local_day(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)) == date(2026, 12, 31)
    assert clock.local_day(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == date(2027, 1, 1)
    # A naive instant is UTC (as the database keeps it), never the machine's zone.
    assert clock.local_day(datetime(2026, 12, 31, 16, 0)) == date(2027, 1, 1)


def test_wall_clock_input_and_back():
    moment = clock.from_local(datetime(2027, 1, 1, 0, 30))
    assert moment == datetime(2026, 12, 31, 16, 30, tzinfo=UTC) and moment.tzinfo == UTC
    assert clock.to_local(moment).replace(tzinfo=None) == datetime(2027, 1, 1, 0, 30)
    assert clock.from_local(NEW_YEAR) == moment  # an aware time is only converted


@pytest.mark.parametrize("instant, today, last_month, quarter", [
    (NEW_YEARS_EVE, date(2026, 12, 31), (2026, 11), Period(2026, 4)),
    (NEW_YEAR, date(2027, 1, 1), (2026, 12), Period(2027, 1)),
    (local(2026, 9, 30, 23, 45), date(2026, 9, 30), (2026, 8), Period(2026, 3)),
    (local(2026, 10, 1, 0, 30), date(2026, 10, 1), (2026, 9), Period(2026, 4)),
    (local(2026, 11, 30, 23, 45), date(2026, 11, 30), (2026, 10), Period(2026, 4)),
    (local(2026, 12, 1, 0, 30), date(2026, 12, 1), (2026, 11), Period(2026, 4)),
], ids=lambda v: v.isoformat() if isinstance(v, datetime) else None)
def test_month_and_quarter_turn_at_local_midnight(instant, today, last_month, quarter):
    with time_machine.travel(instant, tick=False):
        assert clock.local_today() == today
        assert clock.last_ended_month() == last_month
        assert clock.month_has_ended(*last_month)
        assert not clock.month_has_ended(today.year, today.month)
        assert clock.current_quarter() == quarter
        assert clock.last_ended_quarter() == quarter.previous()
        assert quarter.previous().has_ended(clock.local_today())
        assert not quarter.has_ended(clock.local_today())


def test_passing_today_overrides_the_clock():
    with time_machine.travel(NEW_YEAR, tick=False):
        assert clock.last_ended_month(date(2026, 3, 15)) == (2026, 2)
        assert clock.current_quarter(date(2026, 3, 31)) == Period(2026, 1)
        assert clock.last_ended_quarter(date(2026, 4, 1)) == Period(2026, 1)
        assert clock.month_has_ended(2026, 12, today=date(2026, 12, 31)) is False


def test_day_and_month_bounds_are_local_midnights_in_utc():
    assert clock.local_day_bounds(date(2027, 1, 1)) == (
        datetime(2026, 12, 31, 16, tzinfo=UTC), datetime(2027, 1, 1, 16, tzinfo=UTC))
    assert clock.month_bounds(2026, 12) == (
        datetime(2026, 11, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC))
    assert clock.month_bounds(2027, 1)[0] == clock.month_bounds(2026, 12)[1]
    assert Period(2026, 4).utc_bounds("Asia/Shanghai") == (
        clock.month_bounds(2026, 10)[0], clock.month_bounds(2026, 12)[1])
    start, end = clock.local_day_bounds(date(2027, 1, 1))
    assert start <= clock.from_local(datetime(2027, 1, 1, 0, 30)) < end


def test_the_zone_is_the_apps_setting(app, monkeypatch):
    assert clock.local_zone() == SHANGHAI  # outside any app: the network's default
    with app.app_context():
        assert clock.local_zone() == SHANGHAI
        monkeypatch.setitem(app.config, "BABEL_DEFAULT_TIMEZONE", "Europe/Berlin")
        assert clock.local_day(datetime(2026, 12, 31, 22, 59, tzinfo=UTC)) == date(2026, 12, 31)
        assert clock.local_day(datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == date(2027, 1, 1)
