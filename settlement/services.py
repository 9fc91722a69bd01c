"""The agency's side of a settlement: open a month's claim, keep it current, submit, withdraw.

Each service checks the rules, flushes, writes exactly one audit entry with the amounts before
and after, and never commits (the view or command does).
"""
from datetime import date

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.audit.services import record
from portal.errors_domain import DomainError
from portal.extensions import db
from service.models import OrderStatus, WorkOrder
from settlement import building, config, rules
from settlement.delegation import region_has_manager
from settlement.models import (
    Appeal,
    Attachment,
    Claim,
    Decision,
    LineDecisionRecord,
    LineKind,
    Settlement,
    SettlementLine,
    Status,
)
from settlement.states import (
    add_event,
    amounts,
    check_version,
    flush,
    require_status,
    stale_safe,
)
from tenants.models import Agency

EDITABLE = (Status.DRAFT, Status.RETURNED)


def _next_number(agency_id: int, year: int, month: int) -> str:
    prefix = f"ST{year}{month:02d}-"
    taken = set(db.session.scalars(select(Settlement.number).where(
        Settlement.agency_id == agency_id, Settlement.number.like(prefix + "%"))))
    n = len(taken) + 1
    while f"{prefix}{n:02d}" in taken:
        n += 1
    return f"{prefix}{n:02d}"


def _check_period(year, month, today: date) -> None:
    """Raises DomainError unless (year, month) is a local month that has ended by `today`:
    a claim covers a whole month, so the current one is claimed once it is over."""
    if not isinstance(year, int) or not isinstance(month, int) or not 1 <= month <= 12 \
            or not 2000 <= year <= 2200:
        raise DomainError(_("Choose a month."), field="period")
    if not clock.month_has_ended(year, month, today):
        following = date(year + month // 12, month % 12 + 1, 1)
        raise DomainError(_("A settlement covers a month that has ended: %(period)s can be "
                            "claimed from %(day)s.", period=f"{year}-{month:02d}",
                            day=format_date(following, "long")), field="period")


@stale_safe
def open_settlement(agency: Agency, year: int, month: int, actor, today: date | None = None
                    ) -> Settlement:
    """Open a draft claim for the month: its completed, in-warranty orders no live settlement
    holds, with this agency's pending deductions and bonuses.

    Raises DomainError for a month that has not ended, an open draft of the same month, or
    nothing to claim.
    """
    today = today or clock.local_today()
    _check_period(year, month, today)
    open_draft = db.session.scalar(select(func.count(Settlement.id)).where(
        Settlement.agency_id == agency.id, Settlement.year == year, Settlement.month == month,
        Settlement.status == Status.DRAFT))
    if open_draft:
        raise DomainError(_("A draft for %(period)s is already open: continue it.",
                            period=f"{year}-{month:02d}"), field="period")
    orders = building.unclaimed_orders(agency.id, year, month)
    settlement = Settlement(agency_id=agency.id, year=year, month=month,
                            number=_next_number(agency.id, year, month), status=Status.DRAFT,
                            created_by_id=actor.id if actor else None, computed_on=today)
    db.session.add(settlement)
    try:
        flush()
    except IntegrityError:  # the same claim opened a moment ago by a second click
        raise DomainError(_("A claim for %(period)s was just opened: reload the page.",
                            period=settlement.period), field="period") from None
    settings = config.current_settings()
    building.add_order_lines(settlement, orders, agency.tier, settings)
    added = building.add_deduction_lines(settlement, settings, today)
    if not orders and not added:
        raise DomainError(_("Nothing to claim for %(period)s: no completed in-warranty order of "
                            "that month is left unclaimed.", period=settlement.period),
                          field="period")
    lines = building.load_lines(settlement)
    building.run_checks(settlement, lines, settings, config.current_dispositions(), today)
    building.retotal(settlement)
    add_event(settlement, "opened", actor, to_status=Status.DRAFT)
    flush()
    record("settlement.opened", settlement, after=amounts(settlement), actor=actor)
    return settlement


@stale_safe
def refresh_settlement(settlement: Settlement, seen_version, actor,
                       today: date | None = None) -> None:
    """Recalculate a draft with today's rates and rules, adding orders completed since."""
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    require_status(settlement, Status.DRAFT)
    before = amounts(settlement)
    agency = building.agency_of(settlement)
    settings = config.current_settings()
    lines = building.load_lines(settlement)
    building.recompute_order_lines(settlement, lines, agency.tier, settings)
    building.add_order_lines(settlement, building.unclaimed_orders(
        agency.id, settlement.year, settlement.month), agency.tier, settings)
    building.add_deduction_lines(settlement, settings, today)
    _recheck(settlement, settings, today)
    settlement.computed_on = today
    add_event(settlement, "refreshed", actor)
    flush()
    record("settlement.recalculated", settlement, before=before, after=amounts(settlement),
           actor=actor)


def _recheck(settlement: Settlement, settings, today: date) -> None:
    lines = building.load_lines(settlement)
    building.run_checks(settlement, lines, settings, config.current_dispositions(), today)
    building.retotal(settlement)


@stale_safe
def add_order(settlement: Settlement, number: str, seen_version, actor,
              today: date | None = None) -> SettlementLine:
    """Add one of the agency's completed orders by its number (a late or earlier one).

    Raises DomainError for an unknown, open or later order, or one already claimed.
    """
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    require_status(settlement, *EDITABLE)
    number = (number or "").strip()
    order = db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == settlement.agency_id, WorkOrder.number == number)
    ).one_or_none() if number else None
    if order is None:
        raise DomainError(_("Your agency has no order %(number)s.", number=number or "—"),
                          field="number")
    if order.status != OrderStatus.COMPLETED:
        raise DomainError(_("Only completed orders can be claimed."), field="number")
    if (order.service_date.year, order.service_date.month) > (settlement.year,
                                                               settlement.month):
        raise DomainError(_("This order belongs to a later month's claim."), field="number")
    claimed = db.session.scalar(select(func.count(Claim.id)).where(
        Claim.agency_id == settlement.agency_id, Claim.work_order_id == order.id,
        Claim.live(Claim.work_order_id)))
    if claimed:
        raise DomainError(_("Order %(number)s is already in a settlement.", number=number),
                          field="number")
    before = amounts(settlement)
    agency = building.agency_of(settlement)
    settings = config.current_settings()
    building.add_order_lines(settlement, [order], agency.tier, settings)
    _recheck(settlement, settings, today)
    line = building.order_line(settlement, order.id)
    add_event(settlement, "order_added", actor, comment=order.number)
    flush()
    record("settlement.order_added", settlement, before=before,
           after={**amounts(settlement), "work_order_id": order.id,
                  "line_amount": line.claimed_amount}, actor=actor)
    return line


