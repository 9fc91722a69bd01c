"""Building a claim: which orders, deductions and bonuses a settlement holds, what each pays
and which automatic checks it raises. Set-based reads, a fixed number of queries per call.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import money
from portal.periods import Period
from portal.tenancy import unscoped
from service.api import (
    Complaint,
    ComplaintStatus,
    OrderStatus,
    PartReturn,
    ReturnStatus,
    Verdict,
    WorkOrder,
    WorkOrderPart,
    WorkOrderRepair,
)
from settlement import kinds, rules
from settlement.config import RateBook, Settings
from settlement.models import (
    KIND_ORDER,
    Attachment,
    Claim,
    Decision,
    LineDecisionRecord,
    LineKind,
    Settlement,
    SettlementLine,
    Status,
)
from tenants.models import Agency


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """[first day, first day of the next month)."""
    start = date(year, month, 1)
    return start, date(year + month // 12, month % 12 + 1, 1)


def _claimed(subject, column: str):
    """A live claim holds the row of `subject` (a model) through the claim's `column`."""
    held = getattr(Claim, column)
    return exists(select(Claim.id).where(Claim.agency_id == subject.agency_id,
                                         held == subject.id, Claim.live(held)))


def is_claimed(order: WorkOrder) -> bool:
    """A live settlement holds the order."""
    return bool(db.session.scalar(select(func.count(Claim.id)).where(
        Claim.agency_id == order.agency_id, Claim.work_order_id == order.id,
        Claim.live(Claim.work_order_id))))


def release_claims(settlement: Settlement) -> None:
    """Free everything the settlement holds (it is withdrawn)."""
    now = clock.now()
    for claim in db.session.scalars(select(Claim).where(
            Claim.agency_id == settlement.agency_id, Claim.settlement_id == settlement.id,
            Claim.live())):
        claim.is_live, claim.released_at = False, now


def drop_line(line: SettlementLine) -> None:
    """Delete a line with its decisions and free what it claimed."""
    claim = db.session.scalars(select(Claim).where(Claim.agency_id == line.agency_id,
                                                   Claim.id == line.claim_id)).one()
    for decision in db.session.scalars(select(LineDecisionRecord).where(
            LineDecisionRecord.agency_id == line.agency_id,
            LineDecisionRecord.line_id == line.id)):
        db.session.delete(decision)
    db.session.delete(line)
    db.session.flush()
    claim.is_live, claim.released_at = False, clock.now()


def unclaimed_orders(agency_id: int, year: int, month: int) -> list[WorkOrder]:
    """The month's completed, in-warranty orders that no live settlement holds."""
    start, end = month_bounds(year, month)
    claimed = _claimed(WorkOrder, "work_order_id")
    return list(db.session.scalars(
        select(WorkOrder).where(WorkOrder.agency_id == agency_id,
                                WorkOrder.status == OrderStatus.COMPLETED,
                                WorkOrder.is_in_warranty.is_(True),
                                WorkOrder.service_date >= start, WorkOrder.service_date < end,
                                ~claimed)
        .order_by(WorkOrder.service_date, WorkOrder.id)))


def overdue_returns(agency_id: int, today: date) -> list[PartReturn]:
    """Defective parts not shipped back by their due date, not deducted yet."""
    claimed = _claimed(PartReturn, "part_return_id")
    found = db.session.scalars(
        select(PartReturn).where(PartReturn.agency_id == agency_id, PartReturn.due_on < today,
                                 ~claimed).order_by(PartReturn.due_on, PartReturn.id))
    return [r for r in found if r.is_overdue(today)
            and (r.status == ReturnStatus.DUE or r.shipped_on is not None)]


def substantiated_complaints(agency_id: int) -> list[Complaint]:
    claimed = _claimed(Complaint, "complaint_id")
    return list(db.session.scalars(
        select(Complaint).where(Complaint.agency_id == agency_id,
                                Complaint.status == ComplaintStatus.CLOSED,
                                Complaint.verdict == Verdict.SUBSTANTIATED, ~claimed)
        .order_by(Complaint.closed_at, Complaint.id)))


