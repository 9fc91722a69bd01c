"""The audit log viewer for auditors and HQ admin: filters, paging and CSV export."""
from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import transitions
from portal.audit.models import AuditEntry
from portal.auth.access import allow
from portal.auth.roles import Role
from portal.clock import local_zone, to_local
from portal.exports import csv_response, refuse_if_too_many
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.timeutil import local_day_bounds, parse_date

bp = Blueprint("audit", __name__, url_prefix="/audit")
READERS = (Role.AUDITOR, Role.HQ_ADMIN)
add_nav("audit.index", _l("Audit log"), READERS, order=90, group="admin")
EXPORT_LIMIT = 100_000
FILTERS = ("action", "object_type", "object_id", "actor", "agency_id", "from", "to", "sort")


def _filtered():
    stmt = select(AuditEntry)
    args = request.args
    if args.get("action"):
        stmt = stmt.where(AuditEntry.action.startswith(args["action"].strip()[:64]))
    if args.get("object_type"):
        stmt = stmt.where(AuditEntry.object_type == args["object_type"].strip()[:64])
    if args.get("object_id"):
        stmt = stmt.where(AuditEntry.object_id == args["object_id"].strip()[:64])
    if args.get("actor"):
        stmt = stmt.where(AuditEntry.actor_email.contains(args["actor"].strip()[:254]))
    if (agency := args.get("agency_id", "")).isdigit():
        stmt = stmt.where(AuditEntry.agency_id == int(agency))
    if day := parse_date(args.get("from")):
        stmt = stmt.where(AuditEntry.at >= local_day_bounds(day)[0])
    if day := parse_date(args.get("to")):
        stmt = stmt.where(AuditEntry.at < local_day_bounds(day)[1])
    return stmt


@bp.route("/")
@allow(*READERS)
def index():
    stmt, sort = sorted_by(_filtered(), {"at": AuditEntry.id, "action": AuditEntry.action},
                           "-at")
    page = paginate(stmt)
    return render_template("portal/audit_index.html", page=page, sort=sort,
                           action_label=action_label)


def action_label(action: str) -> str:
    """What a transition's audit action means, in the reader's language ("" if unknown)."""
    found = transitions.registry().get(action)
    return str(found.label) if found else ""


@bp.route("/export.csv")
@allow(*READERS)
def export():
    stmt = _filtered().order_by(AuditEntry.id)
    if refused := refuse_if_too_many(stmt, EXPORT_LIMIT, "audit.index", FILTERS):
        return refused
    # The network's wall clock, as the page shows it; the header names the zone.
    rows = (
        [e.id, to_local(e.at).strftime("%Y-%m-%d %H:%M:%S"), e.actor_email, e.actor_role,
         e.agency_id, e.action, e.object_type, e.object_id, e.before, e.after, e.reason, e.ip]
        for e in db.session.scalars(stmt)
    )
    return csv_response("audit", ["id", f"at ({local_zone().key})", "actor", "role",
                                  "agency_id", "action", "object_type", "object_id", "before",
                                  "after", "reason", "ip"], rows)
