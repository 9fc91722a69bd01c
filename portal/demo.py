"""Demo data: each area registers a loader; `flask demo-data` runs them in order."""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from portal.extensions import db, let_writers_in


@dataclass(frozen=True)
class DemoLoader:
    name: str
    load: Callable  # load(ctx: dict) -> None; reads and extends the shared context
    order: int


_loaders: list[DemoLoader] = []
# Demo accounts printed after loading and listed in the README: (role, email, password).
ACCOUNTS: list[tuple[str, str, str]] = []
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - the published demo password


def register(name: str, load: Callable, order: int) -> None:
    if all(loader.name != name for loader in _loaders):
        _loaders.append(DemoLoader(name, load, order))


def loaders() -> list[DemoLoader]:
    return sorted(_loaders, key=lambda loader: loader.order)


_steps = {"commit": False}


@contextmanager
def in_steps(commit: bool):
    """Loading beside people's work (`flask demo-data --force` on a serving portal): every
    `checkpoint()` commits, so that SQLite's one write lock is held for one step of the
    demo at a time rather than for the whole minute. Loading an empty database (nobody can
    sign in yet) stays one transaction: a failure leaves it empty, ready to load again."""
    previous = _steps["commit"]
    _steps["commit"] = commit
    try:
        yield
    finally:
        _steps["commit"] = previous


def checkpoint() -> None:
    """The end of a step of the demo: committed when loading in steps, else flushed. A loader
    may call it between its own steps (before rendering PDFs, say)."""
    if _steps["commit"]:
        db.session.commit()
        let_writers_in()
    else:
        db.session.flush()
