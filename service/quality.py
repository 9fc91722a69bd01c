"""Service quality: customer revisits (回访) and complaints (投诉)."""
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from portal import clock
from portal.audit.services import record
from portal.errors_domain import DomainError
from portal.extensions import db
from service.common import CLOCK_SKEW, actor_id, clean_text, flush_or_conflict, refuses_stale
from service.models import (
    Channel,
    Complaint,
    ComplaintStatus,
    OrderStatus,
    Revisit,
    Severity,
    Verdict,
    WorkOrder,
)
from tenants.models import Agency

MAX_TEXT = 4000


def _text(value, field: str, message: str, *, low: int = 1, high: int = MAX_TEXT) -> str:
    text = clean_text(value)
    if not low <= len(text) <= high:
        raise DomainError(message, field=field)
    return text


def _moment(value, field: str, after: datetime | None = None) -> datetime:
    now = clock.now()
    moment = value or now
    if moment > now + CLOCK_SKEW:
        raise DomainError(_("This time cannot be in the future."), field=field)
    if after is not None and moment < after:
        raise DomainError(_("This time is before the order was completed."), field=field)
    return moment


# --- revisits ---------------------------------------------------------------------------------


def check_revisit(order: WorkOrder, score, comment: str, revisited_at=None) -> dict:
    if order.status != OrderStatus.COMPLETED:
        raise DomainError(_("Only completed orders are revisited."))
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise DomainError(_("The score is a whole number from 1 to 5."), field="score")
    comment = clean_text(comment)
    if len(comment) > MAX_TEXT:
        raise DomainError(_("The comment is too long."), field="comment")
    return {"score": score, "comment": comment,
            "revisited_at": _moment(revisited_at, "revisited_at", order.completed_at)}


def write_revisit(order: WorkOrder, clean: dict) -> tuple[Revisit, dict | None, dict | None]:
    """Create or correct the order's revisit; returns it and (before, after) when changed."""
    revisit = db.session.scalars(select(Revisit).where(
        Revisit.agency_id == order.agency_id, Revisit.work_order_id == order.id)).one_or_none()
    if revisit is None:
        revisit = Revisit(agency_id=order.agency_id, work_order_id=order.id,
                          recorded_by_id=actor_id(), **clean)
        db.session.add(revisit)
        db.session.flush()
        return revisit, None, {"score": clean["score"], "comment": clean["comment"]}
    before = {"score": revisit.score, "comment": revisit.comment}
    after = {"score": clean["score"], "comment": clean["comment"]}
    if before == after:
        return revisit, None, None
    revisit.score, revisit.comment = clean["score"], clean["comment"]
    revisit.revisited_at, revisit.recorded_by_id = clean["revisited_at"], actor_id()
    db.session.flush()
    return revisit, before, after


def record_revisit(order: WorkOrder, score, comment: str, revisited_at=None) -> Revisit:
    """Record (or correct) the customer's 1–5 score of a completed order; one per order.

    Raises DomainError for an open order or a score out of range.
    """
    clean = check_revisit(order, score, comment, revisited_at)
    revisit, before, after = write_revisit(order, clean)
    created = before is None and after is not None
    record("revisit.recorded" if created else "revisit.corrected", revisit, before=before,
           after={**(after or {}), "work_order_id": order.id})
    return revisit


# --- complaints -------------------------------------------------------------------------------


def create_complaint(agency: Agency, data: dict) -> Complaint:
    """HQ records a complaint against `agency`, optionally about one of its orders.

    `data["order_number"]` names the order; raises DomainError when the agency has no such
    order, or for an unknown channel or severity.
    """
    if data.get("channel") not in {c.value for c in Channel}:
        raise DomainError(_("Choose the channel."), field="channel")
    if data.get("severity") not in {s.value for s in Severity}:
        raise DomainError(_("Choose the severity."), field="severity")
    description = _text(data.get("description"), "description",
                        _("Describe the complaint (up to 4000 characters)."), low=2)
    # A typed time a few minutes ahead (clock drift) is now: the agency's response, stamped
    # by the server, must never come before it.
    received_at = min(_moment(data.get("received_at"), "received_at"), clock.now())
    order_id = None
    number = clean_text(data.get("order_number"))[:64]
    if number:
        order_id = db.session.scalar(select(WorkOrder.id).where(
            WorkOrder.agency_id == agency.id, WorkOrder.number == number))
        if order_id is None:
            raise DomainError(_("This agency has no order %(number)s.", number=number),
                              field="order_number")
    complaint = Complaint(agency_id=agency.id, work_order_id=order_id,
                          channel=data["channel"], severity=data["severity"],
                          description=description, status=ComplaintStatus.OPEN,
                          received_at=received_at, recorded_by_id=actor_id())
    db.session.add(complaint)
    flush_or_conflict()
    record("complaint.recorded", complaint, after={
        "status": complaint.status, "channel": complaint.channel,
        "severity": complaint.severity, "work_order_id": order_id})
    return complaint


@refuses_stale
def respond_to_complaint(complaint: Complaint, response: str) -> None:
    """The agency answers an open complaint once. Raises DomainError otherwise."""
    if complaint.status != ComplaintStatus.OPEN:
        raise DomainError(_("This complaint was already answered."))
    complaint.response = _text(response, "response",
                               _("Write your response (up to 4000 characters)."), low=2)
    complaint.status = ComplaintStatus.RESPONDED
    complaint.responded_at, complaint.responded_by_id = clock.now(), actor_id()
    flush_or_conflict()
    record("complaint.responded", complaint, before={"status": ComplaintStatus.OPEN.value},
           after={"status": complaint.status})


@refuses_stale
def give_verdict(complaint: Complaint, verdict: str, note: str) -> None:
    """HQ judges the complaint substantiated or not and closes it.

    Allowed after the agency answered, or without an answer (the agency let it lie).
    Raises DomainError when it is already closed or the verdict is unknown.
    """
    if complaint.status == ComplaintStatus.CLOSED:
        raise DomainError(_("This complaint is already closed."))
    if verdict not in {v.value for v in Verdict}:
        raise DomainError(_("Choose the verdict."), field="verdict")
    before = complaint.status
    complaint.verdict = verdict
    complaint.verdict_note = _text(note, "verdict_note",
                                   _("Explain the verdict (up to 4000 characters)."), low=2)
    complaint.status = ComplaintStatus.CLOSED
    complaint.closed_at, complaint.closed_by_id = clock.now(), actor_id()
    flush_or_conflict()
    record("complaint.closed", complaint, before={"status": before},
           after={"status": complaint.status, "verdict": verdict})
