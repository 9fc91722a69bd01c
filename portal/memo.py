"""Short-lived figures of the whole network for home-page cards, remembered per scope.

A card that aggregates every agency's rows (certification coverage: 110 ms over 83,000
certificates on SQLite) is worth computing once a minute, not on every visit to the home
page. The key always holds the tenant scope in force (kind, id and account), so a figure is
only ever served to the scope that computed it; the pages behind a card stay exact.
``HOME_FIGURES_SECONDS`` sets the lifetime (0 turns the memo off; the tests do).
"""
import threading
import time
from typing import Callable

from flask import current_app

from portal.tenancy import current_scope

_entries: dict[tuple, tuple[float, object]] = {}
_lock = threading.Lock()
MAX_ENTRIES = 1024


def remembered(name: str, compute: Callable[[], object], *key) -> object:
    """`compute()`, or its value from less than ``HOME_FIGURES_SECONDS`` ago in this scope."""
    seconds = current_app.config["HOME_FIGURES_SECONDS"]
    if seconds <= 0:
        return compute()
    scope = current_scope()
    full_key = (name, scope.kind, scope.id, scope.user_id, *key)
    now = time.monotonic()
    with _lock:
        entry = _entries.get(full_key)
    if entry is not None and entry[0] > now:
        return entry[1]
    value = compute()
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            for stale in [k for k, (until, _v) in _entries.items() if until <= now]:
                del _entries[stale]
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
        _entries[full_key] = (now + seconds, value)
    return value


def forget() -> None:
    with _lock:
        _entries.clear()
