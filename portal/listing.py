"""Paging and sorting of list pages from query-string input that may be anything."""
from flask import current_app, request

from portal.extensions import db


def int_arg(name: str, default: int | None = None, *, low: int = 1, high: int = 10**9):
    """An integer query argument; junk, out-of-range or missing values give `default`."""
    raw = request.args.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if low <= value <= high else default


def sorted_by(stmt, columns: dict, default: str):
    """Apply ``?sort=name`` / ``?sort=-name`` from an allowed map of columns."""
    raw = request.args.get("sort", default)
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in columns:
        descending, key = default.startswith("-"), default.lstrip("-")
    column = columns[key]
    return stmt.order_by(column.desc() if descending else column.asc()), (
        ("-" if descending else "") + key
    )


def paginate(stmt):
    """Two queries whatever the size: the page of rows and the total count."""
    return db.paginate(
        stmt,
        page=int_arg("page", 1, high=100000),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
        count=True,
    )
