"""Reads of the settlement area: the list with its totals, a settlement's page, its statement.

Everything goes through the tenant guard; each read is a fixed number of queries whatever the
number of lines or settlements.
"""
import re
from collections import defaultdict

from flask import request
from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from portal.extensions import db
from portal.listing import int_arg, paginate
from service.api import PartReturn, WorkOrder, WorkOrderRepair, agency_filter
from settlement import rules
from settlement.models import (
    Appeal,
    Attachment,
    Decision,
    LineDecisionRecord,
    Settlement,
    SettlementEvent,
    SettlementLine,
    Status,
)
from tenants.models import Agency, Region

PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
SORTS = {"period": (Settlement.year, Settlement.month), "number": (Settlement.number,),
         "status": (Settlement.status,), "claimed": (Settlement.claimed_total,),
         "approved": (Settlement.approved_total,), "submitted": (Settlement.submitted_at,)}


def parse_period(raw: str | None) -> tuple[int, int] | None:
    match = PERIOD.match((raw or "").strip())
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return (year, month) if 2000 <= year <= 2200 and 1 <= month <= 12 else None


def _filters() -> list:
    args, where = request.args, []
    if (status := args.get("status")) in {s.value for s in Status}:
        where.append(Settlement.status == status)
    if region := int_arg("region", None):
        where.append(Agency.region_id == region)
    by_agency = agency_filter()
    if by_agency.is_unknown:
        where.append(false())
    elif by_agency.agency_id is not None:
        where.append(Settlement.agency_id == by_agency.agency_id)
    if period := parse_period(args.get("period")):
        where += [Settlement.year == period[0], Settlement.month == period[1]]
    if year := int_arg("year", None, low=2000, high=2200):
        where.append(Settlement.year == year)
    if q := args.get("q", "").strip()[:40]:
        like = q.replace("\\", "").replace("%", "").replace("_", "") + "%"
        where.append(or_(Settlement.number.like(like), Agency.code.like(like)))
    return where


def list_statement():
    return (select(Settlement).join(Agency, Agency.id == Settlement.agency_id)
            .options(joinedload(Settlement.agency).joinedload(Agency.region))
            .where(*_filters()))


def sort(stmt):
    raw = request.args.get("sort", "-period")
    descending, key = raw.startswith("-"), raw.lstrip("-")
    if key not in SORTS:
        descending, key = True, "period"
    columns = [c.desc() if descending else c.asc() for c in SORTS[key]]
    return stmt.order_by(*columns, Settlement.id.desc()), ("-" if descending else "") + key


def _grouped(*columns):
    return db.session.execute(
        select(*columns, func.count(Settlement.id), func.sum(Settlement.claimed_total),
               func.sum(Settlement.approved_total))
        .join(Agency, Agency.id == Settlement.agency_id)
        .where(*_filters()).group_by(*columns).order_by(*columns)).all()


def totals() -> dict:
    """Counts and sums per state, per region and per month (three GROUP BY queries)."""
    regions = {r.id: r for r in db.session.scalars(select(Region))}
    return {
        "by_status": {row[0]: row[1:] for row in _grouped(Settlement.status)},
        "by_region": [(regions.get(row[0]), *row[1:]) for row in _grouped(Agency.region_id)],
        "by_month": [(f"{row[0]}-{row[1]:02d}", *row[2:])
                     for row in _grouped(Settlement.year, Settlement.month)][-12:],
    }


# --- one settlement ---------------------------------------------------------------------------


def _owned(model, settlement: Settlement):
    return and_(model.agency_id == settlement.agency_id, model.settlement_id == settlement.id)


def _line_loads() -> tuple:
    return (joinedload(SettlementLine.work_order).joinedload(WorkOrder.product_line),
            joinedload(SettlementLine.work_order).joinedload(WorkOrder.engineer),
            joinedload(SettlementLine.part_return).joinedload(PartReturn.part),
            joinedload(SettlementLine.complaint), joinedload(SettlementLine.rate_card))


STATEMENT_ORDER = (SettlementLine.kind_order, SettlementLine.id)


def detail(settlement: Settlement) -> dict:
    """Everything a settlement's statement and export show (every line), in a fixed set of
    queries."""
    lines = list(db.session.scalars(
        select(SettlementLine).where(_owned(SettlementLine, settlement))
        .options(*_line_loads()).order_by(*STATEMENT_ORDER)))
    return {"lines": lines, **_about_lines(settlement, lines), "counts": _counts(lines)}


def reading_order(first_exceptions: bool) -> tuple:
    """Statement order; a reviewer sees the undecided exceptions first, the worst first."""
    if not first_exceptions:
        return STATEMENT_ORDER
    return (case((SettlementLine.decision == Decision.PENDING, 0), else_=1),
            case(rules.DISPOSITION_RANK, value=SettlementLine.disposition, else_=0).desc(),
            *STATEMENT_ORDER)


