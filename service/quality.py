"""Service quality: customer revisits (回访) and complaints (投诉).

Transitions: ``revisit.recorded`` / ``revisit.corrected`` (HQ's service desk, one revisit per
completed order), ``complaint.recorded`` (HQ) → ``complaint.responded`` (the agency, once) →
``complaint.closed`` (HQ's verdict, with or without an answer).
"""
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import describe, note, transition
from service import policy
from service.common import CLOCK_SKEW
from service.models import (
    COMPLAINT_STATUS_LABELS,
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

describe(Revisit, _l("revisit"))
describe(Complaint, _l("complaint"), lambda c: COMPLAINT_STATUS_LABELS.get(c.status, c.status))


def _text(value, field: str, message: str, *, low: int = 1, high: int = MAX_TEXT) -> str:
    text = clean(value, multiline=True)
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
    comment = clean(comment, multiline=True)
    if len(comment) > MAX_TEXT:
        raise DomainError(_("The comment is too long."), field="comment")
    return {"score": score, "comment": comment,
            "revisited_at": _moment(revisited_at, "revisited_at", order.completed_at)}


def find_revisit(order: WorkOrder) -> Revisit | None:
    return db.session.scalars(select(Revisit).where(
        Revisit.agency_id == order.agency_id, Revisit.work_order_id == order.id)).one_or_none()


def write_revisit(order: WorkOrder, clean: dict, acting_user
                  ) -> tuple[Revisit, dict | None, dict | None]:
    """Create or correct the order's revisit; returns it and (before, after) when changed."""
    revisit = find_revisit(order)
    user_id = getattr(acting_user, "id", None)
    if revisit is None:
        revisit = Revisit(agency_id=order.agency_id, work_order_id=order.id,
                          recorded_by_id=user_id, **clean)
        db.session.add(revisit)
        db.session.flush()
        return revisit, None, {"score": clean["score"], "comment": clean["comment"]}
    before = {"score": revisit.score, "comment": revisit.comment}
    after = {"score": clean["score"], "comment": clean["comment"]}
    if before == after:
        return revisit, None, None
    revisit.score, revisit.comment = clean["score"], clean["comment"]
    revisit.revisited_at, revisit.recorded_by_id = clean["revisited_at"], user_id
    db.session.flush()
    return revisit, before, after


def record_revisit(order: WorkOrder, score, comment: str, revisited_at=None, *,
                   acting_user) -> Revisit:
    """Record (or correct) the customer's 1–5 score of a completed order; one per order.

    Raises DomainError for an open order or a score out of range.
    """
    existing = find_revisit(order)
    if existing is None:
        return _record_revisit(order, score, comment, revisited_at, acting_user=acting_user)
    return _correct_revisit(existing, order, score, comment, revisited_at,
                            acting_user=acting_user)


@transition("revisit.recorded", Revisit, label=_l("Revisit recorded"),
            permission=policy.RECORD_REVISIT, creates=True)
def _record_revisit(order: WorkOrder, score, comment, revisited_at, *, acting_user) -> Revisit:
    return _write_revisit(order, score, comment, revisited_at, acting_user)


@transition("revisit.corrected", Revisit, label=_l("Revisit corrected"),
            permission=policy.RECORD_REVISIT)
def _correct_revisit(revisit: Revisit, order: WorkOrder, score, comment, revisited_at, *,
                     acting_user) -> Revisit:
    return _write_revisit(order, score, comment, revisited_at, acting_user)


def _write_revisit(order, score, comment, revisited_at, acting_user) -> Revisit:
    checked = check_revisit(order, score, comment, revisited_at)
    revisit, before, after = write_revisit(order, checked, acting_user)
    note(record=revisit, before=before, after={**(after or {}), "work_order_id": order.id})
    return revisit


# --- complaints -------------------------------------------------------------------------------


@transition("complaint.recorded", Complaint, label=_l("Complaint recorded"),
            permission=policy.RECORD_COMPLAINT, creates=True)
def create_complaint(agency: Agency, data: dict, *, acting_user) -> Complaint:
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
    number = clean(data.get("order_number"), limit=64)
    if number:
        order_id = db.session.scalar(select(WorkOrder.id).where(
            WorkOrder.agency_id == agency.id, WorkOrder.number == number))
        if order_id is None:
            raise DomainError(_("This agency has no order %(number)s.", number=number),
                              field="order_number")
    complaint = Complaint(agency_id=agency.id, work_order_id=order_id,
                          channel=data["channel"], severity=data["severity"],
                          description=description, status=ComplaintStatus.OPEN,
                          received_at=received_at,
                          recorded_by_id=getattr(acting_user, "id", None))
    db.session.add(complaint)
    db.session.flush()
    note(after={"status": complaint.status, "channel": complaint.channel,
                "severity": complaint.severity, "work_order_id": order_id})
    return complaint


@transition("complaint.responded", Complaint, label=_l("Complaint answered"),
            permission=policy.RESPOND_COMPLAINT, source={ComplaintStatus.OPEN},
            target=ComplaintStatus.RESPONDED,
            wrong_state=_l("This complaint was already answered."))
def respond_to_complaint(complaint: Complaint, response: str, *, acting_user) -> None:
    """The agency answers an open complaint once. Raises DomainError otherwise."""
    complaint.response = _text(response, "response",
                               _("Write your response (up to 4000 characters)."), low=2)
    complaint.responded_at = clock.now()
    complaint.responded_by_id = getattr(acting_user, "id", None)
    note(before={"status": ComplaintStatus.OPEN.value},
         after={"status": ComplaintStatus.RESPONDED.value})


@transition("complaint.closed", Complaint, label=_l("Complaint closed"),
            permission=policy.CLOSE_COMPLAINT,
            source={ComplaintStatus.OPEN, ComplaintStatus.RESPONDED},
            target=ComplaintStatus.CLOSED, wrong_state=_l("This complaint is already closed."))
def give_verdict(complaint: Complaint, verdict: str, explanation: str, *, acting_user) -> None:
    """HQ judges the complaint substantiated or not and closes it.

    Allowed after the agency answered, or without an answer (the agency let it lie).
    Raises DomainError when it is already closed or the verdict is unknown.
    """
    if verdict not in {v.value for v in Verdict}:
        raise DomainError(_("Choose the verdict."), field="verdict")
    before = complaint.status
    complaint.verdict = verdict
    complaint.verdict_note = _text(explanation, "verdict_note",
                                   _("Explain the verdict (up to 4000 characters)."), low=2)
    complaint.closed_at = clock.now()
    complaint.closed_by_id = getattr(acting_user, "id", None)
    note(before={"status": before},
         after={"status": ComplaintStatus.CLOSED.value, "verdict": verdict})
