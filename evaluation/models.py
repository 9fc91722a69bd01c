"""Quarterly evaluation: schemes and quarters (HQ), per-agency results, KPI figures, inspection
scores, appeals, stored reports, consequence proposals and the agencies' ratings of HQ.

Everything about one agency is agency-owned; children reference their result with composite
keys ``(agency_id, result_id)``. Schemes, quarters, HQ's service-level aggregates and the
network ranking reports belong to HQ.
"""
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.extensions import db
from portal.models import ExactDecimal, UTCDateTime, Versioned, utcnow
from portal.tenancy import AgencyOwned, owner_fk
from portal.transitions import describe


class Points(ExactDecimal):
    """Scores, points and raw KPI values exact to two places (stored as hundredths)."""

    places = 2
    cache_ok = True


class QuarterStatus(StrEnum):
    DRAFT = "draft"          # computed; inspection scores may be entered, recomputed at will
    PUBLISHED = "published"  # reports issued; agencies acknowledge or appeal
    FINAL = "final"          # every result final


class ResultStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"  # awaiting acknowledgement or appeal
    APPEALED = "appealed"    # an open appeal
    FINAL = "final"


class AppealStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REJECTED = "rejected"


class ProposalKind(StrEnum):
    PROMOTE = "promote"      # one more star
    DEMOTE = "demote"        # one star less
    PROBATION = "probation"
    TERMINATE = "terminate"  # 淘汰


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # superseded by a corrected result


QUARTER_STATUS_LABELS = {QuarterStatus.DRAFT: _l("Draft"),
                         QuarterStatus.PUBLISHED: _l("Published"),
                         QuarterStatus.FINAL: _l("Final")}
RESULT_STATUS_LABELS = {ResultStatus.DRAFT: _l("Draft"),
                        ResultStatus.PUBLISHED: _l("Awaiting acknowledgement"),
                        ResultStatus.APPEALED: _l("Under appeal"),
                        ResultStatus.FINAL: _l("Final")}
APPEAL_STATUS_LABELS = {AppealStatus.OPEN: _l("Open"), AppealStatus.UPHELD: _l("Upheld"),
                        AppealStatus.REJECTED: _l("Rejected")}
PROPOSAL_KIND_LABELS = {ProposalKind.PROMOTE: _l("Tier promotion"),
                        ProposalKind.DEMOTE: _l("Tier demotion"),
                        ProposalKind.PROBATION: _l("Probation"),
                        ProposalKind.TERMINATE: _l("Termination (淘汰)")}
PROPOSAL_STATUS_LABELS = {ProposalStatus.PROPOSED: _l("Proposed"),
                          ProposalStatus.ACCEPTED: _l("Accepted and applied"),
                          ProposalStatus.REJECTED: _l("Rejected"),
                          ProposalStatus.WITHDRAWN: _l("Withdrawn")}
FINAL_REASON_LABELS = {"acknowledged": _l("Acknowledged by the agency"),
                       "deadline": _l("No appeal within 7 days"),
                       "appeal_upheld": _l("Appeal upheld"),
                       "appeal_rejected": _l("Appeal rejected")}


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


# --- HQ: schemes and quarters -------------------------------------------------------------------


class Scheme(db.Model):
    """A version of the KPI scheme, in force from one quarter until the next version."""

    __tablename__ = "evaluation_schemes"
    __table_args__ = (
        CheckConstraint("effective_quarter BETWEEN 1 AND 4", name="quarter_range"),
        CheckConstraint("effective_index = effective_year * 4 + effective_quarter - 1",
                        name="index_matches"),
        CheckConstraint("sla_phone_minutes > 0 AND sla_onsite_minutes > 0 "
                        "AND sla_carry_in_minutes > 0", name="sla_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    effective_year: Mapped[int]
    effective_quarter: Mapped[int]
    effective_index: Mapped[int] = mapped_column(unique=True)
    sla_phone_minutes: Mapped[int]
    sla_onsite_minutes: Mapped[int]
    sla_carry_in_minutes: Mapped[int]
    # The version's rules for dispatched orders (#18): timeliness from the system's SLA
    # clocks, and the appointment KPIs. Versions made before them (False) keep the typed
    # times for every order, so that the quarters computed on them stay as they were.
    dispatch_clocks: Mapped[bool] = mapped_column(default=False, server_default=false())
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))

    kpis = relationship("SchemeKpi", order_by="SchemeKpi.position", viewonly=True)

    @property
    def sla_minutes(self) -> dict:
        return {"phone": self.sla_phone_minutes, "onsite": self.sla_onsite_minutes,
                "carry_in": self.sla_carry_in_minutes}

    @property
    def effective_label(self) -> str:
        return f"{self.effective_year}Q{self.effective_quarter}"


