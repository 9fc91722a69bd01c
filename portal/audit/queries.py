"""The audit log's filters, from query-string input that may be anything."""
from sqlalchemy import false, or_, select

from portal import transitions
from portal.audit import subjects
from portal.audit.models import AuditEntry
from portal.audit.readable import SESSION_ACTIONS, action_label
from portal.timeutil import local_day_bounds, parse_date

# The query-string names of the filters (a refused export goes back to the list with them).
FILTERS = ("action", "object_type", "object", "object_id", "actor", "agency", "agency_id",
           "from", "to", "signins", "sort")
SIGNINS_WITH, SIGNINS_ONLY = "with", "only"


def _arg(args, name: str, limit: int = 64) -> str:
    return (args.get(name) or "").strip()[:limit]


def known_actions() -> set[str]:
    return set(transitions.registry()) | set(subjects.action_labels())


def filtered(args):
    """The entries the filters in `args` select (unsorted)."""
    stmt = select(AuditEntry)
    for criterion in (_action(args), _signins(args), *_object(args), _actor(args),
                      *_agency(args), *_dates(args)):
        if criterion is not None:
            stmt = stmt.where(criterion)
    return stmt


def _action(args):
    action = _arg(args, "action")
    if not action:
        return None
    if action in known_actions():
        return AuditEntry.action == action
    return AuditEntry.action.startswith(action, autoescape=True)  # a prefix: "settlement"


def _signins(args):
    """Sign-ins and sign-outs stay out unless asked for (or the action filter names them)."""
    mode = _arg(args, "signins")
    if mode == SIGNINS_ONLY:
        return AuditEntry.action.in_(SESSION_ACTIONS)
    if mode == SIGNINS_WITH or _arg(args, "action"):
        return None
    return AuditEntry.action.not_in(SESSION_ACTIONS)


def _types(args) -> tuple[str | None, list]:
    """The object type asked for and its declarations (two for a shared class name)."""
    raw = _arg(args, "object_type", 130)
    if not raw:
        return None, []
    object_type, _, prefix = raw.partition("@")
    if prefix:
        found = subjects.by_key(raw)
        return object_type, [found] if found else []
    return object_type, [s for s in subjects.subjects() if s.object_type == object_type]


def _object(args):
    object_type, declared = _types(args)
    out = []
    if object_type:
        out.append(AuditEntry.object_type == object_type)
        if len(declared) == 1 and declared[0].actions:
            out.append(AuditEntry.action.startswith(declared[0].actions, autoescape=True))
    if object_id := _arg(args, "object_id"):
        out.append(AuditEntry.object_id == object_id)
    words = _arg(args, "object", 120)
    if words:
        candidates = declared if object_type else subjects.subjects()
        searched = [subjects.entry_criteria(AuditEntry.object_type, AuditEntry.object_id, s,
                                            words)
                    for s in candidates if s.label is not None]
        out.append(or_(AuditEntry.object_id == words, *searched) if searched
                   else AuditEntry.object_id == words)
    return out


def _actor(args):
    words = _arg(args, "actor", 254)
    if not words:
        return None
    people = subjects.find("User")
    by_email = AuditEntry.actor_email.icontains(words, autoescape=True)
    if people is None:
        return by_email
    return or_(by_email, AuditEntry.actor_id.in_(subjects.matching(people, words,
                                                                   as_text=False)))


def _agency(args):
    out = []
    if (agency_id := _arg(args, "agency_id")).isdigit() and len(agency_id) < 19:
        out.append(AuditEntry.agency_id == int(agency_id))
    if words := _arg(args, "agency", 120):
        agencies = subjects.find("Agency")
        out.append(AuditEntry.agency_id.in_(subjects.matching(agencies, words, as_text=False))
                   if agencies else false())
    return out


def _dates(args):
    """From and to are the network's local days, as the page shows times."""
    out = []
    if day := parse_date(args.get("from")):
        out.append(AuditEntry.at >= local_day_bounds(day)[0])
    if day := parse_date(args.get("to")):
        out.append(AuditEntry.at < local_day_bounds(day)[1])
    return out


# --- what the filter form offers ---------------------------------------------------------


def action_options() -> list[tuple[str, list[tuple[str, str]]]]:
    """[(group, [(action, label)])]: the actions by the kind of record they change."""
    groups: dict[str, list] = {}
    for name, t in transitions.registry().items():
        found = subjects.find(t.model.__name__, name)
        noun = str(found.noun) if found else t.model.__name__
        groups.setdefault(noun, []).append((name, str(t.label)))
    for name in subjects.action_labels():
        if name not in transitions.registry():
            found = subjects.find(subjects.action_type(name))
            groups.setdefault(str(found.noun) if found else "", []).append(
                (name, action_label(name)))
    return [(noun, sorted(items, key=lambda i: i[1])) for noun, items in sorted(groups.items())]


def type_options() -> list[tuple[str, str]]:
    """[(value, noun)] of the declared record types (a shared class name: one per area)."""
    shared = {s.object_type for s in subjects.subjects() if s.actions}
    return sorted(((s.key if s.object_type in shared else s.object_type, str(s.noun))
                   for s in subjects.subjects()), key=lambda o: o[1])
