"""The words for an area's states and kinds, declared once by the area and read everywhere.

An area registers each mapping under a kind (``labels.register("settlement.status",
STATUS_LABELS, badges=STATUS_BADGES)``); templates read ``label('settlement.status', s.status)``,
``badge_colour(...)`` (a Bootstrap colour) and ``labels('agency.type')`` (the whole mapping, for a
drop-down). Three template globals instead of one per mapping and area.
"""
from collections.abc import Mapping

_labels: dict[str, Mapping] = {}
_badges: dict[str, Mapping] = {}


def register(kind: str, mapping: Mapping, *, badges: Mapping | None = None) -> None:
    if kind in _labels and _labels[kind] is not mapping:
        raise ValueError(f"labels of {kind!r} are registered twice")
    _labels[kind] = mapping
    if badges is not None:
        _badges[kind] = badges


def labels(kind: str) -> Mapping:
    return _labels[kind]


def label(kind: str, value) -> str:
    """The reader's word for `value` (the value itself when the mapping has none)."""
    if value is None:
        return ""
    found = _labels[kind].get(value)
    return str(found) if found is not None else str(value)


def badge_colour(kind: str, value, default: str = "secondary") -> str:
    """The Bootstrap colour of `value`'s badge (text-bg-…)."""
    return _badges[kind].get(value, default)


def init_app(app) -> None:
    for helper in (label, labels, badge_colour):
        app.add_template_global(helper)
