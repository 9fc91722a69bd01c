"""What audit entries are about, in people's words: each area names its record types once.

An area's ``<area>/audit_subjects.py`` has a ``register()`` that declares, per record type::

    subject("Settlement", select(Settlement.id, Settlement.number), "settlement.settlement",
            "settlement_id", noun=_l("Settlement"), model=Settlement,
            fields={"status": state("settlement.status"), "line_amount": money(_l("Line"))})

`label` is a SELECT of ``(id, label, *link values)``: the log resolves the labels of a whole
page (objects, agencies, actors, ids inside the values) with one UNION ALL, whatever the page
holds; the link values (default: the id) fill `id_arg` of `endpoint`. A type whose label
depends on the reader's language gives a callable that returns the SELECT. The core loads the
declarations of every area in ``AREAS`` when the app is created (:func:`load_areas`).
"""
import importlib
from dataclasses import dataclass, field
from typing import Mapping

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import (
    Boolean,
    Date,
    String,
    bindparam,
    cast,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import Label

from portal import labels as portal_labels
from portal.extensions import db
from portal.models import Money, UTCDateTime

LINK_COLUMNS = 2  # link values a label SELECT may add after (id, label)


@dataclass(frozen=True)
class Field:
    """How one before/after value reads: its name and how its value is written."""

    label: object = None  # lazy: the field's name for people (None: the code)
    kind: str = "text"  # text, money, date, datetime, bool, state, ref, list
    labels: str | None = None  # state: the portal.labels kind of its values
    ref: str | None = None  # ref: the object type its value is an id of


def money(label=None) -> Field:
    return Field(label, "money")


def day(label=None) -> Field:
    return Field(label, "date")


def moment(label=None) -> Field:
    return Field(label, "datetime")


def flag(label=None) -> Field:
    return Field(label, "bool")


def state(kind: str, label=None, mapping: Mapping | None = None) -> Field:
    """A coded value read through ``label(kind, value)``; `mapping` registers the kind when
    its area has not (the same mapping object the area would register)."""
    if mapping is not None:
        try:
            portal_labels.labels(kind)
        except KeyError:
            portal_labels.register(kind, mapping)
    return Field(label, "state", labels=kind)


def ref(object_type: str, label=None) -> Field:
    """The id of another record: shown as that record's label and link."""
    return Field(label, "ref", ref=object_type)


# Fields many record types share; a subject's own declaration wins.
COMMON_FIELDS: dict[str, Field] = {
    "status": Field(_l("Status")),
    "reason": Field(_l("Reason")),
    "note": Field(_l("Note")),
    "comment": Field(_l("Comment")),
    "number": Field(_l("Number")),
    "code": Field(_l("Code")),
    "name": Field(_l("Name")),
    "title": Field(_l("Title")),
    "email": Field(_l("Email")),
    "role": state("role", _l("Role")),
    "locale": Field(_l("Language")),
    "is_active": flag(_l("In use")),
    "is_active_account": flag(_l("Active account")),
    "agency_id": ref("Agency", _l("Agency")),
    "created_at": moment(_l("Created at")),
    "updated_at": moment(_l("Updated at")),
    "created_by_id": ref("User", _l("Created by")),
    "last_sign_in_at": moment(_l("Last sign-in")),
    "grade": Field(_l("Grade")),
    "score": Field(_l("Score")),
    "tier": Field(_l("Tier")),
    "period": Field(_l("Period")),
    "version": Field(_l("Version")),
}


@dataclass(frozen=True)
class Subject:
    object_type: str
    noun: object  # lazy: what the type is called ("Settlement")
    label: object = None  # SELECT (id, label, *links) or a callable returning one; None: none
    endpoint: str | None = None
    id_arg: str | tuple | None = None
    actions: str | None = None  # an action prefix: two types of one class name (Appeal)
    fields: Mapping[str, Field] = field(default_factory=dict)
    search: object = None  # SELECT (id, text) to find records by; default: the label

    @property
    def key(self) -> str:
        return f"{self.object_type}@{self.actions}" if self.actions else self.object_type

    def label_select(self):
        return self.label() if callable(self.label) else self.label

    def search_select(self):
        found = self.search() if callable(self.search) else self.search
        return found if found is not None else self.label_select()

    def spec(self, name: str) -> Field:
        """How this type's field `name` reads (declared, common, or guessed from its name)."""
        return self.fields.get(name) or COMMON_FIELDS.get(name) or _guess(name)


def field_of(found: Subject | None, name: str) -> Field:
    """How the field `name` of an entry about `found` (None: an unknown type) reads."""
    return found.spec(name) if found else COMMON_FIELDS.get(name) or _guess(name)


_subjects: dict[str, Subject] = {}  # by key
_action_labels: dict[str, object] = {}
_action_types: dict[str, str] = {}


def subject(object_type: str, label=None, endpoint: str | None = None, id_arg=None, *,
            noun, actions: str | None = None, fields: Mapping | None = None, model=None,
            search=None) -> Subject:
    """Declare how the log names and links records of `object_type` (see the module).

    `model`: its Money, date, timestamp and boolean columns read as such without declaring
    each; `fields` names and types the rest (and the values a service adds to its entry)."""
    found = Subject(object_type, noun, label, endpoint, id_arg, actions,
                    {**_model_fields(model), **(fields or {})}, search)
    _subjects[found.key] = found  # create_app runs more than once (tests): the last wins
    return found


def action(name: str, label, object_type: str | None = None) -> None:
    """Name an audit action that is no transition (a transition's label names it already);
    `object_type`: the kind of record it is about (groups it in the filter)."""
    _action_labels[name] = label
    if object_type:
        _action_types[name] = object_type


def action_type(name: str) -> str | None:
    return _action_types.get(name)


def action_labels() -> dict[str, object]:
    return dict(_action_labels)


def subjects() -> list[Subject]:
    return list(_subjects.values())


def find(object_type: str | None, action: str | None = None) -> Subject | None:
    """The subject of an entry: the one whose action prefix matches, else the plain one."""
    if not object_type:
        return None
    if action:
        for s in _subjects.values():
            if s.object_type == object_type and s.actions and action.startswith(s.actions):
                return s
    found = _subjects.get(object_type)
    if found is None:  # only prefixed declarations: any of them names the type
        found = next((s for s in _subjects.values() if s.object_type == object_type), None)
    return found


def by_key(key: str) -> Subject | None:
    return _subjects.get(key)


def load_areas(areas) -> None:
    """Import ``<area>.audit_subjects`` of every area that has one and run its register()."""
    _register_core()
    for name in areas:
        try:
            module = importlib.import_module(f"{name}.audit_subjects")
        except ModuleNotFoundError as missing:
            if missing.name != f"{name}.audit_subjects":
                raise
            continue
        module.register()


# --- resolving a page of entries ---------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A record as the log shows it: its words and, when the reader may open it, a link."""

    text: str
    url: str | None = None
    noun: str = ""
    known: bool = False


class Resolved:
    """The labels of one batch of entries, read with one query; the words and permissions
    every row repeats are worked out once per batch (an export holds thousands)."""

    def __init__(self, rows: dict):
        self._rows = rows  # (subject key, id text) -> (label, link values)
        self._nouns: dict[str, str] = {}
        self._may_open: dict[str, bool] = {}

    def ref(self, found: Subject | None, object_type: str | None, ident) -> Ref:
        noun = self._noun(found) if found else (object_type or "")
        if ident is None or ident == "":
            return Ref(noun, self._link(found, ()) if found and not found.id_arg else None,
                       noun, known=found is not None)
        row = self._rows.get((found.key, str(ident))) if found else None
        if row is None and found is not None and found.label is None:
            # A type without labels (settings, a delegation): its page, if it has one.
            text = f"{noun} #{ident}" if str(ident).isdigit() else noun
            return Ref(text, self._link(found, (ident,)), noun, known=True)
        if row is None:
            # Deleted or unknown: "Settlement #19", and no link to nowhere.
            return Ref(f"{noun} #{ident}", None, noun, known=False)
        text, links = row
        return Ref(text or f"{noun} #{ident}", self._link(found, links or (ident,)), noun,
                   known=True)

    def _noun(self, found: Subject) -> str:
        if found.key not in self._nouns:
            self._nouns[found.key] = str(found.noun)
        return self._nouns[found.key]

    def _link(self, found: Subject, values) -> str | None:
        if found.key not in self._may_open:
            self._may_open[found.key] = may_open(found)
        return _link(found, values) if self._may_open[found.key] else None


def resolve(wanted) -> Resolved:
    """Labels for `wanted` [(Subject, id)]: one UNION ALL over the subjects present, however
    many entries (an export's too: the ids are written into the statement, not bound one
    by one, so no database's limit on parameters is reached)."""
    ids: dict[str, set[int]] = {}
    for found, ident in wanted:
        if found is None or found.label is None or ident is None:
            continue
        text_id = str(ident)
        if text_id.isdigit() and len(text_id) < 19:
            ids.setdefault(found.key, set()).add(int(text_id))
    members = [_member(_subjects[key], key, sorted(idents))
               for key, idents in sorted(ids.items())]
    if not members:
        # Still the one statement (it finds nothing): a page costs the same queries whether
        # it is empty, holds unlabelled entries or labelled ones.
        labelled = next((s for s in _subjects.values() if s.label is not None), None)
        if labelled is None:
            return Resolved({})
        members = [_member(labelled, labelled.key, [])]
    stmt = members[0] if len(members) == 1 else union_all(*members)
    rows = {}
    for key, ident, text, *links in db.session.execute(stmt):
        kept = tuple(v for v in links if v is not None)
        rows[(key, str(ident))] = (text, kept)
    return Resolved(rows)


def matching(found: Subject, words: str, *, as_text: bool = True):
    """A SELECT of the ids of `found`'s records whose label (or search text) holds `words`."""
    sel = found.search_select()
    columns = list(sel.selected_columns)
    ident, words_column = _bare(columns[0]), _bare(columns[1])
    picked = cast(ident, String) if as_text else ident
    return sel.with_only_columns(picked, maintain_column_froms=True).where(
        words_column.icontains(words, autoescape=True))


def entry_criteria(object_type_column, object_id_column, found: Subject, words: str):
    """Entries about a record of `found` whose label holds `words` (or whose id is `words`)."""
    return (object_type_column == found.object_type) & or_(
        object_id_column == words, object_id_column.in_(matching(found, words)))


def _member(found: Subject, key: str, idents: list[int]):
    sel = found.label_select()
    columns = list(sel.selected_columns)
    ident = _bare(columns[0])
    links = [cast(_bare(c), String) for c in columns[2:2 + LINK_COLUMNS]]
    links += [cast(null(), String)] * (LINK_COLUMNS - len(links))
    return sel.with_only_columns(
        literal(key, String).label("subject"), cast(ident, String).label("ident"),
        cast(_bare(columns[1]), String).label("words"),
        *(c.label(f"link{n}") for n, c in enumerate(links)),
        maintain_column_froms=True).where(
            ident.in_(bindparam(None, idents, expanding=True,
                                literal_execute=True)))


def _bare(column):
    return column.element if isinstance(column, Label) else column


def may_open(found: Subject | None) -> bool:
    """Whether the reader's role may open the pages of `found` (the view's declared policy)."""
    if found is None or not found.endpoint:
        return False
    view = current_app.view_functions.get(found.endpoint)
    policy = getattr(view, "access_policy", None)
    if policy is None or not current_user.is_authenticated:
        return False
    return policy.public or current_user.role in policy.roles


def _link(found: Subject, values) -> str | None:
    """The subject's page for `values` (the caller checked :func:`may_open`)."""
    names = (found.id_arg,) if isinstance(found.id_arg, str) else tuple(found.id_arg or ())
    if len(values) < len(names):
        return None
    args = {}
    for name, value in zip(names, values, strict=False):
        value = str(value)
        args[name] = int(value) if value.isdigit() else value
    return url_for(found.endpoint, **args)


# --- fields ------------------------------------------------------------------------------


def _model_fields(model) -> dict[str, Field]:
    if model is None:
        return {}
    out = {}
    for column in model.__table__.columns:
        kind = column.type
        if isinstance(kind, Money):
            out[column.key] = money()
        elif isinstance(kind, UTCDateTime):
            out[column.key] = moment()
        elif isinstance(kind, Date):
            out[column.key] = day()
        elif isinstance(kind, Boolean):
            out[column.key] = flag()
    return out


_MONEY_ENDINGS = ("_amount", "_total", "_fee", "_price", "_threshold", "_deduction")


def _guess(name: str) -> Field:
    """A field nobody declared: its name says enough for dates, times, flags and money."""
    if name.endswith("_at"):
        return moment()
    if name.endswith("_on"):
        return day()
    if name.startswith("is_"):
        return flag()
    if name.endswith(_MONEY_ENDINGS) or name in ("amount", "threshold"):
        return money()
    return Field()


# --- the core's own record types ---------------------------------------------------------


def _register_core() -> None:
    from portal.auth.models import User
    from portal.jobs import Job
    from portal.jobs_views import STATUS_LABELS as JOB_STATUS_LABELS

    subject("User", lambda: _user_label(User), "tenants.user_edit", "user_id",
            noun=_l("Account"), model=User,
            search=lambda: _user_search(User),
            fields={"name": Field(_l("Full name")),
                    "rehashed": flag(_l("Password hash upgraded")),
                    "agency_id": ref("Agency", _l("Agency")),
                    "region_id": ref("Region", _l("Region"))})
    subject("Job", _job_label(Job), "jobs.show", "job_id", noun=_l("Background job"),
            model=Job, fields={"status": state("job.status", mapping=JOB_STATUS_LABELS)})
    action("auth.sign_in_failed", _l("Sign-in failed"), "User")


def _user_label(user):
    return select(user.id, user.name)


def _user_search(user):
    return select(user.id, user.name + " " + user.email)


def _job_label(job):
    return select(job.id, job.kind + " #" + cast(job.id, String))
