"""Engineers of the agencies, certification programs and certificates."""
from datetime import date, datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import AgencyOwned, owner_fk


class Education(StrEnum):
    SECONDARY = "secondary"   # 中专/高中
    COLLEGE = "college"       # 大专
    BACHELOR = "bachelor"     # 本科
    MASTER = "master"         # 硕士及以上


EDUCATION_LABELS = {
    Education.SECONDARY: _l("Secondary school"),
    Education.COLLEGE: _l("College diploma (大专)"),
    Education.BACHELOR: _l("Bachelor"),
    Education.MASTER: _l("Master or higher"),
}
EDUCATION_RANK = {Education.SECONDARY: 0, Education.COLLEGE: 1, Education.BACHELOR: 2,
                  Education.MASTER: 3}


class EngineerStatus(StrEnum):
    ACTIVE = "active"
    LEFT = "left"


class Engineer(AgencyOwned, db.Model):
    """A service engineer of one agency (the person; `user_id` links an optional account)."""

    __tablename__ = "engineers"
    __owned_table_args__ = (
        Index("ix_engineers_agency_id_status", "agency_id", "status"),
        UniqueConstraint("agency_id", "id_number"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    id_number: Mapped[str] = mapped_column(String(32))  # 身份证号; shown masked
    phone: Mapped[str] = mapped_column(String(32), default="")
    education: Mapped[str] = mapped_column(String(16), default=Education.COLLEGE)
    hire_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default=EngineerStatus.ACTIVE)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def masked_id_number(self) -> str:
        n = self.id_number or ""
        return n[:3] + "*" * max(len(n) - 7, 0) + n[-4:] if len(n) > 7 else "*" * len(n)

    def years_of_experience(self, on: date) -> float:
        return (on - self.hire_date).days / 365.25


class EngineerProductLine(AgencyOwned, db.Model):
    """A product line an engineer works on."""

    __tablename__ = "engineer_product_lines"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "engineer_id", "product_line_id"),
        owner_fk("engineer_id", "engineers", ondelete="CASCADE"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    engineer_id: Mapped[int]
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))


class Program(db.Model):
    """A certification program: product line × level, with its rules."""

    __tablename__ = "programs"
    __table_args__ = (
        UniqueConstraint("product_line_id", "level"),
        CheckConstraint("level BETWEEN 1 AND 3", name="level_range"),
        CheckConstraint("validity_months BETWEEN 1 AND 120", name="validity_range"),
        CheckConstraint("theory_pass_mark BETWEEN 0 AND 100 AND practical_pass_mark "
                        "BETWEEN 0 AND 100", name="pass_marks_range"),
        CheckConstraint("retake_wait_days >= 0 AND max_attempts >= 1", name="retake_rules"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))
    level: Mapped[int]
    validity_months: Mapped[int] = mapped_column(default=24)
    theory_pass_mark: Mapped[int] = mapped_column(default=60)
    practical_pass_mark: Mapped[int] = mapped_column(default=60)
    retake_wait_days: Mapped[int] = mapped_column(default=30)
    max_attempts: Mapped[int] = mapped_column(default=3)
    min_experience_years: Mapped[int] = mapped_column(default=1)
    min_education: Mapped[str] = mapped_column(String(16), default=Education.COLLEGE)
    is_active: Mapped[bool] = mapped_column(default=True)

    product_line = relationship("ProductLine")


class Certificate(AgencyOwned, db.Model):
    """A certificate issued to an engineer; valid from/to, possibly revoked."""

    __tablename__ = "certificates"
    __owned_table_args__ = (
        owner_fk("engineer_id", "engineers", ondelete="RESTRICT"),
        Index("ix_certificates_agency_id_engineer_id", "agency_id", "engineer_id"),
        Index("ix_certificates_valid_to", "valid_to"),
        CheckConstraint("valid_to >= valid_from", name="validity_order"),
        CheckConstraint("level BETWEEN 1 AND 3", name="level_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    engineer_id: Mapped[int]
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"))
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))
    level: Mapped[int]
    number: Mapped[str] = mapped_column(String(32), unique=True)
    verification_code: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[date]
    valid_to: Mapped[date]
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The local day from which the revocation applies (service dates are compared with it).
    revoked_on: Mapped[date | None]
    revoke_reason: Mapped[str | None] = mapped_column(Text)

    # Joined on the composite key (agency_id, engineer_id); set the ids, not the relationship.
    engineer = relationship("Engineer", viewonly=True)
    program = relationship("Program")
