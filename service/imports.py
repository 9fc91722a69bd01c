"""Bulk imports: work orders (agencies), revisits and catalogs (HQ), from CSV or XLSX.

Rows are read one at a time and handled in batches: each batch is checked against lookups
loaded once for the file (and a query or two per batch), by the same rules as the forms, and
its good rows are written set-based (one INSERT or UPDATE per table and batch, never one ORM
object per row). Memory stays bounded by the batch, whatever the file's length. The whole
import runs in one savepoint: in the default mode one bad row rolls the file back (nothing
is written); with ``good_only`` the good rows are kept. A background import checks the whole
file first (`check_only`), without writing, then writes it in a second pass. Re-importing a
file creates no duplicates: orders are keyed by their number, revisits by their order,
catalog entries by their code. One audit entry records the whole import: the transitions
``work_order.imported``, ``revisit.imported`` and ``<kind>.imported``, declared here, are
taken once per file that changed something, with the counts (a file that changes nothing
leaves no entry).
"""
import contextvars
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, insert, or_, select, tuple_, update

from certification.models import Certificate, Engineer
from portal import policy as portal_policy
from portal.clock import local_zone
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.transitions import note, transition
from service import catalog, order_checks, policy, quality
from service.common import is_in_warranty, return_due_days, rework_days
from service.models import (
    FaultCode,
    OrderStatus,
    Part,
    PartReturn,
    PartStock,
    RepairCode,
    Revisit,
    WorkOrder,
    WorkOrderPart,
    WorkOrderRepair,
)
from service.tabular import Column
from tenants.models import Agency, AgencyProductLine, ProductLine, ProductModel, ServiceType

BATCH = 1000


class CellError(ValueError):
    """A value that cannot be read; the message is translated."""


@dataclass
class RowResult:
    number: int
    key: str = ""
    outcome: str = "created"  # created, updated, unchanged, skipped, error
    messages: list = field(default_factory=list)
    record_id: int | None = None  # the order the row wrote or names (for links)


@dataclass
class ImportReport:
    rows: list[RowResult]  # every row (imports in a request) or none (background imports)
    good_only: bool
    applied: bool = False
    counts: Counter = field(default_factory=Counter)
    # Orders: the local days of receipt of the orders created (a link to them in the list).
    days: tuple[date, date] | None = None

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    @property
    def errors(self) -> list[RowResult]:
        return [r for r in self.rows if r.outcome == "error"]

    @property
    def error_count(self) -> int:
        return self.counts["error"]

    @property
    def changed(self) -> int:
        return self.counts["created"] + self.counts["updated"]

    def summary(self) -> dict:
        """The counts, as a job's result and an audit entry keep them."""
        return {"created": self.count("created"), "updated": self.count("updated"),
                "unchanged": self.count("unchanged"), "skipped": self.count("skipped"),
                "rejected_rows": self.error_count}


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
_ISO_MINUTE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


# The network's zone, looked up once per import rather than for every cell (it is read from
# the app's configuration): portal.clock's from_local and local_day with it.
_zone: contextvars.ContextVar[tzinfo | None] = contextvars.ContextVar("import_zone",
                                                                     default=None)


def from_local(naive: datetime) -> datetime:
    return naive.replace(tzinfo=_zone.get() or local_zone()).astimezone(UTC)


def local_day(moment: datetime) -> date:
    return moment.astimezone(_zone.get() or local_zone()).date()


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
    text = text.strip()
    if len(text) == 16 and _ISO_MINUTE.fullmatch(text):  # the usual form, read fast
        try:
            value = datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                             int(text[14:16]))
        except ValueError:
            value = None
        if value is not None and value.year >= 1990:
            return from_local(value)
    for fmt in DATETIME_FORMATS:
        try:
            value = datetime.strptime(text, fmt)
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


def may_import(acting_user, action: str, record=None) -> None:
    """Refuse before reading a file the actor may not import (the transition checks again)."""
    if refusal := portal_policy.refusal(acting_user, action, record):
        raise DomainError(refusal)


# --- the engine -------------------------------------------------------------------------------


@dataclass
class Checked:
    """One row after its checks: its result (outcome and messages) and what to write."""

    result: RowResult
    row: dict
    payload: object = None


class Importer:
    """One file's import: `check` a batch (no writes), `write` its good rows set-based."""

    columns: list[Column] = []

    def reset(self) -> None:
        """Forget what earlier rows told (a second pass starts afresh)."""
        self.seen: set[int] = set()

    def twice(self, key) -> bool:
        """Whether `key` came before in the file (hashes only: bounded memory)."""
        token = hash(key)
        if token in self.seen:
            return True
        self.seen.add(token)
        return False

    def check(self, batch: list[tuple[int, dict]]) -> list[Checked]:
        raise NotImplementedError

    def write(self, good: list[Checked]) -> None:
        raise NotImplementedError

    def audit(self, report: ImportReport, about: dict) -> None:
        raise NotImplementedError


