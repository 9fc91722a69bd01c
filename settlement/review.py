"""Reviewing a submitted settlement: regional review, line decisions, return, approval with four
eyes (and a second approval above the threshold), payment, and the agency's one appeal.

Each service is a transition (portal.transitions): the decorator checks who acts, the page's
version and the state, flushes and writes the one audit entry with the amounts before and
after. A second identical request finds a newer version and changes nothing.
"""
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import bounded, clean
from portal.transitions import note, transition
from settlement import building, config, policy, rules
from settlement.building import set_decision
from settlement.delegation import (
    NO,
    Power,
    first_approval_power,
    regional_review_power,
    second_approval_power,
)
from settlement.models import (
    APPEALABLE,
    Appeal,
    AppealStatus,
    Decision,
    LineDecisionRecord,
    Settlement,
    SettlementLine,
    Status,
)
from settlement.states import add_event, amounts

REASON_CODES = tuple(rules.REASON_LABELS)
MAX_PAYMENT_REFERENCE = 64
IN_REVIEW = {Status.SUBMITTED}


def _hq_reviews(settlement: Settlement) -> None:
    """HQ acts on a submitted claim once the region has reviewed it (where it does)."""
    if settlement.awaits_regional_review:
        raise DomainError(_("The regional manager reviews this settlement first."))


# --- regional review -------------------------------------------------------------------------


def regional_power(user, settlement: Settlement, today: date | None = None) -> Power:
    """Whether `user` reviews the claim for its region on `today` (and for whom)."""
    if user is None:
        return NO
    region_id = building.agency_of(settlement).region_id
    return regional_review_power(user, region_id, today or clock.local_today())


def _regional_reviewer(user, settlement: Settlement, today: date | None) -> Power:
    power = regional_power(user, settlement, today)
    if not power.allowed:
        raise DomainError(_("Only the region's manager or their stand-in reviews this "
                            "settlement."))
    return power


def regional_review(settlement: Settlement, forward: bool, comment: str, *, acting_user,
                    seen_version=None, today: date | None = None) -> None:
    """The region's manager (or their stand-in) passes the claim to HQ or returns it."""
    service = forward_settlement if forward else return_settlement
    service(settlement, comment, acting_user=acting_user, seen_version=seen_version,
            today=today)


@transition("settlement.regional_forwarded", Settlement, label=_l("Regional review passed"),
            permission=policy.FORWARD, source=IN_REVIEW, versioned=True, audit=amounts,
            wrong_state=_l("This settlement does not wait for a regional review."))
def forward_settlement(settlement: Settlement, comment: str = "", *, acting_user,
                       today: date | None = None) -> None:
    """Pass the claim to HQ. Raises DomainError when it does not wait for this review or for
    someone who may not review it."""
    if not settlement.awaits_regional_review:
        raise DomainError(_("This settlement does not wait for a regional review."))
    power = _regional_reviewer(acting_user, settlement, today)
    comment = bounded(comment, "comment", required=False)
    settlement.regional_reviewed_at = clock.now()
    settlement.regional_reviewed_by_id = acting_user.id
    add_event(settlement, "regional_forwarded", acting_user, comment=comment,
              on_behalf_of_id=power.on_behalf_of_id)
    note(after={"on_behalf_of": power.on_behalf_of_id}, reason=comment or None)


@transition("settlement.returned", Settlement, label=_l("Returned to the agency"),
            permission=policy.RETURN, source=IN_REVIEW, target=Status.RETURNED,
            versioned=True, audit=amounts)
def return_settlement(settlement: Settlement, comment: str, *, acting_user,
                      today: date | None = None) -> None:
    """Send the claim back to the agency with a comment (evidence missing, say): the region's
    reviewer during the regional review, HQ during its own."""
    on_behalf_of = None
    if settlement.awaits_regional_review:
        on_behalf_of = _regional_reviewer(acting_user, settlement, today).on_behalf_of_id
        note(after={"on_behalf_of": on_behalf_of})
    comment = bounded(comment, "comment", required=True)
    settlement.first_approved_at = settlement.first_approved_by_id = None
    add_event(settlement, "returned", acting_user, from_status=Status.SUBMITTED,
              to_status=Status.RETURNED, comment=comment, on_behalf_of_id=on_behalf_of)
    note(reason=comment)


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
    text = bounded(reason_text, "reason_text", required=reason_code == "other")
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



@transition("settlement.line_decided", SettlementLine, label=_l("Line decided"),
            permission=policy.DECIDE_LINE, source=IN_REVIEW, versioned=True, audit=amounts)
