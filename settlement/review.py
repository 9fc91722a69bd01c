"""Reviewing a submitted settlement: regional review, line decisions, return, approval with four
eyes (and a second approval above the threshold), payment, and the agency's one appeal.

Each service checks the state and the page's version, flushes, and writes exactly one audit
entry with the amounts before and after. A second identical request finds a newer version and
changes nothing.
"""
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, insert, select

from portal import clock
from portal.audit.services import record
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from settlement import building, config, rules
from settlement.delegation import (
    first_approval_power,
    regional_review_power,
    second_approval_power,
)
from settlement.models import (
    Appeal,
    AppealStatus,
    Decision,
    LineDecisionRecord,
    Settlement,
    SettlementLine,
    Status,
)
from settlement.states import (
    add_event,
    amounts,
    check_version,
    clean_text,
    flush,
    require_status,
    stale_safe,
)

REASON_CODES = tuple(rules.REASON_LABELS)
MAX_PAYMENT_REFERENCE = 64


def _in_hq_review(settlement: Settlement) -> None:
    require_status(settlement, Status.SUBMITTED)
    if settlement.awaits_regional_review:
        raise DomainError(_("The regional manager reviews this settlement first."))


# --- regional review -------------------------------------------------------------------------


@stale_safe
def regional_review(settlement: Settlement, seen_version, actor, forward: bool,
                    comment: str, today: date | None = None) -> None:
    """The region's manager (or their stand-in) passes the claim to HQ or returns it.

    Raises DomainError when the claim does not wait for this review, for someone who may not
    review it, or without a comment when returning.
    """
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    if not settlement.awaits_regional_review:
        raise DomainError(_("This settlement does not wait for a regional review."))
    agency = building.agency_of(settlement)
    power = regional_review_power(actor, agency.region_id, today)
    if not power.allowed:
        raise DomainError(_("Only the region's manager or their stand-in reviews this "
                            "settlement."))
    comment = clean_text(comment, "comment", required=not forward)
    before = amounts(settlement)
    if forward:
        settlement.regional_reviewed_at = clock.now()
        settlement.regional_reviewed_by_id = actor.id
        add_event(settlement, "regional_forwarded", actor, comment=comment,
                  on_behalf_of_id=power.on_behalf_of_id)
    else:
        settlement.status = Status.RETURNED
        add_event(settlement, "returned", actor, from_status=Status.SUBMITTED,
                  to_status=Status.RETURNED, comment=comment,
                  on_behalf_of_id=power.on_behalf_of_id)
    flush()
    record("settlement.regional_forwarded" if forward else "settlement.returned", settlement,
           before=before, after={**amounts(settlement), "on_behalf_of": power.on_behalf_of_id},
           reason=comment or None, actor=actor)


# --- line decisions ---------------------------------------------------------------------------


def parse_amount(raw) -> Decimal | None:
    try:
        value = Decimal(str(raw).strip().replace(",", "")) if raw not in (None, "") else None
    except InvalidOperation:
        return None
    return value if rules.is_fen(value) else None


def _check_decision(line: SettlementLine, decision: str, amount, reason_code, reason_text):
    if decision not in (Decision.APPROVED, Decision.ADJUSTED, Decision.DENIED):
        raise DomainError(_("Choose approve, adjust or deny."), field="decision")
    if decision == Decision.APPROVED:
        return line.claimed_amount, None, ""
    if reason_code not in REASON_CODES:
        raise DomainError(_("Choose a reason code the agency will see."), field="reason_code")
    text = clean_text(reason_text, "reason_text", required=reason_code == "other")
    if decision == Decision.DENIED:
        return Decimal("0.00"), reason_code, text
    amount = parse_amount(amount)
    low, high = sorted((Decimal("0.00"), line.claimed_amount))
    if amount is None or not low <= amount <= high:
        raise DomainError(_("Enter an amount between %(low)s and %(high)s with at most two "
                            "decimals.", low=low, high=high), field="amount")
    if amount == line.claimed_amount:
        raise DomainError(_("The amount is unchanged: approve the line instead."),
                          field="amount")
    return amount, reason_code, text


