"""Home-page cards of the certification area, each with a fixed number of queries."""
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from certification import queries
from certification.models import Certificate, Engineer, Program
from certification.states import certificate_state
from portal.auth.roles import Role
from portal.clock import local_today
from portal.extensions import db
from portal.memo import remembered
from portal.navigation import add_widget

NETWORK_ROLES = (Role.HQ_ADMIN, Role.HQ_CERTIFIER, Role.HQ_SERVICE, Role.REGIONAL_MANAGER,
                 Role.AUDITOR)


def _network(user) -> dict:
    # Coverage of the whole network is the slowest figure of HQ's home (110 ms at 2,000
    # agencies): remembered for a minute per scope; the coverage page itself stays exact.
    today = local_today()
    return remembered("certification.hq_dashboard", lambda: queries.hq_dashboard(today), today)


def _agency(user) -> dict:
    today = local_today()
    rows = db.session.execute(queries.coverage_statement(today, agency_id=user.agency_id)).all()
    expiring = db.session.scalars(queries.expiring_statement(today, agency_id=user.agency_id)
                                  .limit(5)).all()
    return {"rows": rows, "expiring": expiring, "agency_id": user.agency_id}


def _engineer(user) -> dict:
    today = local_today()
    certs = db.session.scalars(
        select(Certificate).join(Certificate.engineer).where(Engineer.user_id == user.id)
        .options(joinedload(Certificate.program).joinedload(Program.product_line),
                 selectinload(Certificate.renewed_by))
        .order_by(Certificate.valid_to.desc()).limit(10)).all()
    return {"certificates": [(c, certificate_state(c, today))
                             for c in certs]}


def register() -> None:
    add_widget("certification/_widget_network.html", NETWORK_ROLES, _network, order=20)
    add_widget("certification/_widget_agency.html", (Role.AGENCY_OWNER, Role.AGENCY_STAFF),
               _agency, order=20)
    add_widget("certification/_widget_engineer.html", (Role.ENGINEER,), _engineer, order=20)