def insert_rows(model, rows: list[dict], *, ids: bool = False) -> list[int] | None:
    """`rows` written by one executemany INSERT (Core: no ORM object per row); with `ids`,
    their new ids in the order of `rows`."""
    table = model.__table__
    connection = db.session.connection()
    if ids:
        return connection.execute(insert(table).returning(
            table.c.id, sort_by_parameter_order=True), rows).scalars().all()
    connection.execute(insert(table), rows)
    return None


def owned_pairs(owner, key, pairs):
    """``(owner = a AND key IN (…)) OR …`` for (owner, key) pairs: each term reads the
    (agency_id, key) index (a row-value IN list makes SQLite scan the table)."""
    grouped: dict = defaultdict(list)
    for owner_id, value in sorted(pairs):
        grouped[owner_id].append(value)
    return or_(*(and_(owner == owner_id, key.in_(values))
                 for owner_id, values in grouped.items()))


def batches(rows, size: int = BATCH):
    batch = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


WRITTEN = ("created", "updated")


def run(importer: Importer, rows, *, good_only: bool = False, write: bool = True,
        keep_rows: bool = True, on_error=None, progress=None, about: dict | None = None
        ) -> ImportReport:
    """Check `rows` ((number, {key: text}), any iterable) batch by batch and, with `write`,
    write the good ones in one savepoint: rolled back when a row is bad (unless
    `good_only`). `on_error(number, row, messages)` receives each bad row; `progress(n)` the
    number of the last row read. Takes the import's transition when something changed."""
    report = ImportReport(rows=[], good_only=good_only)
    importer.reset()
    outer = db.session.begin_nested() if write else None
    writing = write
    zone = _zone.set(local_zone())
    try:
        for batch in batches(rows):
            checked = importer.check(batch)
            if not good_only and any(c.result.outcome == "error" for c in checked):
                writing = False  # all or nothing: nothing more is written
            good = [c for c in checked if c.result.outcome in WRITTEN]
            if writing and good:
                importer.write(good)
            for c in checked:
                report.counts[c.result.outcome] += 1
                if keep_rows:
                    report.rows.append(c.result)
                if c.result.outcome == "error" and on_error is not None:
                    on_error(c.result.number, c.row, c.result.messages)
            if progress is not None:
                progress(batch[-1][0])
    except BaseException:
        if outer is not None and outer.is_active:
            outer.rollback()
        raise
    finally:
        _zone.reset(zone)
    report.rows.sort(key=lambda r: r.number)
    report.days = getattr(importer, "days", None)
    if outer is None:
        return report
    if report.error_count and not good_only:
        outer.rollback()
        return report
    outer.commit()
    report.applied = True
    if report.changed:
        importer.audit(report, about or {})
    return report


# --- work orders -------------------------------------------------------------------------------

ORDER_COLUMNS = [
    Column("order_number", _l("Order number"), True, "WO20261120-0001",
           help=_l("Your number of the order. A number already imported is skipped, so the "
                   "same file can be imported again."),
           fmt=_l("Up to 32 letters, digits and - _ / .")),
    Column("service_type", _l("Service type"), True, "carry_in",
           help=_l("How the customer is served."),
           fmt=_l("On-site repair, carry-in repair or phone consultation (also onsite, "
                  "carry_in, phone)"), choices="service_type"),
    Column("customer_name", _l("Customer name"), True, "张三",
           fmt=_l("Text, up to 64 characters")),
    Column("customer_phone", _l("Customer phone"), True, "13800001234",
           fmt=_l("Digits, spaces and + - ( )")),
    Column("customer_address", _l("Customer address"), False, "浦东新区世纪大道 100 号",
           fmt=_l("Text, up to 300 characters")),
    Column("product_model", _l("Model code"), True, "AC-KFR35",
           help=_l("The product's model: its product line must be one your agency is "
                   "authorized for."), fmt=_l("A model code"), choices="model"),
    Column("serial_number", _l("Serial number"), True, "SN12345678",
           help=_l("A repair of the same serial number within 30 days of a completed one is "
                   "marked as rework."), fmt=_l("3 to 64 letters, digits, - / .")),
    Column("purchase_date", _l("Purchase date"), False, "2026-03-15",
           help=_l("Empty when the customer has no proof of purchase: the order is then out "
                   "of warranty."), fmt=_l("YYYY-MM-DD")),
    Column("received_at", _l("Received at"), True, "2026-11-20 09:30",
           fmt=_l("YYYY-MM-DD HH:MM, local time")),
    Column("responded_at", _l("Responded at"), False, "2026-11-20 10:05",
           help=_l("Required for a completed order."),
           fmt=_l("YYYY-MM-DD HH:MM, local time")),
    Column("arrived_at", _l("Arrived at"), False, "2026-11-20 14:00",
           help=_l("On-site repairs only; required when one is completed."),
           fmt=_l("YYYY-MM-DD HH:MM, local time")),
    Column("completed_at", _l("Completed at"), False, "2026-11-20 15:20",
           help=_l("Empty for an open order. A completed order needs its engineer, response "
                   "time, resolution and (but for phone consultations) a repair code."),
           fmt=_l("YYYY-MM-DD HH:MM, local time")),
    Column("distance_km", _l("Distance (km)"), False, "12.5",
           help=_l("On-site repairs only; required when one is completed."),
           fmt=_l("A number such as 12.5")),
    Column("engineer", _l("Engineer name"), False, "王伟",
           help=_l("An engineer of your agency, by the name registered in the portal."),
           fmt=_l("A name"), choices="engineer"),
    Column("fault_code", _l("Fault code"), False, "AC-F01",
           fmt=_l("A fault code of the model's product line"), choices="fault"),
    Column("fault_description", _l("Fault description"), False, "",
           fmt=_l("Text")),
    Column("repair_codes", _l("Repair codes"), False, "AC-R01;AC-R02",
           fmt=_l("Repair codes of the model's product line, separated by ;"),
           choices="repair"),
    Column("resolution", _l("Resolution"), False, "",
           help=_l("Required for a completed order."), fmt=_l("Text")),
    Column("first_time_fix", _l("First-time fix"), False, "yes",
           fmt=_l("yes or no (empty: yes)"), choices="yesno"),
    Column("parts", _l("Parts used"), False, "AC-P001*1;AC-P002*2",
           help=_l("Taken from your agency's stock; returnable parts used in warranty must "
                   "be sent back to HQ."),
           fmt=_l("Part number, * and the quantity; several separated by ;"), choices="part"),
]


