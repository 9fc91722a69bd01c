"""Audit entries as people read them: translated actions and roles, objects by their labels
and links, and before → after as the fields that changed, each value written for people."""
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from flask import g
from flask_babel import gettext as _
from markupsafe import Markup, escape

from portal import labels as portal_labels
from portal import transitions
from portal.audit import subjects
from portal.audit.subjects import Field, Ref, Resolved
from portal.auth.roles import ROLE_LABELS, Role
from portal.clock import to_local
from portal.i18n import date_filter as local_date
from portal.i18n import datetime_filter as local_datetime
from portal.i18n import format_money

# Signing in and out: many, routine, shown only when asked for (their own filter).
SESSION_ACTIONS = ("auth.sign_in", "auth.sign_out", "auth.sign_in_failed")
# Fields no reader needs in a change: the row's own id and bookkeeping.
_SKIPPED = frozenset({"id"})


def _once(key, make):
    """`make()` once per request: the same words repeat on every row (thousands in an
    export), and each translation looks its catalog up again."""
    words = g.setdefault("_audit_words", {})
    if key not in words:
        words[key] = make()
    return words[key]


def action_label(action: str) -> str:
    """What an audit action means, in the reader's language ("" when nobody named it)."""
    found = transitions.registry().get(action)
    if found is not None:
        return str(found.label)
    named = subjects.action_labels().get(action)
    return str(named) if named is not None else ""


def role_label(role: str | None) -> str:
    if not role:
        return ""
    try:
        return str(ROLE_LABELS[Role(role)])
    except ValueError:
        return role


@dataclass
class Change:
    """One field of an entry: its name and its value before and after, as HTML and text."""

    name: str
    label: str
    before: Markup
    after: Markup
    before_text: str
    after_text: str
    context: bool = False  # unchanged, shown because it says what the change is about


@dataclass
class Row:
    entry: object
    action: str  # the translated name, or the code when nobody named it
    action_known: bool
    role: str
    actor: Ref
    object: Ref
    agency: Ref | None
    changes: list[Change] = field(default_factory=list)

    @property
    def local_at(self) -> datetime:
        """When, on the network's wall clock (the page prints it through the datetime filter)."""
        return to_local(self.entry.at)

    @property
    def changes_text(self) -> str:
        return "; ".join(f"{c.label}: {c.before_text} → {c.after_text}" for c in self.changes
                         if not c.context)


def rows(entries) -> list[Row]:
    """The readable rows of `entries`, their labels read with one query."""
    entries = list(entries)
    resolved = subjects.resolve(_wanted(entries))
    return [_row(e, resolved) for e in entries]


def _wanted(entries) -> list:
    user, agency = subjects.find("User"), subjects.find("Agency")
    wanted = []
    for e in entries:
        found = subjects.find(e.object_type, e.action)
        wanted += [(found, e.object_id), (agency, e.agency_id), (user, e.actor_id)]
        for name, value in _values(e):
            f = _field(found, name)
            if f.kind == "ref":
                target = subjects.find(f.ref)
                wanted += [(target, v) for v in (value if isinstance(value, list) else [value])]
    return wanted


def _values(entry):
    for side in (entry.before, entry.after):
        if isinstance(side, dict):
            yield from side.items()


def _row(e, resolved: Resolved) -> Row:
    found = subjects.find(e.object_type, e.action)
    label = _once(("action", e.action), lambda: action_label(e.action))
    actor = resolved.ref(subjects.find("User"), "User", e.actor_id) if e.actor_id else None
    if actor is None or not actor.known:
        actor = Ref(e.actor_email or _once("system", lambda: _("system")), None, "",
                    known=False)
    agency = (resolved.ref(subjects.find("Agency"), "Agency", e.agency_id)
              if e.agency_id is not None else None)
    return Row(entry=e, action=label or e.action, action_known=bool(label),
               role=_once(("role", e.actor_role), lambda: role_label(e.actor_role)),
               actor=actor,
               object=resolved.ref(found, e.object_type, e.object_id), agency=agency,
               changes=diff(found, e.before, e.after, resolved))


def diff(found, before, after, resolved: Resolved) -> list[Change]:
    """The fields that changed (a new record: the values it was made with), in entry order."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    names = list(after) + [k for k in before if k not in after]
    out = []
    for name in names:
        if name in _SKIPPED:
            continue
        old, new = before.get(name), after.get(name)
        f = _field(found, name)
        if old == new:
            if f.kind == "ref" and new is not None and name in before and name in after:
                html, text = _value(f, new, resolved)
                out.append(Change(name, _name(f, name), html, html, text, text, context=True))
            continue
        if name not in before and _empty(new):
            continue  # a new record's blank fields say nothing
        old_html, old_text = _value(f, old, resolved) if name in before else _nothing()
        new_html, new_text = _value(f, new, resolved) if name in after else _nothing()
        out.append(Change(name, _name(f, name), old_html, new_html, old_text, new_text))
    return out


def _field(found, name: str) -> Field:
    return subjects.field_of(found, name)


def _name(f: Field, name: str) -> str:
    if f.label is None:
        return name
    return _once(("field", id(f)), lambda: str(f.label))


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _nothing() -> tuple[Markup, str]:
    return Markup("—"), "—"


def _value(f: Field, value, resolved: Resolved) -> tuple[Markup, str]:
    """A value as HTML (links for records) and as text (the CSV)."""
    if value is None or value == "":
        return _nothing()
    if f.kind == "ref":
        target = subjects.find(f.ref)
        refs = [resolved.ref(target, f.ref, v) for v in
                (value if isinstance(value, list) else [value])]
        html = Markup(", ").join(
            Markup('<a href="{}">{}</a>').format(r.url, r.text) if r.url else escape(r.text)
            for r in refs)
        return html, ", ".join(r.text for r in refs)
    if isinstance(value, list):
        parts = [_plain(f, v) for v in value]
        text = ", ".join(parts)
        return escape(text), text
    text = _plain(f, value)
    return escape(text), text


def _plain(f: Field, value) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    try:
        if f.kind == "money":
            return format_money(Decimal(str(value)))
        if f.kind == "datetime":
            return local_datetime(_instant(value))
        if f.kind == "date":
            return local_date(date.fromisoformat(str(value)[:10]))
        if f.kind == "bool" or isinstance(value, bool):
            return _once(("bool", bool(value)), lambda: _("yes") if value else _("no"))
        if f.kind == "state" and isinstance(value, str | int):
            return _once(("state", f.labels, value),
                         lambda: portal_labels.label(f.labels, value))
    except (ValueError, TypeError, InvalidOperation, KeyError):
        pass
    return str(value)


def _instant(value) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