def set_decision(settlement: Settlement, line: SettlementLine, decision: str, amount,
                 reason_code, reason_text: str, actor, *, is_automatic=False) -> None:
    db.session.add(LineDecisionRecord(
        agency_id=line.agency_id, settlement_id=settlement.id, line_id=line.id,
        decision=decision, amount_before=line.approved_amount, amount_after=amount,
        reason_code=reason_code, reason_text=reason_text or None, is_automatic=is_automatic,
        actor_id=actor.id if actor else None))
    line.decision, line.approved_amount = decision, amount
    line.reason_code, line.reason_text = reason_code, reason_text or None
    line.decided_at, line.decided_by_id = clock.now(), actor.id if actor else None


def approve_in_bulk(settlement: Settlement, lines: list[SettlementLine], actor) -> None:
    """Approve `lines` at their claimed amounts as set_decision() would, one by one, but in
    one bulk INSERT of the decision records and one UPDATE, whatever the number of lines.

    A bulk INSERT skips the mapper guard: the records carry their line's owner."""
    now, actor_id = clock.now(), actor.id if actor else None
    db.session.execute(insert(LineDecisionRecord), [
        {"agency_id": line.agency_id, "settlement_id": settlement.id, "line_id": line.id,
         "decision": Decision.APPROVED, "amount_before": line.approved_amount,
         "amount_after": line.claimed_amount, "reason_code": None, "reason_text": None,
         "is_automatic": False, "actor_id": actor_id, "at": now} for line in lines])
    building.store_line_values(settlement, [
        (line, {"decision": Decision.APPROVED, "approved_amount": line.claimed_amount,
                "reason_code": None, "reason_text": None, "decided_at": now,
                "decided_by_id": actor_id}) for line in lines])


@stale_safe
def decide_line(settlement: Settlement, line: SettlementLine, seen_version, decision: str,
                actor, *, amount=None, reason_code=None, reason_text: str = "") -> None:
    """HQ approves, adjusts (with an amount) or denies one line, with a reason code the agency
    sees. Raises DomainError outside HQ review, for bad input or a stale page."""
    check_version(settlement, seen_version)
    _in_hq_review(settlement)
    if line.settlement_id != settlement.id:
        raise DomainError(_("This line belongs to another settlement."))
    if _open_appeal_count(settlement, line.id):
        raise DomainError(_("Decide the open appeal on this line instead."))
    amount, reason_code, text = _check_decision(line, decision, amount, reason_code,
                                                reason_text)
    before = {**amounts(settlement), "line_id": line.id, "line_decision": line.decision,
              "line_amount": line.approved_amount}
    set_decision(settlement, line, decision, amount, reason_code, text, actor)
    _after_change(settlement)
    add_event(settlement, "line_decided", actor, comment=_line_name(line))
    flush()
    record("settlement.line_decided", settlement, before=before,
           after={**amounts(settlement), "line_id": line.id, "line_decision": decision,
                  "line_amount": amount, "reason_code": reason_code}, reason=text or None,
           actor=actor)


@stale_safe
def approve_clean_lines(settlement: Settlement, seen_version, actor) -> int:
    """Approve, at their claimed amounts, every pending line whose checks all say pay."""
    check_version(settlement, seen_version)
    _in_hq_review(settlement)
    lines = [ln for ln in building.load_lines(settlement)
             if ln.decision == Decision.PENDING and ln.disposition == "pay"]
    if not lines:
        raise DomainError(_("No pending line without exceptions is left."))
    before = amounts(settlement)
    approve_in_bulk(settlement, lines, actor)
    _after_change(settlement)
    add_event(settlement, "clean_approved", actor, comment=str(len(lines)))
    flush()
    record("settlement.clean_lines_approved", settlement, before=before,
           after={**amounts(settlement), "lines": [ln.id for ln in lines]}, actor=actor)
    return len(lines)


def _line_name(line: SettlementLine) -> str:
    """How both sides find the line in the story: its order number (the page's line numbers
    change as lines are added or removed)."""
    order = line.work_order if line.work_order_id else None
    return order.number if order is not None else f"#{line.id}"


def _after_change(settlement: Settlement) -> None:
    """A money change voids any approval given so far; totals follow the lines."""
    settlement.first_approved_at = settlement.first_approved_by_id = None
    building.retotal(settlement)


# --- return, approve, pay ---------------------------------------------------------------------


@stale_safe
def return_settlement(settlement: Settlement, seen_version, actor, comment: str) -> None:
    """HQ sends the claim back to the agency with a comment (evidence missing, say)."""
    check_version(settlement, seen_version)
    _in_hq_review(settlement)
    comment = clean_text(comment, "comment", required=True)
    before = amounts(settlement)
    settlement.status = Status.RETURNED
    settlement.first_approved_at = settlement.first_approved_by_id = None
    add_event(settlement, "returned", actor, from_status=Status.SUBMITTED,
              to_status=Status.RETURNED, comment=comment)
    flush()
    record("settlement.returned", settlement, before=before, after=amounts(settlement),
           reason=comment, actor=actor)


