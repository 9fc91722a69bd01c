"""Items from events: set-based creation, self-closing tasks, and the outbox rows they need.

:func:`on_transition` answers every transition of the write path inside its transaction: the
items, the closing of stale tasks and the e-mails to send commit or roll back with the change.
"""
import secrets

from sqlalchemy import (
    JSON,
    String,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    union,
    update,
)
from sqlalchemy.orm import aliased

from inbox import outbox, registry
from inbox.models import IMMEDIATE, QUEUED, TASK, InboxItem, MailMessage, Preference
from inbox.preferences import default_mode
from portal.auth.models import User
from portal.extensions import db
from portal.models import utcnow
from portal.tenancy import unscoped

REASON = "the inbox delivers to recipients outside the actor's scope"


def on_transition(sender, *, record, actor, agency_id, transition, after=None, reason=None,
                  **_kw) -> None:
    """blinker receiver of :data:`portal.transitions.transitioned`."""
    declared = registry.get(transition.name)
    if declared is None:
        return
    ctx = registry.Context(record=record, actor_id=getattr(actor, "id", None),
                           agency_id=agency_id, after=after, reason=reason)
    announcement_id = record.id if declared.category == "announcement" else None
    raise_items(declared, ctx, announcement_id=announcement_id)


def raise_items(declared: registry.Event, ctx: registry.Context, *,
                announcement_id: int | None = None, rows=None) -> int:
    """Close the tasks `declared` ends and create its items; returns how many were created.

    `rows`: a SELECT that replaces the event's audiences: (user_id, agency_id, subject_id,
    label) and optionally (due_at, dedupe_key) per row; with a key, a recipient who already
    holds an item of that key gets none (the tick's reminders, an announcement's reminder)."""
    subject_type, subject_id = declared.subject_of(ctx)
    with unscoped(REASON):
        if declared.closes and subject_id is not None:
            close_tasks(subject_type, [subject_id], declared.closes, by=declared.name)
        if declared.closes and declared.closes_subjects is not None:
            other_type, ids = declared.closes_subjects(ctx)
            close_tasks(other_type, ids, declared.closes, by=declared.name)
        if declared.when is not None and not declared.when(ctx):
            return 0
        return create(declared, ctx, subject_type, subject_id,
                      announcement_id=announcement_id, rows=rows)


def close_tasks(subject_type: str, subject_ids, events, *, by: str) -> int:
    """Close the open tasks of `events` on these subjects (the thing moved on)."""
    result = db.session.execute(
        update(InboxItem)
        .where(InboxItem.subject_type == subject_type, InboxItem.subject_id.in_(subject_ids),
               InboxItem.event.in_(list(events)), InboxItem.kind == TASK,
               InboxItem.closed_at.is_(None))
        .values(closed_at=utcnow(), closed_by=by)
        .execution_options(synchronize_session=False))
    return result.rowcount


def create(declared: registry.Event, ctx: registry.Context, subject_type: str,
           subject_id: int | None, *, announcement_id=None, rows=None) -> int:
    """One INSERT … SELECT of the event's items (and one of their e-mails)."""
    label = declared.label(ctx) if declared.label else None
    params = declared.params(ctx) if declared.params else {}
    due = declared.due(ctx) if declared.due else None
    if rows is None:
        sid, lab = literal(subject_id), literal(label, String)
        parts = [a.select(ctx, sid, lab) for a in declared.audience]
        if not parts:
            return 0
        rows = parts[0] if len(parts) == 1 else union(*parts)
    columns = list(rows.subquery("recipients").c)
    user_id, agency_id, subj, lab = columns[:4]
    # The tick's reminders bring their own due time and occurrence key per row.
    due_at = columns[4] if len(columns) > 4 else literal(due, InboxItem.due_at.type)
    key = columns[5] if len(columns) > 5 else literal(None, String)
    batch = secrets.token_hex(8)
    now = utcnow()
    pick = select(
        user_id, agency_id, literal(declared.name), literal(declared.category),
        literal(registry.kind_for(declared, ctx)), literal(subject_type, String), subj, lab,
        literal(params, JSON), due_at, literal(now, InboxItem.created_at.type),
        literal(announcement_id), key, literal(batch))
    if ctx.actor_id is not None:
        pick = pick.where(user_id != ctx.actor_id)  # nobody is told what they just did
    if len(columns) > 5:
        earlier = aliased(InboxItem)
        pick = pick.where(~exists().where(earlier.recipient_id == user_id,
                                          earlier.dedupe_key == key))
    made = db.session.execute(
        insert(InboxItem).from_select(
            ["recipient_id", "agency_id", "event", "category", "kind", "subject_type",
             "subject_id", "label", "params", "due_at", "created_at", "announcement_id",
             "dedupe_key", "batch"], pick)
        .execution_options(synchronize_session=False, preserve_rowcount=True)).rowcount
    if made:
        queue_mail(batch, declared)
    return made


def queue_mail(batch: str, declared: registry.Event) -> int:
    """Outbox rows for the batch's items whose recipients want them now (or must have them)."""
    if not outbox.enabled():
        return 0

    mode = func.coalesce(
        select(Preference.mode).where(Preference.recipient_id == InboxItem.recipient_id,
                                      Preference.category == InboxItem.category)
        .scalar_subquery(), literal(default_mode(declared.category)))
    wanted = true() if declared.legal else mode == IMMEDIATE
    now = utcnow()
    pick = (select(InboxItem.recipient_id, InboxItem.agency_id, literal("item"), InboxItem.id,
                   literal(QUEUED), literal(0), literal(now, MailMessage.created_at.type),
                   literal(now, MailMessage.created_at.type), User.email)
            .join(User, User.id == InboxItem.recipient_id)
            .where(InboxItem.batch == batch, User.is_active_account.is_(True), wanted))
    made = db.session.execute(
        insert(MailMessage).from_select(
            ["recipient_id", "agency_id", "kind", "item_id", "status", "attempts",
             "next_attempt_at", "created_at", "to_address"], pick)
        .execution_options(synchronize_session=False, preserve_rowcount=True)).rowcount
    if made:
        outbox.wake_after_commit()
    return made

