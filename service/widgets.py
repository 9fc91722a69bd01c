"""Home-page cards of the service area: what waits for the agency, and for HQ per region."""
from portal.auth.roles import HQ_ROLES, Role
from portal.navigation import add_widget
from service import queries


def _agency(user) -> dict:
    return queries.agency_figures(user.agency_id)


def _network(user) -> dict:
    # The guard already limits a regional manager's counts to their region.
    return queries.network_figures(user.region_id if user.role == Role.REGIONAL_MANAGER
                                   else None)


def register() -> None:
    add_widget("service/_widget_agency.html", (Role.AGENCY_OWNER, Role.AGENCY_STAFF), _agency,
               order=30)
    add_widget("service/_widget_network.html", HQ_ROLES, _network, order=30)