def adjusters(settlement: Settlement) -> set[int]:
    """Everyone who ever changed a line's amount or denied it by hand."""
    return set(db.session.scalars(select(LineDecisionRecord.actor_id).where(
        LineDecisionRecord.agency_id == settlement.agency_id,
        LineDecisionRecord.settlement_id == settlement.id,
        LineDecisionRecord.is_automatic.is_(False),
        LineDecisionRecord.decision.in_([Decision.ADJUSTED, Decision.DENIED]),
        LineDecisionRecord.actor_id.is_not(None))))


def _open_appeal_count(settlement: Settlement, line_id: int | None = None) -> int:
    stmt = select(func.count(Appeal.id)).where(Appeal.agency_id == settlement.agency_id,
                                               Appeal.settlement_id == settlement.id,
                                               Appeal.status == AppealStatus.OPEN)
    if line_id is not None:
        stmt = stmt.where(Appeal.line_id == line_id)
    return db.session.scalar(stmt)


def _ready_for_approval(settlement: Settlement, actor) -> None:
    _in_hq_review(settlement)
    pending = db.session.scalar(select(func.count(SettlementLine.id)).where(
        SettlementLine.agency_id == settlement.agency_id,
        SettlementLine.settlement_id == settlement.id,
        SettlementLine.decision == Decision.PENDING))
    if pending:
        raise DomainError(_("%(count)s lines still wait for a decision.", count=pending))
    if _open_appeal_count(settlement):
        raise DomainError(_("Decide the open appeals first."))
    if actor.id in adjusters(settlement):
        raise DomainError(_("You adjusted or denied lines of this settlement: a colleague "
                            "approves it (four eyes)."))


@stale_safe
def approve_settlement(settlement: Settlement, seen_version, actor,
                       today: date | None = None) -> bool:
    """Approve a fully decided claim; returns True when it is now approved.

    Four eyes: never by someone who adjusted or denied a line. Above the configured threshold
    the first approval (HQ settlement) waits for a second one by HQ admin (or their
    stand-in), who must be another person. Raises DomainError otherwise.
    """
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    _ready_for_approval(settlement, actor)
    before = amounts(settlement)
    threshold = config.current_settings().second_approval_threshold
    needs_second = settlement.approved_total > threshold
    now = clock.now()
    if settlement.first_approved_at is None:
        power = first_approval_power(actor, today)
        if not power.allowed:
            raise DomainError(_("HQ settlement staff give the first approval."))
        settlement.first_approved_at, settlement.first_approved_by_id = now, actor.id
        action = "first_approved" if needs_second else "approved"
    else:
        power = second_approval_power(actor, today)
        if not power.allowed:
            raise DomainError(_("Above %(threshold)s a second approval by HQ admin is needed.",
                                threshold=threshold))
        if actor.id == settlement.first_approved_by_id:
            raise DomainError(_("You gave the first approval: a second person approves."))
        settlement.second_approved_at, settlement.second_approved_by_id = now, actor.id
        action = "approved"
    if action == "approved":
        settlement.status, settlement.approved_at = Status.APPROVED, now
    add_event(settlement, action, actor, from_status=Status.SUBMITTED,
              to_status=settlement.status, on_behalf_of_id=power.on_behalf_of_id)
    flush()
    record(f"settlement.{action}", settlement, before=before,
           after={**amounts(settlement), "threshold": threshold,
                  "on_behalf_of": power.on_behalf_of_id}, actor=actor)
    return action == "approved"


