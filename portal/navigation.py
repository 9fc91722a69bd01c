"""Role-aware navigation and home-page widgets, contributed by each area at registration."""
from dataclasses import dataclass, field
from typing import Callable


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


@dataclass(frozen=True)
class Widget:
    """A home-page card: `load(user)` returns the template context with a constant query count."""

    template: str
    roles: frozenset
    load: Callable = field(compare=False)
    order: int = 100


_nav: list[NavItem] = []
_widgets: list[Widget] = []


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


def menu_for(user) -> list[NavItem]:
    return sorted((i for i in _nav if user.role in i.roles), key=lambda i: i.order)


def widgets_for(user) -> list[tuple[str, dict]]:
    chosen = sorted((w for w in _widgets if user.role in w.roles), key=lambda w: w.order)
    return [(w.template, w.load(user)) for w in chosen]
