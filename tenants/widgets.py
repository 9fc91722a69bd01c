"""Home-page cards of the network area."""
from sqlalchemy import func, select

from portal.auth.roles import AGENCY_ROLES, HQ_ROLES
from portal.extensions import db
from portal.navigation import add_widget
from portal.tenancy import get_or_404
from tenants.models import Agency, AgencyStatus


def _network(user) -> dict:
    counts = dict(db.session.execute(
        select(Agency.status, func.count(Agency.id)).group_by(Agency.status)).all())
    return {"by_status": [(s.value, counts.get(s.value, 0)) for s in AgencyStatus]}


def _agency(user) -> dict:
    return {"agency": get_or_404(Agency, user.agency_id)}


def register() -> None:
    add_widget("tenants/_widget_network.html", HQ_ROLES, _network, order=10)
    add_widget("tenants/_widget_agency.html", AGENCY_ROLES, _agency, order=10)
