"""The one write path: every state or money change is a declared transition.

A service becomes a transition by its decorator::

    @transition("settlement.submitted", Settlement, source={Status.DRAFT, Status.RETURNED},
                target=Status.SUBMITTED, permission=policy.SUBMIT, versioned=True,
                label=_l("Submitted"), audit=amounts)
    def submit_settlement(settlement, *, acting_user):
        ...  # only the business rule

Called as ``submit_settlement(settlement, acting_user=user, seen_version=form.version.data)``,
the decorator, in this order:

1. asks the area's policy whether `acting_user` may (``None`` is the system: a job or a
   command), and refuses with the policy's message;
2. checks the version the page showed (``seen_version=``) and the starting state; a stale page
   is the one message :data:`STALE` everywhere;
3. runs the body and flushes; a row someone else changed meanwhile (SQLAlchemy's
   ``StaleDataError``, at any flush inside) is the same :data:`STALE` message; nothing else
   in the code handles ``StaleDataError``;
4. sets the target state (when the transition names one);
5. writes the single audit entry (action = the transition's name; before/after from its
   `audit` function; the body may add a reason or values with :func:`note`);
6. sends the transition's signal and :data:`transitioned` (blinker) with the record, the
   transition, the actor and the agency, inside the transaction: a receiver's writes commit
   or roll back with the change.

The decorator never commits: the request's one commit point (:func:`portal.commit.perform`),
a job or a command commits.
"""
import contextvars
from dataclasses import dataclass, field
from functools import wraps
from typing import Callable

from blinker import Namespace
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from portal import policy
from portal.errors_domain import DomainError
from portal.extensions import db

signals = Namespace()
# Every transition, whatever its kind: sender is the Transition; kwargs record, actor,
# agency_id, transition, after (the audit entry's after-values: what the change was) and
# reason (the entry's reason: a comment, a reference).
transitioned = signals.signal("transitioned")

STALE = _l("Someone else changed this record meanwhile: the page was out of date. Nothing "
           "was changed; reload the page and try again.")


@dataclass(frozen=True)
class Kind:
    """How the write path speaks of a record type in its messages."""

    noun: object  # lazy: "settlement"
    state_label: Callable | None = None  # record -> the state as the user reads it


_kinds: dict[type, Kind] = {}


def describe(model: type, noun, state_label: Callable | None = None) -> None:
    """Name a record type for the write path's messages ("the settlement is “Paid”")."""
    _kinds[model] = Kind(noun, state_label)


@dataclass(frozen=True)
class Transition:
    name: str  # also the audit action: "settlement.submitted"
    model: type
    label: object  # lazy: what the audit log and the inbox call it
    permission: str  # the policy action that says who may
    source: frozenset | None = None  # the states it starts from; None: any (or no state)
    target: object = None  # the state it ends in; None: the body decides (or no state)
    state_attr: str = "status"
    versioned: bool = False  # the caller passes the version the page showed
    creates: bool = False  # the body makes the record: the first argument is its parent
    audit: Callable | None = None  # record -> the audited values, before and after
    wrong_state: object = None  # lazy message (or record -> message) for a refused state
    signal: object = field(default=None, compare=False)
    module: str = ""  # where the service is written

    def state_of(self, record):
        return getattr(record, self.state_attr, None)


_registry: dict[str, Transition] = {}


def registry() -> dict[str, Transition]:
    return dict(_registry)


def get(name: str) -> Transition:
    return _registry[name]


@dataclass
class Change:
    """The change in progress; the body may adjust what its audit entry says (:func:`note`)."""

    transition: Transition
    record: object
    before: dict | None = None
    after: dict | None = None
    reason: str | None = None
    agency_id: int | None = None
    object_type: str | None = None
    object_id: str | None = None


_changes: contextvars.ContextVar[tuple] = contextvars.ContextVar("changes", default=())


