"""The agency's side of a settlement: open a month's claim, keep it current, submit, withdraw.

Each service is a transition (portal.transitions): the decorator checks who acts, the page's
version and the state, flushes, writes the one audit entry with the amounts before and after;
the body keeps the rule. Nothing here commits (the request or the command does).
"""
from datetime import date

from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.numbering import next_number
from portal.tenancy import unscoped
from portal.transitions import note, transition
from service.api import OrderStatus, WorkOrder
from settlement import building, config, policy, rules
from settlement.delegation import region_has_manager
from settlement.models import (
    EDITABLE,
    Appeal,
    Attachment,
    Decision,
    LineKind,
    Settlement,
    SettlementLine,
    Status,
)
from settlement.states import add_event, amounts
from tenants.models import Agency


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


def statement_number(agency: Agency, year: int, month: int) -> str:
    """The next free ``ST-<agency code>-YYYYMM-NN`` (ST-SH-C01-202610-01): unique across the
    network, so no two statements share a number or a file name. Looked up network-wide: an
    agency code once given up and taken again must not reuse another agency's number."""
    with unscoped("settlement numbers are unique across the network; numbers only"):
        return next_number(Settlement.number, f"ST-{agency.code}-{year}{month:02d}-")


@transition("settlement.opened", Settlement, label=_l("Opened"), permission=policy.OPEN,
            creates=True, audit=amounts)
def open_settlement(agency: Agency, year: int, month: int, *, acting_user,
                    today: date | None = None) -> Settlement:
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
                            number=statement_number(agency, year, month),
                            status=Status.DRAFT, computed_on=today,
                            created_by_id=acting_user.id if acting_user else None)
    db.session.add(settlement)
    try:
        db.session.flush()
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
    add_event(settlement, "opened", acting_user, to_status=Status.DRAFT)
    return settlement


@transition("settlement.recalculated", Settlement, label=_l("Recalculated"),
            permission=policy.RECALCULATE, source={Status.DRAFT}, versioned=True, audit=amounts)
def refresh_settlement(settlement: Settlement, *, acting_user, today: date | None = None) -> None:
    """Recalculate a draft with today's rates and rules, adding orders completed since."""
    today = today or clock.local_today()
    agency = building.agency_of(settlement)
    settings = config.current_settings()
    lines = building.load_lines(settlement)
    building.recompute_order_lines(settlement, lines, agency.tier, settings)
    building.add_order_lines(settlement, building.unclaimed_orders(
        agency.id, settlement.year, settlement.month), agency.tier, settings)
    building.add_deduction_lines(settlement, settings, today)
    _recheck(settlement, settings, today)
    settlement.computed_on = today
    add_event(settlement, "refreshed", acting_user)


def _recheck(settlement: Settlement, settings, today: date) -> None:
    lines = building.load_lines(settlement)
    building.run_checks(settlement, lines, settings, config.current_dispositions(), today)
    building.retotal(settlement)


@transition("settlement.order_added", SettlementLine, label=_l("Order added"),
            permission=policy.ADD_ORDER, source=EDITABLE, versioned=True, audit=amounts)
def add_order(settlement: Settlement, number: str, *, acting_user,
              today: date | None = None) -> SettlementLine:
    """Add one of the agency's completed orders by its number (a late or earlier one).

    Raises DomainError for an unknown, open or later order, or one already claimed.
    """
    today = today or clock.local_today()
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
    if building.is_claimed(order):
        raise DomainError(_("Order %(number)s is already in a settlement.", number=number),
                          field="number")
    agency = building.agency_of(settlement)
    settings = config.current_settings()
    building.add_order_lines(settlement, [order], agency.tier, settings)
    _recheck(settlement, settings, today)
    line = building.order_line(settlement, order.id)
    add_event(settlement, "order_added", acting_user, comment=order.number)
    note(after={"work_order_id": order.id, "line_amount": line.claimed_amount})
    return line


@transition("settlement.line_removed", SettlementLine, label=_l("Line removed"),
            permission=policy.REMOVE_LINE, source=EDITABLE, versioned=True, audit=amounts)
