"""The navigation bar grouped by area, its search box, and the formats every page shares
(dates that name the month in English, money that never wraps, filters folded on a phone)."""
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask_babel import force_locale

from portal.auth.roles import Role
from portal.navigation import GROUPS, menu_for
from tests.factories import sign_in


def _shape(user, endpoint=None) -> dict:
    """{group: [endpoint, …]} of the user's bar."""
    return {g.key: [i.endpoint for i in g.items] for g in menu_for(user, endpoint)}


def test_hq_admin_sees_every_group_it_has_items_in(app, world):
    with app.test_request_context():
        menu = _shape(world.user(Role.HQ_ADMIN))
    assert list(menu) == ["", *GROUPS]  # the inbox on its own, then the groups in order
    assert menu[""] == ["inbox.index"]
    assert menu["work"][0] == "service.orders"
    assert menu["network"] == ["tenants.agencies", "dispatch.coverage_list"]
    assert {"tenants.users", "audit.index", "inbox.outbox_page"} <= set(menu["admin"])
    assert "settlement.settlements" in menu["money"]


def test_an_engineer_sees_only_its_few_items(app, world):
    with app.test_request_context():
        menu = _shape(world.user(Role.ENGINEER))
    assert list(menu) == ["", "work", "network", "certification"]
    assert menu["network"] == ["tenants.my_agency"]
    assert menu["certification"] == ["certification.certificates"]
    assert "tenants.users" not in sum(menu.values(), [])


@pytest.mark.parametrize("role", list(Role))
def test_every_role_has_groups_in_order_and_no_empty_one(app, world, role):
    with app.test_request_context():
        menu = menu_for(world.user(role))
    keys = [g.key for g in menu]
    assert keys == sorted(keys, key=("", *GROUPS).index)
    assert all(g.items for g in menu)
    assert menu.search is not None  # every role has something to search


@pytest.mark.parametrize("endpoint, group, item", [
    ("service.orders", "work", "service.orders"),
    ("service.order", "work", "service.orders"),  # a work order's page: its list's group
    ("certification.session", "certification", "certification.sessions"),
    ("tenants.agency", "network", "tenants.agencies"),
    ("tenants.user_edit", "admin", "tenants.users"),
    ("settlement.settlement", "money", "settlement.settlements"),
    ("evaluation.quarter", "evaluation", "evaluation.index"),
    ("inbox.announcements", "", "inbox.index"),
    ("web.home", None, None),
])
def test_the_group_of_the_page_shown_is_active(app, world, endpoint, group, item):
    with app.test_request_context():
        menu = menu_for(world.user(Role.HQ_ADMIN), endpoint)
    active = [g for g in menu if g.active]
    assert [g.key for g in active] == ([group] if group is not None else [])
    if active:
        assert active[0].active_endpoint == item


def _nav(body: str) -> str:
    return body[body.index('<nav class="navbar'):body.index("</nav>")]


def test_the_bar_shows_dropdowns_links_and_a_search_box(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    nav = _nav(client.get("/service/orders/").get_data(as_text=True))
    # groups of several items are Bootstrap dropdowns (keyboard: buttons), one item a link
    for key in ("work", "network", "certification", "money", "admin"):
        assert f'id="nav-{key}" data-bs-toggle="dropdown"' in nav
    assert 'data-bs-toggle="dropdown" aria-expanded="false">Service<span class="visually-hidden">' \
        in nav  # the section shown, announced
    assert re.search(r'class="nav-link dropdown-toggle text-nowrap active"[^>]*id="nav-work"', nav)
    assert 'aria-current="page" href="/service/orders/"' in nav
    assert re.search(r'<a class="nav-link text-nowrap"\s+href="/evaluation/">Evaluation</a>', nav)
    assert 'action="/agencies/"' in nav and 'name="q"' in nav and 'role="search"' in nav


def test_an_agency_searches_its_work_orders(client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    nav = _nav(client.get("/").get_data(as_text=True))
    assert 'action="/service/orders/"' in nav
    assert "nav-admin" not in nav or "/users/" in nav  # the owner manages its accounts
    assert "/agencies/" not in nav


def test_the_group_names_follow_the_language(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    client.post("/locale", data={"locale": "zh_CN"})
    nav = _nav(client.get("/").get_data(as_text=True))
    assert ">服务<" in nav and ">认证<" in nav and ">结算<" in nav


def test_the_badge_is_still_one_query(client, world, query_counter):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    client.get("/service/orders/")
    with query_counter:
        assert client.get("/service/orders/").status_code == 200
    counts = [s for s in query_counter.statements
              if "inbox_items" in s and re.search(r"count\(", s, re.IGNORECASE)]
    assert len(counts) == 1, counts


def test_filters_fold_behind_one_button_that_counts_them(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = client.get("/service/orders/?status=open&type=&page=2").get_data(as_text=True)
    assert body.count('class="btn btn-sm btn-outline-secondary filters-toggle') == 1
    assert 'data-bs-target="#order-filters"' in body
    assert 'class="collapse filters-panel" id="order-filters"' in body
    assert "1 filter in use" in body  # status; an empty type and the page do not count


# --- formats -----------------------------------------------------------------------------------

MOMENT = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


def test_english_dates_name_the_month_and_chinese_dates_read_as_such(app):
    date_filter = app.jinja_env.filters["date"]
    datetime_filter = app.jinja_env.filters["datetime"]
    with app.test_request_context():
        with force_locale("en"):
            assert date_filter(date(2026, 12, 5)) == "Dec 5, 2026"
            assert datetime_filter(MOMENT) == "Dec 5, 2026, 09:30"
            assert datetime_filter(MOMENT, "short") == "Dec 5, 2026, 09:30"
            assert date_filter(date(2026, 12, 5), "short") == "Dec 5, 2026"
            assert date_filter(date(2026, 12, 5), "long") == "December 5, 2026"
            for text in (date_filter(date(2026, 12, 5)), datetime_filter(MOMENT)):
                assert not re.search(r"\d+/\d+", text), text
        with force_locale("zh_CN"):
            assert date_filter(date(2026, 12, 5)) == "2026年12月5日"
            assert datetime_filter(MOMENT) == "2026-12-05 09:30"
        assert date_filter(None) == "—" and datetime_filter(None) == "—"


def test_money_on_pages_never_wraps_and_documents_keep_plain_text(app):
    from portal.i18n import format_money

    money = app.jinja_env.filters["money"]
    with app.test_request_context(), force_locale("zh_CN"):
        assert money(Decimal("1234.50")) == "¥1,234.50"
        assert money(Decimal("-12.00")) == "-\u2060¥12.00"  # no break after the minus
        assert format_money(Decimal("-12.00")) == "-¥12.00"  # CSV, PDF texts, messages
        assert money(None) == "—"