# --- order facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderData:
    order: WorkOrder
    facts: rules.OrderFacts
    repair_code_ids: tuple[int, ...]


def order_data(orders: list[WorkOrder]) -> dict[int, OrderData]:
    """Hours, parts value and repair codes of `orders`, in two queries."""
    if not orders:
        return {}
    agency_id = orders[0].agency_id
    ids = [o.id for o in orders]
    hours: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    codes: dict[int, list[int]] = defaultdict(list)
    for order_id, code_id, standard in db.session.execute(
            select(WorkOrderRepair.work_order_id, WorkOrderRepair.repair_code_id,
                   WorkOrderRepair.standard_hours)
            .where(WorkOrderRepair.agency_id == agency_id,
                   WorkOrderRepair.work_order_id.in_(ids))):
        hours[order_id] += standard
        codes[order_id].append(code_id)
    parts: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for order_id, price, quantity in db.session.execute(
            select(WorkOrderPart.work_order_id, WorkOrderPart.unit_price,
                   WorkOrderPart.quantity)
            .where(WorkOrderPart.agency_id == agency_id,
                   WorkOrderPart.work_order_id.in_(ids))):
        parts[order_id] += price * quantity
    out = {}
    for o in orders:
        value = parts[o.id] if o.is_in_warranty else Decimal("0.00")
        out[o.id] = OrderData(o, rules.OrderFacts(
            service_type=o.service_type, labor_hours=hours[o.id], distance_km=o.distance_km,
            parts_value=value, is_rework=o.is_rework,
            is_engineer_certified=o.is_engineer_certified), tuple(sorted(codes[o.id])))
    return out


COMPUTED = ("rate_card_id", "callout_fee", "labor_hours", "hourly_rate", "labor_share_pct",
            "labor_fee", "distance_km", "free_km", "max_km", "paid_km", "per_km",
            "distance_fee", "parts_value", "parts_handling_pct", "parts_handling_fee")


def computation(data: OrderData, book: RateBook, tier: int, settings: Settings) -> dict:
    """An order line's amount and each step of it, from the rates in force on its service
    date ({line attribute: value}, exact Decimals)."""
    order = data.order
    terms = book.terms(order.service_date, order.product_line_id, order.service_type, tier)
    result = rules.compute_order(data.facts, terms, settings.uncertified_share_pct)
    return {"service_type": order.service_type, "tier": tier,
            **{name: getattr(result, name) for name in COMPUTED},
            "rules_applied": ",".join(result.rules), "claimed_amount": result.total}


def _claimed_meanwhile() -> DomainError:
    return DomainError(_("Some of these items were just claimed by another settlement. "
                         "Nothing was saved; reload the page and try again."))


SUBJECTS = kinds.SUBJECTS


def insert_lines(settlement: Settlement, items: list[tuple[str, object, dict]]) -> int:
    """Claim each subject for `settlement` and add its line: two bulk INSERTs and one SELECT
    whatever the number of items. `items` are (subject column, subject, line fields).

    A bulk INSERT skips the mapper guard that stamps the owner, so the owner is set here: the
    settlement's, which the guard checked when the settlement was written; the composite
    foreign keys make the database refuse a subject of another agency. Raises DomainError
    when a subject was claimed meanwhile by another settlement.
    """
    if not items:
        return 0
    owner = {"agency_id": settlement.agency_id, "settlement_id": settlement.id}
    try:
        db.session.execute(insert(Claim), [
            {**owner, **dict.fromkeys(SUBJECTS), column: subject, "is_live": True}
            for column, subject, _fields in items])
    except IntegrityError:
        raise _claimed_meanwhile() from None
    claim_ids = _live_claim_ids(settlement)
    db.session.execute(insert(SettlementLine), [
        {**owner, "claim_id": claim_ids[column, subject], **fields}
        for column, subject, fields in items])
    return len(items)


