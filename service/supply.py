"""Parts supply: requests (submitted → approved/rejected → shipped → received) and returns.

Each transition is one service call with one audit entry; a request is shipped once and
received only after it was shipped (the status check, and the version column against races).
"""
from flask_babel import gettext as _
from sqlalchemy import select

from portal import clock
from portal.audit.services import record
from portal.errors_domain import DomainError
from portal.extensions import db
from service import stock
from service.common import (
    actor_id,
    clean_text,
    db_id,
    flush_or_conflict,
    refuses_stale,
)
from service.models import (
    LineDecision,
    LineReason,
    OrderStatus,
    Part,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    RequestStatus,
    ReturnStatus,
    WorkOrder,
)
from tenants.models import Agency

MAX_LINES = 20
MAX_QUANTITY = 999


def _text(value, limit: int) -> str:
    return clean_text(value)[:limit]


def _required(value, field: str, limit: int, message: str) -> str:
    text = clean_text(value)
    if not text or len(text) > limit:
        raise DomainError(message, field=field)
    return text


# --- requests -------------------------------------------------------------------------------


def _next_number(agency_id: int) -> str:
    prefix = f"PR{clock.local_today():%Y%m%d}-"
    taken = set(db.session.scalars(select(PartsRequest.number).where(
        PartsRequest.agency_id == agency_id, PartsRequest.number.like(prefix + "%"))))
    n = len(taken) + 1
    while f"{prefix}{n:02d}" in taken:
        n += 1
    return f"{prefix}{n:02d}"


def _check_lines(agency: Agency, lines: list[dict]) -> list[dict]:
    if not lines:
        raise DomainError(_("Add at least one part."), field="lines")
    if len(lines) > MAX_LINES:
        raise DomainError(_("A request holds at most %(max)s lines.", max=MAX_LINES),
                          field="lines")
    part_ids = {db_id(line.get("part_id")) for line in lines} - {None}
    parts = {p.id: p for p in db.session.scalars(
        select(Part).where(Part.id.in_(part_ids or [0])))}
    order_ids = {db_id(line.get("work_order_id")) for line in lines} - {None}
    orders = {o.id: o for o in db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == agency.id, WorkOrder.id.in_(order_ids or [0])))}
    clean = []
    for line in lines:
        part = parts.get(db_id(line.get("part_id")))
        if part is None or not part.is_active:
            raise DomainError(_("Choose a part of the catalog."), field="lines")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise DomainError(_("Each quantity must be between 1 and %(max)s.",
                                max=MAX_QUANTITY), field="lines")
        reason = line.get("reason") or LineReason.STOCK
        order_id = db_id(line.get("work_order_id"))
        if reason not in {r.value for r in LineReason}:
            raise DomainError(_("Choose the reason of each line."), field="lines")
        if reason == LineReason.WORK_ORDER:
            order = orders.get(order_id)
            if order is None or order.status != OrderStatus.OPEN:
                raise DomainError(_("A part for a work order needs one of your open orders."),
                                  field="lines")
            if order.product_line_id != part.product_line_id:
                raise DomainError(_("Part %(number)s is not for that order's product line.",
                                    number=part.part_number), field="lines")
        else:
            order_id = None
        clean.append({"part_id": part.id, "quantity": quantity, "reason": reason,
                      "work_order_id": order_id})
    return clean


def create_parts_request(agency: Agency, lines: list[dict], note: str = "") -> PartsRequest:
    """Submit a request for parts. Raises DomainError for an empty or bad line."""
    clean = _check_lines(agency, lines)
    request = PartsRequest(agency_id=agency.id, number=_next_number(agency.id),
                           status=RequestStatus.SUBMITTED, note=_text(note, 2000),
                           submitted_by_id=actor_id())
    db.session.add(request)
    db.session.flush()
    for line in clean:
        db.session.add(PartsRequestLine(agency_id=agency.id, request_id=request.id, **line))
    flush_or_conflict()
    record("parts_request.submitted", request, after={"number": request.number,
                                                      "status": request.status,
                                                      "lines": clean})
    return request


def _lines(request: PartsRequest) -> list[PartsRequestLine]:
    return list(db.session.scalars(select(PartsRequestLine).where(
        PartsRequestLine.agency_id == request.agency_id,
        PartsRequestLine.request_id == request.id).order_by(PartsRequestLine.id)))


def _expect(request: PartsRequest, status: RequestStatus, message: str) -> None:
    if request.status != status:
        raise DomainError(message)


@refuses_stale
def decide_parts_request(request: PartsRequest, decisions: dict[int, dict]) -> None:
    """HQ approves each line (1 ≤ approved ≤ requested) or rejects it with a reason.

    `decisions` maps every line id to {"decision", "approved_quantity", "reject_reason"}.
    Raises DomainError unless the request is submitted and every line is decided well.
    """
    _expect(request, RequestStatus.SUBMITTED, _("Only submitted requests can be decided."))
    lines = _lines(request)
    if set(decisions) != {line.id for line in lines}:
        raise DomainError(_("Decide every line of the request."))
    plan = []
    for line in lines:
        choice = decisions[line.id]
        decision = choice.get("decision")
        if decision == LineDecision.APPROVED:
            quantity = choice.get("approved_quantity")
            if not isinstance(quantity, int) or not 1 <= quantity <= line.quantity:
                raise DomainError(_("The approved quantity must be between 1 and the %(n)s "
                                    "requested.", n=line.quantity))
            plan.append((line, LineDecision.APPROVED, quantity, None))
        elif decision == LineDecision.REJECTED:
            reason = _required(choice.get("reject_reason"), "reject_reason", 500,
                               _("Give the reason for each rejected line."))
            plan.append((line, LineDecision.REJECTED, None, reason))
        else:
            raise DomainError(_("Decide every line of the request."))
    for line, decision, quantity, reason in plan:
        line.decision, line.approved_quantity, line.reject_reason = decision, quantity, reason
    approved = any(decision == LineDecision.APPROVED for _l, decision, _q, _r in plan)
    request.status = RequestStatus.APPROVED if approved else RequestStatus.REJECTED
    request.decided_at, request.decided_by_id = clock.now(), actor_id()
    flush_or_conflict()
    record("parts_request.decided", request, before={"status": RequestStatus.SUBMITTED.value},
           after={"status": request.status,
                  "lines": [(line.id, str(decision), quantity, reason)
                            for line, decision, quantity, reason in plan]})


