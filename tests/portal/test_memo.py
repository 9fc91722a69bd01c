"""Home-card figures remembered for a minute: per scope, never across scopes."""
import pytest

from certification import queries, widgets
from portal import memo
from portal.auth.roles import Role
from portal.clock import local_today
from portal.tenancy import ALL, agency_scope, region_scope, scoped


@pytest.fixture
def memo_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "HOME_FIGURES_SECONDS", 60)
    memo.forget()
    yield
    memo.forget()


def test_a_figure_is_served_only_to_the_scope_that_computed_it(ctx, world, memo_on):
    calls = []

    def compute(label):
        calls.append(label)
        return label

    with scoped(ALL):
        assert memo.remembered("figure", lambda: compute("network")) == "network"
        assert memo.remembered("figure", lambda: compute("again")) == "network"
    with scoped(region_scope(world.region1.id)):
        assert memo.remembered("figure", lambda: compute("region 1")) == "region 1"
    with scoped(region_scope(world.region2.id)):
        assert memo.remembered("figure", lambda: compute("region 2")) == "region 2"
    with scoped(agency_scope(world.a.id)):
        assert memo.remembered("figure", lambda: compute("agency")) == "agency"
    assert calls == ["network", "region 1", "region 2", "agency"]


def test_a_figure_is_computed_again_after_its_lifetime(ctx, world, memo_on, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(memo.time, "monotonic", lambda: now[0])
    with scoped(ALL):
        assert memo.remembered("figure", lambda: 1) == 1
        now[0] += 59
        assert memo.remembered("figure", lambda: 2) == 1
        now[0] += 2
        assert memo.remembered("figure", lambda: 3) == 3


def test_with_a_lifetime_of_zero_nothing_is_remembered(ctx, world):
    with scoped(ALL):
        assert memo.remembered("figure", lambda: 1) == 1
        assert memo.remembered("figure", lambda: 2) == 2


def test_the_network_card_of_a_regional_manager_is_the_regions_own(ctx, world, memo_on):
    """HQ sees three agencies' product lines, region 1's manager two, even when HQ's figure
    was remembered first."""
    today = local_today()
    hq, manager = world.user(Role.HQ_ADMIN), world.user(Role.REGIONAL_MANAGER)
    with scoped(ALL):
        network = widgets._network(hq)
        assert network == queries.hq_dashboard(today) and network["lines"] == 3
    with scoped(region_scope(world.region1.id, manager.id)):
        region = widgets._network(manager)
        assert region == queries.hq_dashboard(today) and region["lines"] == 2