class SchemeKpi(db.Model):
    """One KPI of a scheme: weight, minimum data and the points curve (raw → 0–100)."""

    __tablename__ = "evaluation_scheme_kpis"
    __table_args__ = (
        UniqueConstraint("scheme_id", "code"),
        CheckConstraint("weight BETWEEN 0 AND 100", name="weight_range"),
        CheckConstraint("min_count >= 0", name="min_count_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("evaluation_schemes.id",
                                                      ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    position: Mapped[int]
    weight: Mapped[int]
    min_count: Mapped[int]
    curve: Mapped[list] = mapped_column(JSON)  # [["60", "0"], ["90", "80"], ...]


class Quarter(Versioned, db.Model):
    """One evaluated quarter of the network and where its lifecycle stands."""

    __tablename__ = "evaluation_quarters"
    __table_args__ = (
        UniqueConstraint("year", "quarter"),
        CheckConstraint("quarter BETWEEN 1 AND 4", name="quarter_range"),
        CheckConstraint(_in("status", QuarterStatus), name="status_known"),
        CheckConstraint("(status = 'draft') = (published_at IS NULL)",
                        name="published_iff_not_draft"),
        CheckConstraint("(status = 'final') = (finalized_at IS NOT NULL)",
                        name="finalized_iff_final"),
        CheckConstraint("published_at IS NULL OR appeal_deadline_at > published_at",
                        name="deadline_after_publication"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    quarter: Mapped[int]
    scheme_id: Mapped[int] = mapped_column(ForeignKey("evaluation_schemes.id",
                                                      ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=QuarterStatus.DRAFT)
    agency_count: Mapped[int] = mapped_column(default=0)
    compute_count: Mapped[int] = mapped_column(default=0)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    computed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    appeal_deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    scheme = relationship("Scheme")

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.quarter}"

    @property
    def index(self) -> int:
        return self.year * 4 + self.quarter - 1

    @property
    def answers_closed(self) -> bool:
        """Published and the 7 days to acknowledge or appeal are over."""
        return self.appeal_deadline_at is not None and utcnow() > self.appeal_deadline_at


class ServiceLevel(db.Model):
    """HQ's own service to a region (or, without a region, the whole network) in a quarter:
    totals and counts, so that means stay exact when summed."""

    __tablename__ = "evaluation_service_levels"
    __table_args__ = (
        UniqueConstraint("quarter_id", "region_id"),
        CheckConstraint("parts_count >= 0 AND settlement_count >= 0 AND verdict_count >= 0",
                        name="counts_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("evaluation_quarters.id",
                                                       ondelete="CASCADE"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id",
                                                             ondelete="RESTRICT"))
    parts_count: Mapped[int] = mapped_column(default=0)
    parts_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    settlement_count: Mapped[int] = mapped_column(default=0)
    settlement_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    verdict_count: Mapped[int] = mapped_column(default=0)
    verdict_seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class RankingReport(db.Model):
    """The network ranking PDF of a quarter in one language, one version (names every agency:
    HQ only)."""

    __tablename__ = "evaluation_ranking_reports"
    __table_args__ = (
        UniqueConstraint("quarter_id", "version", "locale"),
        UniqueConstraint("number"),
        Index("ix_evaluation_ranking_reports_sha256", "sha256"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("locale IN ('zh_CN', 'en')", name="locale_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("evaluation_quarters.id",
                                                       ondelete="RESTRICT"))
    version: Mapped[int]
    locale: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))

    quarter = relationship("Quarter", viewonly=True)


# --- agency: results and what hangs on them -----------------------------------------------------


class Result(AgencyOwned, Versioned, db.Model):
    """One agency's evaluation of one quarter: score, grade, ranks and where it stands."""

    __tablename__ = "evaluation_results"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "quarter_id"),
        # The national ranking reads one quarter across the network: the one index that cannot
        # start with the owner column.
        Index("ix_evaluation_results_quarter_id_score", "quarter_id", "score"),
        CheckConstraint(_in("status", ResultStatus), name="status_known"),
        CheckConstraint("grade IS NULL OR " + _in("grade", "ABCD"), name="grade_known"),
        CheckConstraint("(score IS NULL) = (grade IS NULL)", name="grade_iff_score"),
        CheckConstraint("score IS NULL OR score BETWEEN 0 AND 10000", name="score_range"),
        CheckConstraint("rank_national IS NULL OR rank_national >= 1", name="rank_positive"),
        CheckConstraint("(status = 'final') = (finalized_at IS NOT NULL)",
                        name="finalized_iff_final"),
        CheckConstraint("tier_at BETWEEN 1 AND 5", name="tier_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("evaluation_quarters.id",
                                                       ondelete="RESTRICT"))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    tier_at: Mapped[int]
    agency_status_at: Mapped[str] = mapped_column(String(16))
    score: Mapped[Decimal | None] = mapped_column(Points)
    grade: Mapped[str | None] = mapped_column(String(1))
    rank_national: Mapped[int | None]
    rank_national_of: Mapped[int | None]
    rank_region: Mapped[int | None]
    rank_region_of: Mapped[int | None]
    previous_grade: Mapped[str | None] = mapped_column(String(1))
    elimination_warning: Mapped[bool] = mapped_column(default=False)
    coverage_gaps: Mapped[int] = mapped_column(default=0)  # L2 gaps at the quarter's end
    status: Mapped[str] = mapped_column(String(16), default=ResultStatus.DRAFT)
    report_version: Mapped[int] = mapped_column(default=0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                      ondelete="SET NULL"))
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_reason: Mapped[str | None] = mapped_column(String(24))
    # HQ's service to this agency in the quarter (totals in seconds, and counts).
    hq_parts_count: Mapped[int] = mapped_column(default=0)
    hq_parts_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    hq_settlement_count: Mapped[int] = mapped_column(default=0)
    hq_settlement_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    hq_verdict_count: Mapped[int] = mapped_column(default=0)
    hq_verdict_seconds: Mapped[int] = mapped_column(BigInteger, default=0)

    agency = relationship("Agency", viewonly=True)
    quarter = relationship("Quarter", viewonly=True)
    region = relationship("Region", viewonly=True)
    kpis = relationship("KpiValue", viewonly=True, order_by="KpiValue.position")


