"""Reads of the settlement area: the list with its totals, a settlement's page, its statement.

Everything goes through the tenant guard; each read is a fixed number of queries whatever the
number of lines or settlements.
"""
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta

from flask import request
from sqlalchemy import and_, case, false, func, literal, or_, select, type_coerce
from sqlalchemy.orm import joinedload, selectinload

from portal import clock
from portal.auth.models import User
from portal.extensions import db
from portal.listing import int_arg, paginate
from portal.models import Money
from portal.tenancy import unscoped
from service.api import PartReturn, WorkOrder, WorkOrderRepair, agency_filter
from settlement import config, rules
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
        # A number as it is now or was before numbers named the agency, or an agency code;
        # "_" is a letter of codes, not a wildcard.
        where.append(or_(*(column.startswith(q, autoescape=True) for column in (
            Settlement.number, Settlement.former_number, Agency.code))))
    if args.get("overdue") == "1":
        where.append(past_review_limit())
    return where


def past_review_limit():
    """SQL: in review longer than the workplace's limit (false when no limit is known), counted
    from the submission as the inbox's escalation counts it."""
    days = config.review_limit_days()
    if days is None:
        return false()
    return and_(Settlement.status == Status.SUBMITTED,
                Settlement.submitted_at <= clock.now() - timedelta(days=days))


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
            **_about_lines(settlement, lines), "counts": line_counts(settlement)}


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


def line_counts(settlement: Settlement) -> dict:
    """Lines per decision ("decision:pending"), disposition ("disposition:review") and
    exception code ("code:late"), and lines with any exception ("exceptions"): one GROUP BY
    (a few hundred combinations of codes at most)."""
    counts = defaultdict(int)
    for decision, disposition, codes, n in db.session.execute(
            select(SettlementLine.decision, SettlementLine.disposition,
                   SettlementLine.exception_codes, func.count())
            .where(_owned(SettlementLine, settlement))
            .group_by(SettlementLine.decision, SettlementLine.disposition,
                      SettlementLine.exception_codes)):
        counts["decision:" + decision] += n
        counts["disposition:" + disposition] += n
        for code in filter(None, codes.split(",")):
            counts["code:" + code] += n
        if codes:
            counts["exceptions"] += n
    return dict(counts)


def _counts(lines) -> dict:
    counts = defaultdict(int)
    for line in lines:
        counts["decision:" + line.decision] += 1
        counts["disposition:" + line.disposition] += 1
    return dict(counts)


# The events that may carry the colleague an approver stood in for (settlement.delegation).
STAND_IN_EVENTS = ("regional_forwarded", "first_approved", "approved")


def signoffs(settlement: Settlement) -> dict:
    """Who signed the settlement off and when, as its statement prints it (four eyes):

    - `steps`: submission, regional review, first and second approval and payment, each with
      the person and instant the settlement keeps (None: not done), and for a review or an
      approval given by a stand-in, the colleague they stood in for (from its latest event);
    - `deciders`: who decided the lines (None: the automatic checks), how many, the latest
      when, in the order they last decided.

    Three queries whatever the number of lines. HQ's people are named to the agency too: the
    names are read outside the agency's scope, and nothing else about them."""
    s = settlement
    deciders = db.session.execute(
        select(SettlementLine.decided_by_id, func.count(), func.max(SettlementLine.decided_at))
        .where(_owned(SettlementLine, s), SettlementLine.decision != Decision.PENDING)
        .group_by(SettlementLine.decided_by_id)
        .order_by(func.max(SettlementLine.decided_at), SettlementLine.decided_by_id)).all()
    stood_in = dict(db.session.execute(
        select(SettlementEvent.action, SettlementEvent.on_behalf_of_id)
        .where(_owned(SettlementEvent, s), SettlementEvent.action.in_(STAND_IN_EVENTS))
        .order_by(SettlementEvent.id)).all())  # the latest of each action wins
    # The approval that made the claim payable is the first one, or the second above the
    # threshold: its event is "approved" either way.
    second = s.second_approved_by_id is not None
    steps = [("submitted", s.submitted_by_id, s.submitted_at, None),
             ("regional", s.regional_reviewed_by_id, s.regional_reviewed_at,
              stood_in.get("regional_forwarded")),
             ("first", s.first_approved_by_id, s.first_approved_at,
              stood_in.get("approved" if s.approved_at and not second else "first_approved")),
             ("second", s.second_approved_by_id, s.second_approved_at,
              stood_in.get("approved") if second else None),
             ("paid", s.paid_by_id, s.paid_at, None)]
    ids = {i for _step, who, _at, for_whom in steps for i in (who, for_whom) if i}
    ids |= {who for who, _count, _at in deciders if who}
    with unscoped("a statement names the people who signed it off; names only"):
        names = dict(db.session.execute(
            select(User.id, User.name).where(User.id.in_(ids or [0]))).all())
    return {
        "steps": [{"step": step, "name": names.get(who), "at": at,
                   "on_behalf_of": names.get(for_whom)}
                  for step, who, at, for_whom in steps],
        "deciders": [{"name": names.get(who), "is_automatic": who is None, "count": count,
                      "at": at} for who, count, at in deciders],
    }


