"""Service work: catalogs, work orders, revisits, complaints, parts requests, stock and returns.

Everything an agency does is agency-owned (:class:`portal.tenancy.AgencyOwned`); children point
at their parents with composite keys ``(agency_id, parent_id)`` so the database refuses a child
of another agency's row. The catalogs (repair codes, fault codes, parts) belong to HQ.
"""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from portal.extensions import db
from portal.masking import mask_name, mask_phone
from portal.models import Hours, Money, UTCDateTime, Versioned, utcnow
from portal.tenancy import AgencyOwned, owner_fk
from service.states import (  # noqa: F401 - re-exported
    CHANNEL_LABELS,
    COMPLAINT_STATUS_LABELS,
    LINE_DECISION_LABELS,
    LINE_REASON_LABELS,
    OPEN_REQUEST_STATUSES,
    ORDER_STATUS_LABELS,
    REQUEST_STATUS_LABELS,
    RETURN_STATUS_LABELS,
    SEVERITY_LABELS,
    VERDICT_LABELS,
    Channel,
    ComplaintStatus,
    LineDecision,
    LineReason,
    OrderStatus,
    RequestStatus,
    ReturnStatus,
    Severity,
    Verdict,
)
from tenants.models import ServiceType


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


# --- catalogs (HQ) ------------------------------------------------------------------------------


class _CatalogCode:
    """What repair and fault codes share: a code per product line, described in two
    languages, retired rather than deleted."""

    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(32))
    description_zh: Mapped[str] = mapped_column(String(200))
    description_en: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)

    @declared_attr
    def product_line(cls):
        return relationship("ProductLine")

    def description(self, locale: str) -> str:
        return self.description_zh if locale.startswith("zh") else self.description_en


