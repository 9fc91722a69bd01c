"""Parts supply: requests (submitted → approved/rejected → shipped → received) and returns.

Each step is a transition (portal.transitions) with one audit entry: a request is shipped
once and received only after it was shipped (the declared source states, and the version
column against races); a defective part goes back (due → shipped) and HQ inspects it
(shipped → accepted or rejected).
"""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.numbering import next_number
from portal.text import clean
from portal.transitions import describe, note, transition
from service import policy, stock
from service.common import db_id
from service.models import (
    REQUEST_STATUS_LABELS,
    RETURN_STATUS_LABELS,
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

describe(PartsRequest, _l("parts request"),
         lambda r: REQUEST_STATUS_LABELS.get(r.status, r.status))
describe(PartReturn, _l("part return"), lambda r: RETURN_STATUS_LABELS.get(r.status, r.status))


def _text(value, limit: int) -> str:
    return clean(value, multiline=True, limit=limit)


def _required(value, field: str, limit: int, message: str) -> str:
    text = clean(value)
    if not text or len(text) > limit:
        raise DomainError(message, field=field)
    return text


def _shipment(carrier, tracking_number) -> tuple[str, str]:
    """The carrier and tracking number of a shipment, both required."""
    return (_required(carrier, "carrier", 64, _("Enter the carrier.")),
            _required(tracking_number, "tracking_number", 64,
                      _("Enter the tracking number.")))


# --- requests -------------------------------------------------------------------------------


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
    checked = []
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
        checked.append({"part_id": part.id, "quantity": quantity, "reason": reason,
                        "work_order_id": order_id})
    return checked


@transition("parts_request.submitted", PartsRequest, label=_l("Parts request submitted"),
            permission=policy.SUBMIT_REQUEST, creates=True)
def create_parts_request(agency: Agency, lines: list[dict], remark: str = "", *,
                         acting_user) -> PartsRequest:
    """Submit a request for parts. Raises DomainError for an empty or bad line."""
    checked = _check_lines(agency, lines)
    number = next_number(PartsRequest.number, f"PR{clock.local_today():%Y%m%d}-",
                         agency_id=agency.id)
    request = PartsRequest(agency_id=agency.id, number=number, status=RequestStatus.SUBMITTED,
                           note=_text(remark, 2000),
                           submitted_by_id=getattr(acting_user, "id", None))
    db.session.add(request)
    db.session.flush()
    for line in checked:
        db.session.add(PartsRequestLine(agency_id=agency.id, request_id=request.id, **line))
    note(after={"number": request.number, "status": request.status, "lines": checked})
    return request


def _lines(request: PartsRequest) -> list[PartsRequestLine]:
    return list(db.session.scalars(select(PartsRequestLine).where(
        PartsRequestLine.agency_id == request.agency_id,
        PartsRequestLine.request_id == request.id).order_by(PartsRequestLine.id)))


@transition("parts_request.decided", PartsRequest, label=_l("Parts request decided"),
            permission=policy.DECIDE_REQUEST, source={RequestStatus.SUBMITTED},
            wrong_state=_l("Only submitted requests can be decided."))
def decide_parts_request(request: PartsRequest, decisions: dict[int, dict], *,
                         acting_user) -> None:
    """HQ approves each line (1 ≤ approved ≤ requested) or rejects it with a reason.

    `decisions` maps every line id to {"decision", "approved_quantity", "reject_reason"}.
    Raises DomainError unless the request is submitted and every line is decided well.
    """
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
    request.decided_at, request.decided_by_id = clock.now(), getattr(acting_user, "id", None)
    note(before={"status": RequestStatus.SUBMITTED.value},
         after={"status": request.status,
                "lines": [(line.id, str(decision), quantity, reason)
                          for line, decision, quantity, reason in plan]})


def _not_approved(request: PartsRequest):
    if request.status in (RequestStatus.SHIPPED, RequestStatus.RECEIVED):
        return _("This request was already shipped.")
    return _("Only approved requests can be shipped.")


@transition("parts_request.shipped", PartsRequest, label=_l("Parts request shipped"),
            permission=policy.SHIP_REQUEST, source={RequestStatus.APPROVED},
            target=RequestStatus.SHIPPED, wrong_state=_not_approved)
def ship_parts_request(request: PartsRequest, carrier: str, tracking_number: str, *,
                       acting_user) -> None:
    """HQ ships the approved lines once. Raises DomainError otherwise."""
    request.carrier, request.tracking_number = _shipment(carrier, tracking_number)
    request.shipped_at, request.shipped_by_id = clock.now(), getattr(acting_user, "id", None)
    note(before={"status": RequestStatus.APPROVED.value},
         after={"status": RequestStatus.SHIPPED.value, "carrier": request.carrier,
                "tracking_number": request.tracking_number})


def _not_shipped(request: PartsRequest):
    if request.status == RequestStatus.RECEIVED:
        return _("This request was already received.")
    return _("A request can be received only after it was shipped.")


@transition("parts_request.received", PartsRequest, label=_l("Parts received"),
            permission=policy.RECEIVE_REQUEST, source={RequestStatus.SHIPPED},
            target=RequestStatus.RECEIVED, wrong_state=_not_shipped)
def receive_parts_request(request: PartsRequest, receipts: dict[int, dict], *,
                          acting_user) -> None:
    """The agency confirms what arrived, line by line; the parts enter its stock.

    `receipts` maps each approved line id to {"received_quantity", "discrepancy_note"}; a
    quantity other than the approved one needs a note. Raises DomainError before shipping.
    """
    lines = [line for line in _lines(request) if line.decision == LineDecision.APPROVED]
    if set(receipts) != {line.id for line in lines}:
        raise DomainError(_("Confirm every approved line."))
    plan = []
    for line in lines:
        quantity = receipts[line.id].get("received_quantity")
        if not isinstance(quantity, int) or not 0 <= quantity <= line.approved_quantity:
            raise DomainError(_("The received quantity must be between 0 and the %(n)s "
                                "shipped.", n=line.approved_quantity))
        remark = _text(receipts[line.id].get("discrepancy_note"), 500)
        if quantity != line.approved_quantity and not remark:
            raise DomainError(_("Describe the discrepancy of each line that did not arrive "
                                "in full."))
        plan.append((line, quantity, remark or None))
    for line, quantity, remark in plan:
        line.received_quantity, line.discrepancy_note = quantity, remark
        stock.receive(request.agency_id, line.part_id, quantity)
    request.received_at, request.received_by_id = clock.now(), getattr(acting_user, "id", None)
    note(before={"status": RequestStatus.SHIPPED.value},
         after={"status": RequestStatus.RECEIVED.value,
                "lines": [(line.id, line.part_id, quantity, remark)
                          for line, quantity, remark in plan]})


# --- defective-part returns -------------------------------------------------------------------


@transition("part_return.shipped", PartReturn, label=_l("Defective part shipped back"),
            permission=policy.SHIP_RETURN, source={ReturnStatus.DUE},
            target=ReturnStatus.SHIPPED, wrong_state=_l("This part was already shipped back."))
def ship_return(obligation: PartReturn, carrier: str, tracking_number: str, *,
                acting_user) -> None:
    """The agency sends a defective part back. Raises DomainError unless it is still due."""
    obligation.carrier, obligation.tracking_number = _shipment(carrier, tracking_number)
    now = clock.now()
    obligation.shipped_at, obligation.shipped_on = now, clock.local_day(now)
    note(before={"status": ReturnStatus.DUE.value},
         after={"status": ReturnStatus.SHIPPED.value, "carrier": obligation.carrier,
                "tracking_number": obligation.tracking_number,
                "late": obligation.shipped_on > obligation.due_on})


@transition("part_return.inspected", PartReturn, label=_l("Defective part inspected"),
            permission=policy.INSPECT_RETURN, source={ReturnStatus.SHIPPED},
            wrong_state=_l("Only parts shipped back and not yet inspected can be inspected."))
def inspect_return(obligation: PartReturn, accepted: bool, reason: str = "", *,
                   acting_user) -> None:
    """HQ receives and inspects a returned part: accepted, or rejected with a reason."""
    reason = clean(reason, multiline=True)
    if not accepted and not 3 <= len(reason) <= 2000:
        raise DomainError(_("Give the reason for the rejection."), field="reason")
    obligation.status = ReturnStatus.ACCEPTED if accepted else ReturnStatus.REJECTED
    obligation.reject_reason = None if accepted else reason
    obligation.inspected_at = clock.now()
    obligation.inspected_by_id = getattr(acting_user, "id", None)
    note(before={"status": ReturnStatus.SHIPPED.value}, after={"status": obligation.status},
         reason=obligation.reject_reason)
