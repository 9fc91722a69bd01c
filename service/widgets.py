"""Home-page cards of the service area: what waits for the agency, and for HQ per region."""
from dataclasses import replace
from datetime import timedelta

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import case, func, select

from portal import charts
from portal.auth.roles import HQ_ROLES, Role
from portal.clock import now
from portal.extensions import db
from portal.memo import remembered
from portal.navigation import add_widget
from service import queries
from service.models import OrderStatus, WorkOrder
from tenants.models import Agency

STALE_DAYS = 7  # an open order older than this is backlog worth a look
TOP_AGENCIES = 12  # a regional manager's chart names the agencies with the most open orders



def _agency(user) -> dict:
    return queries.agency_figures(user.agency_id)


def _backlog(group_by, *columns):
    """Open orders and those open longer than STALE_DAYS, grouped (one GROUP BY)."""
    stale = case((WorkOrder.received_at < now() - timedelta(days=STALE_DAYS), 1), else_=0)
    return (select(*columns, func.count(WorkOrder.id), func.coalesce(func.sum(stale), 0))
            .join(Agency, Agency.id == WorkOrder.agency_id)
            .where(WorkOrder.status == OrderStatus.OPEN).group_by(*group_by))


def _chart(name: str, title: str, labels, rows, **options) -> charts.Chart:
    """Stacked bars of (…, open, stale) rows: recent and stale orders. Drawn once a minute per
    reader and figures (pygal takes 10–40 ms a chart)."""
    series = ((_("Open up to %(days)s days", days=STALE_DAYS),
               tuple(n - old for *_k, n, old in rows)),
              (_("Open more than %(days)s days", days=STALE_DAYS),
               tuple(old for *_k, n, old in rows)))
    labels = tuple(labels)
    return remembered(f"chart.{name}", lambda: charts.bars(
        title, labels, series, name=name, formatter=charts.count_text, stacked=True, **options),
        title, labels, series, tuple(options.items()))


def _by_region(figures: dict) -> charts.Chart:
    """Open orders per region. The network's counts (10 ms at 2,000 agencies on SQLite) are
    remembered for a minute per scope, as the other figures of HQ's home."""
    locale = str(get_locale())
    counts = remembered("service.backlog_regions", lambda: {
        region_id: (n, old) for region_id, n, old in
        db.session.execute(_backlog((Agency.region_id,), Agency.region_id))})
    rows = [(r, *counts.get(r.id, (0, 0))) for r in figures["regions"]]
    return _chart("backlog-regions", _("Open work orders by region"),
                  [r.name(locale) for r, *_n in rows], rows)


def _by_agency() -> charts.Chart:
    """The region's agencies with the most open orders (the guard keeps the region's; the
    counts are remembered for a minute per scope)."""
    rows = remembered("service.backlog_agencies", lambda: [tuple(row) for row in (
        db.session.execute(_backlog((Agency.id, Agency.code), Agency.code)
                           .order_by(func.count(WorkOrder.id).desc(), Agency.code)
                           .limit(TOP_AGENCIES)))])
    # pygal draws the first label of horizontal bars at the bottom: the busiest on top, and
    # first in the table.
    upward = rows[::-1]
    chart = _chart("backlog-agencies",
                   _("Open work orders by agency (the %(n)s with the most)", n=TOP_AGENCIES),
                   [code for code, *_n in upward], upward, horizontal=True,
                   height=max(160, 80 + 26 * len(rows)))
    return replace(chart, rows=chart.rows[::-1])


def _network(user) -> dict:
    # The guard already limits a regional manager's counts to their region.
    regional = user.role == Role.REGIONAL_MANAGER
    figures = queries.network_figures(user.region_id if regional else None)
    figures["chart"] = _by_agency() if regional else _by_region(figures)
    figures["stale_days"] = STALE_DAYS
    return figures


def register() -> None:
    add_widget("service/_widget_agency.html", (Role.AGENCY_OWNER, Role.AGENCY_STAFF), _agency,
               order=30)
    add_widget("service/_widget_network.html", HQ_ROLES, _network, order=30)
