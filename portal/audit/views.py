"""The audit log viewer for auditors and HQ admin: filters, paging and CSV export."""
from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.audit import queries, readable, subjects
from portal.audit.models import AuditEntry
from portal.auth.access import allow
from portal.auth.roles import Role
from portal.clock import local_zone
from portal.exports import csv_response, refuse_if_too_many, xlsx_response, zone_heading
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav

bp = Blueprint("audit", __name__, url_prefix="/audit")
READERS = (Role.AUDITOR, Role.HQ_ADMIN)
add_nav("audit.index", _l("Audit log"), READERS, order=90, group="admin")
EXPORT_LIMIT = 100_000
FILTERS = queries.FILTERS


def _load_subjects(state) -> None:
    """Each area names its record types in ``<area>/audit_subjects.py`` (when it has one);
    read when create_app registers this blueprint, from the app's AREAS."""
    subjects.load_areas(state.app.config["AREAS"])


bp.record_once(_load_subjects)


@bp.route("/")
@allow(*READERS)
def index():
    stmt, sort = _sorted()
    page = paginate(stmt)
    return render_template(
        "portal/audit_index.html", page=page, sort=sort, rows=readable.rows(page.items),
        action_options=queries.action_options(), type_options=queries.type_options(),
        signins=request.args.get("signins", ""), zone=local_zone().key)


def _sorted():
    return sorted_by(queries.filtered(request.args),
                     {"at": AuditEntry.id, "action": AuditEntry.action}, "-at")


@bp.route("/export.csv")
@allow(*READERS)
def export():
    stmt = queries.filtered(request.args).order_by(AuditEntry.id)
    if refused := refuse_if_too_many(stmt, EXPORT_LIMIT, "audit.index", FILTERS):
        return refused
    # The raw columns first (their names are codes, for scripts), then the same entries as
    # the page reads them; times on the network's wall clock, the header names the zone.
    header = ["id", zone_heading("at"), "actor", "role", "agency_id", "action",
              "object_type", "object_id", "before", "after", "reason", "ip", "actor_id",
              _("Actor"), _("Role"), _("Agency"), _("Action"), _("Object"), _("Changes")]
    if request.args.get("format") == "xlsx":
        return xlsx_response("audit", header, _export_rows(stmt))
    return csv_response("audit", header, _export_rows(stmt))


def _export_rows(stmt):
    # Every entry at once, its labels with one more query (the statements of an export do
    # not grow with its length either).
    for row in readable.rows(db.session.scalars(stmt)):
        e = row.entry
        yield [e.id, e.at, e.actor_email,
               e.actor_role, e.agency_id, e.action, e.object_type, e.object_id, e.before,
               e.after, e.reason, e.ip, e.actor_id, row.actor.text, row.role,
               row.agency.text if row.agency else "", row.action, row.object.text,
               row.changes_text]