def note(*, record=None, before=None, after=None, reason=None, agency_id=None,
         object_type=None, object_id=None) -> None:
    """Inside a transition's body: the record the entry is about (a made row), values to add to
    the entry's before/after, the reason (a comment, a reference); `object_type`/`object_id`
    name what the entry is about when it is no one row (a whole table of settings)."""
    change = _changes.get()[-1]
    if record is not None:
        change.record = record
    if before:
        change.before = {**(change.before or {}), **before}
    if after:
        change.after = {**(change.after or {}), **after}
    if reason is not None:
        change.reason = reason
    if agency_id is not None:
        change.agency_id = agency_id
    if object_type is not None:
        change.object_type, change.object_id = object_type, object_id


def _state_text(record) -> str:
    kind = _kinds.get(type(record))
    if kind and kind.state_label:
        return str(kind.state_label(record))
    state = getattr(record, "status", None)
    return str(getattr(state, "label", state))


def _refuse_state(t: Transition, record) -> DomainError:
    if t.wrong_state is not None:
        message = t.wrong_state(record) if callable(t.wrong_state) else t.wrong_state
        return DomainError(str(message))
    kind = _kinds.get(type(record))
    return DomainError(_("Not possible while the %(noun)s is “%(state)s”.",
                         noun=kind.noun if kind else _("record"), state=_state_text(record)))


def check_version(record, seen) -> None:
    """Refuse a request made on an out-of-date page (a double click, a second tab)."""
    try:
        seen = int(seen)
    except (TypeError, ValueError):
        seen = None
    if seen != record.version:
        raise DomainError(str(STALE))


def transition(name: str, model: type, *, label, permission: str | None = None,
               source=None, target=None, state_attr: str = "status", versioned: bool = False,
               creates: bool = False, audit: Callable | None = None, wrong_state=None):
    """Declare the decorated service as the transition `name` of `model` (see the module)."""
    def decorate(service):
        if name in _registry:
            raise ValueError(f"transition {name!r} is declared twice")
        t = Transition(name=name, model=model, label=label, permission=permission or name,
                       source=None if source is None else frozenset(source), target=target,
                       state_attr=state_attr, versioned=versioned, creates=creates, audit=audit,
                       wrong_state=wrong_state, signal=signals.signal(name),
                       module=service.__module__)
        _registry[name] = t

        @wraps(service)
        def perform(subject, *args, acting_user, seen_version=None, **kwargs):
            refusal = policy.refusal(acting_user, t.permission, subject)
            if refusal:
                raise DomainError(refusal)
            if not t.creates:
                if t.versioned:
                    check_version(subject, seen_version)
                if t.source is not None and t.state_of(subject) not in t.source:
                    raise _refuse_state(t, subject)
            change = Change(t, None if t.creates else subject,
                            before=None if t.creates or not t.audit else t.audit(subject))
            token = _changes.set((*_changes.get(), change))
            try:
                try:
                    result = service(subject, *args, acting_user=acting_user, **kwargs)
                    if change.record is None and t.creates:
                        change.record = result
                    if t.target is not None:
                        setattr(change.record, t.state_attr, t.target)
                    db.session.flush()
                except StaleDataError:
                    raise DomainError(str(STALE)) from None
                _finish(change, acting_user)
            finally:
                _changes.reset(token)
            return result

        perform.transition = t
        return perform

    return decorate


def _finish(change: Change, actor) -> None:
    from portal.audit.services import record as audit

    t, obj = change.transition, change.record
    after = t.audit(obj) if t.audit and obj is not None else None
    if after or change.after:
        after = {**(after or {}), **(change.after or {})}
    audit(t.name, obj, before=change.before, after=after, reason=change.reason,
          agency_id=change.agency_id, actor=actor, object_type=change.object_type,
          object_id=change.object_id)
    db.session.flush()
    agency_id = change.agency_id or getattr(obj, "agency_id", None)
    for signal in (t.signal, transitioned):
        signal.send(t, record=obj, actor=actor, agency_id=agency_id, transition=t, after=after,
                    reason=change.reason)


def transitions_of(view) -> tuple[str, ...]:
    return getattr(getattr(view, "access_policy", None), "transitions", ())