def history(agency_id: int, limit: int = 6) -> list[Settlement]:
    return list(db.session.scalars(
        select(Settlement).where(Settlement.agency_id == agency_id)
        .order_by(Settlement.year.desc(), Settlement.month.desc(), Settlement.id.desc())
        .limit(limit)))


def regions_for_filter() -> list[Region]:
    return list(db.session.scalars(select(Region).options(selectinload(Region.provinces))
                                   .order_by(Region.code)))


# --- HQ's review table: filtered, sorted and paged in SQL -----------------------------------------


def _order_column(column):
    """SQL: a column of the line's work order (NULL for deductions and bonuses)."""
    return (select(column).where(WorkOrder.agency_id == SettlementLine.agency_id,
                                 WorkOrder.id == SettlementLine.work_order_id)
            .scalar_subquery())


LINE_SORTS = {
    "n": STATEMENT_ORDER,
    "order": (func.coalesce(_order_column(WorkOrder.number), ""),),
    "date": (_order_column(WorkOrder.service_date),),
    "hours": (SettlementLine.labor_hours,),
    "claimed": (SettlementLine.claimed_amount,),
    "approved": (func.coalesce(SettlementLine.approved_amount, SettlementLine.claimed_amount),),
    "decision": (SettlementLine.decision,),
    "disposition": (case(rules.DISPOSITION_RANK, value=SettlementLine.disposition, else_=0),),
}
LINE_STATES = ("pending", "approved", "adjusted", "denied")


@dataclass(frozen=True)
class LineView:
    """What the review table shows: exceptions only or every line, the filters, the order.
    Read from a query string (:func:`line_view`); the bulk form's "every line matching the
    filter" selects with the same conditions (:func:`view_conditions`)."""

    only_exceptions: bool = False
    explicit: bool = False  # the reader chose exceptions only or all lines (else the default)
    code: str | None = None
    disposition: str | None = None
    state: str | None = None
    reason: str | None = None
    sort: str = "n"  # a key of LINE_SORTS, "-key" descending, or "review"
    fell_back: bool = False  # exceptions asked for by default, but the claim has none
    sort_chosen: bool = False  # the reader chose the order (else the reader's default)

    def filters(self) -> dict:
        """The filter as query arguments (links, the bulk form's address)."""
        found = {"lines": ("exceptions" if self.only_exceptions else "all")
                 if self.explicit else None,
                 "code": self.code, "disposition": self.disposition, "state": self.state,
                 "reason": self.reason}
        return {k: v for k, v in found.items() if v}

    def args(self) -> dict:
        return {**self.filters(), **({"sort": self.sort} if self.sort_chosen else {})}

    @property
    def is_filtered(self) -> bool:
        return bool(self.only_exceptions or self.code or self.disposition or self.state
                    or self.reason)


def line_view(args, *, reviewer: bool) -> LineView:
    """The table's view from query arguments that may be anything; a reviewer starts with the
    exceptions, worst and undecided first."""
    lines = args.get("lines")
    explicit = lines in ("exceptions", "all")

    def pick(name, allowed):
        value = args.get(name)
        return value if value in allowed else None

    sort = args.get("sort") or ""
    chosen = sort == "review" or sort.lstrip("-") in LINE_SORTS
    if not chosen:
        sort = "review" if reviewer else "n"
    return LineView(only_exceptions=lines == "exceptions" if explicit else reviewer,
                    explicit=explicit, code=pick("code", rules.EXCEPTION_CODES),
                    disposition=pick("disposition", rules.DISPOSITION_RANK),
                    state=pick("state", LINE_STATES), reason=pick("reason", rules.REASON_LABELS),
                    sort=sort, sort_chosen=chosen)


def has_code(code: str):
    """SQL: the line carries exception `code` (codes are stored comma-joined)."""
    return (literal(",") + SettlementLine.exception_codes + literal(",")).like(f"%,{code},%")


def view_conditions(settlement: Settlement, view: LineView) -> list:
    """The WHERE clause of the view's lines of `settlement` (the owner included)."""
    where = [_owned(SettlementLine, settlement)]
    if view.only_exceptions:
        where.append(SettlementLine.exception_codes != "")
    if view.code:
        where.append(has_code(view.code))
    if view.disposition:
        where.append(SettlementLine.disposition == view.disposition)
    if view.state:
        where.append(SettlementLine.decision == view.state)
    if view.reason:
        where.append(SettlementLine.reason_code == view.reason)
    return where


def view_order(view: LineView) -> tuple:
    if view.sort == "review":
        return (*reading_order(True), SettlementLine.id)
    columns = LINE_SORTS[view.sort.lstrip("-")]
    descending = view.sort.startswith("-")
    return (*(c.desc() if descending else c.asc() for c in columns), SettlementLine.id)