class _OrderLookups:
    """Everything the rows may name, loaded once for the whole file."""

    def __init__(self, agency: Agency):
        self.models = {m.code.upper(): m for m in db.session.scalars(select(ProductModel))}
        self.model_by_id = {m.id: m for m in self.models.values()}
        self.lines = set(db.session.scalars(select(AgencyProductLine.product_line_id).where(
            AgencyProductLine.agency_id == agency.id)))
        self.engineers: dict[str, list[int]] = {}
        self.left_on: dict[int, date | None] = {}
        for engineer_id, name, left_on in db.session.execute(select(
                Engineer.id, Engineer.name, Engineer.left_on).where(
                Engineer.agency_id == agency.id)):
            self.engineers.setdefault(name.strip(), []).append(engineer_id)
            self.left_on[engineer_id] = left_on
        self.faults = {(line, code.upper()): fault_id for fault_id, line, code in
                       db.session.execute(select(FaultCode.id, FaultCode.product_line_id,
                                                 FaultCode.code))}
        self.repairs, self.repair_info = {}, {}
        for code in db.session.scalars(select(RepairCode)):
            self.repairs[(code.product_line_id, code.code.upper())] = code.id
            self.repair_info[code.id] = code
        self.parts, self.part_info = {}, {}
        for part in db.session.scalars(select(Part)):
            self.parts[part.part_number.upper()] = part.id
            self.part_info[part.id] = part
        self.certificates = defaultdict(list)
        for row in db.session.execute(select(
                Certificate.engineer_id, Certificate.product_line_id, Certificate.level,
                Certificate.valid_from, Certificate.valid_to, Certificate.revoked_on).where(
                Certificate.agency_id == agency.id)):
            self.certificates[row.engineer_id].append(row)

    def certified(self, engineer_id: int | None, line_id: int, day: date) -> bool:
        """The rule of certification.queries.valid_certificate_exists, on the loaded rows."""
        return engineer_id is not None and any(
            c.product_line_id == line_id and c.level >= 1 and c.valid_from <= day <= c.valid_to
            and (c.revoked_on is None or c.revoked_on > day)
            for c in self.certificates.get(engineer_id, ()))


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


@dataclass
class _Order:
    """A checked order, ready to be written."""

    data: dict
    model: ProductModel
    parts: dict[int, int]  # part id → quantity


