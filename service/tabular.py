"""Reading uploaded CSV/XLSX tables safely and writing import templates.

Uploads are checked by content (an XLSX is a ZIP archive, anything else must be UTF-8 or
GB18030 text), by size, by what a workbook unpacks to, and by row count (every row read
counts, empty ones too); every cell reaches the importers as a string.
"""
import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from xml.parsers import expat

from flask import Response, current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from portal.errors_domain import DomainError
from portal.exports import cell as safe_cell

# What a workbook may hold besides its rows (see _check_archive).
MAX_COLUMNS = 100  # cells read from each row
# XML elements per row: up to 40 cells of up to four (c, v or is/t, and a shared string si/t).
ELEMENTS_PER_ROW = 4 * 40
ELEMENTS_BESIDES_ROWS = 20_000  # styles, relationships, properties
MAX_ARCHIVE_ENTRIES = 200


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


def max_unpacked_bytes() -> int:
    """What a workbook may unpack to: a few times the upload limit, not a 51 MB sheet."""
    return int(current_app.config.get("SERVICE_IMPORT_MAX_UNPACKED_BYTES", 5 * max_bytes()))


def _too_many_rows(limit: int) -> DomainError:
    return DomainError(_("The file has more than %(max)s rows (empty rows count too). Delete "
                         "the empty rows below the table, or split the file.", max=limit),
                       field="file")


def _unreadable() -> DomainError:
    return DomainError(_("This is not a readable XLSX workbook."), field="file")


def _too_complex(limit: int) -> DomainError:
    return DomainError(_("This workbook holds far more than a table of %(max)s rows needs. "
                         "Copy the table into a new workbook, or save it as CSV.", max=limit),
                       field="file")


def _check_archive(raw: bytes) -> None:
    """Refuse a workbook that unpacks to far more than it weighs (a "zip bomb") before any
    of its XML reaches openpyxl.

    Sizes come from the ZIP directory: zipfile never returns more than an entry declares
    (and fails its checksum when the data says otherwise). Then every XML part is streamed
    through expat with a hard stop: at most `max_rows()` + 1 rows in a sheet, empty ones
    too, and a bounded number of XML elements in all, so that a million empty rows, cells,
    shared strings or styles are refused after a few thousand, in milliseconds.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ARCHIVE_ENTRIES:
                raise _too_complex(max_rows())
            allowance = max_unpacked_bytes()
            if sum(info.file_size for info in entries) > allowance:
                raise DomainError(_("The workbook unpacks to more than %(size)s KB. Copy the "
                                    "table into a new workbook, or save it as CSV.",
                                    size=allowance // 1024), field="file")
            budget = _XmlBudget(max_rows())
            for info in entries:
                if info.filename.endswith((".xml", ".rels")):
                    budget.scan(archive, info)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, expat.ExpatError,
            NotImplementedError, RuntimeError) as error:
        raise _unreadable() from error


class _Refused(Exception):
    """Carries a DomainError out of expat's callbacks."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


class _XmlBudget:
    """Counts the elements of every part of one workbook and the rows of each sheet."""

    def __init__(self, limit: int):
        self.limit = limit
        self.left = (limit + 1) * ELEMENTS_PER_ROW + ELEMENTS_BESIDES_ROWS

    def scan(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        is_sheet = info.filename.startswith("xl/worksheets/")
        rows = 0

        def start(name, _attributes):
            nonlocal rows
            self.left -= 1
            if self.left < 0:
                raise _Refused(_too_complex(self.limit))
            if is_sheet and (name == "row" or name.endswith(":row")):
                rows += 1
                if rows > self.limit + 1:  # the header and `limit` rows
                    raise _Refused(_too_many_rows(self.limit))

        def no_dtd(*_args):
            raise _Refused(_unreadable())  # no part of a workbook declares a DTD or entities

        parser = expat.ParserCreate()
        parser.StartElementHandler = start
        parser.StartDoctypeDeclHandler = no_dtd
        parser.EntityDeclHandler = no_dtd
        try:
            with archive.open(info) as part:
                while chunk := part.read(64 * 1024):
                    parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _Refused as refused:
            raise refused.error from None


def _xlsx_rows(raw: bytes):
    from openpyxl import load_workbook

    _check_archive(raw)
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        # At most MAX_COLUMNS cells a row: a sheet that claims 16,384 columns costs nothing.
        for row in sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True):
            yield [_cell_text(v) for v in row]
    except DomainError:
        raise
    except Exception as error:  # openpyxl and the XML parser raise many kinds for bad files
        raise _unreadable() from error


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
        if number > limit + 1:  # every row read counts, empty ones too: a hard stop
            raise _too_many_rows(limit)
        if not any(row):
            continue
        if header is None:
            header = [aliases.get(_norm(c)) for c in row]
            missing = [str(c.label) for c in columns if c.required and c.key not in header]
            if missing:
                raise DomainError(_("Columns missing: %(columns)s. Download the template.",
                                    columns=", ".join(missing)), field="file")
            continue
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
