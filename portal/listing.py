"""Paging and sorting of list pages from query-string input that may be anything."""
from flask import current_app, request
from flask_sqlalchemy.pagination import SelectPagination
from sqlalchemy import func, select

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


# Beyond this many rows a list says "more than 10,000" instead of counting them all: an exact
# count of HQ's filtered work orders took 0.6 s on SQLite and 4.8 s on PostgreSQL at 2,000,000
# orders, for a figure nobody pages through.
COUNT_LIMIT = 10_000


class RowPagination(SelectPagination):
    """Pages of a multi-column select: its items are rows, not entities."""

    def _query_items(self):
        stmt = self._query_args["select"].limit(self.per_page).offset(self._query_offset)
        return list(self._query_args["session"].execute(stmt).all())


def paginate(stmt, *, exact: bool = False, rows: bool = False):
    """Two queries whatever the size: the page of rows and the total count.

    The count stops at :data:`COUNT_LIMIT` (``page.total_is_capped`` then says so) unless
    `exact` is asked for, where the figure itself matters (a KPI's records). `rows`: the
    statement selects several columns (or entities side by side) and the page holds rows.
    """
    arguments = {"page": int_arg("page", 1, high=100000),
                 "per_page": current_app.config["PAGE_SIZE"], "error_out": False, "count": exact}
    if rows:
        page = RowPagination(select=stmt, session=db.session(), **arguments)
    else:
        page = db.paginate(stmt, **arguments)
    page.total_is_capped = False
    if not exact:
        first_rows = stmt.order_by(None).limit(COUNT_LIMIT + 1).subquery()
        counted = db.session.execute(select(func.count()).select_from(first_rows)).scalar_one()
        page.total = min(counted, COUNT_LIMIT)
        page.total_is_capped = counted > COUNT_LIMIT
    return page
