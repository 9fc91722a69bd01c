"""What creates inbox items: one declaration per event (a registry, not `if` chains).

An :class:`Event` says, for a transition of the write path (or a reminder of the tick):
its category, whether it is a task or a notice, who receives it (:class:`Audience`), when a
task is due, which open tasks on the same subject it closes, and how an item names and links
its subject. Transitions that tell nobody anything are declared :func:`silent`, with the
reason; a test checks that every transition is one or the other.

Audiences are SQL: each returns a SELECT of ``(user_id, agency_id, subject_id, label)``, so an
event that reaches many people (a quarter published to every agency) is one INSERT … SELECT.
"""
from dataclasses import dataclass
from datetime import datetime
from types import FunctionType
from typing import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, false, select

from inbox.models import NOTICE, TASK
from portal.auth.models import User
from portal.auth.roles import Role

# Categories: what a user sets an e-mail preference for.
CATEGORIES: dict[str, object] = {
    "settlement": _l("Settlements"),
    "certification": _l("Certification"),
    "parts": _l("Parts and returns"),
    "quality": _l("Complaints and quality"),
    "evaluation": _l("Evaluation"),
    "dispatch": _l("Dispatch"),
    "escalation": _l("Escalations"),
    "announcement": _l("Announcements"),
}


@dataclass(frozen=True)
class Context:
    """What an audience and the event's functions get: the record and who moved it."""

    record: object
    actor_id: int | None
    agency_id: int | None
    after: dict | None = None  # the audit entry's after-values (which line, what decision)
    reason: str | None = None  # the audit entry's reason (HQ's comment on a return)


@dataclass(frozen=True)
class Audience:
    """Recipients as a SELECT of (user_id, agency_id, subject_id, label) for a context."""

    select: Callable[[Context, object, object], object]  # (ctx, subject_id, label) -> Select
    describe: object = ""  # for the declared table in the docs and tests


def _users(criteria, subject_id, label):
    return select(User.id, User.agency_id, subject_id, label).where(
        User.is_active_account.is_(True), criteria)


def agency_users(*roles: Role) -> Audience:
    """The accounts of the record's agency with one of `roles`."""
    return Audience(lambda ctx, sid, label: _users(
        and_(User.agency_id == ctx.agency_id, User.role.in_([str(r) for r in roles])),
        sid, label), describe="agency:" + ",".join(roles))


def hq(*roles: Role) -> Audience:
    """HQ's accounts with one of `roles`."""
    return Audience(lambda ctx, sid, label: _users(
        User.role.in_([str(r) for r in roles]), sid, label), describe="hq:" + ",".join(roles))


def region_manager() -> Audience:
    """The regional manager(s) of the record's agency's region."""
    from tenants.models import Agency

    return Audience(lambda ctx, sid, label: _users(and_(
        User.role == str(Role.REGIONAL_MANAGER),
        User.region_id == select(Agency.region_id).where(Agency.id == ctx.agency_id)
        .scalar_subquery()), sid, label), describe="regional_manager")


def account(user_id: Callable[[Context], int | None], describe: str) -> Audience:
    """One account named by the record (an engineer's own, the author of an appeal…)."""
    return Audience(lambda ctx, sid, label: _users(User.id == user_id(ctx), sid, label),
                    describe=describe)


def only_if(test: Callable[[Context], bool], audience: Audience) -> Audience:
    """`audience` when `test(ctx)` holds, else nobody (the next actor depends on the record)."""
    def pick(ctx, sid, label):
        rows = audience.select(ctx, sid, label)
        return rows if test(ctx) else rows.where(false())
    return Audience(pick, describe=f"{audience.describe} (when it applies)")


def fanout(rows: Callable[[Context], object], describe: str) -> Audience:
    """Recipients with a subject each (every agency's owner and that agency's result)."""
    return Audience(lambda ctx, sid, label: rows(ctx), describe=describe)


@dataclass(frozen=True)
class Event:
    name: str
    category: str
    title: object  # lazy text; may use %(label)s and the item's params
    audience: tuple[Audience, ...]
    kind: str = NOTICE
    kind_of: Callable[[Context], str] | None = None  # a task or a notice, by the record
    link: Callable[[object], str | None] | None = None  # item -> URL (in a request)
    subject: Callable[[Context], tuple[str, int | None]] | None = None
    label: Callable[[Context], str | None] | None = None
    params: Callable[[Context], dict] | None = None
    due: Callable[[Context], datetime | None] | None = None
    closes: tuple[str, ...] = ()  # events whose open tasks on the same subject this closes
    # Where the closed tasks' subjects are other rows: (subject type, SELECT of their ids)
    # (a quarter made final closes every result's acknowledge-or-appeal task).
    closes_subjects: Callable[[Context], tuple[str, object]] | None = None
    when: Callable[[Context], bool] | None = None  # this occurrence tells anyone at all?
    # Tasks whose deadline binds by contract or law: e-mailed whatever the preference.
    legal: bool = False
    # The reminder, escalation or announcement the tick or HQ creates (not a transition).
    scheduled: bool = False

    def title_for(self, params: dict):
        """The title's text (lazy), for an item's params."""
        return self.title(params) if isinstance(self.title, FunctionType) else self.title

    def subject_of(self, ctx: Context) -> tuple[str, int | None]:
        if self.subject:
            return self.subject(ctx)
        return type(ctx.record).__tablename__, getattr(ctx.record, "id", None)


_events: dict[str, Event] = {}
_silent: dict[str, object] = {}


def event(name: str, category: str, title, *audience: Audience, **kw) -> Event:
    if name in _events or name in _silent:
        raise ValueError(f"inbox event {name!r} is declared twice")
    if category not in CATEGORIES:
        raise ValueError(f"unknown inbox category {category!r}")
    declared = Event(name, category, title, tuple(audience), **kw)
    _events[name] = declared
    return declared


def task(name: str, category: str, title, *audience: Audience, **kw) -> Event:
    return event(name, category, title, *audience, kind=TASK, **kw)


def kind_for(declared: Event, ctx: Context) -> str:
    return declared.kind_of(ctx) if declared.kind_of else declared.kind


def silent(reason, *names: str) -> None:
    """Transitions that create no item, and why."""
    for name in names:
        if name in _events or name in _silent:
            raise ValueError(f"inbox event {name!r} is declared twice")
        _silent[name] = reason


def events() -> dict[str, Event]:
    return dict(_events)


def silent_events() -> dict[str, object]:
    return dict(_silent)


def get(name: str) -> Event | None:
    return _events.get(name)

