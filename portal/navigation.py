"""Role-aware navigation and home-page widgets, contributed by each area at registration."""
import os
from dataclasses import dataclass, field
from typing import Callable

from flask import has_request_context, request
from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object  # a lazy string
    roles: frozenset
    order: int = 100
    icon: str = ""
    # user -> a number shown beside the link (0 hides it); one query, cached per request.
    badge: Callable | None = field(default=None, compare=False)
    badge_label: object = ""  # what the number counts, for screen readers
    # The menu's group (one of GROUPS); "" stands on its own in the bar (the inbox).
    group: str = ""


# The menu's groups, in the bar's order: what the items are about, not which area owns them.
GROUPS = ("work", "network", "certification", "money", "evaluation", "admin")
GROUP_LABELS = {
    "work": _l("Service"),
    "network": _l("Service network"),
    "certification": _l("Certification"),
    "money": _l("Settlement"),
    "evaluation": _l("Evaluation"),
    "admin": _l("Administration"),
}


@dataclass(frozen=True)
class MenuGroup:
    """One entry of the bar: a dropdown of `items`, or a plain link when it holds one item.
    The group "" holds the items that stand on their own (the inbox), always as links."""

    key: str
    label: object
    items: tuple[NavItem, ...]
    active: bool = False
    active_endpoint: str | None = None  # the item of the page shown, if it is in this group


class Menu(list):
    """The bar's entries (MenuGroup), and the search box's target: (endpoint, placeholder,
    label) or None."""

    search: tuple[str, object, object] | None = None


@dataclass(frozen=True)
class Widget:
    """A home-page card: `load(user)` returns the template context with a constant query count."""

    template: str
    roles: frozenset
    load: Callable = field(compare=False)
    order: int = 100


_nav: list[NavItem] = []
_widgets: list[Widget] = []

# The bar's search box: the first of these lists the user has in their menu receives the
# text as ?q= (HQ looks agencies up; an agency's people look their work orders up).
# (endpoint, placeholder, what the box searches, for screen readers)
SEARCH_TARGETS = (
    ("tenants.agencies", _l("Search agencies"), _l("Search agencies by code, name or city")),
    ("service.orders", _l("Search work orders"),
     _l("Search work orders by order or serial number")),
)


def add_nav(endpoint: str, label, roles, order: int = 100, *, group: str = "",
            badge: Callable | None = None, badge_label="") -> None:
    if group and group not in GROUPS:
        raise ValueError(f"unknown menu group {group!r}")
    if all(item.endpoint != endpoint for item in _nav):
        _nav.append(NavItem(endpoint, label, frozenset(roles), order, badge=badge,
                            badge_label=badge_label, group=group))


def add_widget(template: str, roles, load: Callable, order: int = 100) -> None:
    if all(w.template != template for w in _widgets):
        _widgets.append(Widget(template, frozenset(roles), load, order))


def items_for(user) -> list[NavItem]:
    """Every menu item of the user's role, in their order."""
    return sorted((i for i in _nav if user.role in i.roles), key=lambda i: i.order)


def menu_for(user, endpoint: str | None = None) -> Menu:
    """The bar of `user`: the ungrouped items first (the inbox), then one entry per group the
    user has items in, in GROUPS order. `endpoint` (default: the request's) marks the group
    of the page shown as active."""
    if endpoint is None and has_request_context():
        endpoint = request.endpoint
    items = items_for(user)
    current = active_item(items, endpoint)
    menu = Menu()
    menu.search = search_for(items)
    for key in ("", *GROUPS):
        members = tuple(i for i in items if i.group == key)
        if not members:
            continue
        here = current if current in members else None
        menu.append(MenuGroup(key, GROUP_LABELS.get(key, ""), members, active=here is not None,
                              active_endpoint=here.endpoint if here else None))
    return menu


def active_item(items, endpoint: str | None) -> NavItem | None:
    """The item the page `endpoint` belongs to: the item itself, else the item of the same
    blueprint whose view name shares the longest beginning with the page's (service.order
    belongs to service.orders, certification.session to certification.sessions)."""
    if not endpoint:
        return None
    for item in items:
        if item.endpoint == endpoint:
            return item
    blueprint, _, view = endpoint.rpartition(".")
    best, best_length = None, -1
    for item in items:
        item_blueprint, _, item_view = item.endpoint.rpartition(".")
        if item_blueprint != blueprint or not blueprint:
            continue
        length = _common_prefix(view, item_view)
        if length > best_length:
            best, best_length = item, length
    return best


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def search_for(items) -> tuple[str, object, object] | None:
    """(endpoint, placeholder, label) of the bar's search box for a user with menu `items`."""
    mine = {i.endpoint for i in items}
    return next((target for target in SEARCH_TARGETS if target[0] in mine), None)


def widgets_for(user) -> list[tuple[str, dict]]:
    chosen = sorted((w for w in _widgets if user.role in w.roles), key=lambda w: w.order)
    return [(w.template, w.load(user)) for w in chosen]
