"""Home-page cards of the settlement area, each with a fixed number of queries."""
from sqlalchemy import func, select

from portal.auth.roles import Role
from portal.extensions import db
from portal.navigation import add_widget
from settlement import queries
from settlement.models import Settlement, Status

HQ_ROLES = (Role.HQ_ADMIN, Role.HQ_SETTLEMENT, Role.REGIONAL_MANAGER, Role.AUDITOR)


def _hq(user) -> dict:
    rows = db.session.execute(
        select(Settlement.status, func.count(Settlement.id), func.sum(Settlement.claimed_total),
               func.sum(Settlement.approved_total)).group_by(Settlement.status)).all()
    by_status = {status: (count, claimed, approved) for status, count, claimed, approved in rows}
    waiting = db.session.scalar(select(func.count(Settlement.id)).where(
        Settlement.status == Status.SUBMITTED,
        Settlement.needs_regional_review.is_(True),
        Settlement.regional_reviewed_at.is_(None)))
    return {"by_status": by_status, "statuses": list(Status), "regional_waiting": waiting}


def _agency(user) -> dict:
    return {"recent": queries.history(user.agency_id, limit=4)}


def register() -> None:
    add_widget("settlement/_widget_hq.html", HQ_ROLES, _hq, order=40)
    add_widget("settlement/_widget_agency.html", (Role.AGENCY_OWNER, Role.AGENCY_STAFF),
               _agency, order=40)
