"""Regions, provinces, product lines and models, agencies and their lifecycle."""
from datetime import date, datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import AgencyOwned, Scope, TenantScoped, owner_criteria


class Named:
    """A code and a name in Chinese and English (regions, provinces, product lines)."""

    code: Mapped[str] = mapped_column(String(16), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


class Region(Named, db.Model):
    """大区: a sales and service region; regional managers are scoped to one."""

    __tablename__ = "regions"
    id: Mapped[int] = mapped_column(primary_key=True)

    provinces = relationship("Province", back_populates="region", order_by="Province.code")


class Province(Named, db.Model):
    __tablename__ = "provinces"
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"),
                                           index=True)

    region = relationship("Region", back_populates="provinces")


class ProductLine(Named, db.Model):
    __tablename__ = "product_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    is_active: Mapped[bool] = mapped_column(default=True)

    models = relationship("ProductModel", back_populates="product_line",
                          order_by="ProductModel.code")


class ProductModel(db.Model):
    __tablename__ = "product_models"
    __table_args__ = (CheckConstraint("warranty_months BETWEEN 0 AND 120",
                                      name="warranty_months_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    warranty_months: Mapped[int] = mapped_column(default=12)

    product_line = relationship("ProductLine", back_populates="models")


class AgencyType(StrEnum):
    CENTER = "center"    # 维修中心
    STATION = "station"  # 维修站


class AgencyStatus(StrEnum):
    APPLICANT = "applicant"
    PROBATION = "probation"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class ServiceType(StrEnum):
    PHONE = "phone"        # 电话咨询
    ONSITE = "onsite"      # 上门维修
    CARRY_IN = "carry_in"  # 送修


AGENCY_TYPE_LABELS = {AgencyType.CENTER: _l("Repair center"),
                      AgencyType.STATION: _l("Repair station")}
STATUS_LABELS = {
    AgencyStatus.APPLICANT: _l("Applicant"),
    AgencyStatus.PROBATION: _l("Probation"),
    AgencyStatus.ACTIVE: _l("Active"),
    AgencyStatus.SUSPENDED: _l("Suspended"),
    AgencyStatus.TERMINATED: _l("Terminated"),
}
SERVICE_TYPE_LABELS = {
    ServiceType.PHONE: _l("Phone consultation"),
    ServiceType.ONSITE: _l("On-site repair"),
    ServiceType.CARRY_IN: _l("Carry-in repair"),
}

# The lifecycle: which status may follow which.
TRANSITIONS = {
    AgencyStatus.APPLICANT: {AgencyStatus.PROBATION, AgencyStatus.TERMINATED},
    AgencyStatus.PROBATION: {AgencyStatus.ACTIVE, AgencyStatus.SUSPENDED,
                             AgencyStatus.TERMINATED},
    AgencyStatus.ACTIVE: {AgencyStatus.PROBATION, AgencyStatus.SUSPENDED,
                          AgencyStatus.TERMINATED},
    AgencyStatus.SUSPENDED: {AgencyStatus.ACTIVE, AgencyStatus.PROBATION,
                             AgencyStatus.TERMINATED},
    AgencyStatus.TERMINATED: set(),
}


def _listed(text: str) -> list[str]:
    """The items of a comma-separated column."""
    return [item for item in text.split(",") if item]


class Agency(TenantScoped, db.Model):
    """An authorized service agency: the tenant. Its users see only its rows."""

    __tablename__ = "agencies"
    __owner_marker__ = r"agencies(?:_\d+)?\.(?:id|region_id) (?:=|IN|IS)"  # its own id
    __table_args__ = (
        CheckConstraint("tier BETWEEN 1 AND 5", name="tier_range"),
        CheckConstraint("auth_valid_to IS NULL OR auth_valid_from IS NULL "
                        "OR auth_valid_to >= auth_valid_from", name="auth_dates_order"),
        CheckConstraint("required_l2_engineers >= 0", name="required_l2_nonnegative"),
        Index("ix_agencies_region_id_status", "region_id", "status"),
        Index("ix_agencies_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    agency_type: Mapped[str] = mapped_column(String(16), default=AgencyType.STATION)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    province_id: Mapped[int | None] = mapped_column(
        ForeignKey("provinces.id", ondelete="RESTRICT"))
    city: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    tier: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default=AgencyStatus.APPLICANT)
    service_types: Mapped[str] = mapped_column(String(64), default="")  # comma-separated
    auth_valid_from: Mapped[date | None]
    auth_valid_to: Mapped[date | None]
    bank_name: Mapped[str] = mapped_column(String(120), default="")
    bank_account: Mapped[str] = mapped_column(String(40), default="")
    required_l2_engineers: Mapped[int] = mapped_column(default=1)
    # The e-mail domains of the agency's accounts, comma-separated ("sh-c01.com,sh-c01.cn"),
    # set by HQ; the agency owner creates accounts with addresses in them only.
    email_domains: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region = relationship("Region")
    province = relationship("Province")
    product_lines = relationship("ProductLine", secondary="agency_product_lines",
                                 order_by="ProductLine.code", viewonly=True)

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        if scope.kind == "region":
            return cls.region_id == scope.id
        return owner_criteria(cls.id, scope)

    @property
    def allows_sign_in(self) -> bool:
        return self.status != AgencyStatus.TERMINATED

    @property
    def masked_bank_account(self) -> str:
        digits = self.bank_account.replace(" ", "")
        return "" if not digits else "•••• " + digits[-4:]

    @property
    def service_type_list(self) -> list[str]:
        return _listed(self.service_types)

    @property
    def email_domain_list(self) -> list[str]:
        return _listed(self.email_domains)

    def __repr__(self) -> str:
        return f"<Agency {self.code}>"


class AgencyProductLine(AgencyOwned, db.Model):
    """A product line the agency is authorized to service."""

    __tablename__ = "agency_product_lines"
    __owned_table_args__ = (UniqueConstraint("agency_id", "product_line_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))


class AgencyStatusChange(AgencyOwned, db.Model):
    """One step of an agency's lifecycle, kept for ever."""

    __tablename__ = "agency_status_changes"
    __owned_table_args__ = (Index("ix_agency_status_changes_agency_id_at", "agency_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User")


class IssuerIdentity(db.Model):
    """Who issues the network's documents (certificates, statements, evaluation reports): HQ's
    legal name and address in both languages, its logo and optional seal (one row, id 1).

    The images are files stored like evidence (outside the web root, under a generated name);
    the row keeps their stored name, content type and SHA-256. Nothing configured: documents
    carry the portal's name."""

    __tablename__ = "issuer_identity"
    __table_args__ = (CheckConstraint("id = 1", name="one_issuer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200), default="")
    name_en: Mapped[str] = mapped_column(String(200), default="")
    address_zh: Mapped[str] = mapped_column(String(300), default="")
    address_en: Mapped[str] = mapped_column(String(300), default="")
    logo_file: Mapped[str | None] = mapped_column(String(64))
    logo_type: Mapped[str | None] = mapped_column(String(32))
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    seal_file: Mapped[str | None] = mapped_column(String(64))
    seal_type: Mapped[str | None] = mapped_column(String(32))
    seal_sha256: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}

    def name(self, locale: str) -> str:
        zh, en = self.name_zh.strip(), self.name_en.strip()
        return (zh or en) if locale.startswith("zh") else (en or zh)

    def address(self, locale: str) -> str:
        zh, en = self.address_zh.strip(), self.address_en.strip()
        return (zh or en) if locale.startswith("zh") else (en or zh)