class OrderImport(Importer):
    """Work orders of one agency; an order whose number exists already is skipped.

    The rules are those of ``service.order_checks.check_order_input``, applied to lookups
    loaded once (the order's own fields by its pure checks); the derived fields are those
    ``service.services.write_order`` stores: warranty, service day, the engineer's
    certificate on that day, rework links both ways, stock taken and part returns due.
    """

    columns = ORDER_COLUMNS

    def __init__(self, agency: Agency, acting_user):
        self.agency, self.actor = agency, acting_user
        self.user_id = getattr(acting_user, "id", None)
        self.look = _OrderLookups(agency)
        self.days: tuple[date, date] | None = None

    def reset(self) -> None:
        super().reset()
        self.available = dict(db.session.execute(select(PartStock.part_id, PartStock.quantity)
                                                  .where(PartStock.agency_id == self.agency.id)
                                                  ).all())

    def check(self, batch):
        parsed = [(number, row, *_order_row(row, self.look)) for number, row in batch]
        numbers = [d["number"] for _n, _r, d, _e in parsed if d["number"]]
        existing = set(db.session.scalars(select(WorkOrder.number).where(
            WorkOrder.agency_id == self.agency.id, WorkOrder.number.in_(numbers)))) \
            if numbers else set()
        out = []
        for number, row, data, errors in parsed:
            result = RowResult(number=number, key=data["number"])
            if self.twice(("number", data["number"])):
                errors.append(_("Order number %(number)s appears twice in the file.",
                                number=data["number"]))
            payload = None
            if errors:
                result.outcome, result.messages = "error", errors
            elif data["number"] in existing:
                result.outcome, result.messages = "skipped", [_("Already imported.")]
            else:
                try:
                    payload = self._rules(data)
                except DomainError as error:
                    result.outcome, result.messages = "error", [error.message]
            out.append(Checked(result, row, payload))
        return out

    def _rules(self, data: dict) -> _Order:
        """check_order_input's rules in its order; raises DomainError for the first broken."""
        data = order_checks._clean(data)
        model = self._identity_and_product(data)
        order_checks._check_times(data)
        self._people(data)
        codes = self._repair_codes(data, model.product_line_id)
        parts = self._parts(data, model.product_line_id)
        if data.get("completed_at"):
            order_checks._check_completion(data, codes)
        self._take_stock(parts)
        return _Order(data, model, parts)

    def _identity_and_product(self, data: dict) -> ProductModel:
        agency = self.agency
        if not order_checks.NUMBER.match(data["number"]):
            raise DomainError(_("Use up to 32 letters, digits and - _ / . for the order "
                                "number."), field="number")
        if data["service_type"] not in agency.service_type_list:
            raise DomainError(_("Your agency is not authorized for this service type."),
                              field="service_type")
        if not data["customer_name"] or len(data["customer_name"]) > 64:
            raise DomainError(_("Enter the customer's name (up to 64 characters)."),
                              field="customer_name")
        if not order_checks.PHONE.match(data["customer_phone"]):
            raise DomainError(_("Enter a valid phone number."), field="customer_phone")
        if len(data["customer_address"]) > 300:
            raise DomainError(_("The address is too long."), field="customer_address")
        if not order_checks.SERIAL.match(data["serial_number"]):
            raise DomainError(_("Enter the serial number (3 to 64 letters, digits, - / .)."),
                              field="serial_number")
        model = self.look.model_by_id[data["product_model_id"]]
        if model.product_line_id not in self.look.lines:
            raise DomainError(_("Your agency is not authorized for this product line."),
                              field="product_model_id")
        purchase, received = data.get("purchase_date"), data.get("received_at")
        if purchase is not None and received is not None and purchase > local_day(received):
            raise DomainError(_("The purchase date is after the order was received."),
                              field="purchase_date")
        return model

    def _people(self, data: dict) -> None:
        engineer_id = data.get("engineer_id")
        if not engineer_id:
            data["engineer_id"] = None
            return
        left_on = self.look.left_on.get(engineer_id)
        if left_on is not None and left_on < local_day(data.get("completed_at")
                                                       or data["received_at"]):
            raise DomainError(_("This engineer left your agency on %(day)s, before this "
                                "service.", day=format_date(left_on)), field="engineer_id")

    def _repair_codes(self, data: dict, line_id: int) -> list[int]:
        codes = [self.look.repair_info[i] for i in data["repair_code_ids"]]
        if any(c.product_line_id != line_id for c in codes):
            raise DomainError(_("Choose repair codes of the order's product line."),
                              field="repair_code_ids")
        if any(not c.is_active for c in codes):
            raise DomainError(_("A chosen repair code is no longer in use."),
                              field="repair_code_ids")
        return data["repair_code_ids"]

    def _parts(self, data: dict, line_id: int) -> dict[int, int]:
        wanted: dict[int, int] = {}
        for part_id, quantity in data.get("parts") or []:
            if not 1 <= quantity <= order_checks.MAX_PART_QUANTITY:
                raise DomainError(_("Each part's quantity must be between 1 and %(max)s.",
                                    max=order_checks.MAX_PART_QUANTITY), field="parts")
            wanted[part_id] = wanted.get(part_id, 0) + quantity
        for part_id in wanted:
            part = self.look.part_info[part_id]
            if part.product_line_id != line_id:
                raise DomainError(_("Part %(number)s is not for the order's product line.",
                                    number=part.part_number), field="parts")
        return wanted

    def _take_stock(self, parts: dict[int, int]) -> None:
        """Stock is checked across the rows: each good row takes what it uses."""
        for part_id, quantity in parts.items():
            have = self.available.get(part_id, 0)
            if have < quantity:
                raise DomainError(_("Only %(have)s of part %(number)s are in your stock; "
                                    "%(wanted)s needed. Parts used on orders must come from "
                                    "parts your agency received.", have=have, wanted=quantity,
                                    number=self.look.part_info[part_id].part_number),
                                  field="parts")
        for part_id, quantity in parts.items():
            self.available[part_id] -= quantity

    # --- writing ---------------------------------------------------------------------------

    def write(self, good):
        now, agency_id = utcnow(), self.agency.id
        orders = [self._order_values(c.payload, now) for c in good]
        ids = insert_rows(WorkOrder, orders, ids=True)
        for checked, order_id, values in zip(good, ids, orders, strict=True):
            checked.result.record_id = order_id
            values["id"] = order_id
            day = local_day(values["received_at"])
            first, last = self.days or (day, day)
            self.days = (min(first, day), max(last, day))
        repairs = [{"agency_id": agency_id, "work_order_id": values["id"],
                    "repair_code_id": code_id,
                    "standard_hours": self.look.repair_info[code_id].standard_hours}
                   for c, values in zip(good, orders, strict=True)
                   for code_id in sorted(set(c.payload.data["repair_code_ids"]))]
        if repairs:
            insert_rows(WorkOrderRepair, repairs)
        self._write_parts(good, orders, now)
        self._link_reworks(orders, now)

    def _order_values(self, order: _Order, now: datetime) -> dict:
        data, model = order.data, order.model
        completed = data.get("completed_at")
        service_date = local_day(completed or data["received_at"])
        values = {key: data.get(key) for key in (
            "number", "service_type", "customer_name", "customer_phone", "customer_address",
            "serial_number", "purchase_date", "received_at", "responded_at", "arrived_at",
            "completed_at", "distance_km", "engineer_id", "fault_code_id",
            "fault_description", "resolution", "is_first_time_fix")}
        values.update(
            agency_id=self.agency.id, product_model_id=model.id,
            product_line_id=model.product_line_id,
            status=OrderStatus.COMPLETED if completed else OrderStatus.OPEN,
            service_date=service_date,
            is_in_warranty=is_in_warranty(data.get("purchase_date"), model.warranty_months,
                                          local_day(data["received_at"])),
            is_engineer_certified=self.look.certified(data.get("engineer_id"),
                                                      model.product_line_id, service_date),
            is_rework=False, rework_of_id=None, created_by_id=self.user_id, version=1,
            created_at=now, updated_at=now)
        return values

    def _write_parts(self, good: list[Checked], orders: list[dict], now: datetime) -> None:
        """Parts used (at the catalog price), stock taken, and the returns they owe."""
        agency_id = self.agency.id
        lines = [(values, part_id, quantity) for c, values in zip(good, orders, strict=True)
                 for part_id, quantity in sorted(c.payload.parts.items())]
        if not lines:
            return
        used_ids = insert_rows(WorkOrderPart, [
            {"agency_id": agency_id, "work_order_id": values["id"], "part_id": part_id,
             "quantity": quantity, "unit_price": self.look.part_info[part_id].unit_price}
            for values, part_id, quantity in lines], ids=True)
        taken: Counter = Counter()
        for _values, part_id, quantity in lines:
            taken[part_id] += quantity
        stock = PartStock.__table__
        for part_id, quantity in sorted(taken.items()):
            done = db.session.connection().execute(
                update(stock).where(stock.c.agency_id == agency_id,
                                    stock.c.part_id == part_id, stock.c.quantity >= quantity)
                .values(quantity=stock.c.quantity - quantity,
                        used_total=stock.c.used_total + quantity, updated_at=now))
            if done.rowcount != 1:
                raise DomainError(_("Part %(number)s is no longer in your stock.",
                                    number=self.look.part_info[part_id].part_number),
                                  field="parts")
        due = timedelta(days=return_due_days())
        returns = [{"agency_id": agency_id, "work_order_part_id": used_id,
                    "work_order_id": values["id"], "part_id": part_id, "quantity": quantity,
                    "unit_price": self.look.part_info[part_id].unit_price,
                    "due_on": values["service_date"] + due, "status": "due", "version": 1,
                    "created_at": now}
                   for used_id, (values, part_id, quantity) in zip(used_ids, lines, strict=True)
                   if values["status"] == OrderStatus.COMPLETED and values["is_in_warranty"]
                   and self.look.part_info[part_id].is_returnable]
        if returns:
            insert_rows(PartReturn, returns)

    def _link_reworks(self, orders: list[dict], now: datetime) -> None:
        """services.find_rework_origin and mark_later_reworks for the batch at once: the
        agency's orders of the same serial numbers are read in one query."""
        serials = {o["serial_number"] for o in orders if o["service_type"] != ServiceType.PHONE}
        if not serials:
            return
        table = WorkOrder.__table__
        result = db.session.connection().execute(
            select(table.c.id, table.c.serial_number, table.c.service_type, table.c.status,
                   table.c.received_at, table.c.completed_at, table.c.is_rework)
            .where(table.c.agency_id == self.agency.id,
                   table.c.serial_number.in_(sorted(serials))))
        keys = list(result.keys())
        known = [SimpleNamespace(**dict(zip(keys, row, strict=True))) for row in result]
        by_serial = defaultdict(list)
        for order in known:
            if order.service_type != ServiceType.PHONE:
                by_serial[order.serial_number].append(order)
        new = {o["id"] for o in orders}
        links = _rework_links([o for o in known if o.id in new and o.service_type
                               != ServiceType.PHONE], by_serial, timedelta(days=rework_days()))
        if links:
            db.session.connection().execute(
                update(table).where(table.c.agency_id == bindparam("b_agency"),
                                    table.c.id == bindparam("b_id"))
                .values(is_rework=True, rework_of_id=bindparam("b_origin"),
                        version=table.c.version + bindparam("b_bump"), updated_at=now),
                [{"b_agency": self.agency.id, "b_id": order_id, "b_origin": origin,
                  "b_bump": 0 if order_id in new else 1}
                 for order_id, origin in sorted(links.items())])

    def audit(self, report, about):
        _orders_imported(self.agency, {**report.summary(), **about}, acting_user=self.actor)


