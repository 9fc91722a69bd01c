"""CSV downloads that spreadsheets open safely (UTF-8 BOM, no formula injection)."""
import csv
import io
import json
from datetime import datetime

from flask import Response

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={basename}-{stamp}.csv"},
    )
