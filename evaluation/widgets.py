"""Home-page cards: an agency's latest evaluation, HQ's latest quarter."""
from sqlalchemy import func, select

from evaluation import queries
from evaluation.models import Quarter, Result
from evaluation.policy import AGENCY_READERS
from portal.auth.roles import HQ_ROLES
from portal.extensions import db
from portal.navigation import add_widget


def _agency(user) -> dict:
    """The latest published result (a draft quarter is not the agency's to see yet)."""
    latest = queries.agency_results(user.agency_id, limit=1)
    return {"result": latest[0] if latest else None}


def _network(user) -> dict:
    quarter = db.session.scalars(select(Quarter).order_by(Quarter.year.desc(),
                                                          Quarter.quarter.desc()).limit(1)).first()
    grades = {}
    if quarter is not None:
        grades = dict(db.session.execute(select(Result.grade, func.count()).where(
            Result.quarter_id == quarter.id).group_by(Result.grade)).all())
    return {"quarter": quarter, "grades": grades}


def register() -> None:
    add_widget("evaluation/_widget_agency.html", AGENCY_READERS, _agency, order=60)
    add_widget("evaluation/_widget_network.html", HQ_ROLES, _network, order=60)
