"""Settlement: rate cards and configuration (HQ), settlements, their lines, claims and evidence.

Everything an agency claims is agency-owned; children reference their parents with composite
keys ``(agency_id, parent_id)``. A work order, an overdue return, a complaint or a quarter's
grade sits in at most one live claim: partial unique indexes on ``settlement_claims`` hold that
on SQLite and PostgreSQL alike. Amounts are exact fen (:class:`portal.models.Money`).
"""
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import ExactDecimal, Hours, Money, UTCDateTime, Versioned, utcnow
from portal.tenancy import AgencyOwned, owner_fk
from settlement import kinds
from settlement.kinds import KIND_ORDER, LineKind  # noqa: F401 - declared in settlement.kinds
from tenants.models import ServiceType


class Percent(ExactDecimal):
    """A percentage exact to two places (12.50 means 12.5 %), stored as hundredths."""

    places = 2
    cache_ok = True


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"
    PAID = "paid"
    WITHDRAWN = "withdrawn"


# The agency may still change the claim's lines and evidence.
EDITABLE = frozenset({Status.DRAFT, Status.RETURNED})
# A line's decision may be appealed (before payment).
APPEALABLE = frozenset({Status.SUBMITTED, Status.APPROVED, Status.RETURNED})


class Decision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    ADJUSTED = "adjusted"
    DENIED = "denied"


class Disposition(StrEnum):
    PAY = "pay"
    REVIEW = "review"
    DENY = "deny"


class AppealStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REJECTED = "rejected"


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


# --- HQ: rate cards and configuration ---------------------------------------------------------


class RateCard(Versioned, db.Model):
    """One version of the rates, in force from `effective_from` until the next version."""

    __tablename__ = "settlement_rate_cards"
    id: Mapped[int] = mapped_column(primary_key=True)
    effective_from: Mapped[date] = mapped_column(unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    fees = relationship("RateCardFee", order_by="[RateCardFee.product_line_id, "
                        "RateCardFee.service_type]", cascade="all, delete-orphan")
    tier_rates = relationship("RateCardTierRate", order_by="RateCardTierRate.tier",
                              cascade="all, delete-orphan")


class RateCardFee(db.Model):
    """Per product line × service type: call-out fee, distance terms and parts handling."""

    __tablename__ = "settlement_rate_card_fees"
    __table_args__ = (
        UniqueConstraint("rate_card_id", "product_line_id", "service_type"),
        CheckConstraint(_in("service_type", ServiceType),
                        name="service_type_known"),
        CheckConstraint("callout_fee >= 0 AND per_km >= 0 AND free_km >= 0",
                        name="amounts_nonnegative"),
        CheckConstraint("max_km >= free_km", name="cap_above_free"),
        CheckConstraint("parts_handling_pct BETWEEN 0 AND 10000", name="pct_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    rate_card_id: Mapped[int] = mapped_column(
        ForeignKey("settlement_rate_cards.id", ondelete="CASCADE"))
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))
    service_type: Mapped[str] = mapped_column(String(16))
    callout_fee: Mapped[Decimal] = mapped_column(Money)
    free_km: Mapped[Decimal] = mapped_column(Hours)
    per_km: Mapped[Decimal] = mapped_column(Money)
    max_km: Mapped[Decimal] = mapped_column(Hours)  # km paid at most (the cap)
    parts_handling_pct: Mapped[Decimal] = mapped_column(Percent)

    product_line = relationship("ProductLine")


class RateCardTierRate(db.Model):
    """The hourly labor rate for agencies of one tier (1–5 stars)."""

    __tablename__ = "settlement_rate_card_tier_rates"
    __table_args__ = (
        UniqueConstraint("rate_card_id", "tier"),
        CheckConstraint("tier BETWEEN 1 AND 5", name="tier_range"),
        CheckConstraint("hourly_rate >= 0", name="rate_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    rate_card_id: Mapped[int] = mapped_column(
        ForeignKey("settlement_rate_cards.id", ondelete="CASCADE"))
    tier: Mapped[int]
    hourly_rate: Mapped[Decimal] = mapped_column(Money)


class SettlementSettings(Versioned, db.Model):
    """The one row of settlement configuration HQ admin edits (defaults until first saved)."""

    __tablename__ = "settlement_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("claim_window_days BETWEEN 1 AND 3650", name="window_range"),
        CheckConstraint("duplicate_window_days BETWEEN 0 AND 365", name="duplicate_range"),
        CheckConstraint("uncertified_share_pct BETWEEN 0 AND 10000", name="share_range"),
        CheckConstraint("complaint_deduction >= 0 AND evidence_threshold >= 0 "
                        "AND second_approval_threshold >= 0 AND max_order_hours >= 0",
                        name="amounts_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    claim_window_days: Mapped[int]
    duplicate_window_days: Mapped[int]
    uncertified_share_pct: Mapped[Decimal] = mapped_column(Percent)
    complaint_deduction: Mapped[Decimal] = mapped_column(Money)
    evidence_threshold: Mapped[Decimal] = mapped_column(Money)
    max_order_hours: Mapped[Decimal] = mapped_column(Hours)
    second_approval_threshold: Mapped[Decimal] = mapped_column(Money)
    grade_a_pct: Mapped[Decimal] = mapped_column(Percent)
    grade_b_pct: Mapped[Decimal] = mapped_column(Percent)
    grade_c_pct: Mapped[Decimal] = mapped_column(Percent)
    grade_d_pct: Mapped[Decimal] = mapped_column(Percent)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))


