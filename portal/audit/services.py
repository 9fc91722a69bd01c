"""Writing audit entries. Services call record() once per state or money change."""
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from flask import g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy import inspect

from portal.audit.models import AuditEntry
from portal.extensions import db


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


# Never copied into the log, whatever a caller passes.
SECRET_FIELDS = frozenset({"password_hash", "session_token", "bank_account", "id_number"})


def snapshot(obj, fields=None) -> dict:
    """The column values of `obj` as JSON-able plain values (secrets left out)."""
    mapper = inspect(obj).mapper
    names = fields or [c.key for c in mapper.column_attrs]
    return {n: _plain(getattr(obj, n)) for n in names if n not in SECRET_FIELDS}


def request_id() -> str | None:
    if not has_request_context():
        return None
    if "_request_id" not in g:
        g._request_id = uuid.uuid4().hex[:16]
    return g._request_id


def record(action: str, obj=None, *, before=None, after=None, reason=None,
           object_type=None, object_id=None, agency_id=None, actor=None) -> AuditEntry:
    """Add one audit entry for `action` on `obj` (flushed with the change, never committed here).

    The write path (portal.transitions) calls it with the transition's acting user. The actor
    is `actor` when given; without one, the command's or job's actor in ``g``, else the
    signed-in user (sign-in and sign-out, which happen before and after a session).
    """
    if actor is None:
        actor = g.get("_audit_actor") if has_app_context() else None
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
    if obj is not None:
        object_type = object_type or type(obj).__name__
        object_id = object_id if object_id is not None else getattr(obj, "id", None)
        if agency_id is None:
            agency_id = getattr(obj, "agency_id", None)
            if agency_id is None and type(obj).__name__ == "Agency":
                agency_id = obj.id
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None),
        actor_email=getattr(actor, "email", None),
        actor_role=getattr(actor, "role", None) and str(actor.role),
        agency_id=agency_id,
        action=action,
        object_type=object_type or "-",
        object_id=None if object_id is None else str(object_id),
        before={k: _plain(v) for k, v in before.items()} if before else None,
        after={k: _plain(v) for k, v in after.items()} if after else None,
        reason=reason,
        ip=request.remote_addr if has_request_context() else None,
        request_id=request_id(),
    )
    db.session.add(entry)
    return entry


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields that differ, for compact entries."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