def _live_claim_ids(settlement: Settlement) -> dict[tuple[str, object], int]:
    """{(subject column, subject): claim id} of the settlement's live claims."""
    rows = db.session.execute(
        select(Claim.id, *(getattr(Claim, name) for name in SUBJECTS))
        .where(Claim.agency_id == settlement.agency_id, Claim.settlement_id == settlement.id,
               Claim.live()))
    return {next((name, value) for name, value in zip(SUBJECTS, subjects, strict=True)
                 if value is not None): claim_id for claim_id, *subjects in rows}


def add_order_lines(settlement: Settlement, orders: list[WorkOrder], tier: int,
                    settings: Settings, book: RateBook | None = None) -> int:
    """Claim `orders` for `settlement` with one line each (bulk); returns how many."""
    book = book or RateBook()
    data = order_data(orders)
    kind = {"kind": LineKind.ORDER, "kind_order": KIND_ORDER[LineKind.ORDER]}
    return insert_lines(settlement, [
        ("work_order_id", o.id, {**kind, "work_order_id": o.id,
                                 **computation(data[o.id], book, tier, settings)})
        for o in orders])


def order_line(settlement: Settlement, work_order_id: int) -> SettlementLine:
    return db.session.scalars(select(SettlementLine).where(
        SettlementLine.agency_id == settlement.agency_id,
        SettlementLine.settlement_id == settlement.id,
        SettlementLine.work_order_id == work_order_id)).one()


def recompute_order_lines(settlement: Settlement, lines: list[SettlementLine], tier: int,
                          settings: Settings) -> None:
    order_lines = [ln for ln in lines if ln.kind == LineKind.ORDER]
    orders = {o.id: o for o in db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == settlement.agency_id,
        WorkOrder.id.in_([ln.work_order_id for ln in order_lines] or [0])))}
    data = order_data(list(orders.values()))
    book = RateBook()
    store_line_values(settlement, [(line, computation(data[line.work_order_id], book, tier,
                                                      settings)) for line in order_lines])


def store_line_values(settlement: Settlement,
                      changes: list[tuple[SettlementLine, dict]]) -> None:
    """Give loaded lines new values: one executemany UPDATE of the lines that change (the
    unit of work would send one UPDATE per line), the objects kept in step without a flush.

    Every change names the same attributes. A Core statement skips the session guard, so it
    carries the owner in its WHERE clause, as every Core statement on an agency table must.
    """
    changed = [(line, values) for line, values in changes
               if any(getattr(line, name) != value for name, value in values.items())]
    if not changed:
        return
    table = SettlementLine.__table__
    names = list(changed[0][1])
    stmt = (update(table)
            .where(table.c.agency_id == settlement.agency_id,
                   table.c.settlement_id == settlement.id, table.c.id == bindparam("line_id"))
            .values({name: bindparam(f"new_{name}", type_=table.c[name].type)
                     for name in names}))
    db.session.connection().execute(stmt, [
        {"line_id": line.id, **{f"new_{name}": values[name] for name in names}}
        for line, values in changed])
    for line, values in changed:
        for name, value in values.items():
            set_committed_value(line, name, value)


def set_decision(settlement: Settlement, line: SettlementLine, decision: str, amount,
                 reason_code, reason_text: str, actor, *, is_automatic=False) -> None:
    """Decide one line (a reviewer, or the checks when `is_automatic`), keeping the record."""
    db.session.add(LineDecisionRecord(
        agency_id=line.agency_id, settlement_id=settlement.id, line_id=line.id,
        decision=decision, amount_before=line.approved_amount, amount_after=amount,
        reason_code=reason_code, reason_text=reason_text or None, is_automatic=is_automatic,
        actor_id=actor.id if actor else None))
    line.decision, line.approved_amount = decision, amount
    line.reason_code, line.reason_text = reason_code, reason_text or None
    line.decided_at, line.decided_by_id = clock.now(), actor.id if actor else None


