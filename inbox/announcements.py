"""Announcements (群发): HQ writes once, every recipient gets an item (and e-mail).

Publishing is one transition; the audience is one INSERT … SELECT of the accounts it names
(owners, or owners and staff, of all agencies, a region's, or those authorized for a product
line; or HQ's staff). Acknowledgement is the recipient's own transition (inbox.services).
"""
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, func, literal, select

from inbox import policy
from inbox.models import NOTICE, TASK, Announcement
from inbox.notify import raise_items
from inbox.registry import Context, fanout, get, task
from portal.auth.models import User
from portal.auth.roles import HQ_ROLES, Role
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from portal.text import clean
from portal.transitions import note, transition

AUDIENCE_LABELS = {"agencies": _l("All agencies"), "region": _l("The agencies of a region"),
                   "product_line": _l("The agencies authorized for a product line"),
                   "hq": _l("HQ's staff")}


def _recipients(ctx: Context):
    """The accounts an announcement reaches, with the announcement as subject."""
    from tenants.models import Agency, AgencyProductLine, AgencyStatus

    a = ctx.record
    roles = [str(Role.AGENCY_OWNER)] + ([str(Role.AGENCY_STAFF)] if a.staff_too else [])
    if a.audience == "hq":
        who = User.role.in_([str(r) for r in HQ_ROLES])
        base = select(User.id, User.agency_id, literal(a.id), literal(a.title, String))
        return base.where(who, User.is_active_account.is_(True))
    agencies = select(Agency.id).where(Agency.status != AgencyStatus.TERMINATED)
    if a.audience == "region":
        agencies = agencies.where(Agency.region_id == a.audience_id)
    elif a.audience == "product_line":
        agencies = agencies.where(Agency.id.in_(
            select(AgencyProductLine.agency_id)
            .where(AgencyProductLine.product_line_id == a.audience_id)))
    return (select(User.id, User.agency_id, literal(a.id), literal(a.title, String))
            .where(and_(User.agency_id.in_(agencies), User.role.in_(roles),
                        User.is_active_account.is_(True))))


def _link(item, role=None):
    return url_for("inbox.announcement", announcement_id=item.subject_id)


# A task when it asks for acknowledgement (closed by it), else a notice.
task("announcement.published", "announcement", _l("Announcement: %(label)s"),
     fanout(_recipients, "the announcement's audience"), link=_link,
     subject=lambda ctx: ("announcements", ctx.record.id),
     kind_of=lambda ctx: TASK if ctx.record.requires_ack else NOTICE,
     due=lambda ctx: _ack_due(ctx.record))
task("announcement.reminded", "announcement",
     _l("Reminder: please acknowledge the announcement “%(label)s”"),
     link=_link, subject=lambda ctx: ("announcements", ctx.record.id), scheduled=True)


def _ack_due(announcement: Announcement):
    if not announcement.ack_by:
        return None
    from datetime import timedelta

    from portal.clock import local_day_bounds

    return local_day_bounds(announcement.ack_by)[1] - timedelta(seconds=1)


def _audit(a: Announcement) -> dict:
    return {"title": a.title, "audience": a.audience, "audience_id": a.audience_id,
            "staff_too": a.staff_too, "requires_ack": a.requires_ack,
            "ack_by": a.ack_by.isoformat() if a.ack_by else None,
            "recipients": a.recipient_count}


@transition("announcement.published", Announcement, permission=policy.ANNOUNCE, creates=True,
            label=_l("Announcement sent"), audit=_audit)
def publish(_subject, data: dict, *, acting_user) -> Announcement:
    """Send an announcement; `data`: title, body, audience, audience_id, staff_too,
    requires_ack, ack_by. The items are created by the write path's signal."""
    title = clean(data.get("title"), limit=200)
    body = clean(data.get("body"), multiline=True, limit=20000)
    if not title or not body:
        raise DomainError(_("An announcement needs a title and a message."))
    audience = data.get("audience")
    if audience not in AUDIENCE_LABELS:
        raise DomainError(_("Choose who receives the announcement."), field="audience")
    audience_id = data.get("audience_id") if audience in ("region", "product_line") else None
    if audience in ("region", "product_line") and not _audience_exists(audience, audience_id):
        raise DomainError(_("Choose the region or product line it goes to."), field="audience")
    ack_by = data.get("ack_by") if data.get("requires_ack") else None
    if data.get("requires_ack") and (ack_by is None or ack_by < local_today()):
        raise DomainError(_("Acknowledgement needs a day that is today or later."),
                          field="ack_by")
    announcement = Announcement(
        title=title, body=body, audience=audience, audience_id=audience_id,
        staff_too=bool(data.get("staff_too")), requires_ack=bool(data.get("requires_ack")),
        ack_by=ack_by, created_by_id=getattr(acting_user, "id", None))
    db.session.add(announcement)
    db.session.flush()
    # Counted here: the items are made by the write path's signal, after the audit entry.
    audience = _recipients(Context(announcement, None, None))
    if acting_user is not None:
        audience = audience.where(User.id != acting_user.id)
    with unscoped("an announcement counts its recipients across the network"):
        announcement.recipient_count = db.session.scalar(
            select(func.count()).select_from(audience.subquery())) or 0
    return announcement


def _audience_exists(audience: str, ident) -> bool:
    from tenants.models import ProductLine, Region

    model = Region if audience == "region" else ProductLine
    return isinstance(ident, int) and 0 < ident < 2**31 and db.session.scalar(
        select(model.id).where(model.id == ident)) is not None


@transition("announcement.reminded", Announcement, permission=policy.REMIND,
            label=_l("Announcement reminder sent"))
def remind(announcement: Announcement, *, acting_user) -> int:
    """Remind the recipients who have not acknowledged yet (once per day at most)."""
    if not announcement.requires_ack:
        raise DomainError(_("This announcement asks for no acknowledgement."))
    from inbox.models import InboxItem

    pending = (select(InboxItem.recipient_id, InboxItem.agency_id, literal(announcement.id),
                      literal(announcement.title, String), literal(None, InboxItem.due_at.type),
                      literal(f"announcement_reminder:{announcement.id}:"
                              f"{local_today().isoformat()}", String))
               .where(InboxItem.announcement_id == announcement.id,
                      InboxItem.event == "announcement.published",
                      InboxItem.acknowledged_at.is_(None)))
    made = raise_items(get("announcement.reminded"), Context(announcement, None, None),
                       rows=pending, announcement_id=announcement.id)
    note(after={"reminded": made})
    return made
