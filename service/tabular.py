"""Reading uploaded CSV/XLSX tables safely, streaming them, and writing import templates.

Uploads are checked by content (an XLSX is a ZIP archive, anything else must be UTF-8 or
GB18030 text), by size, by what a workbook unpacks to, and by row count (every row read
counts, empty ones too); every cell reaches the importers as a string. Two sets of limits:
`read_table` reads a small table into memory (at most `max_rows()` rows, as one request
imports); a stored upload (`inspect` → `iter_table`) is read row by row in constant memory,
up to `job_max_rows()` rows, which a background job imports.
"""
import codecs
import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from xml.parsers import expat

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from portal.errors_domain import DomainError

# What a workbook may hold besides its rows (see _check_archive).
MAX_COLUMNS = 100  # cells read from each row
# XML elements per row: up to 40 cells of up to four (c, v or is/t, and a shared string si/t).
ELEMENTS_PER_ROW = 4 * 40
ELEMENTS_BESIDES_ROWS = 20_000  # styles, relationships, properties
MAX_ARCHIVE_ENTRIES = 200
CHUNK = 64 * 1024
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


@dataclass(frozen=True)
class Column:
    key: str
    label: object  # a lazy string
    required: bool = False
    example: str = ""  # shown when the reader's own catalog offers none
    help: object = ""  # what the column means (lazy)
    fmt: object = ""  # how to write a value (lazy)
    choices: str = ""  # the list its values come from: a drop-down in the XLSX template


# --- limits ----------------------------------------------------------------------------------


def max_bytes() -> int:
    """The largest file an import accepts (the request's own limit, MAX_CONTENT_LENGTH,
    applies first)."""
    return int(current_app.config.get("SERVICE_IMPORT_MAX_BYTES", 10 * 1024 * 1024))


def max_rows() -> int:
    """Rows imported at once, in the request (and what `read_table` reads); larger files are
    imported by a background job."""
    return int(current_app.config.get("SERVICE_IMPORT_MAX_ROWS", 2000))


def job_max_rows() -> int:
    """Rows a background import reads at most."""
    return int(current_app.config.get("SERVICE_IMPORT_JOB_MAX_ROWS", 100_000))


def max_unpacked_bytes() -> int:
    """What a workbook read into memory may unpack to: a few times the upload limit, not a
    51 MB sheet."""
    configured = current_app.config.get("SERVICE_IMPORT_MAX_UNPACKED_BYTES")
    if configured is not None:
        return int(configured)
    return min(5 * max_bytes(), 40 * 1024 * 1024)


def job_max_unpacked_bytes() -> int:
    """What a stored workbook may unpack to: 100,000 rows of twenty columns with room for
    long text (it is streamed, never held in memory)."""
    return int(current_app.config.get("SERVICE_IMPORT_JOB_MAX_UNPACKED_BYTES",
                                      400 * 1024 * 1024))


# --- cells and headers -------------------------------------------------------------------------


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


# --- errors ----------------------------------------------------------------------------------


def _no_file() -> DomainError:
    return DomainError(_("Choose a CSV or XLSX file."), field="file")


