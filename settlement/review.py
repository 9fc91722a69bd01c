"""Reviewing a submitted settlement: regional review, line decisions, return, approval with four
eyes (and a second approval above the threshold), payment, and the agency's one appeal.

Each service is a transition (portal.transitions): the decorator checks who acts, the page's
version and the state, flushes and writes the one audit entry with the amounts before and
after. A second identical request finds a newer version and changes nothing.
"""
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import (
    BigInteger,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import UTCDateTime
from portal.text import bounded, clean
from portal.transitions import note, transition
from settlement import building, config, policy, queries, rules
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
    LineKind,
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
    if open_appeal_count(settlement, line.id):
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


# --- decisions on a selection of lines ----------------------------------------------------------

BULK_ACTIONS = {"approve": Decision.APPROVED, "deny": Decision.DENIED,
                "adjust": Decision.ADJUSTED}
MAX_SELECTED = 1000  # ticked lines per request; more: every line that matches the filter


@dataclass(frozen=True)
class Selection:
    """The lines of a decision on many: ticked ids, or every line the view's filter shows."""

    line_ids: tuple[int, ...] = ()
    view: queries.LineView | None = None


@dataclass(frozen=True)
class BulkOutcome:
    count: int  # lines decided
    changed: int  # of which paid below their claim now (adjusted or denied)
    claimed: Decimal  # their claimed amounts
    before: Decimal  # their approved amounts before (an undecided line counts nothing)
    after: Decimal  # and after


def _fen(column):
    """A money column as the integer fen it is stored as (the SQL forms of the rules)."""
    return type_coerce(column, BigInteger)


def _from_fen(value) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(Decimal("0.01"))


def _bulk_terms(action: str, rule, percent, reason_code, reason_text) -> tuple:
    """The checked request: (rule, percent, reason code, text). Raises DomainError."""
    if action not in BULK_ACTIONS:
        raise DomainError(_("Choose approve, adjust or deny."), field="action")
    if action != "adjust":
        rule = percent = None
    elif rule not in rules.BULK_RULE_LABELS:
        raise DomainError(_("Choose the rule to apply."), field="rule")
    elif rule == rules.PAY_PERCENT:
        percent = parse_amount(percent)
        if percent is None or not 0 <= percent <= 100:
            raise DomainError(_("Enter a percentage from 0 to 100 with at most two decimals."),
                              field="percent")
    else:
        percent = None
    if action == "approve":  # why exceptions are paid as claimed: the audit keeps it
        return rule, percent, None, bounded(reason_text, "reason_text", required=True)
    if reason_code not in REASON_CODES:
        raise DomainError(_("Choose a reason code the agency will see."), field="reason_code")
    return rule, percent, reason_code, bounded(reason_text, "reason_text",
                                               required=reason_code == "other")


def _selected(settlement: Settlement, selection: Selection) -> list:
    """The WHERE clause of the selected lines of `settlement` (its owner included)."""
    if selection.view is not None:
        return queries.view_conditions(settlement, selection.view)
    ids = sorted(set(selection.line_ids))
    if not ids:
        raise DomainError(_("Select at least one line."), field="line_ids")
    if len(ids) > MAX_SELECTED:
        raise DomainError(_("Select at most %(count)s lines, or every line that matches the "
                            "filter.", count=MAX_SELECTED), field="line_ids")
    return [SettlementLine.agency_id == settlement.agency_id,
            SettlementLine.settlement_id == settlement.id, SettlementLine.id.in_(ids)]


def _new_amount(action: str, rule, percent, settings):
    """SQL: each selected line's new amount in integer fen (the rules' SQL forms)."""
    line, claimed = SettlementLine, _fen(SettlementLine.claimed_amount)
    if action == "approve":
        return claimed
    if action == "deny":
        return literal(0, BigInteger)
    if rule == rules.CAP_STANDARD:
        return rules.capped_to_standard_sql(
            claimed, _fen(line.labor_fee), _fen(line.labor_hours), _fen(line.hourly_rate),
            _fen(line.labor_share_pct), settings.max_order_hours)
    if rule == rules.DEDUCT_UNCERTIFIED:
        return rules.without_uncertified_labor_sql(claimed, _fen(line.labor_fee),
                                                   line.exception_codes)
    return rules.percent_paid_sql(claimed, percent)


def _check_selection(where: list, amount, selection: Selection, action: str) -> tuple:
    """One aggregate over the selection: refuses lines of elsewhere, open appeals, and rules on
    deductions; returns (count, changed, claimed, before, after), amounts in fen."""
    line = SettlementLine
    appealed = exists().where(Appeal.agency_id == line.agency_id, Appeal.line_id == line.id,
                              Appeal.status == AppealStatus.OPEN)
    count, others, appeals, claimed, before, after, changed = db.session.execute(select(
        func.count(), func.sum(case((line.kind != LineKind.ORDER, 1), else_=0)),
        func.sum(case((appealed, 1), else_=0)), func.sum(_fen(line.claimed_amount)),
        func.sum(_fen(line.approved_amount)),
        func.sum(amount), func.sum(case((amount < _fen(line.claimed_amount), 1), else_=0)),
    ).where(*where)).one()
    if selection.view is None and count != len(set(selection.line_ids)):
        raise DomainError(_("Some of the selected lines are not lines of this settlement: "
                            "nothing was changed."), field="line_ids")
    if not count:
        raise DomainError(_("No line matches the filter."), field="line_ids")
    if appeals:
        raise DomainError(ngettext("%(num)s selected line has an open appeal: decide it first.",
                                   "%(num)s selected lines have an open appeal: decide them "
                                   "first.", appeals), field="line_ids")
    if action == "adjust" and others:
        raise DomainError(_("Rules apply to work order lines: leave deductions and bonuses out "
                            "of the selection."), field="line_ids")
    return count, changed or 0, claimed, before, after


def _decided(action: str, amount, reason_code, text: str) -> dict:
    """SQL values of a decided line; a rule that leaves a line at its claim approves it."""
    decision, code, why = BULK_ACTIONS[action], reason_code, text if action != "approve" else ""
    if action != "adjust":
        return {"decision": literal(str(decision)), "reason_code": literal(code),
                "reason_text": literal(why or None)}
    same = amount == _fen(SettlementLine.claimed_amount)
    return {"decision": case((same, str(Decision.APPROVED)), else_=str(Decision.ADJUSTED)),
            "reason_code": case((same, None), else_=code),
            "reason_text": case((same, None), else_=why or None)}


def _write_decisions(settlement: Settlement, where: list, amount, values: dict, text: str,
                     actor) -> None:
    """Set-based: one INSERT … SELECT of the decision records (the amounts before), then one
    UPDATE of the lines; the session's loaded lines are refreshed from it."""
    now, actor_id = clock.now(), actor.id if actor else None
    line = SettlementLine
    db.session.execute(insert(LineDecisionRecord).from_select(
        ["agency_id", "settlement_id", "line_id", "decision", "amount_before", "amount_after",
         "reason_code", "reason_text", "is_automatic", "actor_id", "at"],
        select(line.agency_id, line.settlement_id, line.id, values["decision"],
               _fen(line.approved_amount), amount, values["reason_code"],
               func.coalesce(values["reason_text"], literal(text or None)), false(),
               literal(actor_id, BigInteger), literal(now, UTCDateTime)).where(*where)))
    db.session.execute(
        update(SettlementLine).where(*where).values(
            approved_amount=amount, decided_at=now, decided_by_id=actor_id,
            version=SettlementLine.version + 1, **values)
        .execution_options(synchronize_session="fetch"))


@transition("settlement.lines_decided", SettlementLine, label=_l("Lines decided together"),
            permission=policy.DECIDE_LINES, source=IN_REVIEW, versioned=True, audit=amounts)
def decide_lines(settlement: Settlement, selection: Selection, action: str, *, acting_user,
                 rule=None, percent=None, reason_code=None, reason_text: str = ""
                 ) -> BulkOutcome:
    """HQ approves, denies or adjusts by a rule (settlement.rules.BULK_RULE_LABELS) the
    selected lines at once, with one reason: one INSERT of the decision records and one UPDATE
    of the lines whatever their number; the audit entry names the lines and the money change.

    Raises DomainError, changing nothing, outside HQ review, for an empty selection, lines of
    another settlement, lines under appeal, a rule on deductions or bad input."""
    _hq_reviews(settlement)
    rule, percent, reason_code, text = _bulk_terms(action, rule, percent, reason_code,
                                                   reason_text)
    where = _selected(settlement, selection)
    amount = _new_amount(action, rule, percent, config.current_settings())
    count, changed, claimed, before, after = _check_selection(where, amount, selection,
                                                               action)
    line_ids = list(db.session.scalars(select(SettlementLine.id).where(*where)
                                       .order_by(SettlementLine.id)))
    _write_decisions(settlement, where, amount, _decided(action, amount, reason_code, text),
                     text, acting_user)
    _after_change(settlement)
    add_event(settlement, "lines_decided", acting_user, comment=str(count))
    outcome = BulkOutcome(count, changed, _from_fen(claimed), _from_fen(before),
                          _from_fen(after))
    note(after={"lines": line_ids, "line_count": count, "decision": action, "rule": rule,
                "percent": percent, "reason_code": reason_code, "changed": changed,
                "lines_claimed": outcome.claimed, "lines_approved_before": outcome.before,
                "lines_approved_after": outcome.after,
                "change": outcome.after - outcome.before}, reason=text or None)
    return outcome


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


def open_appeal_count(settlement: Settlement, line_id: int | None = None) -> int:
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
    if open_appeal_count(settlement):
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
    if open_appeal_count(settlement):
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
