"""The catalogs HQ maintains: repair codes (with flat-rate hours), fault codes and parts.

Transitions ``<kind>.created`` and ``<kind>.updated`` for each kind (``repair_code``,
``fault_code``, ``part``), declared once per kind by :func:`_declare`.
"""
import re
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.audit.services import changes, snapshot
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import describe, note, transition
from service import policy
from service.common import db_id
from service.models import FaultCode, Part, RepairCode
from tenants.models import ProductLine

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,31}$")
PART_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-./]{0,39}$")
CENT = Decimal("0.01")
MAX_HOURS = Decimal("100")
MAX_PRICE = Decimal("1000000")


def _text(data: dict, key: str, limit: int, message: str) -> str:
    value = clean(data.get(key))
    if not value or len(value) > limit:
        raise DomainError(message, field=key)
    return value


def _product_line(data: dict) -> int:
    line_id = db_id(data.get("product_line_id"))
    found = line_id is not None and db.session.scalar(
        select(func.count(ProductLine.id)).where(ProductLine.id == line_id))
    if not found:
        raise DomainError(_("Choose a product line."), field="product_line_id")
    return line_id


def _decimal(data: dict, key: str, high: Decimal, message: str) -> Decimal:
    value = data.get(key)
    if (not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= high
            or value != value.quantize(CENT)):
        raise DomainError(message, field=key)
    return value.quantize(CENT)


def check_code(data: dict) -> dict:
    """The common shape of repair and fault codes; raises DomainError."""
    code = clean(data.get("code")).upper()
    if not CODE.match(code):
        raise DomainError(_("Use up to 32 letters, digits and - _ . for the code."),
                          field="code")
    return {
        "product_line_id": _product_line(data),
        "code": code,
        "description_zh": _text(data, "description_zh", 200,
                                _("Enter the Chinese description (up to 200 characters).")),
        "description_en": _text(data, "description_en", 200,
                                _("Enter the English description (up to 200 characters).")),
        "is_active": bool(data.get("is_active", True)),
    }


def check_repair_code(data: dict) -> dict:
    clean = check_code(data)
    clean["standard_hours"] = _decimal(
        data, "standard_hours", MAX_HOURS,
        _("Enter the standard hours between 0 and 100, with at most two decimals."))
    return clean


def check_part(data: dict) -> dict:
    number = clean(data.get("part_number")).upper()
    if not PART_NUMBER.match(number):
        raise DomainError(_("Use up to 40 letters, digits and - _ . / for the part number."),
                          field="part_number")
    return {
        "part_number": number,
        "name_zh": _text(data, "name_zh", 120, _("Enter the Chinese name (up to 120 "
                                                 "characters).")),
        "name_en": _text(data, "name_en", 120, _("Enter the English name (up to 120 "
                                                 "characters).")),
        "product_line_id": _product_line(data),
        "unit_price": _decimal(data, "unit_price", MAX_PRICE,
                               _("Enter the unit price in yuan, at least 0, with at most two "
                                 "decimals.")),
        "is_returnable": bool(data.get("is_returnable")),
        "is_active": bool(data.get("is_active", True)),
    }


KINDS = {
    "repair_code": (RepairCode, check_repair_code, ("product_line_id", "code")),
    "fault_code": (FaultCode, check_code, ("product_line_id", "code")),
    "part": (Part, check_part, ("part_number",)),
}


def find_existing(kind: str, clean: dict):
    model, _check, key = KINDS[kind]
    stmt = select(model)
    for name in key:
        stmt = stmt.where(getattr(model, name) == clean[name])
    return db.session.scalars(stmt).one_or_none()


def write_entry(kind: str, obj, clean: dict) -> tuple:
    """Set the fields; returns the entry and (action, before, after); ``None`` in place of
    the change when nothing differs (imports skip those rows)."""
    model = KINDS[kind][0]
    if obj is None:
        obj = model(**clean)
        db.session.add(obj)
        db.session.flush()
        return obj, (f"{kind}.created", {}, snapshot(obj))
    before = snapshot(obj)
    for name, value in clean.items():
        setattr(obj, name, value)
    db.session.flush()
    old, new = changes(before, snapshot(obj))
    return obj, ((f"{kind}.updated", old, new) if new else None)


def save_catalog_entry(kind: str, obj, data: dict, *, acting_user):
    """Create (`obj` None) or change a repair code, fault code or part.

    Raises DomainError for bad input or a key another entry already has.
    """
    created, updated = WRITES[kind]
    if obj is None:
        return created(kind, data, acting_user=acting_user)
    return updated(obj, data, acting_user=acting_user)


def _checked(kind: str, obj, data: dict) -> dict:
    values = KINDS[kind][1](data)
    other = find_existing(kind, values)
    if other is not None and (obj is None or other.id != obj.id):
        raise DomainError(_("Another entry already uses this code."),
                          field="part_number" if kind == "part" else "code")
    return values


def _declare(kind: str, noun) -> tuple:
    """The two transitions of one catalog: an entry created, an entry changed."""
    model = KINDS[kind][0]
    describe(model, noun)

    @transition(f"{kind}.created", model, label=_l("Catalog entry created"),
                permission=policy.EDIT_CATALOG[kind], creates=True)
    def created(kind: str, data: dict, *, acting_user):
        obj, (_action, _before, after) = write_entry(kind, None, _checked(kind, None, data))
        note(after=after)
        return obj

    @transition(f"{kind}.updated", model, label=_l("Catalog entry changed"),
                permission=policy.EDIT_CATALOG[kind])
    def updated(obj, data: dict, *, acting_user):
        obj, change = write_entry(kind, obj, _checked(kind, obj, data))
        if change is not None:
            note(before=change[1] or None, after=change[2] or None)
        return obj

    return created, updated


WRITES = {"repair_code": _declare("repair_code", _l("repair code")),
          "fault_code": _declare("fault_code", _l("fault code")),
          "part": _declare("part", _l("part"))}