class ExceptionDisposition(db.Model):
    """What HQ does with lines that carry one exception code: pay, review or deny."""

    __tablename__ = "settlement_dispositions"
    __table_args__ = (CheckConstraint(_in("disposition", Disposition), name="disposition_known"),)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    disposition: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))


class Delegation(db.Model):
    """An approver out of office hands their approval powers to a colleague for some days."""

    __tablename__ = "settlement_delegations"
    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="dates_order"),
        CheckConstraint("delegator_id <> delegate_id", name="not_to_self"),
        Index("ix_settlement_delegations_delegate_id_ends_on", "delegate_id", "ends_on"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    delegator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                              index=True)
    delegate_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    delegator = relationship("User", foreign_keys=[delegator_id])
    delegate = relationship("User", foreign_keys=[delegate_id])

    def is_active_on(self, day: date) -> bool:
        return self.ended_at is None and self.starts_on <= day <= self.ends_on


# --- agency: settlements -----------------------------------------------------------------------


class Settlement(AgencyOwned, Versioned, db.Model):
    """结算单: an agency's claim for one month, with its stored, re-checkable totals."""

    __tablename__ = "settlements"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "number"),
        # ST-<agency code>-YYYYMM-NN: unique across the network (migration stl0004).
        Index("uq_settlements_number", "number", unique=True),
        Index("ix_settlements_agency_id_year_month", "agency_id", "year", "month"),
        Index("ix_settlements_agency_id_status", "agency_id", "status"),
        CheckConstraint(_in("status", Status), name="status_known"),
        CheckConstraint("month BETWEEN 1 AND 12", name="month_range"),
        CheckConstraint("year BETWEEN 2000 AND 2200", name="year_range"),
        CheckConstraint("(status = 'paid') = (paid_at IS NOT NULL)", name="paid_at_iff_paid"),
        CheckConstraint("status <> 'paid' OR payment_reference IS NOT NULL",
                        name="paid_has_reference"),
        CheckConstraint("(approved_at IS NOT NULL) = (status IN ('approved', 'paid'))",
                        name="approved_at_iff_approved"),
        CheckConstraint("status = 'draft' OR status = 'withdrawn' OR submitted_at IS NOT NULL",
                        name="submitted_has_time"),
        CheckConstraint("second_approved_by_id IS NULL OR second_approved_by_id <> "
                        "first_approved_by_id", name="two_approvers"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40))
    # The number it had before numbers named the agency ("ST202610-01"), still searched.
    former_number: Mapped[str | None] = mapped_column(String(40), index=True)
    year: Mapped[int]
    month: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=Status.DRAFT)
    claimed_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    approved_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    line_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    computed_on: Mapped[date]  # the day amounts and checks were last worked out
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    submission_count: Mapped[int] = mapped_column(default=0)
    needs_regional_review: Mapped[bool] = mapped_column(default=False)
    regional_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    regional_reviewed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    first_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    second_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    second_approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_on: Mapped[date | None]
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    payment_reference: Mapped[str | None] = mapped_column(String(64))
    # Set by every transition, so that each one moves the version (stale pages are refused).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    agency = relationship("Agency", viewonly=True)
    lines = relationship("SettlementLine", viewonly=True,
                         order_by="[SettlementLine.kind_order, SettlementLine.id]")

    @property
    def period(self) -> str:
        return f"{self.year}-{self.month:02d}"

    @property
    def is_editable(self) -> bool:
        """The agency may still change its lines and evidence."""
        return self.status in EDITABLE

    @property
    def awaits_regional_review(self) -> bool:
        return (self.status == Status.SUBMITTED and self.needs_regional_review
                and self.regional_reviewed_at is None)

    @property
    def in_hq_review(self) -> bool:
        """Submitted and past the regional review (if any): HQ decides it now."""
        return self.status == Status.SUBMITTED and not self.awaits_regional_review

    @property
    def awaits_second_approval(self) -> bool:
        return self.status == Status.SUBMITTED and self.first_approved_at is not None