@stale_safe
def remove_line(settlement: Settlement, line: SettlementLine, seen_version, actor,
                today: date | None = None) -> None:
    """Take an order off a draft or returned claim; its order can be claimed again later.

    Deductions and bonuses are HQ's and stay. Raises DomainError for those, for a line with
    evidence (delete it first) or with an appeal.
    """
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    require_status(settlement, *EDITABLE)
    if line.settlement_id != settlement.id or line.kind != LineKind.ORDER:
        raise DomainError(_("Only work order lines can be removed."))
    for model, message in ((Attachment, _("Delete this line's evidence first.")),
                           (Appeal, _("A line with an appeal cannot be removed."))):
        if db.session.scalar(select(func.count(model.id)).where(
                model.agency_id == line.agency_id, model.line_id == line.id)):
            raise DomainError(message)
    before = amounts(settlement)
    claim = db.session.scalars(select(Claim).where(Claim.agency_id == line.agency_id,
                                                   Claim.id == line.claim_id)).one()
    for decision in db.session.scalars(select(LineDecisionRecord).where(
            LineDecisionRecord.agency_id == line.agency_id,
            LineDecisionRecord.line_id == line.id)):
        db.session.delete(decision)
    removed = {"work_order_id": line.work_order_id, "line_amount": line.claimed_amount}
    db.session.delete(line)
    flush()
    claim.is_live, claim.released_at = False, clock.now()
    _recheck(settlement, config.current_settings(), today)
    add_event(settlement, "line_removed", actor, comment=str(line.work_order_id))
    flush()
    record("settlement.line_removed", settlement, before={**before, **removed},
           after=amounts(settlement), actor=actor)


