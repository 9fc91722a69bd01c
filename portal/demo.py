"""Demo data: each area registers a loader; `flask demo-data` runs them in order."""
from dataclasses import dataclass
from typing import Callable


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
