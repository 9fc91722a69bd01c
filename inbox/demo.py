"""Demo data of the workplace: a lived-in inbox for every demo account.

The other areas' demo history ran through the write path, so every account already holds the
items that history made. This loader adds what a working network also has: the tick's
reminders and escalations, an announcement from HQ that asks for acknowledgement (one agency
has acknowledged it), and the look of days of use: items spread over the past week, older
notices read, the newest unread.
"""
from datetime import timedelta

from sqlalchemy import select, update

from inbox import registry
from inbox.announcements import publish
from inbox.models import TASK, InboxItem
from inbox.notify import raise_items
from inbox.reminders import tick
from inbox.services import acknowledge
from portal import demo
from portal.clock import local_today, now
from portal.extensions import db
from portal.tenancy import unscoped

UNREAD_NOTICES = 3  # per account, the newest


def register() -> None:
    demo.register("inbox", load, order=90)


def load(ctx: dict) -> None:
    users = ctx.get("users", {})
    with unscoped("demo data fills every account's inbox"):
        _waiting_parts_requests()
        _spread_over_the_week()
        _follow_the_backdated_deadlines()
        tick()  # the reminders and escalations the demo's dates make due
        admin = users.get("admin@hq.demo")
        if admin is None:
            return
        announcement = publish(None, {
            "title": "2027 年春节期间服务保障安排",
            "body": ("各服务网点：\n\n春节期间（2 月 10 日至 2 月 17 日）请安排**值班工程师**，"
                     "并于节前完成以下事项：\n- 核对备件库存，补足常用件\n"
                     "- 更新网点值班电话\n- 确认本季度未返还的旧件已寄回\n\n"
                     "详细要求见服务政策页面。总部服务部"),
            "audience": "agencies", "staff_too": False, "requires_ack": True,
            "ack_by": local_today() + timedelta(days=10)}, acting_user=admin)
        publish(None, {
            "title": "第四季度内部审计安排",
            "body": ("总部各部门：\n\n内部审计将于下周开始抽查本季度的结算审核与配件发放记录，"
                     "请各部门在周五前整理好**审批依据**并确认收到本通知。\n\n审计部"),
            "audience": "hq", "requires_ack": True,
            "ack_by": local_today() + timedelta(days=5)}, acting_user=admin)
        owner = users.get("owner@gd-c01.demo")
        if owner is not None:
            item = db.session.scalars(select(InboxItem).where(
                InboxItem.announcement_id == announcement.id,
                InboxItem.recipient_id == owner.id)).one_or_none()
            if item is not None:
                acknowledge(item, acting_user=owner)
        db.session.flush()


def _waiting_parts_requests() -> None:
    """The service demo writes its parts requests in bulk, beside the write path: the requests
    still waiting for HQ's decision get the parts desk's task they would have made."""
    from service.models import PartsRequest

    declared = registry.get("parts_request.submitted")
    for request in db.session.scalars(select(PartsRequest).where(
            PartsRequest.status == "submitted").order_by(PartsRequest.id)):
        raise_items(declared, registry.Context(request, None, request.agency_id))


def _follow_the_backdated_deadlines() -> None:
    """The evaluation demo backdates its quarters after publishing them: the agencies' tasks
    take the deadlines the quarters ended up with (the tick then closes those past)."""
    from evaluation.models import Quarter, Result

    rows = db.session.execute(
        select(InboxItem.id, Quarter.appeal_deadline_at)
        .join(Result, Result.id == InboxItem.subject_id)
        .join(Quarter, Quarter.id == Result.quarter_id)
        .where(InboxItem.subject_type == "evaluation_results",
               InboxItem.event == "evaluation.published")).all()
    if rows:
        db.session.execute(update(InboxItem), [{"id": i, "due_at": due} for i, due in rows])


def _spread_over_the_week() -> None:
    """Items made by the demo's history all carry the loading minute: date them back over the
    past days (older first), read all but the newest notices, give open tasks a deadline."""
    moment = now()
    rows = db.session.execute(
        select(InboxItem.id, InboxItem.recipient_id, InboxItem.kind, InboxItem.due_at,
               InboxItem.closed_at)
        .order_by(InboxItem.recipient_id, InboxItem.id.desc())).all()
    changes, seen, notices = [], {}, {}
    for item_id, recipient, kind, due_at, closed_at in rows:
        rank = seen[recipient] = seen.get(recipient, -1) + 1
        created = moment - timedelta(hours=5 + 9 * rank)
        change = {"id": item_id, "created_at": created}
        if kind != TASK:
            count = notices[recipient] = notices.get(recipient, 0) + 1
            if count > UNREAD_NOTICES:
                change["read_at"] = created + timedelta(hours=2)
        elif due_at is None and closed_at is None:
            # A working deadline (three days to answer): some due soon, some overdue.
            change["due_at"] = created + timedelta(days=3)
        changes.append(change)
    if changes:
        db.session.execute(update(InboxItem), changes)
    db.session.flush()
