"""Reading the inbox: a constant number of queries whatever the data size."""
from datetime import date

from flask import g
from sqlalchemy import func, select

from inbox.models import TASK, InboxItem
from portal.extensions import db
from portal.listing import paginate

STATES = ("open", "unread", "all")
KINDS = ("task", "notice")


def open_task_count(user) -> int:
    """The navigation's number: one query, once per request."""
    cached = g.get("_inbox_open_count")
    if cached is None:
        cached = g._inbox_open_count = db.session.scalar(
            select(func.count()).select_from(InboxItem).where(
                InboxItem.recipient_id == user.id, InboxItem.kind == TASK,
                InboxItem.closed_at.is_(None))) or 0
    return cached


def waiting_for(user, limit: int = 5) -> list[InboxItem]:
    """The home page's "waiting for me": open tasks, oldest due first; then the undated ones,
    newest first (a task just arrived is not pushed off the card by old ones)."""
    return list(db.session.scalars(
        select(InboxItem).where(InboxItem.recipient_id == user.id, InboxItem.kind == TASK,
                                InboxItem.closed_at.is_(None))
        .order_by(InboxItem.due_at.is_(None), InboxItem.due_at, InboxItem.created_at.desc(),
                  InboxItem.id.desc()).limit(limit)))


def unread_notice_count(user) -> int:
    return db.session.scalar(select(func.count()).select_from(InboxItem).where(
        InboxItem.recipient_id == user.id, InboxItem.kind != TASK,
        InboxItem.read_at.is_(None))) or 0


def items_page(user, *, state: str = "open", kind: str | None = None,
               category: str | None = None):
    """The inbox list: open tasks and unread notices first by default, newest first."""
    stmt = select(InboxItem).where(InboxItem.recipient_id == user.id)
    if kind in KINDS:
        stmt = stmt.where(InboxItem.kind == kind)
    if category:
        stmt = stmt.where(InboxItem.category == category)
    if state == "open":  # open tasks and unread notices
        stmt = stmt.where(((InboxItem.kind == TASK) & InboxItem.closed_at.is_(None))
                          | ((InboxItem.kind != TASK) & InboxItem.read_at.is_(None)))
    elif state == "unread":
        stmt = stmt.where(InboxItem.read_at.is_(None))
    if state == "open":
        stmt = stmt.order_by(InboxItem.due_at.is_(None), InboxItem.due_at,
                             InboxItem.created_at.desc(), InboxItem.id.desc())
    else:
        stmt = stmt.order_by(InboxItem.created_at.desc(), InboxItem.id.desc())
    return paginate(stmt)


def digest_items(user_id: int, day: date) -> list[InboxItem]:
    """The items the digest of `day` lists: those since the previous digest hour, of the
    categories the user digests."""
    from inbox.models import DIGEST, Preference
    from inbox.reminders import digest_window
    from inbox.settings import current

    start, end = digest_window(day, current().digest_hour)
    digested = select(Preference.category).where(Preference.recipient_id == user_id,
                                                 Preference.mode == DIGEST)
    return list(db.session.scalars(
        select(InboxItem).where(InboxItem.recipient_id == user_id,
                                InboxItem.created_at >= start, InboxItem.created_at < end,
                                InboxItem.category.in_(digested))
        .order_by(InboxItem.created_at, InboxItem.id)))


def own_item(user, item_id: int) -> InboxItem:
    """The user's item; anyone else's is a 404, like a missing one."""
    return db.first_or_404(select(InboxItem).where(InboxItem.id == item_id,
                                                   InboxItem.recipient_id == user.id))