def release_claims(settlement: Settlement) -> None:
    now = clock.now()
    for claim in db.session.scalars(select(Claim).where(
            Claim.agency_id == settlement.agency_id, Claim.settlement_id == settlement.id,
            Claim.live())):
        claim.is_live, claim.released_at = False, now


@stale_safe
def withdraw_settlement(settlement: Settlement, seen_version, actor) -> None:
    """Withdraw a draft or returned claim: its orders and deductions are free again."""
    check_version(settlement, seen_version)
    require_status(settlement, *EDITABLE)
    before = amounts(settlement)
    previous = settlement.status
    release_claims(settlement)
    settlement.status = Status.WITHDRAWN
    add_event(settlement, "withdrawn", actor, from_status=previous, to_status=Status.WITHDRAWN)
    flush()
    record("settlement.withdrawn", settlement, before=before, after=amounts(settlement),
           actor=actor)


@stale_safe
def submit_settlement(settlement: Settlement, seen_version, actor,
                      today: date | None = None) -> None:
    """Submit a draft or returned claim: the checks run again (the claim window on the day
    each line first went to HQ), lines whose exceptions say deny are denied with their reason,
    and review starts (the regional manager first where the agency's region has one).

    Raises DomainError for an empty claim, a month that has not ended (a draft opened before
    that rule), another state or a stale page (a second click).
    """
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    require_status(settlement, *EDITABLE)
    _check_period(settlement.year, settlement.month, today)
    lines = building.load_lines(settlement)
    if not lines:
        raise DomainError(_("A settlement needs at least one line."))
    before = amounts(settlement)
    previous = settlement.status
    # A later submission keeps the first day.
    building.store_line_values(settlement, [(line, {"first_submitted_on": today})
                                            for line in lines if line.first_submitted_on is None])
    dispositions = config.current_dispositions()
    building.run_checks(settlement, lines, config.current_settings(), dispositions, today)
    auto_decide(settlement, lines, dispositions)
    building.retotal(settlement)
    agency = building.agency_of(settlement)
    settlement.status, settlement.computed_on = Status.SUBMITTED, today
    settlement.submitted_at, settlement.submitted_by_id = clock.now(), actor.id if actor else None
    settlement.submission_count += 1
    settlement.needs_regional_review = region_has_manager(agency.region_id)
    settlement.regional_reviewed_at = settlement.regional_reviewed_by_id = None
    settlement.first_approved_at = settlement.first_approved_by_id = None
    settlement.second_approved_at = settlement.second_approved_by_id = None
    add_event(settlement, "submitted", actor, from_status=previous, to_status=Status.SUBMITTED)
    flush()
    record("settlement.submitted", settlement, before=before, after=amounts(settlement),
           actor=actor)


def auto_decide(settlement: Settlement, lines: list[SettlementLine],
                dispositions: dict[str, str]) -> None:
    """Deny what the dispositions deny; undo an automatic denial whose reason went away
    (evidence added, say). A reviewer's own decisions are never touched."""
    now = clock.now()
    for line in lines:
        if line.kind != LineKind.ORDER:
            continue
        code = rules.denying_code(line.codes, dispositions)
        automatic = line.decided_by_id is None and line.decided_at is not None
        if code and line.decision == Decision.PENDING:
            _decide(settlement, line, Decision.DENIED, rules.ZERO,
                    rules.AUTO_DENY_REASONS[code], code, now)
        elif not code and automatic and line.decision == Decision.DENIED:
            line.decision, line.approved_amount = Decision.PENDING, None
            line.reason_code = line.reason_text = None
            line.decided_at = None


def _decide(settlement, line, decision, amount, reason_code, reason_text, now) -> None:
    db.session.add(LineDecisionRecord(
        agency_id=line.agency_id, settlement_id=settlement.id, line_id=line.id,
        decision=decision, amount_before=line.approved_amount, amount_after=amount,
        reason_code=reason_code, reason_text=reason_text, is_automatic=True))
    line.decision, line.approved_amount = decision, amount
    line.reason_code, line.reason_text, line.decided_at = reason_code, reason_text, now
    line.decided_by_id = None