def decide_line(settlement: Settlement, line: SettlementLine, decision: str, *, acting_user,
                amount=None, reason_code=None, reason_text: str = "") -> None:
    """HQ approves, adjusts (with an amount) or denies one line, with a reason code the agency
    sees. Raises DomainError outside HQ review or for bad input."""
    _hq_reviews(settlement)
    if line.settlement_id != settlement.id:
        raise DomainError(_("This line belongs to another settlement."))
    if _open_appeal_count(settlement, line.id):
        raise DomainError(_("Decide the open appeal on this line instead."))
    amount, reason_code, text = _check_decision(line, decision, amount, reason_code,
                                                reason_text)
    note(before={"line_id": line.id, "line_decision": line.decision,
                 "line_amount": line.approved_amount})
    set_decision(settlement, line, decision, amount, reason_code, text, acting_user)
    _after_change(settlement)
    add_event(settlement, "line_decided", acting_user, comment=_line_name(line))
    note(after={"line_id": line.id, "line_decision": decision, "line_amount": amount,
                "reason_code": reason_code}, reason=text or None)


@transition("settlement.clean_lines_approved", SettlementLine, label=_l("Clean lines approved"),
            permission=policy.APPROVE_CLEAN, source=IN_REVIEW, versioned=True, audit=amounts)
def approve_clean_lines(settlement: Settlement, *, acting_user) -> int:
    """Approve, at their claimed amounts, every pending line whose checks all say pay."""
    _hq_reviews(settlement)
    lines = [ln for ln in building.load_lines(settlement)
             if ln.decision == Decision.PENDING and ln.disposition == "pay"]
    if not lines:
        raise DomainError(_("No pending line without exceptions is left."))
    approve_in_bulk(settlement, lines, acting_user)
    _after_change(settlement)
    add_event(settlement, "clean_approved", acting_user, comment=str(len(lines)))
    note(after={"lines": [ln.id for ln in lines]})
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


# --- approve, pay -------------------------------------------------------------------------------


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


def approval_refusal(user, settlement: Settlement, today: date | None = None,
                     adjusted_by: set[int] | None = None) -> tuple[str | None, Power]:
    """Why `user` may not give the claim's next approval on `today` (None: they may), and
    their power. Four eyes: never someone who adjusted or denied a line; the second approval
    (above the threshold) is HQ admin's (or their stand-in's) and another person's."""
    today = today or clock.local_today()
    adjusted_by = adjusters(settlement) if adjusted_by is None else adjusted_by
    if user.id in adjusted_by:
        return _("You adjusted or denied lines of this settlement: a colleague approves it "
                 "(four eyes)."), NO
    if settlement.first_approved_at is None:
        power = first_approval_power(user, today)
        return (None if power.allowed else _("HQ settlement staff give the first approval.")), power
    power = second_approval_power(user, today)
    if not power.allowed:
        return _("Above %(threshold)s a second approval by HQ admin is needed.",
                 threshold=config.current_settings().second_approval_threshold), power
    if user.id == settlement.first_approved_by_id:
        return _("You gave the first approval: a second person approves."), power
    return None, power


def _approver(settlement: Settlement, user, today: date | None) -> Power:
    """The claim is ready for approval and `user` may give it; their power."""
    _hq_reviews(settlement)
    pending = db.session.scalar(select(func.count(SettlementLine.id)).where(
        SettlementLine.agency_id == settlement.agency_id,
        SettlementLine.settlement_id == settlement.id,
        SettlementLine.decision == Decision.PENDING))
    if pending:
        raise DomainError(_("%(count)s lines still wait for a decision.", count=pending))
    if _open_appeal_count(settlement):
        raise DomainError(_("Decide the open appeals first."))
    refusal, power = approval_refusal(user, settlement, today)
    if refusal:
        raise DomainError(refusal)
    return power


def approve_settlement(settlement: Settlement, *, acting_user, seen_version=None,
                       today: date | None = None) -> bool:
    """Approve a fully decided claim; returns True when it is now approved, False when the
    first approval of a claim above the configured threshold waits for the second one."""
    waits = (settlement.first_approved_at is None and settlement.approved_total
             > config.current_settings().second_approval_threshold)
    service = give_first_approval if waits else approve
    service(settlement, acting_user=acting_user, seen_version=seen_version, today=today)
    return not waits


def _approval(settlement: Settlement, user, power: Power, action: str) -> None:
    """The story and the audit of an approval (read before the approval's columns change: the
    database holds "approved_at only with the approved state" at every flush)."""
    note(after={"threshold": config.current_settings().second_approval_threshold,
                "on_behalf_of": power.on_behalf_of_id})
    add_event(settlement, action, user, from_status=Status.SUBMITTED,
              to_status=Status.APPROVED if action == "approved" else Status.SUBMITTED,
              on_behalf_of_id=power.on_behalf_of_id)


@transition("settlement.first_approved", Settlement, label=_l("First approval"),
            permission=policy.APPROVE, source=IN_REVIEW, versioned=True, audit=amounts)
def give_first_approval(settlement: Settlement, *, acting_user,
                        today: date | None = None) -> None:
    """The first of the two approvals a claim above the threshold needs (HQ settlement)."""
    power = _approver(settlement, acting_user, today)
    _approval(settlement, acting_user, power, "first_approved")
    settlement.first_approved_at, settlement.first_approved_by_id = clock.now(), acting_user.id


