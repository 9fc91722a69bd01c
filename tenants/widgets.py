"""Home-page cards of the network area."""
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import charts
from portal.auth.roles import AGENCY_ROLES, HQ_ROLES, Role
from portal.extensions import db
from portal.labels import label
from portal.memo import remembered
from portal.navigation import add_widget
from portal.tenancy import get_or_404
from tenants.models import Agency, AgencyStatus, Region


def _network(user) -> dict:
    """Agencies by status, and the same per region as a chart (two queries). The guard limits
    a regional manager to their region."""
    counts = {(region_id, status): n for region_id, status, n in db.session.execute(
        select(Agency.region_id, Agency.status, func.count(Agency.id))
        .group_by(Agency.region_id, Agency.status))}
    regions_stmt = select(Region).order_by(Region.code)
    if user.role == Role.REGIONAL_MANAGER:
        regions_stmt = regions_stmt.where(Region.id == user.region_id)
    regions = list(db.session.scalars(regions_stmt))
    locale = str(get_locale())
    title, names = _("Agencies by region and status"), tuple(r.name(locale) for r in regions)
    series = tuple((label("agency.status", s.value),
                    tuple(counts.get((r.id, s.value), 0) for r in regions))
                   for s in AgencyStatus)
    # Drawn once a minute per reader and figures: pygal takes 10–40 ms a chart.
    chart = remembered("chart.network-status", lambda: charts.bars(
        title, names, series, name="network-status", formatter=charts.count_text, stacked=True),
        title, names, series)
    totals = {s.value: sum(n for (_r, status), n in counts.items() if status == s.value)
              for s in AgencyStatus}
    return {"by_status": [(s.value, totals[s.value]) for s in AgencyStatus], "chart": chart}


def _agency(user) -> dict:
    return {"agency": get_or_404(Agency, user.agency_id)}


def register() -> None:
    add_widget("tenants/_widget_network.html", HQ_ROLES, _network, order=10)
    add_widget("tenants/_widget_agency.html", AGENCY_ROLES, _agency, order=10)
