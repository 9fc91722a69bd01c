"""Agency coverage (服务区域): the cities and districts an agency serves per product line and
service type, declared by the agency and approved or rejected by HQ admin; an approved area
can be withdrawn. The dispatcher's suggestion reads the approved ones (index ``area``).

States: proposed → approved | rejected; approved → withdrawn. A live declaration (proposed or
approved) is unique per agency, area, line and type: the code says so in words, a partial
unique index holds it against races.
"""
from datetime import datetime
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, case, func, select, text
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from dispatch import policy
from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import UTCDateTime, Versioned, utcnow
from portal.tenancy import AgencyOwned
from portal.text import clean
from portal.transitions import describe, note, transition
from tenants.models import SERVICE_TYPE_LABELS, Agency, AgencyStatus, Province


class CoverageStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


COVERAGE_STATUS_LABELS = {
    CoverageStatus.PROPOSED: _l("Waiting for HQ"),
    CoverageStatus.APPROVED: _l("Approved"),
    CoverageStatus.REJECTED: _l("Rejected"),
    CoverageStatus.WITHDRAWN: _l("Withdrawn"),
}
LIVE = (CoverageStatus.PROPOSED, CoverageStatus.APPROVED)
_LIVE_SQL = "status IN ('proposed', 'approved')"
CITY_MAX = DISTRICT_MAX = 64
REASON_MAX = 500


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Coverage(AgencyOwned, Versioned, db.Model):
    """One area an agency serves for one product line and service type."""

    __tablename__ = "agency_coverages"
    __owned_table_args__ = (
        Index("ix_agency_coverages_agency_id_status", "agency_id", "status"),
        # The suggestion: approved agencies of a city for a line and a type.
        Index("ix_agency_coverages_area", "province_id", "city", "product_line_id",
              "service_type", "status"),
        Index("uq_agency_coverages_live", "agency_id", "province_id", "city", "district",
              "product_line_id", "service_type", unique=True,
              postgresql_where=text(_LIVE_SQL), sqlite_where=text(_LIVE_SQL)),
        CheckConstraint(_in("status", CoverageStatus), name="status_known"),
        CheckConstraint(_in("service_type", SERVICE_TYPE_LABELS), name="service_type_known"),
        CheckConstraint("city <> ''", name="city_given"),
        CheckConstraint("status <> 'rejected' OR reason <> ''", name="rejected_has_reason"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id", ondelete="RESTRICT"))
    city: Mapped[str] = mapped_column(String(CITY_MAX))
    district: Mapped[str] = mapped_column(String(DISTRICT_MAX), default="")  # "": whole city
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))
    service_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CoverageStatus.PROPOSED)
    reason: Mapped[str] = mapped_column(Text, default="")  # HQ's reason for a rejection
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    declared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))

    agency = relationship("Agency", viewonly=True)
    province = relationship("Province", viewonly=True)
    product_line = relationship("ProductLine", viewonly=True)

    @property
    def status_label(self):
        return COVERAGE_STATUS_LABELS.get(self.status, self.status)

    @property
    def service_type_label(self):
        return SERVICE_TYPE_LABELS.get(self.service_type, self.service_type)


describe(Coverage, _l("coverage area"), lambda c: c.status_label)


def _values(row: Coverage) -> dict:
    return {"province_id": row.province_id, "city": row.city, "district": row.district,
            "product_line_id": row.product_line_id, "service_type": row.service_type,
            "status": str(row.status)}


# --- rules ----------------------------------------------------------------------------------


def _area(province_id, city, district) -> tuple[int, str, str]:
    try:
        province_id = int(province_id)
    except (TypeError, ValueError):
        province_id = 0
    if not 0 < province_id < 2**31 or db.session.get(Province, province_id) is None:
        raise DomainError(_("Choose a province of the list."), field="province_id")
    city, district = clean(city), clean(district)
    if not city:
        raise DomainError(_("Enter the city."), field="city")
    if len(city) > CITY_MAX:
        raise DomainError(_("At most %(n)s characters.", n=CITY_MAX), field="city")
    if len(district) > DISTRICT_MAX:
        raise DomainError(_("At most %(n)s characters.", n=DISTRICT_MAX), field="district")
    return province_id, city, district


def _authorized(agency: Agency, product_line_id, service_type) -> tuple[int, str]:
    lines = {line.id for line in agency.product_lines}
    try:
        product_line_id = int(product_line_id)
    except (TypeError, ValueError):
        product_line_id = 0
    if product_line_id not in lines:
        raise DomainError(_("The agency is not authorized for this product line."),
                          field="product_line_id")
    if service_type not in agency.service_type_list:
        raise DomainError(_("The agency is not authorized for this service type."),
                          field="service_type")
    return product_line_id, str(service_type)


# Agencies that receive offers: in service (a probation agency too; not an applicant, a
# suspended or a terminated one).
DISPATCHABLE = (AgencyStatus.ACTIVE, AgencyStatus.PROBATION)


def covering(request):
    """A SELECT of the agencies with an approved coverage of the request's area (its city, the
    district or the whole city) for its product line and service type."""
    return select(Coverage.agency_id).where(
        Coverage.status == CoverageStatus.APPROVED, Coverage.province_id == request.province_id,
        Coverage.city == request.city, Coverage.district.in_(["", request.district]),
        Coverage.product_line_id == request.product_line_id,
        Coverage.service_type == request.service_type)