class KpiValue(AgencyOwned, db.Model):
    """One KPI of one result: what was counted, the raw value, the points and the weight."""

    __tablename__ = "evaluation_kpi_values"
    __owned_table_args__ = (
        owner_fk("result_id", "evaluation_results", ondelete="CASCADE"),
        UniqueConstraint("agency_id", "result_id", "code"),
        CheckConstraint("numerator >= 0 AND denominator >= 0", name="counts_nonnegative"),
        CheckConstraint("weight BETWEEN 0 AND 100", name="weight_range"),
        CheckConstraint("(raw IS NULL) = (denominator = 0)", name="raw_iff_counted"),
        CheckConstraint("(points IS NOT NULL) = is_sufficient", name="points_iff_sufficient"),
        CheckConstraint("points IS NULL OR points BETWEEN 0 AND 10000", name="points_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int]
    code: Mapped[str] = mapped_column(String(32))
    position: Mapped[int]
    weight: Mapped[int]
    min_count: Mapped[int]
    numerator: Mapped[int]
    denominator: Mapped[int]
    raw: Mapped[Decimal | None] = mapped_column(Points)
    points: Mapped[Decimal | None] = mapped_column(Points)
    effective_weight: Mapped[Decimal | None] = mapped_column(Points)
    is_sufficient: Mapped[bool]
    correction_note: Mapped[str | None] = mapped_column(Text)
    # Of the `denominator` orders of a timed KPI, how many were measured by the system's SLA
    # clocks (dispatched orders; the rest by the typed times). None: not a timed KPI, or a
    # scheme version without the clocks.
    by_clocks: Mapped[int | None]


class Inspection(AgencyOwned, db.Model):
    """The regional manager's on-site inspection score (0–100) of an agency for a quarter."""

    __tablename__ = "evaluation_inspections"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "quarter_id"),
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("evaluation_quarters.id",
                                                       ondelete="RESTRICT"))
    score: Mapped[int]
    note: Mapped[str] = mapped_column(Text, default="")
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))

    entered_by = relationship("User")


