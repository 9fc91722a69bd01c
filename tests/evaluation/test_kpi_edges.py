"""Every KPI counted in SQL and scored at its edges: no data, too few items, all bad, all good
(all late and all in time for timeliness), through the whole computation."""
from datetime import timedelta
from decimal import Decimal

import pytest

from evaluation import kpis
from tests.evaluation import factories as f

Q = f.Q
D = Decimal


def _orders(world, n, **kw):
    return [f.order(world.a, world.line, **kw) for _n in range(n)]


def _satisfaction(world, good, bad):
    for n in range(good + bad):
        f.revisit(f.order(world.a, world.line), 5 if n < good else 1)


def _flagged(flag):
    def build(world, good, bad):
        _orders(world, good)
        _orders(world, bad, **{flag: False})
    return build


def _timeliness(world, good, bad):
    _orders(world, good, service_type="phone", hours=2)        # exactly at the SLA
    _orders(world, bad, service_type="onsite", hours=24.5)     # half an hour over


def _rework(world, good, bad):
    origin = f.order(world.a, world.line, day=Q.first_day - timedelta(days=5))
    _orders(world, good)
    _orders(world, bad, rework_of=origin)


def _complaints(world, good, bad):
    # good: orders without a complaint; bad: as many substantiated complaints as orders
    _orders(world, good + bad)
    for _n in range(bad):
        f.complaint(world.a, closed_on=Q.first_day + timedelta(days=20))


def _returns(world, good, bad):
    due = Q.first_day + timedelta(days=30)
    for _n in range(good):
        f.part_return(world.a, world.line, due_on=due, shipped_on=due)
    for _n in range(bad):
        f.part_return(world.a, world.line, due_on=due, shipped_on=None)


def _settlement(world, good, bad):
    if good + bad:
        f.settlement_lines(world.a, world.line, month=Q.months[0],
                           decisions=["approved"] * good + ["adjusted"] * bad)


BUILDERS = {"satisfaction": _satisfaction, "timeliness": _timeliness,
            "first_time_fix": _flagged("first_time_fix"), "rework": _rework,
            "complaints": _complaints, "returns": _returns,
            "certified": _flagged("certified"), "settlement": _settlement}
# (raw, points) with every item bad, and with every item good
EXTREMES = {"satisfaction": (("1.00", "0.00"), ("5.00", "100.00")),
            "rework": (("100.00", "0.00"), ("0.00", "100.00")),
            "complaints": (("100.00", "0.00"), ("0.00", "100.00"))}


def _value(world, code):
    quarter = f.computed()
    result = f.result_of(quarter, world.a)
    return result, f.values_of(result)[code]


@pytest.mark.parametrize("code", sorted(BUILDERS))
def test_no_data_is_marked_and_scores_nothing(hq, code):
    result, value = _value(hq, code)
    assert (value.numerator, value.denominator, value.raw, value.points) == (0, 0, None, None)
    assert not value.is_sufficient and value.effective_weight is None
    assert result.score is None and result.grade is None


@pytest.mark.parametrize("code", sorted(BUILDERS))
def test_too_few_items_are_marked_and_their_weight_spread(hq, code):
    minimum = kpis.BY_CODE[code].min_count
    BUILDERS[code](hq, minimum - 1, 0)
    result, value = _value(hq, code)
    assert value.denominator == minimum - 1
    assert value.raw is not None  # the raw figure is still shown …
    assert not value.is_sufficient and value.points is None  # … but it earns nothing
    assert value.effective_weight is None


@pytest.mark.parametrize("code", sorted(BUILDERS))
def test_every_item_bad(hq, code):
    minimum = kpis.BY_CODE[code].min_count
    BUILDERS[code](hq, 0, minimum)
    _result, value = _value(hq, code)
    raw, points = EXTREMES.get(code, (("0.00", "0.00"), None))[0]
    assert value.is_sufficient and value.denominator == minimum
    assert (value.raw, value.points) == (D(raw), D(points))


@pytest.mark.parametrize("code", sorted(BUILDERS))
def test_every_item_good(hq, code):
    minimum = kpis.BY_CODE[code].min_count
    BUILDERS[code](hq, minimum, 0)
    result, value = _value(hq, code)
    raw, points = EXTREMES.get(code, (None, ("100.00", "100.00")))[1]
    assert value.is_sufficient and value.denominator == minimum
    assert (value.raw, value.points) == (D(raw), D(points))
    assert value.effective_weight is not None and result.score is not None


def test_complaints_without_completed_orders_count_nothing(hq):
    for _n in range(3):
        f.complaint(hq.a, closed_on=Q.first_day + timedelta(days=5))
    _result, value = _value(hq, "complaints")
    assert (value.numerator, value.denominator, value.raw) == (3, 0, None)
    assert not value.is_sufficient


@pytest.mark.parametrize("score, points", [(None, None), (0, "0.00"), (100, "100.00"),
                                           (73, "73.00")])
def test_inspection_at_its_edges(hq, score, points):
    quarter = f.computed()
    if score is not None:
        f.inspect(quarter, hq.a, score)
    result, value = _value(hq, "inspection")
    assert value.is_sufficient == (score is not None)
    assert value.points == (None if points is None else D(points))
    if score is not None:  # the only KPI with data: the score is its points
        assert result.score == D(points)