def remove_line(settlement: Settlement, line: SettlementLine, *, acting_user,
                today: date | None = None) -> None:
    """Take an order off a draft or returned claim; its order can be claimed again later.

    Deductions and bonuses are HQ's and stay. Raises DomainError for those, for a line with
    evidence (delete it first) or with an appeal.
    """
    today = today or clock.local_today()
    if line.settlement_id != settlement.id or not line.is_removable:
        raise DomainError(_("Only work order lines can be removed."))
    for model, message in ((Attachment, _("Delete this line's evidence first.")),
                           (Appeal, _("A line with an appeal cannot be removed."))):
        if db.session.scalar(select(func.count(model.id)).where(
                model.agency_id == line.agency_id, model.line_id == line.id)):
            raise DomainError(message)
    note(before={"work_order_id": line.work_order_id, "line_amount": line.claimed_amount})
    building.drop_line(line)
    _recheck(settlement, config.current_settings(), today)
    add_event(settlement, "line_removed", acting_user, comment=str(line.work_order_id))


@transition("settlement.withdrawn", Settlement, label=_l("Withdrawn"),
            permission=policy.WITHDRAW, source=EDITABLE, target=Status.WITHDRAWN,
            versioned=True, audit=amounts)
def withdraw_settlement(settlement: Settlement, *, acting_user) -> None:
    """Withdraw a draft or returned claim: its orders and deductions are free again."""
    building.release_claims(settlement)
    add_event(settlement, "withdrawn", acting_user, from_status=settlement.status,
              to_status=Status.WITHDRAWN)


@transition("settlement.submitted", Settlement, label=_l("Submitted"),
            permission=policy.SUBMIT, source=EDITABLE, target=Status.SUBMITTED, versioned=True,
            audit=amounts)
def submit_settlement(settlement: Settlement, *, acting_user, today: date | None = None) -> None:
    """Submit a draft or returned claim: the checks run again (the claim window on the day
    each line first went to HQ), lines whose exceptions say deny are denied with their reason,
    and review starts (the regional manager first where the agency's region has one).

    Raises DomainError for an empty claim, a month that has not ended (a draft opened before
    that rule), another state or a stale page (a second click).
    """
    today = today or clock.local_today()
    _check_period(settlement.year, settlement.month, today)
    lines = building.load_lines(settlement)
    if not lines:
        raise DomainError(_("A settlement needs at least one line."))
    # A later submission keeps the first day.
    building.store_line_values(settlement, [(line, {"first_submitted_on": today})
                                            for line in lines if line.first_submitted_on is None])
    dispositions = config.current_dispositions()
    building.run_checks(settlement, lines, config.current_settings(), dispositions, today)
    auto_decide(settlement, lines, dispositions)
    building.retotal(settlement)
    agency = building.agency_of(settlement)
    settlement.computed_on = today
    settlement.submitted_at = clock.now()
    settlement.submitted_by_id = acting_user.id if acting_user else None
    settlement.submission_count += 1
    settlement.needs_regional_review = region_has_manager(agency.region_id)
    settlement.regional_reviewed_at = settlement.regional_reviewed_by_id = None
    settlement.first_approved_at = settlement.first_approved_by_id = None
    settlement.second_approved_at = settlement.second_approved_by_id = None
    add_event(settlement, "submitted", acting_user, from_status=settlement.status,
              to_status=Status.SUBMITTED)


def auto_decide(settlement: Settlement, lines: list[SettlementLine],
                dispositions: dict[str, str]) -> None:
    """Deny what the dispositions deny; undo an automatic denial whose reason went away
    (evidence added, say). A reviewer's own decisions are never touched."""
    for line in lines:
        if line.kind != LineKind.ORDER:
            continue
        code = rules.denying_code(line.codes, dispositions)
        automatic = line.decided_by_id is None and line.decided_at is not None
        if code and line.decision == Decision.PENDING:
            building.set_decision(settlement, line, Decision.DENIED, rules.ZERO,
                                  rules.AUTO_DENY_REASONS[code], code, None, is_automatic=True)
        elif not code and automatic and line.decision == Decision.DENIED:
            line.decision, line.approved_amount = Decision.PENDING, None
            line.reason_code = line.reason_text = None
            line.decided_at = None
