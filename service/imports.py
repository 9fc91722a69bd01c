"""Bulk imports: work orders (agencies), revisits and catalogs (HQ), from CSV or XLSX.

Every row is parsed and checked by the same rules as the forms; each row is written in its
own savepoint so that a bad row leaves nothing behind. In the default mode one bad row
rolls the whole file back; with ``good_only`` the good rows are kept. Re-importing a file
creates no duplicates: orders are keyed by their number, revisits by their order, catalog
entries by their code. One audit entry records the whole import: the transitions
``work_order.imported``, ``revisit.imported`` and ``<kind>.imported``, declared here, are taken
once per file that changed something (a file that changes nothing leaves no entry). Their
record is an unsaved row of the imported kind: the audit log lists the import under that
type, as before, with the agency of imported orders.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from certification.models import Engineer
from portal import policy as portal_policy
from portal.clock import from_local
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.transitions import note, transition
from service import catalog, policy, quality, services
from service.models import FaultCode, Part, RepairCode, Revisit, WorkOrder
from service.tabular import Column
from tenants.models import Agency, ProductLine, ProductModel, ServiceType


class CellError(ValueError):
    """A value that cannot be read; the message is translated."""


@dataclass
class RowResult:
    number: int
    key: str = ""
    outcome: str = "created"  # created, updated, unchanged, skipped, error
    messages: list = field(default_factory=list)


@dataclass
class ImportReport:
    rows: list[RowResult]
    good_only: bool
    applied: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def errors(self) -> list[RowResult]:
        return [r for r in self.rows if r.outcome == "error"]


# --- cell parsers ---------------------------------------------------------------------------

TRUE = {"1", "y", "yes", "true", "是", "对", "√"}
FALSE = {"0", "n", "no", "false", "否", "不", "×"}
SERVICE_TYPES = {
    **{kind.value: kind for kind in ServiceType},
    "电话咨询": ServiceType.PHONE, "phoneconsultation": ServiceType.PHONE,
    "on-site": ServiceType.ONSITE, "上门维修": ServiceType.ONSITE,
    "on-siterepair": ServiceType.ONSITE,
    "carry-in": ServiceType.CARRY_IN, "送修": ServiceType.CARRY_IN,
    "carry-inrepair": ServiceType.CARRY_IN,
}
DATETIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M",
                    "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")


def parse_bool(text: str, default: bool) -> bool:
    value = text.strip().lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise CellError(_("Write yes or no."))


def parse_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,9}", text.strip()):
        raise CellError(_("Write a whole number."))
    return int(text)


def parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise CellError(_("Write a number such as 12.5.")) from None
    if not value.is_finite():
        raise CellError(_("Write a number such as 12.5."))
    return value


def parse_date(text: str):
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip()[:10], fmt).date()
        except ValueError:
            continue
    raise CellError(_("Write a date as YYYY-MM-DD."))


def parse_datetime(text: str) -> datetime:
    for fmt in DATETIME_FORMATS:
        try:
            value = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        if value.year < 1990:
            break
        return from_local(value)
    raise CellError(_("Write a time as YYYY-MM-DD HH:MM."))


def _read(row: dict, columns: dict, key: str, parse, errors: list, *, required=False,
          default=None):
    text = (row.get(key) or "").strip()
    if not text:
        if required:
            errors.append(_("%(column)s: required.", column=columns[key].label))
        return default
    try:
        return parse(text)
    except CellError as error:
        errors.append(_("%(column)s: %(problem)s", column=columns[key].label,
                        problem=str(error)))
        return default


def _by_key(columns: list[Column]) -> dict[str, Column]:
    return {c.key: c for c in columns}


def _may(acting_user, action: str, record=None) -> None:
    """Refuse before reading a file the actor may not import (the transition checks again)."""
    if refusal := portal_policy.refusal(acting_user, action, record):
        raise DomainError(refusal)


def _run_rows(prepared: list[tuple[RowResult, object]], write, good_only: bool,
              report_rows: list[RowResult]) -> ImportReport:
    """Write each prepared row in its own savepoint; all of it in one outer savepoint."""
    outer = db.session.begin_nested()
    for result, payload in prepared:
        step = db.session.begin_nested()
        try:
            result.outcome = write(payload) or "created"
        except DomainError as error:
            step.rollback()
            result.outcome, result.messages = "error", [error.message]
        else:
            step.commit()
    report = ImportReport(rows=sorted(report_rows, key=lambda r: r.number),
                          good_only=good_only)
    if report.errors and not good_only:
        outer.rollback()
    else:
        outer.commit()
        report.applied = True
    return report


# --- work orders -------------------------------------------------------------------------------

ORDER_COLUMNS = [
    Column("order_number", _l("Order number"), True, "WO20261120-0001"),
    Column("service_type", _l("Service type"), True, "onsite / carry_in / phone"),
    Column("customer_name", _l("Customer name"), True, "张三"),
    Column("customer_phone", _l("Customer phone"), True, "13800001234"),
    Column("customer_address", _l("Customer address"), False, "浦东新区世纪大道 100 号"),
    Column("product_model", _l("Model code"), True, "AC-KFR35"),
    Column("serial_number", _l("Serial number"), True, "SN12345678"),
    Column("purchase_date", _l("Purchase date"), False, "2026-03-15"),
    Column("received_at", _l("Received at"), True, "2026-11-20 09:30"),
    Column("responded_at", _l("Responded at"), False, "2026-11-20 10:05"),
    Column("arrived_at", _l("Arrived at"), False, "2026-11-20 14:00"),
    Column("completed_at", _l("Completed at"), False, "2026-11-20 15:20"),
    Column("distance_km", _l("Distance (km)"), False, "12.5"),
    Column("engineer", _l("Engineer name"), False, "王伟"),
    Column("fault_code", _l("Fault code"), False, "F01"),
    Column("fault_description", _l("Fault description"), False, ""),
    Column("repair_codes", _l("Repair codes"), False, "R01;R02"),
    Column("resolution", _l("Resolution"), False, ""),
    Column("first_time_fix", _l("First-time fix"), False, "yes / no"),
    Column("parts", _l("Parts used"), False, "AC-P001*1;AC-P002*2"),
]


class _OrderLookups:
    """Everything the rows may name, loaded once for the whole file."""

    def __init__(self, agency: Agency):
        self.models = {m.code.upper(): m for m in db.session.scalars(select(ProductModel))}
        engineers = db.session.execute(select(Engineer.id, Engineer.name).where(
            Engineer.agency_id == agency.id)).all()
        self.engineers: dict[str, list[int]] = {}
        for engineer_id, name in engineers:
            self.engineers.setdefault(name.strip(), []).append(engineer_id)
        self.faults = {(f.product_line_id, f.code.upper()): f.id
                       for f in db.session.scalars(select(FaultCode))}
        self.repairs = {(r.product_line_id, r.code.upper()): r.id
                        for r in db.session.scalars(select(RepairCode))}
        self.parts = {p.part_number.upper(): p.id for p in db.session.scalars(select(Part))}


def _order_row(row: dict, look: _OrderLookups) -> tuple[dict, list[str]]:
    cols = _by_key(ORDER_COLUMNS)
    errors: list[str] = []
    data = {key: (row.get(key) or "").strip() for key in (
        "customer_name", "customer_phone", "customer_address", "serial_number",
        "fault_description", "resolution")}
    data["number"] = (row.get("order_number") or "").strip()
    if not data["number"]:
        errors.append(_("%(column)s: required.", column=cols["order_number"].label))
    kind = SERVICE_TYPES.get("".join((row.get("service_type") or "").split()).lower())
    if kind is None:
        errors.append(_("%(column)s: write onsite, carry_in or phone.",
                        column=cols["service_type"].label))
    data["service_type"] = kind
    model = look.models.get((row.get("product_model") or "").strip().upper())
    if model is None:
        errors.append(_("%(column)s: unknown model.", column=cols["product_model"].label))
    data["product_model_id"] = model.id if model else None
    data["purchase_date"] = _read(row, cols, "purchase_date", parse_date, errors)
    for key in ("received_at", "responded_at", "arrived_at", "completed_at"):
        data[key] = _read(row, cols, key, parse_datetime, errors,
                             required=key == "received_at")
    data["distance_km"] = _read(row, cols, "distance_km", parse_decimal, errors)
    data["is_first_time_fix"] = _read(row, cols, "first_time_fix",
                                      lambda t: parse_bool(t, True), errors, default=True)
    data["engineer_id"] = _engineer(row, cols, look, errors)
    line_id = model.product_line_id if model else None
    data["fault_code_id"] = _code(row, cols, "fault_code", look.faults, line_id, errors)
    data["repair_code_ids"] = _codes(row, cols, look.repairs, line_id, errors)
    data["parts"] = _parts(row, cols, look.parts, errors)
    return data, errors


def _engineer(row, cols, look: _OrderLookups, errors) -> int | None:
    name = (row.get("engineer") or "").strip()
    if not name:
        return None
    ids = look.engineers.get(name, [])
    if len(ids) != 1:
        errors.append(_("%(column)s: no engineer of your agency has this name.",
                        column=cols["engineer"].label) if not ids else
                      _("%(column)s: several engineers have this name.",
                        column=cols["engineer"].label))
        return None
    return ids[0]


def _code(row, cols, key, table, line_id, errors) -> int | None:
    code = (row.get(key) or "").strip().upper()
    if not code or line_id is None:
        return None
    found = table.get((line_id, code))
    if found is None:
        errors.append(_("%(column)s: %(code)s is not a code of this product line.",
                        column=cols[key].label, code=code))
    return found


def _codes(row, cols, table, line_id, errors) -> list[int]:
    text = (row.get("repair_codes") or "").strip()
    if not text or line_id is None:
        return []
    out = []
    for code in filter(None, (c.strip().upper() for c in re.split(r"[;,，；]", text))):
        found = table.get((line_id, code))
        if found is None:
            errors.append(_("%(column)s: %(code)s is not a code of this product line.",
                            column=cols["repair_codes"].label, code=code))
        else:
            out.append(found)
    return out


def _parts(row, cols, table, errors) -> list[tuple[int, int]]:
    text = (row.get("parts") or "").strip()
    out = []
    for item in filter(None, (i.strip() for i in re.split(r"[;,，；]", text))):
        part_id, quantity = _part_item(item, table)
        if part_id is None:
            errors.append(_("%(column)s: unknown part %(item)s.", column=cols["parts"].label,
                            item=item))
        elif quantity < 1:
            errors.append(_("%(column)s: quantities are at least 1.",
                            column=cols["parts"].label))
        else:
            out.append((part_id, quantity))
    return out


def _part_item(item: str, table: dict) -> tuple[int | None, int]:
    """``NUMBER`` or ``NUMBER*2`` (also ``x2``, ``×2``); a part number may hold an x itself."""
    if (part_id := table.get(item.upper())) is not None:
        return part_id, 1
    match = re.fullmatch(r"(.*\S)\s*[*x×]\s*(-?\d{1,4})", item, re.IGNORECASE)
    if match is None:
        return None, 1
    return table.get(match.group(1).upper()), int(match.group(2))


def import_work_orders(agency: Agency, rows: list[tuple[int, dict]], *,
                       good_only: bool = False, acting_user) -> ImportReport:
    """Import orders for `agency`; orders whose number exists already are skipped."""
    _may(acting_user, policy.IMPORT_ORDERS, agency)
    look = _OrderLookups(agency)
    results, prepared, seen = [], [], set()
    numbers = [(r.get("order_number") or "").strip() for _n, r in rows]
    existing = set(db.session.scalars(select(WorkOrder.number).where(
        WorkOrder.agency_id == agency.id, WorkOrder.number.in_([n for n in numbers if n]))))
    for number, row in rows:
        data, errors = _order_row(row, look)
        result = RowResult(number=number, key=data["number"])
        results.append(result)
        if data["number"] in seen:
            errors.append(_("Order number %(number)s appears twice in the file.",
                            number=data["number"]))
        seen.add(data["number"])
        if errors:
            result.outcome, result.messages = "error", errors
        elif data["number"] in existing:
            result.outcome, result.messages = "skipped", [_("Already imported.")]
        else:
            prepared.append((result, data))
    # In time order, so that a repeat repair finds the earlier one in the same file.
    prepared.sort(key=lambda item: item[1]["received_at"])

    def write(data):
        services.write_order(agency, services.check_order_input(agency, data),
                             acting_user=acting_user)

    report = _run_rows(prepared, write, good_only, results)
    created = [r.key for r in report.rows if r.outcome == "created"]
    if report.applied and created:
        _orders_imported(agency, {"created": created, "skipped": report.count("skipped"),
                                  "rejected_rows": len(report.errors)},
                         acting_user=acting_user)
    return report


@transition("work_order.imported", WorkOrder, label=_l("Work orders imported"),
            permission=policy.IMPORT_ORDERS, creates=True)
def _orders_imported(agency: Agency, summary: dict, *, acting_user) -> None:
    note(record=WorkOrder(agency_id=agency.id), after=summary, agency_id=agency.id)


# --- revisits -----------------------------------------------------------------------------------

REVISIT_COLUMNS = [
    Column("agency_code", _l("Agency code"), True, "SH-C01"),
    Column("order_number", _l("Order number"), True, "WO20261120-0001"),
    Column("score", _l("Score (1-5)"), True, "5"),
    Column("comment", _l("Comment"), False, "满意"),
    Column("revisited_at", _l("Revisited at"), False, "2026-11-21 10:00"),
]


def import_revisits(rows: list[tuple[int, dict]], *, good_only: bool = False,
                    acting_user) -> ImportReport:
    """Import revisit scores (HQ); a row for an order already revisited corrects it."""
    _may(acting_user, policy.IMPORT_REVISITS)
    cols = _by_key(REVISIT_COLUMNS)
    keys = {((r.get("agency_code") or "").strip().upper(), (r.get("order_number") or "").strip())
            for _n, r in rows}
    orders = {(code.upper(), order.number): order for order, code in db.session.execute(
        select(WorkOrder, Agency.code).join(Agency, Agency.id == WorkOrder.agency_id)
        .where(WorkOrder.number.in_([k[1] for k in keys if k[1]] or [""])))}
    results, prepared, seen = [], [], set()
    for number, row in rows:
        errors: list[str] = []
        key = ((row.get("agency_code") or "").strip().upper(),
               (row.get("order_number") or "").strip())
        score = _read(row, cols, "score", parse_int, errors, required=True)
        revisited_at = _read(row, cols, "revisited_at", parse_datetime, errors)
        order = orders.get(key)
        if order is None:
            errors.append(_("No order %(number)s of agency %(agency)s.", number=key[1],
                            agency=key[0]))
        if key in seen:
            errors.append(_("This order appears twice in the file."))
        seen.add(key)
        result = RowResult(number=number, key=" ".join(key))
        results.append(result)
        if errors:
            result.outcome, result.messages = "error", errors
        else:
            prepared.append((result, (order, score, row.get("comment") or "", revisited_at)))

    def write(payload):
        order, score, comment, revisited_at = payload
        clean = quality.check_revisit(order, score, comment, revisited_at)
        _revisit, before, after = quality.write_revisit(order, clean, acting_user)
        return "unchanged" if after is None else ("created" if before is None else "updated")

    report = _run_rows(prepared, write, good_only, results)
    changed = [r.key for r in report.rows if r.outcome in ("created", "updated")]
    if report.applied and changed:
        _revisits_imported(None, {"orders": changed, "rejected_rows": len(report.errors)},
                           acting_user=acting_user)
    return report


@transition("revisit.imported", Revisit, label=_l("Revisits imported"),
            permission=policy.IMPORT_REVISITS, creates=True)
def _revisits_imported(_nothing, summary: dict, *, acting_user) -> None:
    note(record=Revisit(), after=summary)


# --- catalogs ------------------------------------------------------------------------------------

_CODE_COLUMNS = [
    Column("product_line", _l("Product line code"), True, "AC"),
    Column("code", _l("Code"), True, "R01"),
    Column("description_zh", _l("Description (Chinese)"), True, "更换压缩机"),
    Column("description_en", _l("Description (English)"), True, "Replace compressor"),
]
CATALOG_COLUMNS = {
    "repair_code": [*_CODE_COLUMNS,
                    Column("standard_hours", _l("Standard hours"), True, "2.5"),
                    Column("active", _l("In use"), False, "yes / no")],
    "fault_code": [*_CODE_COLUMNS, Column("active", _l("In use"), False, "yes / no")],
    "part": [
        Column("part_number", _l("Part number"), True, "AC-P001"),
        Column("name_zh", _l("Name (Chinese)"), True, "压缩机"),
        Column("name_en", _l("Name (English)"), True, "Compressor"),
        Column("product_line", _l("Product line code"), True, "AC"),
        Column("unit_price", _l("Unit price (CNY)"), True, "860.00"),
        Column("returnable", _l("Returnable"), True, "yes / no"),
        Column("active", _l("In use"), False, "yes / no"),
    ],
}


def _catalog_row(kind: str, row: dict, lines: dict[str, int]) -> tuple[dict, list[str]]:
    cols = _by_key(CATALOG_COLUMNS[kind])
    errors: list[str] = []
    data = {k: (v or "").strip() for k, v in row.items()}
    code = data.get("product_line", "").upper()
    data["product_line_id"] = lines.get(code)
    if data["product_line_id"] is None:
        errors.append(_("%(column)s: unknown product line.", column=cols["product_line"].label))
    data["is_active"] = _read(row, cols, "active", lambda t: parse_bool(t, True), errors,
                              default=True)
    if kind == "repair_code":
        data["standard_hours"] = _read(row, cols, "standard_hours", parse_decimal, errors,
                                       required=True)
    if kind == "part":
        data["unit_price"] = _read(row, cols, "unit_price", parse_decimal, errors,
                                   required=True)
        data["is_returnable"] = _read(row, cols, "returnable", lambda t: parse_bool(t, False),
                                      errors, required=True, default=False)
    return data, errors


def import_catalog(kind: str, rows: list[tuple[int, dict]], *,
                   good_only: bool = False, acting_user) -> ImportReport:
    """Create or update catalog entries by their code (part number); same file, same result."""
    _may(acting_user, policy.IMPORT_CATALOG[kind])
    lines = {code.upper(): line_id for line_id, code in db.session.execute(
        select(ProductLine.id, ProductLine.code))}
    check = catalog.KINDS[kind][1]
    results, prepared, seen = [], [], set()
    for number, row in rows:
        data, errors = _catalog_row(kind, row, lines)
        clean = None
        if not errors:
            try:
                clean = check(data)
            except DomainError as error:
                errors.append(error.message)
        key = "" if clean is None else " ".join(
            str(clean[k]) for k in catalog.KINDS[kind][2] if k != "product_line_id")
        if clean is not None and (clean.get("product_line_id"), key) in seen:
            errors.append(_("This code appears twice in the file."))
        if clean is not None:
            seen.add((clean.get("product_line_id"), key))
        result = RowResult(number=number, key=key or (row.get("code") or row.get("part_number")
                                                      or ""))
        results.append(result)
        if errors:
            result.outcome, result.messages = "error", errors
        else:
            prepared.append((result, clean))
    changes: list = []

    def write(clean):
        _obj, change = catalog.write_entry(kind, catalog.find_existing(kind, clean), clean)
        if change is None:
            return "unchanged"
        changes.append(change[0])
        return "created" if change[0].endswith("created") else "updated"

    report = _run_rows(prepared, write, good_only, results)
    if report.applied and changes:
        CATALOG_IMPORTED[kind](kind, {"created": report.count("created"),
                                      "updated": report.count("updated"),
                                      "rejected_rows": len(report.errors)},
                               acting_user=acting_user)
    return report


IMPORT_KINDS = ("repair_code", "fault_code", "part")


def _catalog_imported(kind: str):
    model = catalog.KINDS[kind][0]

    @transition(f"{kind}.imported", model, label=_l("Catalog imported"),
                permission=policy.IMPORT_CATALOG[kind], creates=True)
    def imported(kind: str, summary: dict, *, acting_user) -> None:
        note(record=model(), after=summary)

    return imported


CATALOG_IMPORTED = {kind: _catalog_imported(kind) for kind in IMPORT_KINDS}