def _rework_links(new: list, by_serial: dict, window: timedelta) -> dict[int, int]:
    """{order id: the order it repeats} for the new orders and the later ones they make
    rework (each its own rule, written once in service.services)."""
    links: dict[int, int] = {}
    completed = OrderStatus.COMPLETED
    for order in sorted(new, key=lambda o: o.received_at):
        origins = [o for o in by_serial[order.serial_number]
                   if o.id != order.id and o.status == completed
                   and order.received_at - window <= o.completed_at <= order.received_at]
        if origins:
            origin = max(origins, key=lambda o: (o.completed_at, o.id))
            order.is_rework, links[order.id] = True, origin.id
    for order in sorted((o for o in new if o.status == completed), key=lambda o: o.completed_at):
        for later in by_serial[order.serial_number]:
            if (later.id != order.id and not later.is_rework
                    and later.status != OrderStatus.CANCELLED
                    and order.completed_at <= later.received_at
                    <= order.completed_at + window):
                later.is_rework, links[later.id] = True, order.id
    return links


def import_work_orders(agency: Agency, rows, *, good_only: bool = False, acting_user,
                       **options) -> ImportReport:
    """Import orders for `agency` from (row number, {key: text}) rows; orders whose number
    exists already are skipped. Raises DomainError when the actor may not import."""
    may_import(acting_user, policy.IMPORT_ORDERS, agency)
    return run(OrderImport(agency, acting_user), rows, good_only=good_only, **options)