def lines_page(settlement: Settlement, *, first_exceptions: bool) -> dict:
    """One page of a settlement's lines in reading order, with their numbers on the statement
    and what the page shows about them; a fixed set of queries whatever the number of lines."""
    page = paginate(select(SettlementLine).where(_owned(SettlementLine, settlement))
                    .options(*_line_loads()).order_by(*reading_order(first_exceptions)))
    lines = list(page.items)
    numbered = _numbered(settlement)
    numbers = dict(db.session.execute(select(numbered.c.line_id, numbered.c.n).where(
        numbered.c.line_id.in_([ln.id for ln in lines] or [0]))).all())
    return {"page": page, "lines": lines, "numbers": numbers,
            **_about_lines(settlement, lines), "counts": _counts_in_sql(settlement)}


def line_position(settlement: Settlement, line_id: int, *, first_exceptions: bool) -> int:
    """Where a line comes in reading order (1, 2, …): the page that shows it follows."""
    ranked = select(SettlementLine.id.label("line_id"), func.row_number().over(
        order_by=reading_order(first_exceptions)).label("position")).where(
        _owned(SettlementLine, settlement)).subquery()
    return db.session.scalar(select(ranked.c.position).where(ranked.c.line_id == line_id)) or 1


def line_ids(settlement: Settlement) -> list[int]:
    return list(db.session.scalars(select(SettlementLine.id).where(
        _owned(SettlementLine, settlement))))


def _numbered(settlement: Settlement):
    """The settlement's lines with their number on the statement (1, 2, …)."""
    return select(SettlementLine.id.label("line_id"), func.row_number().over(
        order_by=STATEMENT_ORDER).label("n")).where(
        _owned(SettlementLine, settlement)).subquery()


def _about_lines(settlement: Settlement, lines) -> dict:
    """Repairs, evidence, decisions and appeals of `lines`, and the settlement's own evidence
    and story."""
    line_ids = [ln.id for ln in lines] or [0]
    order_ids = [ln.work_order_id for ln in lines if ln.work_order_id]
    repairs = defaultdict(list)
    for repair in db.session.scalars(
            select(WorkOrderRepair).options(joinedload(WorkOrderRepair.repair_code))
            .where(WorkOrderRepair.agency_id == settlement.agency_id,
                   WorkOrderRepair.work_order_id.in_(order_ids or [0]))
            .order_by(WorkOrderRepair.id)):
        repairs[repair.work_order_id].append(repair)
    attachments = defaultdict(list)
    for attachment in db.session.scalars(select(Attachment).where(
            _owned(Attachment, settlement),
            or_(Attachment.line_id.is_(None), Attachment.line_id.in_(line_ids)))
            .order_by(Attachment.id)):
        attachments[attachment.line_id].append(attachment)
    decisions = defaultdict(list)
    for decision in db.session.scalars(select(LineDecisionRecord).where(
            _owned(LineDecisionRecord, settlement), LineDecisionRecord.line_id.in_(line_ids))
            .order_by(LineDecisionRecord.id)):
        decisions[decision.line_id].append(decision)
    appeals = {a.line_id: a for a in db.session.scalars(
        select(Appeal).where(_owned(Appeal, settlement), Appeal.line_id.in_(line_ids)))}
    events = list(db.session.scalars(
        select(SettlementEvent).options(joinedload(SettlementEvent.actor))
        .where(_owned(SettlementEvent, settlement)).order_by(SettlementEvent.id)))
    return {"repairs": repairs, "attachments": attachments, "decisions": decisions,
            "appeals": appeals, "events": events}


def _counts_in_sql(settlement: Settlement) -> dict:
    counts = defaultdict(int)
    for decision, disposition, n in db.session.execute(
            select(SettlementLine.decision, SettlementLine.disposition, func.count())
            .where(_owned(SettlementLine, settlement))
            .group_by(SettlementLine.decision, SettlementLine.disposition)):
        counts["decision:" + decision] += n
        counts["disposition:" + disposition] += n
    return dict(counts)


def _counts(lines) -> dict:
    counts = defaultdict(int)
    for line in lines:
        counts["decision:" + line.decision] += 1
        counts["disposition:" + line.disposition] += 1
    return dict(counts)


def history(agency_id: int, limit: int = 6) -> list[Settlement]:
    return list(db.session.scalars(
        select(Settlement).where(Settlement.agency_id == agency_id)
        .order_by(Settlement.year.desc(), Settlement.month.desc(), Settlement.id.desc())
        .limit(limit)))


def regions_for_filter() -> list[Region]:
    return list(db.session.scalars(select(Region).options(selectinload(Region.provinces))
                                   .order_by(Region.code)))