def _subject_keys() -> list:
    """The composite owner keys of the agency-owned subjects a claim or a line names."""
    return [owner_fk(k.claim_column, k.subject_table, ondelete="RESTRICT")
            for k in kinds.LINE_KINDS if k.subject_table]


def _live_index(name: str, column: str) -> Index:
    """The unique index of live claims on one kind of subject. Its condition is written as
    SQLAlchemy writes ``Claim.is_live`` on each database ("is_live = 1" on SQLite), so that
    the look-ups through :meth:`Claim.live` can use it (migration stlscale1)."""
    return Index(f"uq_settlement_claims_live_{name}", "agency_id", column, unique=True,
                 sqlite_where=text(f"is_live = 1 AND {column} IS NOT NULL"),
                 postgresql_where=text(f"is_live AND {column} IS NOT NULL"))


class ClaimSubjects:
    """What a claim (and its line) holds: one subject column per line kind
    (settlement.kinds.LINE_KINDS names them); exactly one is set."""

    work_order_id: Mapped[int | None] = mapped_column(Integer)
    part_return_id: Mapped[int | None] = mapped_column(Integer)
    complaint_id: Mapped[int | None] = mapped_column(Integer)
    grade_period: Mapped[str | None] = mapped_column(String(8))  # Period.label: "2026Q3"


class Claim(AgencyOwned, ClaimSubjects, db.Model):
    """One thing paid or deducted: live while its settlement holds it, at most once."""

    __tablename__ = "settlement_claims"
    __owned_table_args__ = (
        owner_fk("settlement_id", "settlements", ondelete="RESTRICT"),
        *_subject_keys(),
        Index("ix_settlement_claims_agency_id_settlement_id", "agency_id", "settlement_id"),
        # The rule that matters most: one live claim per subject, held by the database.
        *(_live_index(k.claim_column.removesuffix("_id") if k.subject_table else k.value,
                      k.claim_column) for k in kinds.LINE_KINDS),
        CheckConstraint(kinds.one_subject_check(), name="one_subject"),
        CheckConstraint("is_live = (released_at IS NULL)", name="released_iff_not_live"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int]
    is_live: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def live(cls, subject=None):
        """Live claims (on `subject`, one of the subject columns), in the terms of the partial
        unique indexes: a network-wide duplicate check through them took 0.01 ms per order
        instead of a scan of the agency's claims."""
        if subject is None:
            return cls.is_live
        return and_(cls.is_live, subject.is_not(None))


class SettlementLine(AgencyOwned, ClaimSubjects, Versioned, db.Model):
    """One claimed order (with every step of its computation), deduction or bonus."""

    __tablename__ = "settlement_lines"
    __owned_table_args__ = (
        owner_fk("settlement_id", "settlements", ondelete="RESTRICT"),
        owner_fk("claim_id", "settlement_claims", ondelete="RESTRICT"),
        *_subject_keys(),
        UniqueConstraint("agency_id", "claim_id"),
        Index("ix_settlement_lines_agency_id_settlement_id", "agency_id", "settlement_id",
              "kind_order"),
        Index("ix_settlement_lines_agency_id_work_order_id", "agency_id", "work_order_id"),
        CheckConstraint(_in("kind", LineKind), name="kind_known"),
        CheckConstraint(_in("decision", Decision), name="decision_known"),
        CheckConstraint(_in("disposition", Disposition), name="disposition_known"),
        *(CheckConstraint(sql, name=name) for name, sql in kinds.kind_checks()),
        *(CheckConstraint(sql, name=name) for name, sql in kinds.fee_checks()),
        CheckConstraint("(decision = 'pending') = (approved_amount IS NULL)",
                        name="decided_has_amount"),
        CheckConstraint("decision NOT IN ('adjusted', 'denied') OR reason_code IS NOT NULL",
                        name="adjustment_has_reason"),
        CheckConstraint("decision <> 'denied' OR approved_amount = 0", name="denied_is_zero"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int]
    claim_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    kind_order: Mapped[int] = mapped_column(default=0)
    # The order's computation, kept as it was worked out (a later rate change alters nothing).
    rate_card_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlement_rate_cards.id", ondelete="RESTRICT"))
    service_type: Mapped[str | None] = mapped_column(String(16))
    tier: Mapped[int | None]
    callout_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    labor_hours: Mapped[Decimal] = mapped_column(Hours, default=Decimal("0.00"))
    hourly_rate: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    labor_share_pct: Mapped[Decimal] = mapped_column(Percent, default=Decimal("100.00"))
    labor_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    distance_km: Mapped[Decimal | None] = mapped_column(Hours)
    free_km: Mapped[Decimal] = mapped_column(Hours, default=Decimal("0.00"))
    max_km: Mapped[Decimal | None] = mapped_column(Hours)
    paid_km: Mapped[Decimal] = mapped_column(Hours, default=Decimal("0.00"))
    per_km: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    distance_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    parts_value: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    parts_handling_pct: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0.00"))
    parts_handling_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    # Deductions and bonuses: the basis and the rate they were worked out from.
    basis_amount: Mapped[Decimal | None] = mapped_column(Money)
    rate_pct: Mapped[Decimal | None] = mapped_column(Percent)
    grade: Mapped[str | None] = mapped_column(String(1))
    rules_applied: Mapped[str] = mapped_column(String(200), default="")
    # The day the line first went to HQ: the claim window is judged on it, so that a claim
    # returned and submitted again later never turns lines that were on time into late ones.
    first_submitted_on: Mapped[date | None]
    exception_codes: Mapped[str] = mapped_column(String(200), default="")
    disposition: Mapped[str] = mapped_column(String(8), default=Disposition.PAY)
    claimed_amount: Mapped[Decimal] = mapped_column(Money)
    decision: Mapped[str] = mapped_column(String(16), default=Decision.PENDING)
    approved_amount: Mapped[Decimal | None] = mapped_column(Money)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))

    work_order = relationship("WorkOrder", viewonly=True)
    part_return = relationship("PartReturn", viewonly=True)
    complaint = relationship("Complaint", viewonly=True)
    rate_card = relationship("RateCard", viewonly=True)

    @property
    def codes(self) -> list[str]:
        return [c for c in self.exception_codes.split(",") if c]

    @property
    def rules(self) -> list[str]:
        return [r for r in self.rules_applied.split(",") if r]

    @property
    def is_removable(self) -> bool:
        """The agency may take the line off its claim (an order; deductions are HQ's)."""
        return kinds.spec(self.kind).removable

    @property
    def is_adjustable(self) -> bool:
        return self.decision in (Decision.ADJUSTED, Decision.DENIED)


