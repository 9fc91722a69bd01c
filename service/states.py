"""The states of service records and their labels (models.py re-exports them)."""
from enum import StrEnum

from flask_babel import lazy_gettext as _l


class OrderStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ComplaintStatus(StrEnum):
    OPEN = "open"            # awaiting the agency's response
    RESPONDED = "responded"  # awaiting HQ's verdict
    CLOSED = "closed"


class Verdict(StrEnum):
    SUBSTANTIATED = "substantiated"
    NOT_SUBSTANTIATED = "not_substantiated"


class Channel(StrEnum):
    HOTLINE = "hotline"    # 400 热线
    ONLINE = "online"      # 网络 / 社交媒体
    EMAIL = "email"
    LETTER = "letter"
    REGULATOR = "regulator"  # 12315 / 消费者协会


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SHIPPED = "shipped"
    RECEIVED = "received"


class LineDecision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class LineReason(StrEnum):
    WORK_ORDER = "work_order"
    STOCK = "stock"


class ReturnStatus(StrEnum):
    DUE = "due"
    SHIPPED = "shipped"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


ORDER_STATUS_LABELS = {OrderStatus.OPEN: _l("Open"), OrderStatus.COMPLETED: _l("Completed"),
                       OrderStatus.CANCELLED: _l("Cancelled")}
COMPLAINT_STATUS_LABELS = {ComplaintStatus.OPEN: _l("Awaiting agency response"),
                           ComplaintStatus.RESPONDED: _l("Awaiting verdict"),
                           ComplaintStatus.CLOSED: _l("Closed")}
VERDICT_LABELS = {Verdict.SUBSTANTIATED: _l("Substantiated"),
                  Verdict.NOT_SUBSTANTIATED: _l("Not substantiated")}
CHANNEL_LABELS = {Channel.HOTLINE: _l("Service hotline"), Channel.ONLINE: _l("Online"),
                  Channel.EMAIL: _l("Email"), Channel.LETTER: _l("Letter"),
                  Channel.REGULATOR: _l("Consumer association / regulator")}
SEVERITY_LABELS = {Severity.MINOR: _l("Minor"), Severity.MAJOR: _l("Major"),
                   Severity.CRITICAL: _l("Critical")}
REQUEST_STATUS_LABELS = {RequestStatus.SUBMITTED: _l("Submitted"),
                         RequestStatus.APPROVED: _l("Approved"),
                         RequestStatus.REJECTED: _l("Rejected"),
                         RequestStatus.SHIPPED: _l("Shipped"),
                         RequestStatus.RECEIVED: _l("Goods received")}
LINE_DECISION_LABELS = {LineDecision.PENDING: _l("Pending"),
                        LineDecision.APPROVED: _l("Approved"),
                        LineDecision.REJECTED: _l("Rejected")}
LINE_REASON_LABELS = {LineReason.WORK_ORDER: _l("For a work order"),
                      LineReason.STOCK: _l("Stock replenishment")}
RETURN_STATUS_LABELS = {ReturnStatus.DUE: _l("To be returned"), ReturnStatus.SHIPPED: _l("Shipped"),
                        ReturnStatus.ACCEPTED: _l("Accepted"),
                        ReturnStatus.REJECTED: _l("Rejected")}

OPEN_REQUEST_STATUSES = (RequestStatus.SUBMITTED, RequestStatus.APPROVED, RequestStatus.SHIPPED)

# The label maps the pages of complaints and of parts hand their templates.
QUALITY_LABELS = {"complaint_statuses": COMPLAINT_STATUS_LABELS, "severities": SEVERITY_LABELS,
                  "verdicts": VERDICT_LABELS, "channels": CHANNEL_LABELS}
SUPPLY_LABELS = {"request_statuses": REQUEST_STATUS_LABELS, "decisions": LINE_DECISION_LABELS,
                 "reasons": LINE_REASON_LABELS, "return_statuses": RETURN_STATUS_LABELS}