@stale_safe
def mark_paid(settlement: Settlement, seen_version, actor, reference: str,
              paid_on: date | None, today: date | None = None) -> None:
    """Record the payment of an approved claim. Raises DomainError otherwise."""
    today = today or clock.local_today()
    check_version(settlement, seen_version)
    require_status(settlement, Status.APPROVED)
    if actor.role != Role.HQ_SETTLEMENT:
        raise DomainError(_("HQ settlement staff record payments."))
    reference = (reference or "").strip()
    if not 3 <= len(reference) <= MAX_PAYMENT_REFERENCE:
        raise DomainError(_("Enter the payment reference (3 to %(max)s characters).",
                            max=MAX_PAYMENT_REFERENCE), field="payment_reference")
    paid_on = paid_on or today
    if not isinstance(paid_on, date) or paid_on > today or paid_on < clock.local_day(
            settlement.approved_at):
        raise DomainError(_("The payment date cannot be in the future or before the "
                            "approval."), field="paid_on")
    if _open_appeal_count(settlement):
        raise DomainError(_("Decide the open appeals first."))
    before = amounts(settlement)
    settlement.status, settlement.paid_at, settlement.paid_on = Status.PAID, clock.now(), paid_on
    settlement.paid_by_id, settlement.payment_reference = actor.id, reference
    add_event(settlement, "paid", actor, from_status=Status.APPROVED, to_status=Status.PAID,
              comment=reference)
    flush()
    record("settlement.paid", settlement, before=before,
           after={**amounts(settlement), "payment_reference": reference, "paid_on": paid_on},
           actor=actor)


# --- appeals ----------------------------------------------------------------------------------


@stale_safe
def lodge_appeal(settlement: Settlement, line: SettlementLine, seen_version, reason: str,
                 actor) -> Appeal:
    """The agency appeals an adjusted or denied line, once, before payment. An approved claim
    goes back into review until the appeal is decided."""
    check_version(settlement, seen_version)
    require_status(settlement, Status.SUBMITTED, Status.APPROVED, Status.RETURNED)
    if line.settlement_id != settlement.id or not line.is_adjustable:
        raise DomainError(_("Only adjusted or denied lines can be appealed."))
    if db.session.scalar(select(func.count(Appeal.id)).where(
            Appeal.agency_id == line.agency_id, Appeal.line_id == line.id)):
        raise DomainError(_("This line was already appealed: a line is appealed once."))
    reason = clean_text(reason, "reason", required=True, low=10)
    before = amounts(settlement)
    appeal = Appeal(agency_id=line.agency_id, settlement_id=settlement.id, line_id=line.id,
                    reason=reason, lodged_by_id=actor.id, amount_before=line.approved_amount)
    db.session.add(appeal)
    previous = settlement.status
    if settlement.status == Status.APPROVED:
        settlement.status, settlement.approved_at = Status.SUBMITTED, None
    settlement.first_approved_at = settlement.first_approved_by_id = None
    settlement.second_approved_at = settlement.second_approved_by_id = None
    add_event(settlement, "appealed", actor, from_status=previous, to_status=settlement.status,
              comment=reason)
    flush()
    record("settlement.appealed", settlement, before=before,
           after={**amounts(settlement), "line_id": line.id}, reason=reason, actor=actor)
    return appeal


@stale_safe
def resolve_appeal(settlement: Settlement, appeal: Appeal, seen_version, upheld: bool,
                   amount, note: str, actor) -> None:
    """HQ decides an appeal: upheld with the new amount of the line, or rejected."""
    check_version(settlement, seen_version)
    _in_hq_review(settlement)
    if appeal.settlement_id != settlement.id or appeal.status != AppealStatus.OPEN:
        raise DomainError(_("This appeal is already decided."))
    note = clean_text(note, "note", required=True)
    line = db.session.scalars(select(SettlementLine).where(
        SettlementLine.agency_id == appeal.agency_id, SettlementLine.id == appeal.line_id)
    ).one()
    before = {**amounts(settlement), "line_id": line.id, "line_amount": line.approved_amount}
    if upheld:
        value = parse_amount(amount)
        low, high = sorted((Decimal("0.00"), line.claimed_amount))
        if value is None or not low <= value <= high or value == line.approved_amount:
            raise DomainError(_("Enter the line's new amount, between %(low)s and %(high)s.",
                                low=low, high=high), field="amount")
        decision = Decision.APPROVED if value == line.claimed_amount else Decision.ADJUSTED
        set_decision(settlement, line, decision, value,
                     None if decision == Decision.APPROVED else "other", note, actor)
        appeal.amount_after = value
    appeal.status = AppealStatus.UPHELD if upheld else AppealStatus.REJECTED
    appeal.resolution_note, appeal.resolved_at, appeal.resolved_by_id = note, clock.now(), actor.id
    _after_change(settlement)
    add_event(settlement, "appeal_resolved", actor, comment=note)
    flush()
    record("settlement.appeal_resolved", settlement, before=before,
           after={**amounts(settlement), "line_id": line.id,
                  "line_amount": line.approved_amount, "upheld": upheld}, reason=note,
           actor=actor)