def _too_large() -> DomainError:
    return DomainError(_("The file is larger than %(size)s KB.", size=max_bytes() // 1024),
                       field="file")


def _empty() -> DomainError:
    return DomainError(_("The file is empty."), field="file")


def _not_text() -> DomainError:
    return DomainError(_("The file is neither UTF-8 CSV nor an XLSX workbook."), field="file")


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


# --- workbooks: the archive is checked before openpyxl reads any of it --------------------------


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
        self.rows: dict[str, int] = {}  # sheet part → rows it holds (or claims, by number)

    def scan(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        is_sheet = info.filename.startswith("xl/worksheets/")
        rows = claimed = 0

        def start(name, attributes):
            nonlocal rows, claimed
            self.left -= 1
            if self.left < 0:
                raise _Refused(_too_complex(self.limit))
            if is_sheet and (name == "row" or name.endswith(":row")):
                rows += 1
                number = attributes.get("r", "")
                claimed = max(rows, claimed, int(number) if number.isdigit() else 0)
                if claimed > self.limit + 1:  # the header and `limit` rows
                    raise _Refused(_too_many_rows(self.limit))

        _parse(archive, info, start)
        if is_sheet:
            self.rows[info.filename] = claimed


def _parse(archive: zipfile.ZipFile, info: zipfile.ZipInfo, start, *, namespaces=False) -> None:
    """Stream one XML part through expat; no part of a workbook declares a DTD or entities."""
    def no_dtd(*_args):
        raise _Refused(_unreadable())

    parser = expat.ParserCreate(namespace_separator=" " if namespaces else None)
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_dtd
    try:
        with archive.open(info) as part:
            while chunk := part.read(CHUNK):
                parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _Refused as refused:
        raise refused.error from None


def _check_archive(source, *, limit: int, allowance: int) -> int:
    """Refuse a workbook that unpacks to far more than it weighs (a "zip bomb") before any
    of its XML reaches openpyxl; returns the rows of its first sheet (header included).

    Sizes come from the ZIP directory: zipfile never returns more than an entry declares
    (and fails its checksum when the data says otherwise). Then every XML part is streamed
    through expat with a hard stop: at most `limit` + 1 rows in a sheet, empty ones too
    (and rows a sheet only claims by their number), and a bounded number of XML elements in
    all, so that a million empty rows, cells, shared strings or styles are refused after a
    few thousand, in milliseconds.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ARCHIVE_ENTRIES:
                raise _too_complex(limit)
            if sum(info.file_size for info in entries) > allowance:
                raise DomainError(_("The workbook unpacks to more than %(size)s KB. Copy the "
                                    "table into a new workbook, or save it as CSV.",
                                    size=allowance // 1024), field="file")
            budget = _XmlBudget(limit)
            for info in entries:
                if info.filename.endswith((".xml", ".rels")):
                    budget.scan(archive, info)
            first = _first_sheet(archive)
            return budget.rows.get(first, max(budget.rows.values(), default=0))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, expat.ExpatError,
            NotImplementedError, RuntimeError, KeyError) as error:
        raise _unreadable() from error


def _first_sheet(archive: zipfile.ZipFile) -> str:
    """The part of the workbook's first sheet (the one imported), e.g. xl/worksheets/sheet1.xml."""
    found: dict[str, str] = {}

    def sheet(name, attributes):
        if name == f"{_MAIN} sheet" and "rid" not in found:
            found["rid"] = attributes.get(f"{_RELS} id", "")

    def relationship(name, attributes):
        if name.endswith(" Relationship") and attributes.get("Id") == found.get("rid"):
            found["target"] = attributes.get("Target", "")

    names = set(archive.namelist())
    if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
        return ""
    _parse(archive, archive.getinfo("xl/workbook.xml"), sheet, namespaces=True)
    _parse(archive, archive.getinfo("xl/_rels/workbook.xml.rels"), relationship,
           namespaces=True)
    target = found.get("target", "")
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _xlsx_cells(source):
    """The cell texts of the first sheet, row by row (openpyxl's streaming reader)."""
    if isinstance(source, Path):  # stored without an extension, which openpyxl would judge
        with open(source, "rb") as handle:
            yield from _xlsx_cells(handle)
        return
    from openpyxl import load_workbook

    try:
        book = load_workbook(source, read_only=True, data_only=True)
    except Exception as error:  # openpyxl and the XML parser raise many kinds for bad files
        raise _unreadable() from error
    try:
        sheet = book.worksheets[0]
        # At most MAX_COLUMNS cells a row: a sheet that claims 16,384 columns costs nothing.
        for row in sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True):
            yield [_cell_text(v) for v in row]
    except DomainError:
        raise
    except Exception as error:
        raise _unreadable() from error
    finally:
        book.close()


# --- CSV -------------------------------------------------------------------------------------


def _csv_encoding(chunks) -> str:
    """UTF-8 (with or without its BOM) or GB18030, judged over the whole file in chunks."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for chunk in chunks():
                if "\x00" in decoder.decode(chunk):
                    raise _not_text()
            decoder.decode(b"", True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise _not_text()


def _csv_cells(text_stream):
    try:
        for row in csv.reader(text_stream):
            yield [c.strip() for c in row]
    except csv.Error as error:
        raise DomainError(_("The CSV file is malformed."), field="file") from error


# --- tables ----------------------------------------------------------------------------------


def _table(cells, columns: list[Column], limit: int):
    """(row number, {key: text}) for each row below the header; raises DomainError for a
    missing column, too many rows or a table with no rows."""
    aliases = header_aliases(columns)
    keys = [c.key for c in columns]
    header = None
    found = False
    for number, row in enumerate(cells, start=1):
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
        values = dict.fromkeys(keys, "")
        for key, value in zip(header, row, strict=False):
            if key:
                values[key] = value
        found = True
        yield number, values
    if not found:
        raise DomainError(_("The file has no rows below its header."), field="file")


def _read_bytes(upload) -> bytes:
    if upload is None or not getattr(upload, "filename", ""):
        raise _no_file()
    raw = upload.read(max_bytes() + 1)
    if len(raw) > max_bytes():
        raise _too_large()
    if not raw.strip():
        raise _empty()
    return raw


def read_table(upload, columns: list[Column]) -> list[tuple[int, dict]]:
    """The rows of a small uploaded table as (row number, {key: text}), read into memory
    (at most `max_rows()` rows); raises DomainError."""
    raw = _read_bytes(upload)
    limit = max_rows()
    if raw[:4] == b"PK\x03\x04":
        _check_archive(io.BytesIO(raw), limit=limit, allowance=max_unpacked_bytes())
        cells = _xlsx_cells(io.BytesIO(raw))
    else:
        encoding = _csv_encoding(lambda: [raw])
        cells = _csv_cells(io.StringIO(raw.decode(encoding)))
    return list(_table(cells, columns, limit))


# --- stored uploads: checked once, then streamed -----------------------------------------------


@dataclass(frozen=True)
class Source:
    """A stored table: its file, its format ("csv" or "xlsx"), a CSV's encoding and how many
    rows it has (the header and empty rows included)."""

    path: Path
    fmt: str
    encoding: str = "utf-8-sig"
    rows: int = 0


def save_upload(upload, path: Path) -> tuple[int, str]:
    """Copy an uploaded file to `path` in chunks; returns (size, SHA-256). Raises DomainError
    (and leaves no file) when there is none, it is empty or larger than `max_bytes()`."""
    if upload is None or not getattr(upload, "filename", ""):
        raise _no_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size, limit, blank = hashlib.sha256(), 0, max_bytes(), True
    try:
        upload.stream.seek(0)  # a request run again (a database lock) reads it afresh
    except (AttributeError, OSError, ValueError):
        pass
    try:
        with open(path, "xb") as out:
            while chunk := upload.stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise _too_large()
                blank = blank and not chunk.strip()
                digest.update(chunk)
                out.write(chunk)
        if blank:
            raise _empty()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def inspect(path: Path, columns: list[Column]) -> Source:
    """Check a stored table whole, before any of it is imported: its type by content, a
    workbook's archive, a CSV's encoding, the header and the row count (at most
    `job_max_rows()`). Raises DomainError."""
    limit = job_max_rows()
    with open(path, "rb") as f:
        is_workbook = f.read(4) == b"PK\x03\x04"
    if is_workbook:
        rows = _check_archive(path, limit=limit, allowance=job_max_unpacked_bytes())
        source = Source(path, "xlsx", rows=rows)
        _check_header(source, columns)
        return source
    encoding = _csv_encoding(lambda: _chunks(path))
    with open(path, encoding=encoding, newline="") as text:
        rows = 0
        for rows, _row in enumerate(_csv_cells(text), start=1):
            if rows > limit + 1:
                raise _too_many_rows(limit)
    source = Source(path, "csv", encoding, rows)
    _check_header(source, columns)
    return source


def _chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _check_header(source: Source, columns: list[Column]) -> None:
    """The header names every required column and a row follows it."""
    for _row in iter_table(source, columns):
        return


def _cells(source: Source):
    if source.fmt == "xlsx":
        yield from _xlsx_cells(source.path)
        return
    with open(source.path, encoding=source.encoding, newline="") as text:
        yield from _csv_cells(text)


def iter_table(source: Source, columns: list[Column], limit: int | None = None):
    """The rows of a stored table as (row number, {key: text}), one at a time."""
    return _table(_cells(source), columns, job_max_rows() if limit is None else limit)


def spool(source: Source, path: Path, progress=None) -> Source:
    """A workbook's first sheet copied to a UTF-8 CSV file at `path` (reading a workbook is
    slow: an import that reads it twice reads the copy); a CSV is returned as it is."""
    if source.fmt != "xlsx":
        return source
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for number, row in enumerate(_xlsx_cells(source.path), start=1):
            if number > job_max_rows() + 1:
                raise _too_many_rows(job_max_rows())
            writer.writerow(row)
            if progress is not None and number % 1000 == 0:
                progress(number)
    return Source(path, "csv", "utf-8", source.rows)


# --- templates ---------------------------------------------------------------------------------

LISTS_SHEET = "Lists"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Drop-downs whose cells may hold several values or a quantity ("R01;R02", "AC-P001*2"): a
# value off the list is a warning there, not a refusal.
OPEN_LISTS = frozenset({"repair", "part"})


@dataclass
class Template:
    """What an import template holds: the headers, an example row that imports as it is,
    and the values of the coded columns (drop-downs in the workbook)."""

    basename: str
    columns: list[Column]
    example: dict | None = None  # key → text
    lists: dict | None = None  # Column.choices → values


def template_response(basename: str, columns: list[Column], fmt: str, *,
                      example: dict | None = None, lists: dict | None = None):
    """The import template as a download: the headers in the reader's language and the
    example row; a workbook adds an instructions sheet and drop-downs."""
    from flask import Response

    template = Template(basename, columns, example, lists)
    if fmt == "xlsx":
        return Response(workbook_bytes(template), mimetype=XLSX_TYPE, headers={
            "Content-Disposition": f"attachment; filename={basename}.xlsx"})
    return Response("\ufeff" + csv_text(template), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={basename}.csv"})


def _example_cells(template: Template) -> list[str] | None:
    if not template.example:
        return None
    return [template.example.get(c.key, "") for c in template.columns]


def csv_text(template: Template) -> str:
    from portal.exports import cell as safe_cell

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(str(c.label)) for c in template.columns])
    if (example := _example_cells(template)) is not None:
        writer.writerow(example)  # typed values: a leading "-" or "+" is no formula here
    return out.getvalue()


def workbook_bytes(template: Template) -> bytes:
    """Sheet 1 (imported): headers and the example row; an instructions sheet; a hidden
    sheet with the lists the drop-downs of the coded columns offer."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    data = book.active
    data.title = _("Data")[:31]
    data.append([str(c.label) for c in template.columns])
    if (example := _example_cells(template)) is not None:
        data.append(example)
    for cell in data[1]:
        cell.font = Font(bold=True)
    data.freeze_panes = "A2"
    for n, column in enumerate(template.columns, start=1):
        data.column_dimensions[_letter(n)].width = max(14, 2 * len(str(column.label)) + 2)
    _instructions(book.create_sheet(_("Instructions")[:31]), template)
    _drop_downs(book, data, template)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _letter(n: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(n)


def _instructions(sheet, template: Template) -> None:
    from openpyxl.styles import Alignment, Font

    sheet.append([_("How to fill in the first sheet")])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([_("One row per record below the header row. Keep the header row; columns "
                    "may be in any order, and columns you do not need may be left out unless "
                    "they are required. Times are local, as YYYY-MM-DD HH:MM. The second row "
                    "is an example that imports as it is: replace it with your rows.")])
    sheet.append([])
    sheet.append([_("Column"), _("Required"), _("Format"), _("Allowed values"),
                  _("What it means"), _("Example")])
    for cell in sheet[4]:
        cell.font = Font(bold=True)
    lists = template.lists or {}
    example = template.example or {}
    for column in template.columns:
        values = lists.get(column.choices) or []
        shown = ", ".join(values[:12]) + (" …" if len(values) > 12 else "")
        allowed = (_("Choose from the drop-down list: %(values)s", values=shown)
                   if values else "")
        sheet.append([str(column.label), _("yes") if column.required else _("no"),
                      str(column.fmt or ""), allowed, str(column.help or ""),
                      example.get(column.key, column.example)])
    for letter, width in zip("ABCDEF", (22, 10, 34, 44, 60, 26), strict=True):
        sheet.column_dimensions[letter].width = width
    for row in sheet.iter_rows(min_row=5):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")


def _drop_downs(book, data, template: Template) -> None:
    """Excel data validation (a list) on every coded column whose values are known."""
    from openpyxl.worksheet.datavalidation import DataValidation

    lists = {name: values for name, values in (template.lists or {}).items() if values}
    if not lists:
        return
    hidden = book.create_sheet(LISTS_SHEET)
    hidden.sheet_state = "hidden"
    places = {}
    for n, (name, values) in enumerate(sorted(lists.items()), start=1):
        letter = _letter(n)
        hidden.cell(row=1, column=n, value=name)
        for row, value in enumerate(values, start=2):
            hidden.cell(row=row, column=n, value=value)
        places[name] = f"{LISTS_SHEET}!${letter}$2:${letter}${len(values) + 1}"
    last = job_max_rows() + 1
    for n, column in enumerate(template.columns, start=1):
        if column.choices not in places:
            continue
        strict = column.choices not in OPEN_LISTS
        rule = DataValidation(type="list", formula1=places[column.choices], allow_blank=True,
                              showErrorMessage=True, errorStyle="stop" if strict else "warning",
                              errorTitle=str(column.label),
                              error=_("Choose a value from the list.") if strict else
                              _("This value is not in the list. Several codes are separated "
                                "by semicolons."))
        rule.add(f"{_letter(n)}2:{_letter(n)}{last}")
        data.add_data_validation(rule)