@refuses_stale
def ship_parts_request(request: PartsRequest, carrier: str, tracking_number: str) -> None:
    """HQ ships the approved lines once. Raises DomainError otherwise."""
    if request.status in (RequestStatus.SHIPPED, RequestStatus.RECEIVED):
        raise DomainError(_("This request was already shipped."))
    _expect(request, RequestStatus.APPROVED, _("Only approved requests can be shipped."))
    request.carrier = _required(carrier, "carrier", 64, _("Enter the carrier."))
    request.tracking_number = _required(tracking_number, "tracking_number", 64,
                                        _("Enter the tracking number."))
    request.status, request.shipped_at = RequestStatus.SHIPPED, clock.now()
    request.shipped_by_id = actor_id()
    flush_or_conflict()
    record("parts_request.shipped", request, before={"status": RequestStatus.APPROVED.value},
           after={"status": request.status, "carrier": request.carrier,
                  "tracking_number": request.tracking_number})


@refuses_stale
def receive_parts_request(request: PartsRequest, receipts: dict[int, dict]) -> None:
    """The agency confirms what arrived, line by line; the parts enter its stock.

    `receipts` maps each approved line id to {"received_quantity", "discrepancy_note"}; a
    quantity other than the approved one needs a note. Raises DomainError before shipping.
    """
    if request.status == RequestStatus.RECEIVED:
        raise DomainError(_("This request was already received."))
    _expect(request, RequestStatus.SHIPPED, _("A request can be received only after it was "
                                              "shipped."))
    lines = [line for line in _lines(request) if line.decision == LineDecision.APPROVED]
    if set(receipts) != {line.id for line in lines}:
        raise DomainError(_("Confirm every approved line."))
    plan = []
    for line in lines:
        quantity = receipts[line.id].get("received_quantity")
        if not isinstance(quantity, int) or not 0 <= quantity <= line.approved_quantity:
            raise DomainError(_("The received quantity must be between 0 and the %(n)s "
                                "shipped.", n=line.approved_quantity))
        note = _text(receipts[line.id].get("discrepancy_note"), 500)
        if quantity != line.approved_quantity and not note:
            raise DomainError(_("Describe the discrepancy of each line that did not arrive "
                                "in full."))
        plan.append((line, quantity, note or None))
    for line, quantity, note in plan:
        line.received_quantity, line.discrepancy_note = quantity, note
        stock.receive(request.agency_id, line.part_id, quantity)
    request.status, request.received_at = RequestStatus.RECEIVED, clock.now()
    request.received_by_id = actor_id()
    flush_or_conflict()
    record("parts_request.received", request, before={"status": RequestStatus.SHIPPED.value},
           after={"status": request.status,
                  "lines": [(line.id, line.part_id, quantity, note)
                            for line, quantity, note in plan]})


# --- defective-part returns -------------------------------------------------------------------


@refuses_stale
def ship_return(obligation: PartReturn, carrier: str, tracking_number: str) -> None:
    """The agency sends a defective part back. Raises DomainError unless it is still due."""
    if obligation.status != ReturnStatus.DUE:
        raise DomainError(_("This part was already shipped back."))
    obligation.carrier = _required(carrier, "carrier", 64, _("Enter the carrier."))
    obligation.tracking_number = _required(tracking_number, "tracking_number", 64,
                                           _("Enter the tracking number."))
    now = clock.now()
    obligation.status, obligation.shipped_at, obligation.shipped_on = (
        ReturnStatus.SHIPPED, now, clock.local_day(now))
    flush_or_conflict()
    record("part_return.shipped", obligation, before={"status": ReturnStatus.DUE.value},
           after={"status": obligation.status, "carrier": obligation.carrier,
                  "tracking_number": obligation.tracking_number,
                  "late": obligation.shipped_on > obligation.due_on})


@refuses_stale
def inspect_return(obligation: PartReturn, accepted: bool, reason: str = "") -> None:
    """HQ receives and inspects a returned part: accepted, or rejected with a reason."""
    if obligation.status != ReturnStatus.SHIPPED:
        raise DomainError(_("Only parts shipped back and not yet inspected can be inspected."))
    reason = clean_text(reason)
    if not accepted and not 3 <= len(reason) <= 2000:
        raise DomainError(_("Give the reason for the rejection."), field="reason")
    obligation.status = ReturnStatus.ACCEPTED if accepted else ReturnStatus.REJECTED
    obligation.reject_reason = None if accepted else reason
    obligation.inspected_at, obligation.inspected_by_id = clock.now(), actor_id()
    flush_or_conflict()
    record("part_return.inspected", obligation, before={"status": ReturnStatus.SHIPPED.value},
           after={"status": obligation.status}, reason=obligation.reject_reason)
