"""The workplace on an agency's 360 (portal.profile), for HQ: the reader's own open tasks about
the agency, and its complaints past their answer deadline.

Items belong to their recipients (the tenant guard shows a user their own only), and an HQ
recipient's item carries no agency: an item is about the agency when its subject is one of
the agency's rows (a settlement, a complaint, a result…) or the agency itself.
"""
from datetime import timedelta

from flask import url_for
from sqlalchemy import and_, exists, func, or_, select

from inbox import settings
from inbox.models import TASK, InboxItem
from inbox.outbox import item_link, item_title
from portal.auth.roles import HQ_ROLES
from portal.clock import now
from portal.extensions import db
from portal.profile import add_panel
from portal.tenancy import AgencyOwned
from service.api import Complaint, ComplaintStatus

LIMIT = 8
# The agency's records the declared events and reminders name as their subjects
# (inbox.events, inbox.reminders); "agencies" is the agency itself.
SUBJECTS = ("settlements", "complaints", "part_returns", "parts_requests", "certificates",
            "evaluation_results", "evaluation_proposals")


def _owned_models() -> dict:
    """{table name: model} of the agency-owned records items name as their subjects."""
    return {mapper.local_table.name: mapper.class_ for mapper in db.Model.registry.mappers
            if issubclass(mapper.class_, AgencyOwned) and mapper.local_table.name in SUBJECTS}


def about(agency_id: int):
    """SQL: the item's subject is the agency or one of its rows (a key look-up per item)."""
    subjects = [and_(InboxItem.subject_type == "agencies", InboxItem.subject_id == agency_id)]
    for table, model in sorted(_owned_models().items()):
        subjects.append(and_(InboxItem.subject_type == table, exists().where(
            model.agency_id == agency_id, model.id == InboxItem.subject_id)))
    return or_(*subjects)


def _panel(agency, user) -> dict:
    where = (InboxItem.recipient_id == user.id, InboxItem.kind == TASK,
             InboxItem.closed_at.is_(None), about(agency.id))
    items = list(db.session.scalars(
        select(InboxItem).where(*where)
        .order_by(InboxItem.due_at.is_(None), InboxItem.due_at, InboxItem.created_at.desc(),
                  InboxItem.id.desc()).limit(LIMIT)))
    count = db.session.scalar(select(func.count(InboxItem.id)).where(*where))
    hours = settings.current().complaint_response_hours
    late = db.session.scalar(select(func.count(Complaint.id)).where(
        Complaint.agency_id == agency.id, Complaint.status == ComplaintStatus.OPEN,
        Complaint.received_at < now() - timedelta(hours=hours)))
    return {"items": [(item, item_title(item), item_link(item, user.role)) for item in items],
            "count": count, "late_complaints": late, "response_hours": hours,
            "links": {"inbox": url_for("inbox.index", kind="task"),
                      "complaints": url_for("service.complaints", status="open",
                                            agency_code=agency.code)}}


def register() -> None:
    add_panel("inbox/_profile_items.html", HQ_ROLES, _panel, order=50)