# --- deductions and bonuses --------------------------------------------------------------------


def _approved(kind: LineKind, amount: Decimal, **fields) -> dict:
    """Deductions and bonuses follow from HQ's rules: decided as they are made."""
    return {"kind": kind, "kind_order": KIND_ORDER[kind], "claimed_amount": amount,
            "decision": Decision.APPROVED, "approved_amount": amount, **fields}


def add_deduction_lines(settlement: Settlement, settings: Settings, today: date) -> int:
    """Overdue returns, substantiated complaints and quarterly grades not yet in a settlement."""
    agency_id = settlement.agency_id
    complaint_amount = rules.complaint_deduction(settings.complaint_deduction)
    items = [("part_return_id", r.id, _approved(
        LineKind.PART_RETURN, rules.return_deduction(r.unit_price, r.quantity),
        part_return_id=r.id, basis_amount=money(r.unit_price * r.quantity)))
        for r in overdue_returns(agency_id, today)]
    items += [("complaint_id", c.id, _approved(
        LineKind.COMPLAINT, complaint_amount, complaint_id=c.id,
        basis_amount=money(settings.complaint_deduction)))
        for c in substantiated_complaints(agency_id)]
    items += [("grade_period", period, _approved(
        LineKind.GRADE, rules.grade_adjustment(labor, pct), grade=grade, grade_period=period,
        basis_amount=labor, rate_pct=pct))
        for period, grade, pct, labor in _grade_lines_due(settlement, settings)]
    return insert_lines(settlement, items)


def _grade_lines_due(settlement: Settlement, settings: Settings) -> list[tuple]:
    """(quarter label, grade, pct, labor fees) of past quarters with a final grade not yet
    applied."""
    due = []
    for period in rules.grade_quarters(settlement.year, settlement.month):
        grade = rules.grade_for(settlement.agency_id, period.year, period.quarter)
        if grade is None:
            continue
        taken = db.session.scalar(select(func.count(Claim.id)).where(
            Claim.agency_id == settlement.agency_id, Claim.grade_period == period.label,
            Claim.live(Claim.grade_period)))
        if taken:
            continue
        due.append((period.label, grade, settings.grade_pct(grade),
                    quarter_labor(settlement.agency_id, period)))
    return due


def quarter_labor(agency_id: int, period: Period) -> Decimal:
    """Labor fees of the quarter's live settlements (lines not denied), in SQL."""
    total = db.session.scalar(
        select(func.sum(SettlementLine.labor_fee))
        .join(Settlement, and_(Settlement.agency_id == SettlementLine.agency_id,
                               Settlement.id == SettlementLine.settlement_id))
        .where(SettlementLine.agency_id == agency_id, Settlement.year == period.year,
               Settlement.month.in_(period.months), Settlement.status != Status.WITHDRAWN,
               SettlementLine.kind == LineKind.ORDER,
               SettlementLine.decision != Decision.DENIED))
    return total if total is not None else Decimal("0.00")


# --- checks -----------------------------------------------------------------------------------


def duplicates_statement(order_ids: list[int]):
    """(own order id, its service day, the other's service day) for every other live claim
    of the same serial number and repair code, anywhere in the network."""
    own, other = aliased(WorkOrder), aliased(WorkOrder)
    own_repair, other_repair = aliased(WorkOrderRepair), aliased(WorkOrderRepair)
    return (
        select(own.id, own.service_date, other.service_date)
        .join(own_repair, and_(own_repair.agency_id == own.agency_id,
                               own_repair.work_order_id == own.id))
        .join(other, and_(other.serial_number == own.serial_number, other.id != own.id))
        .join(other_repair, and_(other_repair.agency_id == other.agency_id,
                                 other_repair.work_order_id == other.id,
                                 other_repair.repair_code_id == own_repair.repair_code_id))
        .join(Claim, and_(Claim.agency_id == other.agency_id, Claim.work_order_id == other.id,
                          Claim.live(Claim.work_order_id)))
        .where(own.id.in_(order_ids))
    )


