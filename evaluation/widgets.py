"""Home-page cards: an agency's latest evaluation, HQ's latest quarter."""
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from evaluation.models import Quarter, Result
from portal.auth.roles import HQ_ROLES, Role
from portal.extensions import db
from portal.navigation import add_widget


def _agency(user) -> dict:
    latest = db.session.scalars(
        select(Result).options(joinedload(Result.quarter)).join(Quarter)
        .where(Result.agency_id == user.agency_id, Result.status != "draft")
        .order_by(Quarter.year.desc(), Quarter.quarter.desc()).limit(1)).first()
    return {"result": latest}


def _network(user) -> dict:
    quarter = db.session.scalars(select(Quarter).order_by(Quarter.year.desc(),
                                                          Quarter.quarter.desc()).limit(1)).first()
    grades = {}
    if quarter is not None:
        grades = dict(db.session.execute(select(Result.grade, func.count()).where(
            Result.quarter_id == quarter.id).group_by(Result.grade)).all())
    return {"quarter": quarter, "grades": grades}


def register() -> None:
    add_widget("evaluation/_widget_agency.html", (Role.AGENCY_OWNER, Role.AGENCY_STAFF), _agency,
               order=60)
    add_widget("evaluation/_widget_network.html", HQ_ROLES, _network, order=60)
