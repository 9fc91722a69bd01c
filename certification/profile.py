"""The certification area on an agency's 360 (portal.profile): certified-engineer coverage per
authorized product line; and the gaps that speak against authorizing the agency fully."""
from flask_babel import ngettext
from sqlalchemy import func, select

from certification import queries
from certification.models import Certificate, Engineer, EngineerStatus
from certification.policy import COVERAGE_READERS
from certification.states import EXPIRING_DAYS
from portal.clock import local_today
from portal.extensions import db
from portal.profile import add_concern, add_panel
from tenants.models import AgencyStatus


def _panel(agency, user) -> dict:
    today = local_today()
    rows = db.session.execute(queries.coverage_statement(today, agency_id=agency.id)).all()
    engineers, expiring = db.session.execute(select(
        select(func.count(Engineer.id)).where(Engineer.agency_id == agency.id,
                                              Engineer.status == EngineerStatus.ACTIVE)
        .scalar_subquery(),
        select(func.count()).select_from(
            queries.expiring_statement(today, agency_id=agency.id)
            .with_only_columns(Certificate.id).order_by(None).subquery()).scalar_subquery(),
    )).one()
    return {"rows": rows, "gaps": sum(r.gap for r in rows), "engineers": engineers,
            "expiring": expiring, "expiring_days": EXPIRING_DAYS,
            "terminated": agency.status == AgencyStatus.TERMINATED}


def _gaps(agency, target_status) -> list[str]:
    """An agency authorized fully must have its certified engineers (PRODUCT.md §2.1)."""
    if target_status != AgencyStatus.ACTIVE:
        return []
    rows = db.session.execute(queries.coverage_statement(local_today(), agency_id=agency.id,
                                                         gaps_only=True)).all()
    if not rows:
        return []
    return [ngettext("%(code)s lacks certified level-2 engineers for %(num)s authorized "
                     "product line (%(lines)s).",
                     "%(code)s lacks certified level-2 engineers for %(num)s authorized "
                     "product lines (%(lines)s).", len(rows), code=agency.code,
                     lines=", ".join(r.line_code for r in rows))]


def register() -> None:
    add_panel("certification/_profile_coverage.html", COVERAGE_READERS, _panel, order=30)
    add_concern(_gaps)
