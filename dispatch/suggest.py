"""The dispatcher's suggestion (派单建议): for a service request, the agencies to offer it to,
ranked, with the reasons shown — in one SQL statement, whatever the network's size.

Candidates: agencies that receive offers (`coverage.DISPATCHABLE`: active or on probation;
not applicants, not suspended — 暂停派单 — nor terminated), authorized for the request's
product line and service type (the rule of `dispatch.coverage._authorized`, here in SQL:
:func:`authorized`), with an APPROVED coverage area for that line and type in the request's
province and city, for its district or the whole city ('') (`coverage.covering`).

The reasons, each a column, in the order they rank:

1. distance band: 1 the agency covers the district, 2 it covers the whole city;
2. open load: its open work orders / its active engineers (capacity, at least 1), ascending;
3. its latest grade, A first, none last (from the evaluation area through :func:`grade_source`:
   dispatch sits below evaluation and may not import it);
4. certified engineers: its active engineers with a certificate for the line valid today,
   most first;
5. the agency's code.

Agencies that refused an offer of this request or let it expire are left out through
`exclude_agency_ids` (the offers' table is the caller's: a subquery of agency ids, or ids).
"""
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import (
    Date,
    Integer,
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from certification.models import Certificate, Engineer, EngineerStatus
from certification.queries import valid_certificate_exists
from dispatch.coverage import DISPATCHABLE, Coverage, covering
from dispatch.requests import ServiceRequest
from portal import clock
from portal.extensions import db
from service.models import OrderStatus, WorkOrder
from tenants.models import Agency, AgencyProductLine, Region

BAND_DISTRICT, BAND_CITY = 1, 2
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Suggestion:
    """One agency to offer the request to, with the reasons of its rank."""

    agency_id: int
    agency_code: str
    agency_name: str
    region_zh: str
    region_en: str
    band: int                 # 1 covers the district, 2 covers the whole city
    open_orders: int
    engineers: int            # active engineers
    capacity: int             # active engineers, at least 1
    load: Decimal             # open_orders / capacity, 2 places
    grade: str | None         # latest published grade "A".."D"; None: none known
    score: Decimal | None
    certified_engineers: int  # active engineers certified for the line today

    def region_name(self, locale) -> str:
        return self.region_zh if str(locale).startswith("zh") else self.region_en


# --- the grade, from above (dependency inversion) ---------------------------------------------

_grade_source: Callable[[], Select] | None = None


def grade_source(fn: Callable[[], Select] | None) -> Callable[[], Select] | None:
    """Register the source of grades: `fn()` returns a SELECT of (agency_id, grade, score),
    one row per agency, its latest published result (the evaluation area registers it at
    start; None unregisters). Without a source the grade column is NULL."""
    global _grade_source
    _grade_source = fn
    return fn


def registered_grade_source() -> Callable[[], Select] | None:
    return _grade_source


# --- the rules in SQL -------------------------------------------------------------------------


def authorized(agency_id, service_types, product_line_id, service_type) -> ColumnElement:
    """SQL: the agency (its id and comma-separated service types, columns) is authorized for
    the product line and the service type (values or bound parameters) — the rule
    `dispatch.coverage._authorized` checks on one loaded agency (its product lines, its
    `service_type_list`)."""
    line = select(AgencyProductLine.id).where(AgencyProductLine.agency_id == agency_id,
                                              AgencyProductLine.product_line_id ==
                                              product_line_id).exists()
    if isinstance(service_type, str):
        service_type = type_pattern(service_type)
    listed = (literal(",") + service_types + literal(",")).like(service_type, escape="/")
    return and_(line, listed)


def type_pattern(service_type: str) -> str:
    """The LIKE pattern of one type in a comma-separated list ("%,carry/_in,%")."""
    escaped = re.sub(r"([/%_])", r"/\1", str(service_type))
    return f"%,{escaped},%"


def _bound(name: str, kind=None):
    return bindparam(f"suggest_{name}", type_=kind)


def _address() -> SimpleNamespace:
    """The request as `coverage.covering` reads it, its values bound parameters: the
    statement is built once and run with each request's values."""
    return SimpleNamespace(province_id=_bound("province_id", Integer()),
                           city=_bound("city", String()),
                           district=_bound("district", String()),
                           product_line_id=_bound("line_id", Integer()),
                           service_type=_bound("service_type", String()))


@lru_cache(maxsize=8)
def _candidates(source: Callable[[], Select] | None) -> Select:
    """The candidates and their reasons, unordered (built once per grade source)."""
    address = _address()
    today = _bound("today", Date())
    band_of_row = case((and_(Coverage.district == address.district, Coverage.district != ""),
                        BAND_DISTRICT), else_=BAND_CITY)
    # Per agency: its best band among the approved areas that cover the address (the areas
    # `coverage.covering` finds, the one statement of "covers the request's area").
    areas = (covering(address)
             .with_only_columns(Coverage.agency_id.label("agency_id"),
                                func.min(band_of_row).label("band"))
             .group_by(Coverage.agency_id)
             .subquery("areas"))
    open_orders = (select(func.count(WorkOrder.id))
                   .where(WorkOrder.agency_id == Agency.id,
                          WorkOrder.status == OrderStatus.OPEN)
                   .correlate(Agency).scalar_subquery())
    engineers = (select(func.count(Engineer.id))
                 .where(Engineer.agency_id == Agency.id,
                        Engineer.status == EngineerStatus.ACTIVE)
                 .correlate(Agency).scalar_subquery())
    # The certificate check of the certification area, held to the engineer's own agency
    # (the certificates' index starts with the owner).
    certified_now = valid_certificate_exists(Engineer.id, address.product_line_id,
                                             today).where(
        Certificate.agency_id == Engineer.agency_id)
    certified = (select(func.count(Engineer.id))
                 .where(Engineer.agency_id == Agency.id,
                        Engineer.status == EngineerStatus.ACTIVE, certified_now)
                 .correlate(Agency).scalar_subquery())
    if source is not None:
        grades = source().subquery("grades")
        grade = (select(grades.c.grade).where(grades.c.agency_id == Agency.id)
                 .correlate(Agency).limit(1).scalar_subquery())
        score = (select(grades.c.score).where(grades.c.agency_id == Agency.id)
                 .correlate(Agency).limit(1).scalar_subquery())
    else:
        grade, score = null().cast(String(1)), null().cast(Numeric(10, 2))
    return (select(Agency.id.label("agency_id"), Agency.code.label("code"),
                   Agency.legal_name.label("legal_name"), Region.name_zh.label("region_zh"),
                   Region.name_en.label("region_en"), areas.c.band,
                   open_orders.label("open_orders"), engineers.label("engineers"),
                   grade.label("grade"), score.label("score"), certified.label("certified"))
            .select_from(areas)
            .join(Agency, Agency.id == areas.c.agency_id)
            .join(Region, Region.id == Agency.region_id)
            .where(Agency.status.in_(DISPATCHABLE),
                   authorized(Agency.id, Agency.service_types, address.product_line_id,
                              _bound("type_like", String()))))


def _ranked(found: Select) -> Select:
    """The candidates in the order of their reasons, at most `limit` (a bound parameter)."""
    # Each candidate's figures worked out once (the order reads them again): materialized.
    c = found.cte("candidates").prefix_with("MATERIALIZED")
    capacity = case((c.c.engineers > 1, c.c.engineers), else_=1)
    ratio = c.c.open_orders * literal(1.0) / capacity
    return (select(c.c.agency_id, c.c.code, c.c.legal_name, c.c.region_zh, c.c.region_en,
                   c.c.band, c.c.open_orders, c.c.engineers, capacity.label("capacity"),
                   c.c.grade, c.c.score, c.c.certified)
            .order_by(c.c.band, ratio, c.c.grade.is_(None), c.c.grade, c.c.certified.desc(),
                      c.c.code)
            .limit(_bound("limit", Integer())))


@lru_cache(maxsize=8)
def _by_ids(source) -> Select:
    """The statement for no exclusion or excluded ids (an expanding parameter, maybe empty)."""
    return _ranked(_candidates(source).where(
        Agency.id.not_in(bindparam("suggest_excluded", expanding=True))))


def _excluding(exclude_agency_ids: Select) -> ColumnElement:
    ids = exclude_agency_ids.subquery("excluded")
    first = list(ids.c)[0]
    # NOT IN over a NULL would leave nobody: the NULLs are dropped first.
    return Agency.id.not_in(select(first).where(first.is_not(None)))


def statement(request: ServiceRequest, limit: int = 20, *,
              exclude_agency_ids=None) -> tuple[Select, dict]:
    """The suggestion's one SELECT (see the module's doc) and its parameters: rows of
    agency_id, code, legal_name, region_zh, region_en, band, open_orders, engineers,
    capacity, grade, score, certified."""
    params = {"suggest_province_id": request.province_id, "suggest_city": request.city,
              "suggest_district": request.district or "",
              "suggest_line_id": request.product_line_id,
              "suggest_service_type": str(request.service_type),
              "suggest_type_like": type_pattern(request.service_type),
              "suggest_today": clock.local_today(), "suggest_limit": int(limit)}
    source = _grade_source
    if isinstance(exclude_agency_ids, Select):
        return _ranked(_candidates(source).where(_excluding(exclude_agency_ids))), params
    ids = sorted({int(i) for i in (exclude_agency_ids or ()) if i is not None})
    return _by_ids(source), {**params, "suggest_excluded": ids}


def _load(open_orders: int, capacity: int) -> Decimal:
    return (Decimal(open_orders) / Decimal(capacity)).quantize(CENT, rounding=ROUND_HALF_UP)


def suggestions(request: ServiceRequest, limit: int = 20, *,
                exclude_agency_ids: Select | Iterable[int] | None = None) -> list[Suggestion]:
    """The agencies to offer `request` to, best first, at most `limit` (one query).

    `exclude_agency_ids`: agencies to leave out (those that refused the request or let an
    offer of it expire) — a SELECT whose first column is agency ids, or the ids themselves."""
    stmt, params = statement(request, limit, exclude_agency_ids=exclude_agency_ids)
    rows = db.session.execute(stmt, params)
    out = []
    for row in rows:
        score = row.score
        if score is not None and not isinstance(score, Decimal):
            score = Decimal(str(score))
        out.append(Suggestion(
            agency_id=row.agency_id, agency_code=row.code, agency_name=row.legal_name,
            region_zh=row.region_zh, region_en=row.region_en, band=int(row.band),
            open_orders=int(row.open_orders), engineers=int(row.engineers),
            capacity=int(row.capacity),
            load=_load(int(row.open_orders), int(row.capacity)), grade=row.grade,
            score=score, certified_engineers=int(row.certified)))
    return out
