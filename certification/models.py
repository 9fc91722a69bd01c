"""Engineers of the agencies, certification programs, exam sessions and certificates."""
from datetime import date, datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
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
    left_on: Mapped[date | None]

    agency = relationship("Agency", viewonly=True)
    product_lines = relationship(
        "ProductLine", secondary="engineer_product_lines",
        primaryjoin="and_(Engineer.agency_id == EngineerProductLine.agency_id, "
                    "Engineer.id == EngineerProductLine.engineer_id)",
        secondaryjoin="ProductLine.id == EngineerProductLine.product_line_id",
        order_by="ProductLine.code", viewonly=True)
    certificates = relationship(
        "Certificate",
        primaryjoin="and_(Engineer.agency_id == foreign(Certificate.agency_id), "
                    "Engineer.id == foreign(Certificate.engineer_id))",
        order_by="Certificate.valid_to.desc()", viewonly=True)

    @property
    def masked_id_number(self) -> str:
        n = self.id_number or ""
        return n[:3] + "*" * max(len(n) - 7, 0) + n[-4:] if len(n) > 7 else "*" * len(n)

    @property
    def is_active(self) -> bool:
        return self.status == EngineerStatus.ACTIVE

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

    def title(self, locale: str) -> str:
        """"空调 · L2 中级" / "Air conditioners · L2 Intermediate"."""
        from certification.states import LEVEL_LABELS

        return f"{self.product_line.name(locale)} · L{self.level} {LEVEL_LABELS[self.level]}"


class SessionStatus(StrEnum):
    OPEN = "open"        # admitting nominees; scores not yet recorded
    SCORED = "scored"    # scores recorded, certificates issued: final


class ExamSession(db.Model):
    """An exam of one program on one day and place, run by HQ (not owned by an agency)."""

    __tablename__ = "exam_sessions"
    __table_args__ = (
        # Seats reference (id, capacity): the database keeps every seat number within capacity.
        UniqueConstraint("id", "capacity"),
        CheckConstraint("capacity BETWEEN 1 AND 500", name="capacity_range"),
        CheckConstraint("status IN ('open', 'scored')", name="status_known"),
        Index("ix_exam_sessions_exam_date", "exam_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"),
                                            index=True)
    exam_date: Mapped[date]
    place: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.OPEN)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    program = relationship("Program")

    @property
    def is_open(self) -> bool:
        return self.status == SessionStatus.OPEN


class NominationStatus(StrEnum):
    PENDING = "pending"      # nominated, waiting for a seat
    ADMITTED = "admitted"    # holds a seat in a session
    PASSED = "passed"
    FAILED = "failed"
    ABSENT = "absent"
    WITHDRAWN = "withdrawn"


OPEN_NOMINATION_STATUSES = (NominationStatus.PENDING, NominationStatus.ADMITTED)