@transition("work_order.imported", WorkOrder, label=_l("Work orders imported"),
            permission=policy.IMPORT_ORDERS, creates=True)
def _orders_imported(agency: Agency, summary: dict, *, acting_user) -> None:
    note(record=WorkOrder(agency_id=agency.id), after=summary, agency_id=agency.id)


# --- revisits -----------------------------------------------------------------------------------

REVISIT_COLUMNS = [
    Column("agency_code", _l("Agency code"), True, "SH-C01",
           help=_l("The agency that serviced the order."), fmt=_l("An agency code"),
           choices="agency"),
    Column("order_number", _l("Order number"), True, "WO20261120-0001",
           help=_l("A completed order of that agency."), fmt=_l("The agency's order number")),
    Column("score", _l("Score (1-5)"), True, "5",
           help=_l("The customer's satisfaction: 5 is best."),
           fmt=_l("A whole number from 1 to 5"), choices="score"),
    Column("comment", _l("Comment"), False, "满意", fmt=_l("Text, up to 4,000 characters")),
    Column("revisited_at", _l("Revisited at"), False, "2026-11-21 10:00",
           help=_l("Empty: the time of the import. Not before the order was completed."),
           fmt=_l("YYYY-MM-DD HH:MM, local time")),
]


class RevisitImport(Importer):
    """Revisit scores (HQ); a row for an order already revisited corrects it."""

    columns = REVISIT_COLUMNS

    def __init__(self, acting_user):
        self.actor, self.user_id = acting_user, getattr(acting_user, "id", None)
        self.agencies = {code.upper(): agency_id for agency_id, code in
                         db.session.execute(select(Agency.id, Agency.code))}
        self.cols = _by_key(REVISIT_COLUMNS)

    def check(self, batch):
        parsed = []
        for number, row in batch:
            errors: list[str] = []
            code = (row.get("agency_code") or "").strip().upper()
            order_number = (row.get("order_number") or "").strip()
            score = _read(row, self.cols, "score", parse_int, errors, required=True)
            revisited_at = _read(row, self.cols, "revisited_at", parse_datetime, errors)
            parsed.append((number, row, code, order_number, score, revisited_at, errors))
        orders, revisits = self._load(parsed)
        out = []
        for number, row, code, order_number, score, revisited_at, errors in parsed:
            order = orders.get((self.agencies.get(code), order_number))
            if order is None:
                errors.append(_("No order %(number)s of agency %(agency)s.",
                                number=order_number, agency=code))
            if self.twice((code, order_number)):
                errors.append(_("This order appears twice in the file."))
            result = RowResult(number=number, key=f"{code} {order_number}",
                               record_id=order.id if order else None)
            payload = None
            if not errors:
                try:
                    clean = quality.check_revisit(order, score, row.get("comment") or "",
                                                  revisited_at)
                except DomainError as error:
                    errors.append(error.message)
                else:
                    before = revisits.get((order.agency_id, order.id))
                    payload = (order, clean, before)
                    if before is None:
                        result.outcome = "created"
                    elif (before.score, before.comment) == (clean["score"], clean["comment"]):
                        result.outcome = "unchanged"
                    else:
                        result.outcome = "updated"
            if errors:
                result.outcome, result.messages = "error", errors
            out.append(Checked(result, row, payload))
        return out

    def _load(self, parsed) -> tuple[dict, dict]:
        """The batch's orders by (agency, number) and their revisits: two queries, each
        reading the (agency, key) unique indexes."""
        pairs = {(self.agencies[code], number) for _n, _r, code, number, *_rest
                 in parsed if code in self.agencies and number}
        if not pairs:
            return {}, {}
        orders = {(o.agency_id, o.number): o for o in db.session.execute(select(
                WorkOrder.id, WorkOrder.agency_id, WorkOrder.number, WorkOrder.status,
                WorkOrder.completed_at).where(
                owned_pairs(WorkOrder.agency_id, WorkOrder.number, pairs)))}
        keys = {(o.agency_id, o.id) for o in orders.values()}
        revisits = {} if not keys else {(r.agency_id, r.work_order_id): r for r in
                                        db.session.execute(select(
            Revisit.id, Revisit.agency_id, Revisit.work_order_id, Revisit.score,
            Revisit.comment).where(owned_pairs(Revisit.agency_id, Revisit.work_order_id, keys)))}
        return orders, revisits

    def write(self, good):
        new = [{"agency_id": order.agency_id, "work_order_id": order.id,
                "recorded_by_id": self.user_id, **clean}
               for order, clean, before in (c.payload for c in good) if before is None]
        if new:
            insert_rows(Revisit, new)
        table = Revisit.__table__
        changed = [{"b_agency": before.agency_id, "b_id": before.id, "b_user": self.user_id,
                    "b_score": clean["score"], "b_comment": clean["comment"],
                    "b_at": clean["revisited_at"]}
                   for c in good if c.result.outcome == "updated"
                   for _order, clean, before in (c.payload,)]
        if changed:
            db.session.connection().execute(
                update(table).where(table.c.agency_id == bindparam("b_agency"),
                                    table.c.id == bindparam("b_id"))
                .values(score=bindparam("b_score"), comment=bindparam("b_comment"),
                        revisited_at=bindparam("b_at"), recorded_by_id=bindparam("b_user")),
                changed)

    def audit(self, report, about):
        _revisits_imported(None, {**report.summary(), **about}, acting_user=self.actor)