def covers(agency_id: int, request) -> bool:
    """The agency may serve the request: active coverage approved for its area, and still
    authorized for the product line and service type (an authorization withdrawn after the
    approval ends it)."""
    agency = db.session.get(Agency, agency_id)
    if agency is None or agency.status not in DISPATCHABLE:
        return False
    if not db.session.scalar(select(func.count()).select_from(
            covering(request).where(Coverage.agency_id == agency_id).subquery())):
        return False
    try:
        _authorized(agency, request.product_line_id, request.service_type)
    except DomainError:
        return False
    return True


@transition("coverage.declared", Coverage, label=_l("Coverage area declared"),
            permission=policy.COVERAGE_DECLARE, creates=True, target=CoverageStatus.PROPOSED,
            audit=_values)
def declare_coverage(agency: Agency, *, province_id, city: str, district: str = "",
                     product_line_id, service_type: str, acting_user) -> Coverage:
    """The agency declares that it serves an area (a city, or one district of it) for one of
    its product lines and service types; HQ admin decides. Raises DomainError for an unknown
    province, an empty city, a line or type the agency is not authorized for, a terminated
    agency, or the same area, line and type already proposed or approved."""
    if agency.status == AgencyStatus.TERMINATED:
        raise DomainError(_("A terminated agency cannot declare coverage."))
    province_id, city, district = _area(province_id, city, district)
    product_line_id, service_type = _authorized(agency, product_line_id, service_type)
    same = db.session.scalar(select(Coverage.id).where(
        Coverage.agency_id == agency.id, Coverage.province_id == province_id,
        Coverage.city == city, Coverage.district == district,
        Coverage.product_line_id == product_line_id, Coverage.service_type == service_type,
        Coverage.status.in_(LIVE)).limit(1))
    if same is not None:
        raise DomainError(_("This area is already declared for this product line and service "
                            "type."))
    row = Coverage(agency_id=agency.id, province_id=province_id, city=city, district=district,
                   product_line_id=product_line_id, service_type=service_type,
                   status=CoverageStatus.PROPOSED,
                   declared_by_id=getattr(acting_user, "id", None))
    db.session.add(row)
    return row


def _reason(value) -> str:
    reason = clean(value, multiline=True)
    if len(reason) > REASON_MAX:
        raise DomainError(_("At most %(n)s characters.", n=REASON_MAX), field="reason")
    return reason


def _not_proposed(row: Coverage):
    return _("This declaration was already decided.")


@transition("coverage.decided", Coverage, label=_l("Coverage area decided"),
            permission=policy.COVERAGE_DECIDE, source={CoverageStatus.PROPOSED},
            versioned=True, audit=_values, wrong_state=_not_proposed)
def decide_coverage(row: Coverage, *, approve: bool, reason: str = "", acting_user) -> None:
    """HQ admin approves a proposed declaration, or rejects it with a reason. Raises
    DomainError for a decided one, a stale page or a rejection without a reason."""
    reason = _reason(reason)
    if not approve and not reason:
        raise DomainError(_("Give the reason for rejecting this area."), field="reason")
    row.status = CoverageStatus.APPROVED if approve else CoverageStatus.REJECTED
    row.reason = "" if approve else reason
    row.decided_at, row.decided_by_id = clock.now(), getattr(acting_user, "id", None)
    if reason and not approve:
        note(reason=reason)


@transition("coverage.withdrawn", Coverage, label=_l("Coverage area withdrawn"),
            permission=policy.COVERAGE_WITHDRAW, source={CoverageStatus.APPROVED},
            target=CoverageStatus.WITHDRAWN, versioned=True, audit=_values,
            wrong_state=_l("Only an approved area can be withdrawn."))
def withdraw_coverage(row: Coverage, *, reason: str = "", acting_user) -> None:
    """The agency owner (or HQ admin) stops serving an approved area. Raises DomainError for
    an area not approved or a stale page."""
    reason = _reason(reason)
    row.withdrawn_at, row.withdrawn_by_id = clock.now(), getattr(acting_user, "id", None)
    if reason:
        note(reason=reason)


# --- reads ----------------------------------------------------------------------------------


def list_statement(*, status: str | None = None, agency_id: int | None = None):
    """Declarations through the tenancy guard, waiting ones first, newest first; the rows'
    agency, province and product line loaded with them."""
    stmt = select(Coverage).options(joinedload(Coverage.agency), joinedload(Coverage.province),
                                    joinedload(Coverage.product_line))
    if status in COVERAGE_STATUS_LABELS:
        stmt = stmt.where(Coverage.status == status)
    if agency_id is not None:
        stmt = stmt.where(Coverage.agency_id == agency_id)
    waiting_first = case((Coverage.status == CoverageStatus.PROPOSED, 0), else_=1)
    return stmt.order_by(waiting_first, Coverage.declared_at.desc(), Coverage.id.desc())


def provinces() -> list[Province]:
    return list(db.session.scalars(select(Province).order_by(Province.code)))
