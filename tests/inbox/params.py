"""Isolation-test parameters of the workplace (see tests/isolation_params.py).

Items, e-mails and announcements are made for the given agency's owner and carry the agency's
canary: another agency (or region) must neither open them nor see the canary.
"""
from sqlalchemy import select

from inbox.models import Announcement, InboxItem, MailMessage
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db

# Imported by tests/isolation_params.py once it has defined these (never import this first).
from tests.isolation_params import Owned  # noqa: E402,I001


def _canary(agency) -> str:
    return next((w for w in agency.legal_name.split() if w.startswith("CANARY")), "")


def _owner(agency) -> User:
    return db.session.scalars(select(User).where(User.agency_id == agency.id,
                                                 User.role == str(Role.AGENCY_OWNER))).first()


def _item(world, agency, **values) -> InboxItem:
    owner = _owner(agency)
    item = InboxItem(recipient_id=owner.id, agency_id=agency.id, event="settlement.returned",
                     category="settlement", kind="task", subject_type="settlements",
                     label=f"JS-{_canary(agency)}", params={}, **values)
    db.session.add(item)
    db.session.flush()
    return item


def _message(world, agency) -> int:
    item = _item(world, agency)
    message = MailMessage(recipient_id=item.recipient_id, agency_id=agency.id, item_id=item.id,
                          status="failed", attempts=6, to_address="owner@example.com",
                          subject=f"退回 {_canary(agency)}", last_error="refused")
    db.session.add(message)
    db.session.flush()
    return message.id


def _announcement(world, agency) -> int:
    announcement = Announcement(title=f"通知 {_canary(agency)}", body=f"正文 {_canary(agency)}",
                                audience="agencies", requires_ack=False, recipient_count=1)
    db.session.add(announcement)
    db.session.flush()
    _item(world, agency, announcement_id=announcement.id)
    item = db.session.scalars(select(InboxItem).where(
        InboxItem.announcement_id == announcement.id)).one()
    item.event, item.category, item.subject_type = ("announcement.published", "announcement",
                                                     "announcements")
    item.subject_id = announcement.id
    db.session.flush()
    return announcement.id


PARAMS = {
    "item_id": Owned(lambda world, agency: _item(world, agency).id),
    "message_id": Owned(_message),
    "announcement_id": Owned(_announcement),
}