def import_revisits(rows, *, good_only: bool = False, acting_user, **options) -> ImportReport:
    """Import revisit scores (HQ); a row for an order already revisited corrects it.
    Raises DomainError when the actor may not import."""
    may_import(acting_user, policy.IMPORT_REVISITS)
    return run(RevisitImport(acting_user), rows, good_only=good_only, **options)


@transition("revisit.imported", Revisit, label=_l("Revisits imported"),
            permission=policy.IMPORT_REVISITS, creates=True)
def _revisits_imported(_nothing, summary: dict, *, acting_user) -> None:
    note(record=Revisit(), after=summary)


# --- catalogs ------------------------------------------------------------------------------------

_LINE = Column("product_line", _l("Product line code"), True, "AC",
               fmt=_l("A product line code"), choices="line")
_ACTIVE = Column("active", _l("In use"), False, "yes",
                 help=_l("No: kept for past orders, no longer offered."),
                 fmt=_l("yes or no (empty: yes)"), choices="yesno")
_CODE_COLUMNS = [
    _LINE,
    Column("code", _l("Code"), True, "AC-R01",
           help=_l("The code is the key: a code that exists is updated."),
           fmt=_l("Up to 32 letters, digits and - _ .")),
    Column("description_zh", _l("Description (Chinese)"), True, "更换压缩机",
           fmt=_l("Text, up to 200 characters")),
    Column("description_en", _l("Description (English)"), True, "Replace compressor",
           fmt=_l("Text, up to 200 characters")),
]
CATALOG_COLUMNS = {
    "repair_code": [*_CODE_COLUMNS,
                    Column("standard_hours", _l("Standard hours"), True, "2.5",
                           help=_l("The flat-rate hours the labor fee is paid for."),
                           fmt=_l("A number from 0 to 100, at most two decimals")),
                    _ACTIVE],
    "fault_code": [*_CODE_COLUMNS, _ACTIVE],
    "part": [
        Column("part_number", _l("Part number"), True, "AC-P001",
               help=_l("The part number is the key: a part that exists is updated."),
               fmt=_l("Up to 40 letters, digits and - _ . /")),
        Column("name_zh", _l("Name (Chinese)"), True, "压缩机",
               fmt=_l("Text, up to 120 characters")),
        Column("name_en", _l("Name (English)"), True, "Compressor",
               fmt=_l("Text, up to 120 characters")),
        _LINE,
        Column("unit_price", _l("Unit price (CNY)"), True, "860.00",
               fmt=_l("Yuan, at least 0, at most two decimals")),
        Column("returnable", _l("Returnable"), True, "yes",
               help=_l("Yes: a part used in warranty goes back to HQ."),
               fmt=_l("yes or no"), choices="yesno"),
        _ACTIVE,
    ],
}
IMPORT_KINDS = ("repair_code", "fault_code", "part")
# The columns compared to tell an updated entry from an unchanged one.
_FIELDS = {"repair_code": ("description_zh", "description_en", "is_active", "standard_hours"),
           "fault_code": ("description_zh", "description_en", "is_active"),
           "part": ("name_zh", "name_en", "product_line_id", "unit_price", "is_returnable",
                    "is_active")}


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