def duplicate_order_ids(orders: dict[int, OrderData], window_days: int) -> set[int]:
    """Orders of this claim whose serial number and repair code another live claim holds
    within the window, anywhere in the network. Only this claim's own order ids come back."""
    if not orders:
        return set()
    window = timedelta(days=window_days)
    with unscoped("network-wide duplicate check; only this claim's own order ids are kept"):
        rows = db.session.execute(duplicates_statement(list(orders))).all()
    return {own_id for own_id, own_day, other_day in rows if abs(own_day - other_day) <= window}


def evidence_counts(settlement: Settlement) -> dict[int, int]:
    return dict(db.session.execute(
        select(Attachment.line_id, func.count(Attachment.id))
        .where(Attachment.agency_id == settlement.agency_id,
               Attachment.settlement_id == settlement.id, Attachment.line_id.is_not(None))
        .group_by(Attachment.line_id)).all())


def run_checks(settlement: Settlement, lines: list[SettlementLine], settings: Settings,
               dispositions: dict[str, str], today: date) -> None:
    """Give every order line its exception codes and overall disposition."""
    order_lines = [ln for ln in lines if ln.kind == LineKind.ORDER]
    orders = list(db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == settlement.agency_id,
        WorkOrder.id.in_([ln.work_order_id for ln in order_lines] or [0]))))
    data = order_data(orders)
    duplicates = duplicate_order_ids(data, settings.duplicate_window_days)
    evidence = evidence_counts(settlement)
    outcomes = []
    for line in lines:
        if line.kind != LineKind.ORDER:
            outcomes.append((line, {"exception_codes": "", "disposition": "pay"}))
            continue
        d = data[line.work_order_id]
        codes = rules.order_exceptions(rules.CheckFacts(
            has_rate_card=line.rate_card_id is not None,
            is_in_warranty=d.order.is_in_warranty,
            # Judged on the day the line first went to HQ (a draft: today).
            days_since_service=((line.first_submitted_on or today)
                                - d.order.service_date).days,
            claim_window_days=settings.claim_window_days,
            is_duplicate=line.work_order_id in duplicates,
            is_engineer_certified=d.order.is_engineer_certified,
            distance_km=line.distance_km, max_km=line.max_km,
            labor_hours=line.labor_hours, max_order_hours=settings.max_order_hours,
            claimed_amount=line.claimed_amount,
            evidence_threshold=settings.evidence_threshold,
            evidence_count=evidence.get(line.id, 0)))
        outcomes.append((line, {"exception_codes": ",".join(codes),
                                "disposition": rules.disposition_of(codes, dispositions)}))
    store_line_values(settlement, outcomes)


def load_lines(settlement: Settlement) -> list[SettlementLine]:
    return list(db.session.scalars(
        select(SettlementLine).where(SettlementLine.agency_id == settlement.agency_id,
                                     SettlementLine.settlement_id == settlement.id)
        .order_by(SettlementLine.kind_order, SettlementLine.id)))


def agency_of(settlement: Settlement) -> Agency:
    return db.session.scalars(select(Agency).where(Agency.id == settlement.agency_id)).one()


def retotal(settlement: Settlement) -> None:
    """Store the totals as SQL sums of the lines (the same sums anyone can re-check)."""
    db.session.flush()
    claimed, approved, count = totals_in_sql(settlement)
    settlement.claimed_total, settlement.approved_total = claimed, approved
    settlement.line_count = count


def totals_in_sql(settlement: Settlement) -> tuple[Decimal, Decimal, int]:
    claimed, approved, count = db.session.execute(
        select(func.sum(SettlementLine.claimed_amount), func.sum(SettlementLine.approved_amount),
               func.count(SettlementLine.id))
        .where(SettlementLine.agency_id == settlement.agency_id,
               SettlementLine.settlement_id == settlement.id)).one()
    zero = Decimal("0.00")
    return (claimed if claimed is not None else zero,
            approved if approved is not None else zero, count)
