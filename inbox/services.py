"""Marking items read and acknowledging them: the recipient's own transitions."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, update

from inbox import policy
from inbox.models import InboxItem
from portal.auth.models import User
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.transitions import note, transition


@transition("inbox.read", InboxItem, permission=policy.READ, label=_l("Inbox item read"))
def mark_read(item: InboxItem, *, acting_user) -> None:
    if item.read_at is None:
        item.read_at = utcnow()
    note(agency_id=item.agency_id)


@transition("inbox.read_all", User, permission=policy.READ_ALL,
            label=_l("Whole inbox marked read"))
def mark_all_read(user: User, *, acting_user) -> int:
    done = db.session.execute(
        update(InboxItem).where(InboxItem.recipient_id == user.id, InboxItem.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    note(after={"items": done}, agency_id=user.agency_id)
    return done


@transition("inbox.acknowledged", InboxItem, permission=policy.ACKNOWLEDGE,
            label=_l("Announcement acknowledged"))
def acknowledge(item: InboxItem, *, acting_user) -> None:
    """Confirm an announcement that asks for it (reads it too, and closes the task)."""
    if item.announcement_id is None:
        raise DomainError(_("Only announcements are acknowledged."))
    if item.acknowledged_at is not None:
        raise DomainError(_("You already acknowledged this announcement."))
    now = utcnow()
    item.acknowledged_at = now
    item.read_at = item.read_at or now
    if item.closed_at is None and item.kind == "task":
        item.closed_at, item.closed_by = now, "inbox.acknowledged"
    # The reminders of the same announcement close too.
    db.session.execute(
        update(InboxItem).where(InboxItem.recipient_id == item.recipient_id,
                                InboxItem.announcement_id == item.announcement_id,
                                InboxItem.id != item.id, InboxItem.closed_at.is_(None))
        .values(closed_at=now, closed_by="inbox.acknowledged",
                read_at=func.coalesce(InboxItem.read_at, now))
        .execution_options(synchronize_session=False))
    note(agency_id=item.agency_id, object_type="Announcement",
         object_id=item.announcement_id)
