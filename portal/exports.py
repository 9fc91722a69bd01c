"""CSV and XLSX downloads that spreadsheets open safely (UTF-8 BOM, no formula injection).

One rule for time in every export: an instant is written on the network's wall clock
(Asia/Shanghai unless configured otherwise) and its column heading names the zone
(`zone_heading`), so "2026-12-05 00:30" never leaves a reader guessing whether it is UTC.
The XLSX is typed: dates and times are date cells, amounts are number cells with two places.
"""
import csv
import io
import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import urlencode

from flask import Response, flash, redirect, request, url_for
from flask_babel import format_number
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.clock import local_now, local_zone, to_local
from portal.extensions import db

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The filters of the list pages that export (orders, audit log): what a refused export keeps.
LIST_FILTERS = ("q", "status", "type", "line", "engineer", "from", "to", "warranty", "rework",
                "certified", "agency_code", "agency", "action", "object_type", "object_id",
                "actor", "agency_id", "sort")
_FILTER_VALUE_LIMIT = 256


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def zone_heading(label) -> str:
    """A time column's heading with the zone its values are in: "Received (Asia/Shanghai)"."""
    return f"{label} ({local_zone().key})"


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):  # an instant: the network's wall clock (see zone_heading)
        return to_local(value).strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    # A leading quote stops Excel/WPS from evaluating user text as a formula.
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_response(basename: str, header: list[str], rows) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    stamp = local_now().strftime("%Y%m%d-%H%M")  # the network's clock, as on the screen
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={basename}-{stamp}.csv"},
    )


def _xlsx_cell(sheet, value):
    """One typed cell: an instant as a local date-time, a date as a date, an amount with two
    places as a number shown with two places; text quoted like the CSV's."""
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, datetime):
        out = WriteOnlyCell(sheet, to_local(value).replace(tzinfo=None))
        out.number_format = "yyyy-mm-dd hh:mm:ss"
    elif isinstance(value, date):
        out = WriteOnlyCell(sheet, value)
        out.number_format = "yyyy-mm-dd"
    elif isinstance(value, Decimal):
        out = WriteOnlyCell(sheet, value)  # written as its exact digits
        if value.as_tuple().exponent == -2:
            out.number_format = "#,##0.00"
    elif isinstance(value, bool | int | float) or value is None:
        out = WriteOnlyCell(sheet, value)
    else:
        out = WriteOnlyCell(sheet, cell(value))
    return out


def xlsx_bytes(header: list[str], rows, *, title: str | None = None) -> bytes:
    """A one-sheet workbook of `header` and `rows`, typed cell by cell, streamed (write-only)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=(title or "Sheet1")[:31])
    sheet.append([str(h) for h in header])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_response(basename: str, header: list[str], rows, *, stamp: bool = True) -> Response:
    name = f"{basename}-{local_now():%Y%m%d-%H%M}" if stamp else basename
    return Response(xlsx_bytes(header, rows), mimetype=XLSX_TYPE,
                    headers={"Content-Disposition": f"attachment; filename={name}.xlsx"})


def list_url(endpoint: str, filters: Iterable[str] = LIST_FILTERS) -> str:
    """The list page at `endpoint` with this request's values of the known `filters`.

    The query string goes after the path url_for gives: a request's arguments never reach
    url_for, whose `_external`, `_scheme` and `_anchor` would build a link elsewhere."""
    args = request.args
    kept = [(name, args[name][:_FILTER_VALUE_LIMIT]) for name in filters if args.get(name)]
    path = url_for(endpoint)
    return f"{path}?{urlencode(kept)}" if kept else path


def refuse_if_too_many(stmt, limit: int, list_endpoint: str,
                       filters: Iterable[str] = LIST_FILTERS):
    """A redirect back to the list with a clear message when `stmt` selects more than `limit`
    rows, else None. An export is never cut short without telling the reader."""
    count = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if count <= limit:
        return None
    flash(_("The filters select %(count)s rows; one export holds at most %(limit)s. Narrow the "
            "filters (a date range, a region) and export again.",
            count=format_number(count), limit=format_number(limit)), "warning")
    return redirect(list_url(list_endpoint, filters))