class RepairCode(_CatalogCode, db.Model):
    """A repair HQ pays for: flat-rate standard hours per product line (labor = hours × rate)."""

    __tablename__ = "repair_codes"
    __table_args__ = (
        UniqueConstraint("product_line_id", "code"),
        CheckConstraint("standard_hours >= 0", name="standard_hours_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    standard_hours: Mapped[Decimal] = mapped_column(Hours, sort_order=1)  # after the code's


class FaultCode(_CatalogCode, db.Model):
    """A fault symptom reported on work orders, per product line."""

    __tablename__ = "fault_codes"
    __table_args__ = (UniqueConstraint("product_line_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)


class Part(db.Model):
    """A spare part of the catalog; returnable parts come back to HQ when used in warranty."""

    __tablename__ = "parts"
    __table_args__ = (CheckConstraint("unit_price >= 0", name="unit_price_nonnegative"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    part_number: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"), index=True)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    is_returnable: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)

    product_line = relationship("ProductLine")

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


# --- work orders ------------------------------------------------------------------------------


class WorkOrder(AgencyOwned, Versioned, db.Model):
    """服务工单: one service to one customer's product.

    Derived fields are stored when the order is saved (settlement and evaluation read them):
    ``is_in_warranty`` (purchase date + the model's warranty months, judged on the day the
    order was received), ``service_date`` (local day of completion, else of receipt),
    ``is_engineer_certified`` (a valid certificate for the product line on the service date),
    ``is_rework`` / ``rework_of_id`` (a completed repair of the same serial number within 30
    days before this one was received).
    """

    __tablename__ = "work_orders"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "number"),
        owner_fk("engineer_id", "engineers", ondelete="RESTRICT"),
        owner_fk("rework_of_id", "work_orders", ondelete="RESTRICT"),
        Index("ix_work_orders_agency_id_received_at", "agency_id", "received_at"),
        Index("ix_work_orders_agency_id_status_received_at", "agency_id", "status",
              "received_at"),
        Index("ix_work_orders_agency_id_serial_number", "agency_id", "serial_number"),
        Index("ix_work_orders_agency_id_engineer_id", "agency_id", "engineer_id"),
        Index("ix_work_orders_agency_id_service_date", "agency_id", "service_date"),
        Index("ix_work_orders_agency_id_product_line_id", "agency_id", "product_line_id"),
        # Reads of the whole network (migration svcscale1): HQ's list newest first, and the
        # settlement's duplicate check by serial number across agencies.
        Index("ix_work_orders_received_at", "received_at"),
        Index("ix_work_orders_serial_number", "serial_number"),
        # The network's open orders per region on HQ's home (migration svcscale2): 68 → 13 ms
        # at 2,000,000 orders on PostgreSQL, where open orders are under 1 %.
        Index("ix_work_orders_open", "agency_id", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
        CheckConstraint(_in("status", OrderStatus), name="status_known"),
        CheckConstraint(_in("service_type", ServiceType),
                        name="service_type_known"),
        CheckConstraint("(status = 'completed') = (completed_at IS NOT NULL)",
                        name="completed_at_iff_completed"),
        CheckConstraint("responded_at IS NULL OR responded_at >= received_at",
                        name="responded_after_received"),
        CheckConstraint("arrived_at IS NULL OR arrived_at >= received_at",
                        name="arrived_after_received"),
        CheckConstraint("completed_at IS NULL OR completed_at >= received_at",
                        name="completed_after_received"),
        CheckConstraint("distance_km IS NULL OR (distance_km >= 0 AND service_type = 'onsite')",
                        name="distance_onsite_only"),
        CheckConstraint("(rework_of_id IS NOT NULL) = is_rework", name="rework_linked"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    service_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.OPEN)
    customer_name: Mapped[str] = mapped_column(String(64))
    customer_phone: Mapped[str] = mapped_column(String(32))
    customer_address: Mapped[str] = mapped_column(String(300), default="")
    product_line_id: Mapped[int] = mapped_column(
        ForeignKey("product_lines.id", ondelete="RESTRICT"))
    product_model_id: Mapped[int] = mapped_column(
        ForeignKey("product_models.id", ondelete="RESTRICT"))
    serial_number: Mapped[str] = mapped_column(String(64))
    # Unknown when the customer has no proof of purchase: then out of warranty.
    purchase_date: Mapped[date | None]
    is_in_warranty: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    service_date: Mapped[date]
    distance_km: Mapped[Decimal | None] = mapped_column(Hours)
    # Unassigned while an order waits for dispatch; required to complete it.
    engineer_id: Mapped[int | None] = mapped_column(Integer)
    is_engineer_certified: Mapped[bool] = mapped_column(default=False)
    fault_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("fault_codes.id", ondelete="RESTRICT"))
    fault_description: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    is_first_time_fix: Mapped[bool] = mapped_column(default=True)
    is_rework: Mapped[bool] = mapped_column(default=False)
    rework_of_id: Mapped[int | None] = mapped_column(Integer)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    product_line = relationship("ProductLine")
    product_model = relationship("ProductModel")
    fault_code = relationship("FaultCode")
    agency = relationship("Agency", viewonly=True)
    # Joined on the composite keys; set the ids, not these relationships.
    engineer = relationship("Engineer", viewonly=True)
    repairs = relationship("WorkOrderRepair", viewonly=True, order_by="WorkOrderRepair.id")
    parts = relationship("WorkOrderPart", viewonly=True, order_by="WorkOrderPart.id")

    @property
    def is_open(self) -> bool:
        return self.status == OrderStatus.OPEN

    @property
    def masked_customer_name(self) -> str:
        return mask_name(self.customer_name)

    @property
    def masked_customer_phone(self) -> str:
        return mask_phone(self.customer_phone)


class WorkOrderRepair(AgencyOwned, db.Model):
    """A repair code applied on an order, with the standard hours it carried at the time."""

    __tablename__ = "work_order_repairs"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="CASCADE"),
        UniqueConstraint("agency_id", "work_order_id", "repair_code_id"),
        CheckConstraint("standard_hours >= 0", name="standard_hours_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int]
    repair_code_id: Mapped[int] = mapped_column(
        ForeignKey("repair_codes.id", ondelete="RESTRICT"))
    standard_hours: Mapped[Decimal] = mapped_column(Hours)

    repair_code = relationship("RepairCode")


class WorkOrderPart(AgencyOwned, db.Model):
    """A part used on an order, taken from the agency's stock at the catalog price then."""

    __tablename__ = "work_order_parts"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="RESTRICT"),
        UniqueConstraint("agency_id", "work_order_id", "part_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int]
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Money)

    part = relationship("Part")

    @property
    def value(self) -> Decimal:
        return self.unit_price * self.quantity


# --- revisits and complaints --------------------------------------------------------------------


class Revisit(AgencyOwned, db.Model):
    """回访: HQ's call to the customer after a completed order, scored 1–5."""

    __tablename__ = "revisits"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="RESTRICT"),
        UniqueConstraint("agency_id", "work_order_id"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        Index("ix_revisits_agency_id_revisited_at", "agency_id", "revisited_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int]
    score: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    revisited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))

    work_order = relationship("WorkOrder", viewonly=True)


class Complaint(AgencyOwned, Versioned, db.Model):
    """投诉: recorded by HQ against an agency, answered by it, judged and closed by HQ."""

    __tablename__ = "complaints"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="RESTRICT"),
        Index("ix_complaints_agency_id_status_received_at", "agency_id", "status",
              "received_at"),
        CheckConstraint(_in("status", ComplaintStatus), name="status_known"),
        CheckConstraint(_in("severity", Severity), name="severity_known"),
        CheckConstraint("verdict IS NULL OR " + _in("verdict", Verdict), name="verdict_known"),
        CheckConstraint("(status = 'closed') = (verdict IS NOT NULL AND closed_at IS NOT NULL)",
                        name="closed_has_verdict"),
        CheckConstraint("responded_at IS NULL OR responded_at >= received_at",
                        name="responded_after_received"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ComplaintStatus.OPEN)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    response: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    verdict: Mapped[str | None] = mapped_column(String(24))
    verdict_note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                ondelete="SET NULL"))
    work_order = relationship("WorkOrder", viewonly=True)
    agency = relationship("Agency", viewonly=True)


# --- parts supply -------------------------------------------------------------------------------