class LineDecisionRecord(AgencyOwned, db.Model):
    """Each decision on a line, kept: the agency sees why, four eyes sees who."""

    __tablename__ = "settlement_line_decisions"
    __owned_table_args__ = (
        owner_fk("settlement_id", "settlements", ondelete="RESTRICT"),
        owner_fk("line_id", "settlement_lines", ondelete="CASCADE"),
        Index("ix_settlement_line_decisions_agency_id_settlement_id", "agency_id",
              "settlement_id"),
        CheckConstraint(_in("decision", Decision), name="decision_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int]
    line_id: Mapped[int]
    decision: Mapped[str] = mapped_column(String(16))
    amount_before: Mapped[Decimal | None] = mapped_column(Money)
    amount_after: Mapped[Decimal] = mapped_column(Money)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    is_automatic: Mapped[bool] = mapped_column(default=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SettlementEvent(AgencyOwned, db.Model):
    """The settlement's story as both sides read it: who moved it where, with what comment."""

    __tablename__ = "settlement_events"
    __owned_table_args__ = (
        owner_fk("settlement_id", "settlements", ondelete="RESTRICT"),
        Index("ix_settlement_events_agency_id_settlement_id", "agency_id", "settlement_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int]
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User", foreign_keys=[actor_id])


class Appeal(AgencyOwned, Versioned, db.Model):
    """The agency's one appeal against an adjusted or denied line, decided by HQ."""

    __tablename__ = "settlement_appeals"
    __owned_table_args__ = (
        owner_fk("settlement_id", "settlements", ondelete="RESTRICT"),
        owner_fk("line_id", "settlement_lines", ondelete="RESTRICT"),
        UniqueConstraint("agency_id", "line_id"),  # once per line
        Index("ix_settlement_appeals_agency_id_settlement_id", "agency_id", "settlement_id"),
        CheckConstraint(_in("status", AppealStatus), name="status_known"),
        CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_iff_closed"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int]
    line_id: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AppealStatus.OPEN)
    lodged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lodged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                ondelete="SET NULL"))
    amount_before: Mapped[Decimal] = mapped_column(Money)
    amount_after: Mapped[Decimal | None] = mapped_column(Money)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))


class Attachment(AgencyOwned, db.Model):
    """Evidence (invoice, photo) of a settlement or one of its lines, stored outside the web
    root under a generated name; served only through its settlement's access check."""

    __tablename__ = "settlement_attachments"
    __owned_table_args__ = (
        owner_fk("settlement_id", "settlements", ondelete="RESTRICT"),
        owner_fk("line_id", "settlement_lines", ondelete="RESTRICT"),
        Index("ix_settlement_attachments_agency_id_settlement_id", "agency_id",
              "settlement_id"),
        Index("ix_settlement_attachments_agency_id_line_id", "agency_id", "line_id"),
        UniqueConstraint("stored_name"),
        CheckConstraint(_in("content_type", ("application/pdf", "image/jpeg", "image/png")),
                        name="content_type_known"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int]
    line_id: Mapped[int | None] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(80))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