@transition("settlement.approved", Settlement, label=_l("Approved"), permission=policy.APPROVE,
            source=IN_REVIEW, target=Status.APPROVED, versioned=True, audit=amounts)
def approve(settlement: Settlement, *, acting_user, today: date | None = None) -> None:
    """The approval that makes the claim payable: the only one at or below the threshold
    (HQ settlement), the second one above it (HQ admin, another person)."""
    power = _approver(settlement, acting_user, today)
    _approval(settlement, acting_user, power, "approved")
    now = clock.now()
    if settlement.first_approved_at is None:
        settlement.first_approved_at, settlement.first_approved_by_id = now, acting_user.id
    else:
        settlement.second_approved_at, settlement.second_approved_by_id = now, acting_user.id
    settlement.approved_at = now


@transition("settlement.paid", Settlement, label=_l("Marked paid"), permission=policy.PAY,
            source={Status.APPROVED}, target=Status.PAID, versioned=True, audit=amounts)
def mark_paid(settlement: Settlement, reference: str, paid_on: date | None, *, acting_user,
              today: date | None = None) -> None:
    """Record the payment of an approved claim. Raises DomainError otherwise."""
    today = today or clock.local_today()
    reference = clean(reference)
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
    settlement.paid_at, settlement.paid_on = clock.now(), paid_on
    settlement.paid_by_id, settlement.payment_reference = acting_user.id, reference
    add_event(settlement, "paid", acting_user, from_status=Status.APPROVED, to_status=Status.PAID,
              comment=reference)
    note(after={"payment_reference": reference, "paid_on": paid_on})


# --- appeals ----------------------------------------------------------------------------------


@transition("settlement.appealed", Appeal, label=_l("Appeal lodged"), permission=policy.APPEAL,
            source=APPEALABLE, versioned=True, audit=amounts)
def lodge_appeal(settlement: Settlement, line: SettlementLine, reason: str, *,
                 acting_user) -> Appeal:
    """The agency appeals an adjusted or denied line, once, before payment. An approved claim
    goes back into review until the appeal is decided."""
    if line.settlement_id != settlement.id or not line.is_adjustable:
        raise DomainError(_("Only adjusted or denied lines can be appealed."))
    if db.session.scalar(select(func.count(Appeal.id)).where(
            Appeal.agency_id == line.agency_id, Appeal.line_id == line.id)):
        raise DomainError(_("This line was already appealed: a line is appealed once."))
    reason = bounded(reason, "reason", required=True, low=10)
    appeal = Appeal(agency_id=line.agency_id, settlement_id=settlement.id, line_id=line.id,
                    reason=reason, lodged_by_id=acting_user.id,
                    amount_before=line.approved_amount)
    db.session.add(appeal)
    previous = settlement.status
    if settlement.status == Status.APPROVED:
        settlement.status, settlement.approved_at = Status.SUBMITTED, None
    settlement.first_approved_at = settlement.first_approved_by_id = None
    settlement.second_approved_at = settlement.second_approved_by_id = None
    add_event(settlement, "appealed", acting_user, from_status=previous,
              to_status=settlement.status, comment=reason)
    note(after={"line_id": line.id}, reason=reason)
    return appeal


@transition("settlement.appeal_resolved", Appeal, label=_l("Appeal decided"),
            permission=policy.RESOLVE_APPEAL, source=IN_REVIEW, versioned=True, audit=amounts)
def resolve_appeal(settlement: Settlement, appeal: Appeal, upheld: bool, amount,
                   resolution: str, *, acting_user) -> None:
    """HQ decides an appeal: upheld with the new amount of the line, or rejected."""
    _hq_reviews(settlement)
    if appeal.settlement_id != settlement.id or appeal.status != AppealStatus.OPEN:
        raise DomainError(_("This appeal is already decided."))
    resolution = bounded(resolution, "note", required=True)
    line = db.session.scalars(select(SettlementLine).where(
        SettlementLine.agency_id == appeal.agency_id, SettlementLine.id == appeal.line_id)
    ).one()
    note(before={"line_id": line.id, "line_amount": line.approved_amount})
    if upheld:
        value = parse_amount(amount)
        low, high = sorted((Decimal("0.00"), line.claimed_amount))
        if value is None or not low <= value <= high or value == line.approved_amount:
            raise DomainError(_("Enter the line's new amount, between %(low)s and %(high)s.",
                                low=low, high=high), field="amount")
        decision = Decision.APPROVED if value == line.claimed_amount else Decision.ADJUSTED
        set_decision(settlement, line, decision, value,
                     None if decision == Decision.APPROVED else "other", resolution,
                     acting_user)
        appeal.amount_after = value
    appeal.status = AppealStatus.UPHELD if upheld else AppealStatus.REJECTED
    appeal.resolution_note, appeal.resolved_at = resolution, clock.now()
    appeal.resolved_by_id = acting_user.id
    _after_change(settlement)
    add_event(settlement, "appeal_resolved", acting_user, comment=resolution)
    note(after={"line_id": line.id, "line_amount": line.approved_amount, "upheld": upheld},
         reason=resolution)