def review_page(settlement: Settlement, view: LineView, per_page: int) -> dict:
    """One page of the view's lines with what the table shows about them: the same fixed set
    of queries for 50 lines or 5,000. A reviewer's default view of a claim without any
    exception falls back to every line (nothing would show)."""
    counts = line_counts(settlement)
    if view.only_exceptions and not view.explicit and not counts.get("exceptions"):
        view = replace(view, only_exceptions=False, explicit=True, fell_back=True)
    page = db.paginate(select(SettlementLine).where(*view_conditions(settlement, view))
                       .options(*_line_loads()).order_by(*view_order(view)),
                       page=int_arg("page", 1, high=100000), per_page=per_page,
                       error_out=False, count=True)
    lines = list(page.items)
    numbered = _numbered(settlement)
    numbers = dict(db.session.execute(select(numbered.c.line_id, numbered.c.n).where(
        numbered.c.line_id.in_([ln.id for ln in lines] or [0]))).all())
    return {"page": page, "lines": lines, "numbers": numbers, "view": view,
            **_about_lines(settlement, lines), "counts": counts}


def view_position(settlement: Settlement, line_id: int, view: LineView) -> int | None:
    """Where a line comes in the view (1, 2, …), None when the view does not show it."""
    ranked = select(SettlementLine.id.label("line_id"), func.row_number().over(
        order_by=view_order(view)).label("position")).where(
        *view_conditions(settlement, view)).subquery()
    return db.session.scalar(select(ranked.c.position).where(ranked.c.line_id == line_id))


# --- what changed from claimed to approved (the approvers' summary) ------------------------------

CHANGED = (Decision.ADJUSTED, Decision.DENIED)
SUMMARY_GROUPS = 50  # groups shown; the table filtered by reason holds the rest
LINES_PER_GROUP = 10


def change_summary(settlement: Settlement) -> dict:
    """Claimed against approved: the changed lines grouped by decision, reason, explanation and
    decider (largest cut first) with their first lines, and the totals per reason. Three
    aggregate queries whatever the number of lines."""
    changed = [_owned(SettlementLine, settlement), SettlementLine.decision.in_(CHANGED)]
    cut = type_coerce(SettlementLine.claimed_amount - SettlementLine.approved_amount, Money)
    key = (SettlementLine.decision, SettlementLine.reason_code, SettlementLine.reason_text,
           SettlementLine.decided_by_id)
    groups = db.session.execute(
        select(*key, User.name, func.count(), func.sum(SettlementLine.claimed_amount),
               func.sum(SettlementLine.approved_amount), func.sum(cut),
               func.max(SettlementLine.decided_at))
        .outerjoin(User, User.id == SettlementLine.decided_by_id)
        .where(*changed).group_by(*key, User.name)
        .order_by(func.sum(cut).desc(), SettlementLine.decision, SettlementLine.reason_code)
        .limit(SUMMARY_GROUPS + 1)).all()
    ranked = select(SettlementLine.id.label("line_id"), *key, SettlementLine.kind,
                    SettlementLine.work_order_id, SettlementLine.claimed_amount,
                    SettlementLine.approved_amount, func.row_number().over(
                        partition_by=key, order_by=(cut.desc(), SettlementLine.id)
                    ).label("rank")).where(*changed).subquery()
    samples = defaultdict(list)
    for row in db.session.execute(
            select(ranked, WorkOrder.number)
            .outerjoin(WorkOrder, and_(WorkOrder.agency_id == settlement.agency_id,
                                       WorkOrder.id == ranked.c.work_order_id))
            .where(ranked.c.rank <= LINES_PER_GROUP)
            .order_by(ranked.c.rank, ranked.c.line_id)
            .limit(SUMMARY_GROUPS * LINES_PER_GROUP)):
        samples[(row.decision, row.reason_code, row.reason_text, row.decided_by_id)].append(row)
    by_reason = db.session.execute(
        select(SettlementLine.reason_code, func.count(), func.sum(SettlementLine.claimed_amount),
               func.sum(SettlementLine.approved_amount), func.sum(cut))
        .where(*changed).group_by(SettlementLine.reason_code)
        .order_by(func.sum(cut).desc(), SettlementLine.reason_code)).all()
    return {
        "groups": [{"decision": g[0], "reason_code": g[1], "reason_text": g[2],
                    "decided_by_id": g[3], "decided_by": g[4], "count": g[5], "claimed": g[6],
                    "approved": g[7], "cut": g[8], "at": g[9], "lines": samples[tuple(g[:4])]}
                   for g in groups[:SUMMARY_GROUPS]],
        "more_groups": len(groups) > SUMMARY_GROUPS,
        "by_reason": [{"reason_code": r[0], "count": r[1], "claimed": r[2], "approved": r[3],
                       "cut": r[4]} for r in by_reason],
        # Asked whether or not there is one: the page's query count does not depend on it.
        "first_approver": db.session.scalar(select(User.name).where(
            User.id == settlement.first_approved_by_id)),
        "changed_count": sum(r[1] for r in by_reason),
        "cut": sum((r[4] for r in by_reason), rules.ZERO),
    }
