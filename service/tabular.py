"""Reading uploaded CSV/XLSX tables safely and writing import templates.

Uploads are checked by content (an XLSX is a ZIP archive, anything else must be UTF-8 or
GB18030 text), by size and by row count; every cell reaches the importers as a string.
"""
import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from flask import Response, current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from portal.errors_domain import DomainError
from portal.exports import cell as safe_cell


@dataclass(frozen=True)
class Column:
    key: str
    label: object  # a lazy string
    required: bool = False
    example: str = ""


def max_bytes() -> int:
    return int(current_app.config.get("SERVICE_IMPORT_MAX_BYTES", 2 * 1024 * 1024))


def max_rows() -> int:
    return int(current_app.config.get("SERVICE_IMPORT_MAX_ROWS", 2000))


def _norm(text) -> str:
    return "".join(str(text).split()).strip("*").lower()


def header_aliases(columns: list[Column]) -> dict[str, str]:
    """Every spelling a header may have (the key, the English and the Chinese label) → key."""
    aliases = {}
    for column in columns:
        aliases[_norm(column.key)] = column.key
        for locale in ("en", "zh_CN"):
            with force_locale(locale):
                aliases[_norm(str(column.label))] = column.key
    return aliases


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # Spreadsheet numbers arrive as floats: their shortest repr is the typed text.
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, int | Decimal):
        return str(value)
    return str(value).strip()


def _read_bytes(upload) -> bytes:
    if upload is None or not getattr(upload, "filename", ""):
        raise DomainError(_("Choose a CSV or XLSX file."), field="file")
    raw = upload.read(max_bytes() + 1)
    if len(raw) > max_bytes():
        raise DomainError(_("The file is larger than %(size)s KB.", size=max_bytes() // 1024),
                          field="file")
    if not raw.strip():
        raise DomainError(_("The file is empty."), field="file")
    return raw


def _check_archive(raw: bytes) -> None:
    """Refuse a workbook that unpacks to far more than it weighs (a "zip bomb")."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise DomainError(_("This is not a readable XLSX workbook."), field="file") from error
    if unpacked > 25 * max_bytes():
        raise DomainError(_("The file is larger than %(size)s KB.", size=max_bytes() // 1024),
                          field="file")


def _xlsx_rows(raw: bytes):
    from openpyxl import load_workbook

    _check_archive(raw)
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(v) for v in row]
    except DomainError:
        raise
    except Exception as error:  # openpyxl and the XML parser raise many kinds for bad files
        raise DomainError(_("This is not a readable XLSX workbook."), field="file") from error


def _csv_rows(raw: bytes):
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise DomainError(_("The file is neither UTF-8 CSV nor an XLSX workbook."), field="file")
    if "\x00" in text:
        raise DomainError(_("The file is neither UTF-8 CSV nor an XLSX workbook."), field="file")
    try:
        yield from ([c.strip() for c in row] for row in csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise DomainError(_("The CSV file is malformed."), field="file") from error


def read_table(upload, columns: list[Column]) -> list[tuple[int, dict]]:
    """The rows of an uploaded table as (row number, {key: text}); raises DomainError."""
    raw = _read_bytes(upload)
    rows = _xlsx_rows(raw) if raw[:4] == b"PK\x03\x04" else _csv_rows(raw)
    aliases = header_aliases(columns)
    header = None
    out = []
    limit = max_rows()
    for number, row in enumerate(rows, start=1):
        if not any(row):
            continue
        if header is None:
            header = [aliases.get(_norm(c)) for c in row]
            missing = [str(c.label) for c in columns if c.required and c.key not in header]
            if missing:
                raise DomainError(_("Columns missing: %(columns)s. Download the template.",
                                    columns=", ".join(missing)), field="file")
            continue
        if len(out) >= limit:
            raise DomainError(_("The file has more than %(max)s rows; split it.", max=limit),
                              field="file")
        values = {key: "" for key in (c.key for c in columns)}
        for key, value in zip(header, row, strict=False):
            if key:
                values[key] = value
        out.append((number, values))
    if not out:
        raise DomainError(_("The file has no rows below its header."), field="file")
    return out


def template_response(basename: str, columns: list[Column], fmt: str) -> Response:
    """An empty import template: the headers in the reader's language, no example row (an
    example left in by mistake would be imported)."""
    header = [str(c.label) for c in columns]
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(header)
        out = io.BytesIO()
        book.save(out)
        return Response(out.getvalue(), mimetype="application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet",
                        headers={"Content-Disposition": f"attachment; filename={basename}.xlsx"})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([safe_cell(v) for v in header])
    return Response("\ufeff" + text.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={basename}.csv"})
