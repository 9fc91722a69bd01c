"""Reads for the network pages: lists and counts in SQL, scoped by the tenant guard."""
from flask import request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from portal.auth.models import User
from portal.extensions import db
from portal.listing import int_arg
from portal.text import query_text
from tenants.models import (
    Agency,
    AgencyStatus,
    AgencyStatusChange,
    AgencyType,
    ProductLine,
    Region,
)


def agency_filters(stmt):
    """Apply the overview's filters from the query string (junk values are ignored)."""
    args = request.args
    if region := int_arg("region", None):
        stmt = stmt.where(Agency.region_id == region)
    if (status := args.get("status")) in set(AgencyStatus):
        stmt = stmt.where(Agency.status == status)
    if (kind := args.get("type")) in set(AgencyType):
        stmt = stmt.where(Agency.agency_type == kind)
    if tier := int_arg("tier", None, high=5):
        stmt = stmt.where(Agency.tier == tier)
    return _matching(stmt, Agency.code, Agency.legal_name, Agency.city)


def _matching(stmt, *columns):
    """The rows with the search box's text (``?q=``) in one of `columns`."""
    if q := query_text():
        stmt = stmt.where(or_(*(column.ilike(f"%{q}%") for column in columns)))
    return stmt


def agency_list_statement():
    return agency_filters(select(Agency).options(joinedload(Agency.region)))


def counts_by_region_and_status() -> tuple[list[Region], dict]:
    """One GROUP BY for the whole network (or the user's region): {(region_id, status): n}."""
    rows = db.session.execute(
        select(Agency.region_id, Agency.status, func.count(Agency.id))
        .group_by(Agency.region_id, Agency.status)
    ).all()
    counts = {(r, s): n for r, s, n in rows}
    region_ids = sorted({r for r, _s in counts})
    regions = list(db.session.scalars(select(Region).where(Region.id.in_(region_ids or [0]))
                                      .order_by(Region.code)))
    return regions, counts


def agency_profile(agency: Agency) -> dict:
    """Everything the profile page shows, in a fixed number of queries."""
    history = list(db.session.scalars(
        select(AgencyStatusChange).options(joinedload(AgencyStatusChange.actor))
        .where(AgencyStatusChange.agency_id == agency.id)
        .order_by(AgencyStatusChange.at.desc(), AgencyStatusChange.id.desc())))
    users = db.session.execute(
        select(User.role, func.count(User.id)).where(User.agency_id == agency.id)
        .group_by(User.role)).all()
    return {"history": history, "user_counts": dict(users)}


def all_regions() -> list[Region]:
    return list(db.session.scalars(select(Region).options(selectinload(Region.provinces))
                                   .order_by(Region.code)))


def all_product_lines() -> list[ProductLine]:
    return list(db.session.scalars(select(ProductLine).options(selectinload(ProductLine.models))
                                   .order_by(ProductLine.code)))


def user_list_statement():
    stmt = select(User).options(joinedload(User.agency), joinedload(User.region))
    args = request.args
    if (role := args.get("role")) and len(role) < 32:
        stmt = stmt.where(User.role == role)
    if agency := int_arg("agency", None):
        stmt = stmt.where(User.agency_id == agency)
    return _matching(stmt, User.email, User.name)
