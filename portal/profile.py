"""An agency's 360: what the areas above the network know about one agency.

The network area (tenants) shows the agency's profile and changes its lifecycle, but it may not
import the areas above it (certification, service, settlement, evaluation, inbox). Each of them
contributes here instead, from its ``<area>/profile.py`` registered by its ``init_app``:

- a **panel** on the agency's page: ``add_panel(template, roles, load, order)``, where
  ``load(agency, user)`` returns the template's context (as ``data``; None shows no panel)
  with a constant number of queries, whatever the size of the network; the tenant guard
  already limits what the reader sees, and the panel shows only what its `roles` may read;
- a **concern** about a lifecycle change: ``add_concern(load)``, where
  ``load(agency, target_status)`` returns the translated warnings the evidence raises against
  moving `agency` to `target_status` (an elimination warning when it is promoted, open
  settlements when it is terminated…), or an empty list.
"""
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from babel.dates import format_date, format_skeleton
from flask import g
from flask_babel import get_locale


@dataclass(frozen=True)
class Panel:
    """A card of the agency's page: `load(agency, user)` -> the template context."""

    template: str
    roles: frozenset
    load: Callable = field(compare=False)
    order: int = 100


@dataclass(frozen=True)
class Concern:
    """`load(agency, target_status)` -> translated warnings against the change."""

    name: str
    load: Callable = field(compare=False)


_panels: list[Panel] = []
_concerns: list[Concern] = []


def add_panel(template: str, roles, load: Callable, order: int = 100) -> None:
    if all(p.template != template for p in _panels):
        _panels.append(Panel(template, frozenset(roles), load, order))


def add_concern(load: Callable) -> None:
    name = f"{load.__module__}.{load.__qualname__}"
    if all(c.name != name for c in _concerns):
        _concerns.append(Concern(name, load))


def panels_for(agency, user) -> list[tuple[str, dict]]:
    """[(template, context)] of the panels `user` may read about `agency`, in their order."""
    chosen = sorted((p for p in _panels if user.role in p.roles), key=lambda p: p.order)
    loaded = [(p.template, p.load(agency, user)) for p in chosen]
    return [(template, data) for template, data in loaded if data is not None]


def once(key, compute: Callable):
    """`compute()`, worked out once per request for `key`: a concern asked about several
    target statuses (suspend, terminate) counts the same rows once."""
    memo = g.setdefault("_profile_memo", {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def concerns_for(agency, target_status) -> list[str]:
    """Every area's warnings against moving `agency` to `target_status`."""
    return [str(text) for concern in _concerns for text in concern.load(agency, target_status)]


# --- helpers the panels share ------------------------------------------------------------------


def recent_months(today: date, n: int = 12) -> list[tuple[int, int]]:
    """The `n` local months up to `today`'s, oldest first: [(year, month), ...]."""
    index = today.year * 12 + today.month - 1
    return [(i // 12, i % 12 + 1) for i in range(index - n + 1, index + 1)]


def month_labels(months: list[tuple[int, int]]) -> tuple[list[str], str]:
    """Labels short enough for twelve bars ("Feb", "2月"), and the span they cover for the
    chart's title ("Jan 2026 – Dec 2026", "2026年1月 – 2026年12月")."""
    locale = str(get_locale())
    labels = [format_date(date(y, m, 1), "MMM", locale=locale) for y, m in months]
    first, last = (format_skeleton("yMMM", date(y, m, 1), locale=locale)
                   for y, m in (months[0], months[-1]))
    return labels, f"{first} – {last}"
