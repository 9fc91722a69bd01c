"""An agency's parts stock: what it received minus what it used; never below zero.

The database holds the rule too (``quantity >= 0``, ``quantity = received - used``); the
conditional UPDATE below keeps two racing requests from taking the same last part.
"""
from flask_babel import gettext as _
from sqlalchemy import select, update

from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from service.models import Part, PartStock


def quantities(agency_id: int, part_ids) -> dict[int, int]:
    """{part_id: quantity in stock} for the agency (missing parts: 0)."""
    ids = list(part_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(PartStock.part_id, PartStock.quantity).where(
        PartStock.agency_id == agency_id, PartStock.part_id.in_(ids))).all()
    found = dict(rows)
    return {pid: found.get(pid, 0) for pid in ids}


def check_available(agency_id: int, wanted: dict[int, int], parts: dict[int, Part]) -> None:
    """Raise DomainError unless the stock covers every positive quantity in `wanted`."""
    needed = {pid: n for pid, n in wanted.items() if n > 0}
    have = quantities(agency_id, needed)
    for pid, n in needed.items():
        if have[pid] < n:
            raise DomainError(_("Only %(have)s of part %(number)s are in your stock; "
                                "%(wanted)s needed. Parts used on orders must come from parts "
                                "your agency received.", have=have[pid], wanted=n,
                                number=parts[pid].part_number), field="parts")


def take(agency_id: int, part_id: int, quantity: int, *, part: Part | None = None) -> None:
    """Take `quantity` of a part from stock for an order (a negative quantity gives it back)."""
    result = db.session.execute(
        update(PartStock)
        .where(PartStock.agency_id == agency_id, PartStock.part_id == part_id,
               PartStock.quantity >= quantity)
        .values(quantity=PartStock.quantity - quantity,
                used_total=PartStock.used_total + quantity, updated_at=utcnow())
        .execution_options(synchronize_session="fetch"))
    if result.rowcount != 1:
        number = part.part_number if part else str(part_id)
        raise DomainError(_("Part %(number)s is no longer in your stock.", number=number),
                          field="parts")


def receive(agency_id: int, part_id: int, quantity: int) -> None:
    """Add parts the agency received from HQ."""
    if quantity <= 0:
        return
    row = db.session.scalars(select(PartStock).where(
        PartStock.agency_id == agency_id, PartStock.part_id == part_id)).one_or_none()
    if row is None:
        row = PartStock(agency_id=agency_id, part_id=part_id, quantity=0, received_total=0,
                        used_total=0)
        db.session.add(row)
    row.quantity += quantity
    row.received_total += quantity
    row.updated_at = utcnow()
    db.session.flush()
