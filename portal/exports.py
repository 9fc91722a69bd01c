"""CSV downloads that spreadsheets open safely (UTF-8 BOM, no formula injection)."""
import csv
import io
import json
from collections.abc import Iterable
from urllib.parse import urlencode

from flask import Response, flash, redirect, request, url_for
from flask_babel import format_number
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.clock import local_now
from portal.extensions import db

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The filters of the list pages that export (orders, audit log): what a refused export keeps.
LIST_FILTERS = ("q", "status", "type", "line", "engineer", "from", "to", "warranty", "rework",
                "certified", "agency_code", "agency", "action", "object_type", "object_id",
                "actor", "agency_id", "sort")
_FILTER_VALUE_LIMIT = 256


def cell(value) -> str:
    if value is None:
        return ""
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