class PartsRequest(AgencyOwned, Versioned, db.Model):
    """An agency's request for parts: submitted → approved/rejected → shipped → received."""

    __tablename__ = "parts_requests"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "number"),
        Index("ix_parts_requests_agency_id_status_submitted_at", "agency_id", "status",
              "submitted_at"),
        CheckConstraint(_in("status", RequestStatus), name="status_known"),
        CheckConstraint("(shipped_at IS NOT NULL) = (status IN ('shipped', 'received'))",
                        name="shipped_at_iff_shipped"),
        CheckConstraint("(received_at IS NOT NULL) = (status = 'received')",
                        name="received_at_iff_received"),
        CheckConstraint("received_at IS NULL OR received_at >= shipped_at",
                        name="received_after_shipped"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.SUBMITTED)
    note: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    lines = relationship("PartsRequestLine", viewonly=True, order_by="PartsRequestLine.id")
    agency = relationship("Agency", viewonly=True)


class PartsRequestLine(AgencyOwned, db.Model):
    """One part of a request, decided by HQ (approved quantity ≤ requested) and received."""

    __tablename__ = "parts_request_lines"
    __owned_table_args__ = (
        owner_fk("request_id", "parts_requests", ondelete="CASCADE"),
        owner_fk("work_order_id", "work_orders", ondelete="RESTRICT"),
        Index("ix_parts_request_lines_agency_id_request_id", "agency_id", "request_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("approved_quantity IS NULL OR "
                        "(approved_quantity > 0 AND approved_quantity <= quantity)",
                        name="approved_within_requested"),
        CheckConstraint("received_quantity IS NULL OR received_quantity >= 0",
                        name="received_nonnegative"),
        CheckConstraint("(reason = 'work_order') = (work_order_id IS NOT NULL)",
                        name="work_order_iff_reason"),
        CheckConstraint(_in("decision", LineDecision), name="decision_known"),
        CheckConstraint("(decision = 'approved') = (approved_quantity IS NOT NULL)",
                        name="approved_has_quantity"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int]
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    reason: Mapped[str] = mapped_column(String(16), default=LineReason.STOCK)
    work_order_id: Mapped[int | None] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16), default=LineDecision.PENDING)
    approved_quantity: Mapped[int | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    received_quantity: Mapped[int | None]
    discrepancy_note: Mapped[str | None] = mapped_column(Text)

    part = relationship("Part")
    work_order = relationship("WorkOrder", viewonly=True)

    @property
    def has_discrepancy(self) -> bool:
        return (self.received_quantity is not None
                and self.received_quantity != (self.approved_quantity or 0))


class PartStock(AgencyOwned, db.Model):
    """What an agency holds of a part: received quantities minus those used on orders."""

    __tablename__ = "part_stocks"
    __owned_table_args__ = (
        UniqueConstraint("agency_id", "part_id"),
        CheckConstraint("quantity >= 0", name="quantity_nonnegative"),
        CheckConstraint("received_total >= 0 AND used_total >= 0", name="totals_nonnegative"),
        CheckConstraint("quantity = received_total - used_total", name="quantity_balance"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(default=0)
    received_total: Mapped[int] = mapped_column(default=0)
    used_total: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    part = relationship("Part")
    agency = relationship("Agency", viewonly=True)


class PartReturn(AgencyOwned, Versioned, db.Model):
    """旧件返还: a returnable part used in warranty goes back to HQ by its due date."""

    __tablename__ = "part_returns"
    __owned_table_args__ = (
        owner_fk("work_order_part_id", "work_order_parts", ondelete="RESTRICT"),
        owner_fk("work_order_id", "work_orders", ondelete="RESTRICT"),
        UniqueConstraint("agency_id", "work_order_part_id"),
        Index("ix_part_returns_agency_id_status_due_on", "agency_id", "status", "due_on"),
        # Overdue returns across the network on HQ's home (migration svcscale2).
        Index("ix_part_returns_due", "agency_id", "due_on",
              postgresql_where=text("status = 'due'"), sqlite_where=text("status = 'due'")),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(_in("status", ReturnStatus), name="status_known"),
        CheckConstraint("(shipped_at IS NOT NULL) = (status <> 'due')",
                        name="shipped_at_iff_shipped"),
        CheckConstraint("(inspected_at IS NOT NULL) = (status IN ('accepted', 'rejected'))",
                        name="inspected_at_iff_inspected"),
        CheckConstraint("status <> 'rejected' OR reject_reason IS NOT NULL",
                        name="rejection_has_reason"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_part_id: Mapped[int]
    work_order_id: Mapped[int]
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default=ReturnStatus.DUE)
    due_on: Mapped[date]
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_on: Mapped[date | None]  # local day, compared with due_on
    inspected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inspected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    part = relationship("Part")
    work_order = relationship("WorkOrder", viewonly=True)
    agency = relationship("Agency", viewonly=True)

    @property
    def value(self) -> Decimal:
        return self.unit_price * self.quantity

    def is_overdue(self, today: date) -> bool:
        """Not shipped by the due date (still due after it, or shipped after it)."""
        if self.status == ReturnStatus.DUE:
            return today > self.due_on
        return self.shipped_on is not None and self.shipped_on > self.due_on
