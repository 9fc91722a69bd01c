"""Document numbers: a prefix that names the kind and the day or month, then a counter per
agency (``WO20261204-0001``, ``PR20261204-01``, ``ST202611-01``).

The counter is the first free one, so a number removed (a withdrawn claim) is not reused while
its row exists; the (agency, number) unique key settles the rare race of two writers, and the
write path turns that clash into a clear error or one re-run.
"""
from sqlalchemy import select

from portal.extensions import db


def next_number(column, prefix: str, *, width: int = 2, agency_id: int | None = None) -> str:
    """The next free `prefix` + counter of `width` digits in `column` (a model's number column),
    among the rows of `agency_id` when given."""
    model = column.class_
    stmt = select(column).where(column.like(prefix.replace("%", r"\%") + "%", escape="\\"))
    if agency_id is not None:
        stmt = stmt.where(model.agency_id == agency_id)
    taken = set(db.session.scalars(stmt))
    n = len(taken) + 1
    while f"{prefix}{n:0{width}d}" in taken:
        n += 1
    return f"{prefix}{n:0{width}d}"