class Nomination(AgencyOwned, db.Model):
    """An agency owner's request that one engineer sit one program's exam."""

    __tablename__ = "nominations"
    __owned_table_args__ = (
        owner_fk("engineer_id", "engineers", ondelete="RESTRICT"),
        Index("ix_nominations_agency_id_engineer_id", "agency_id", "engineer_id"),
        Index("ix_nominations_program_id_status", "program_id", "status"),
        # One open nomination per engineer and program, whatever double submits do.
        Index("uq_nominations_open", "engineer_id", "program_id", unique=True,
              sqlite_where="status IN ('pending', 'admitted')",
              postgresql_where="status IN ('pending', 'admitted')"),
        CheckConstraint("status IN ('pending', 'admitted', 'passed', 'failed', 'absent', "
                        "'withdrawn')", name="status_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    engineer_id: Mapped[int]
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=NominationStatus.PENDING)
    note: Mapped[str] = mapped_column(Text, default="")
    nominated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    nominated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    engineer = relationship("Engineer", viewonly=True)
    program = relationship("Program")
    seat = relationship(
        "ExamSeat",
        primaryjoin="and_(Nomination.agency_id == foreign(ExamSeat.agency_id), "
                    "Nomination.id == foreign(ExamSeat.nomination_id))",
        uselist=False, viewonly=True)


class ExamResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ABSENT = "absent"


class ExamSeat(AgencyOwned, db.Model):
    """A nominee's seat in an exam session, and the attempt's scores and result."""

    __tablename__ = "exam_seats"
    __owned_table_args__ = (
        owner_fk("nomination_id", "nominations", ondelete="RESTRICT"),
        owner_fk("engineer_id", "engineers", ondelete="RESTRICT"),
        ForeignKeyConstraint(["session_id", "session_capacity"],
                             ["exam_sessions.id", "exam_sessions.capacity"],
                             onupdate="CASCADE", ondelete="RESTRICT"),
        UniqueConstraint("session_id", "seat_no"),
        UniqueConstraint("session_id", "engineer_id"),
        UniqueConstraint("agency_id", "nomination_id"),
        Index("ix_exam_seats_agency_id_engineer_id", "agency_id", "engineer_id"),
        CheckConstraint("seat_no BETWEEN 1 AND session_capacity", name="seat_within_capacity"),
        CheckConstraint("(theory_score IS NULL OR theory_score BETWEEN 0 AND 100) AND "
                        "(practical_score IS NULL OR practical_score BETWEEN 0 AND 100)",
                        name="scores_range"),
        CheckConstraint("result IS NULL OR result IN ('passed', 'failed', 'absent')",
                        name="result_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int]
    session_capacity: Mapped[int]
    seat_no: Mapped[int]
    nomination_id: Mapped[int]
    engineer_id: Mapped[int]
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"))
    exam_date: Mapped[date]  # the session's date, kept with the attempt for retake rules
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    theory_score: Mapped[int | None]
    practical_score: Mapped[int | None]
    result: Mapped[str | None] = mapped_column(String(16))
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session = relationship("ExamSession", foreign_keys="ExamSeat.session_id",
                           primaryjoin="ExamSeat.session_id == ExamSession.id", viewonly=True)
    engineer = relationship("Engineer", viewonly=True,
                            primaryjoin="and_(ExamSeat.agency_id == Engineer.agency_id, "
                                        "ExamSeat.engineer_id == Engineer.id)")
    nomination = relationship("Nomination", viewonly=True,
                              primaryjoin="and_(ExamSeat.agency_id == Nomination.agency_id, "
                                          "ExamSeat.nomination_id == Nomination.id)")
    certificate = relationship(
        "Certificate", uselist=False, viewonly=True,
        primaryjoin="and_(ExamSeat.agency_id == foreign(Certificate.agency_id), "
                    "ExamSeat.id == foreign(Certificate.seat_id))")


class Certificate(AgencyOwned, db.Model):
    """A certificate issued to an engineer; valid from/to, possibly revoked or renewed."""

    __tablename__ = "certificates"
    __owned_table_args__ = (
        owner_fk("engineer_id", "engineers", ondelete="RESTRICT"),
        # One certificate per passed attempt: a double submit cannot issue two.
        owner_fk("seat_id", "exam_seats", ondelete="RESTRICT"),
        owner_fk("renewal_of_id", "certificates", ondelete="RESTRICT"),
        UniqueConstraint("seat_id"),
        UniqueConstraint("renewal_of_id"),
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
    seat_id: Mapped[int | None]          # the passed attempt that issued it
    renewal_of_id: Mapped[int | None]    # the certificate this one renews

    # Joined on the composite key (agency_id, engineer_id); set the ids, not the relationship.
    engineer = relationship("Engineer", viewonly=True,
                            primaryjoin="and_(Certificate.agency_id == Engineer.agency_id, "
                                        "Certificate.engineer_id == Engineer.id)")
    program = relationship("Program")
    product_line = relationship("ProductLine", viewonly=True)
    renewal_of = relationship(
        "Certificate", viewonly=True, uselist=False,
        primaryjoin="and_(Certificate.agency_id == remote(Certificate.agency_id), "
                    "foreign(Certificate.renewal_of_id) == remote(Certificate.id))")
    renewed_by = relationship(
        "Certificate", viewonly=True, uselist=False,
        primaryjoin="and_(Certificate.agency_id == remote(Certificate.agency_id), "
                    "Certificate.id == remote(foreign(Certificate.renewal_of_id)))")