class CatalogImport(Importer):
    """Catalog entries created or updated by their code (part number); same file, same
    result."""

    def __init__(self, kind: str, acting_user):
        self.kind, self.actor = kind, acting_user
        self.columns = CATALOG_COLUMNS[kind]
        self.model, self.rules, self.key = catalog.KINDS[kind]
        self.lines = {code.upper(): line_id for line_id, code in db.session.execute(
            select(ProductLine.id, ProductLine.code))}

    def _key(self, clean: dict) -> tuple:
        return tuple(clean[k] for k in self.key)

    def check(self, batch):
        parsed = []
        for number, row in batch:
            data, errors = _catalog_row(self.kind, row, self.lines)
            clean = None
            if not errors:
                try:
                    clean = self.rules(data)
                except DomainError as error:
                    errors.append(error.message)
            if clean is not None and self.twice(self._key(clean)):
                errors.append(_("This code appears twice in the file."))
            parsed.append((number, row, clean, errors))
        existing = self._existing([clean for *_x, clean, errors in parsed if not errors])
        out = []
        for number, row, clean, errors in parsed:
            key = "" if clean is None else " ".join(
                str(clean[k]) for k in self.key if k != "product_line_id")
            result = RowResult(number=number, key=key or (row.get("code") or
                                                          row.get("part_number") or ""))
            before = None if errors else existing.get(self._key(clean))
            if errors:
                result.outcome, result.messages = "error", errors
            elif before is None:
                result.outcome = "created"
            elif all(getattr(before, f) == clean[f] for f in _FIELDS[self.kind]):
                result.outcome = "unchanged"
            else:
                result.outcome = "updated"
            out.append(Checked(result, row, (clean, before)))
        return out

    def _existing(self, cleans: list[dict]) -> dict:
        if not cleans:
            return {}
        columns = [getattr(self.model, k) for k in self.key]
        keys = sorted({self._key(c) for c in cleans})
        where = columns[0].in_([k[0] for k in keys]) if len(columns) == 1 else \
            tuple_(*columns).in_(keys)
        fields = ["id", *self.key, *_FIELDS[self.kind]]
        return {tuple(getattr(e, k) for k in self.key): e for e in db.session.execute(
            select(*(getattr(self.model, f) for f in dict.fromkeys(fields))).where(where))}

    def write(self, good):
        new = [clean for clean, before in (c.payload for c in good) if before is None]
        if new:
            insert_rows(self.model, new)
        table = self.model.__table__
        fields = _FIELDS[self.kind]
        changed = [{"b_id": before.id, **{f"b_{f}": clean[f] for f in fields}}
                   for clean, before in (c.payload for c in good) if before is not None]
        if changed:
            db.session.connection().execute(
                update(table).where(table.c.id == bindparam("b_id"))
                .values({f: bindparam(f"b_{f}") for f in fields}), changed)

    def audit(self, report, about):
        CATALOG_IMPORTED[self.kind](self.kind, {**report.summary(), **about},
                                    acting_user=self.actor)


def import_catalog(kind: str, rows, *, good_only: bool = False, acting_user,
                   **options) -> ImportReport:
    """Create or update catalog entries by their code (part number); same file, same result.
    Raises DomainError when the actor may not import."""
    may_import(acting_user, policy.IMPORT_CATALOG[kind])
    return run(CatalogImport(kind, acting_user), rows, good_only=good_only, **options)


def _catalog_imported(kind: str):
    model = catalog.KINDS[kind][0]

    @transition(f"{kind}.imported", model, label=_l("Catalog imported"),
                permission=policy.IMPORT_CATALOG[kind], creates=True)
    def imported(kind: str, summary: dict, *, acting_user) -> None:
        note(record=model(), after=summary)

    return imported


CATALOG_IMPORTED = {kind: _catalog_imported(kind) for kind in IMPORT_KINDS}