class Appeal(AgencyOwned, Versioned, db.Model):
    """The agency's one appeal against a published result, decided by HQ."""

    __tablename__ = "evaluation_appeals"
    __owned_table_args__ = (
        owner_fk("result_id", "evaluation_results", ondelete="RESTRICT"),
        UniqueConstraint("agency_id", "result_id"),
        Index("ix_evaluation_appeals_agency_id_status", "agency_id", "status"),
        CheckConstraint(_in("status", AppealStatus), name="status_known"),
        CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_iff_closed"),
        CheckConstraint("status = 'open' OR resolution_note IS NOT NULL",
                        name="resolution_has_note"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int]
    kpi_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AppealStatus.OPEN)
    lodged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lodged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                ondelete="SET NULL"))
    resolution: Mapped[str | None] = mapped_column(String(16))  # recompute / correct
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))

    result = relationship("Result", viewonly=True)
    agency = relationship("Agency", viewonly=True)


class Report(AgencyOwned, db.Model):
    """An agency's evaluation report PDF, one version in one language, stored as issued."""

    __tablename__ = "evaluation_reports"
    __owned_table_args__ = (
        owner_fk("result_id", "evaluation_results", ondelete="RESTRICT"),
        UniqueConstraint("agency_id", "result_id", "version", "locale"),
        UniqueConstraint("number"),
        # The auditors' check looks a file up by its hash across the network.
        Index("ix_evaluation_reports_sha256", "sha256"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("locale IN ('zh_CN', 'en')", name="locale_known"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int]
    version: Mapped[int]
    locale: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    reason: Mapped[str] = mapped_column(String(16), default="published")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))

    agency = relationship("Agency", viewonly=True)
    result = relationship("Result", viewonly=True)


class Proposal(AgencyOwned, Versioned, db.Model):
    """A consequence the portal proposes from a result; HQ admin accepts or rejects it."""

    __tablename__ = "evaluation_proposals"
    __owned_table_args__ = (
        owner_fk("result_id", "evaluation_results", ondelete="RESTRICT"),
        Index("ix_evaluation_proposals_agency_id_status", "agency_id", "status"),
        Index("ix_evaluation_proposals_agency_id_result_id", "agency_id", "result_id"),
        CheckConstraint(_in("kind", ProposalKind), name="kind_known"),
        CheckConstraint(_in("status", ProposalStatus), name="status_known"),
        CheckConstraint("(status IN ('accepted', 'rejected')) = (decided_at IS NOT NULL)",
                        name="decided_iff_decided"),
        CheckConstraint("to_tier IS NULL OR to_tier BETWEEN 1 AND 5", name="tier_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    from_tier: Mapped[int | None]
    to_tier: Mapped[int | None]
    to_status: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(String(200))  # comma-separated reason codes
    status: Mapped[str] = mapped_column(String(16), default=ProposalStatus.PROPOSED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    decision_note: Mapped[str | None] = mapped_column(Text)

    result = relationship("Result", viewonly=True)
    agency = relationship("Agency", viewonly=True)

    @property
    def reason_codes(self) -> list[str]:
        return [r for r in self.reasons.split(",") if r]


class HqRating(AgencyOwned, db.Model):
    """An agency's quarterly rating of HQ (1–5): parts, settlement, technical support, training."""

    __tablename__ = "evaluation_hq_ratings"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "quarter_id"),
        CheckConstraint("parts BETWEEN 1 AND 5 AND settlement BETWEEN 1 AND 5 "
                        "AND support BETWEEN 1 AND 5 AND training BETWEEN 1 AND 5",
                        name="ratings_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("evaluation_quarters.id",
                                                       ondelete="RESTRICT"))
    parts: Mapped[int]
    settlement: Mapped[int]
    support: Mapped[int]
    training: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))


# How the write path names these records in its messages ("the result is “Final”").
describe(Quarter, _l("quarter"), lambda q: QUARTER_STATUS_LABELS.get(q.status, q.status))
describe(Result, _l("result"), lambda r: RESULT_STATUS_LABELS.get(r.status, r.status))
describe(Appeal, _l("appeal"), lambda a: APPEAL_STATUS_LABELS.get(a.status, a.status))
describe(Proposal, _l("proposal"), lambda p: PROPOSAL_STATUS_LABELS.get(p.status, p.status))
describe(Inspection, _l("inspection score"))
describe(HqRating, _l("rating of HQ"))
describe(Scheme, _l("KPI scheme"))
