"""Labels of settlement states, decisions and kinds, and the helpers every transition shares:
the stale-version check, the settlement's story (events) and the audit's before → after."""
from functools import wraps

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from settlement.models import (
    AppealStatus,
    Decision,
    LineKind,
    Settlement,
    SettlementEvent,
    Status,
)

STATUS_LABELS = {
    Status.DRAFT: _l("Draft"),
    Status.SUBMITTED: _l("Submitted"),
    Status.RETURNED: _l("Returned to the agency"),
    Status.APPROVED: _l("Approved"),
    Status.PAID: _l("Paid"),
    Status.WITHDRAWN: _l("Withdrawn"),
}
STATUS_BADGES = {Status.DRAFT: "secondary", Status.SUBMITTED: "primary",
                 Status.RETURNED: "warning", Status.APPROVED: "success", Status.PAID: "dark",
                 Status.WITHDRAWN: "light"}
DECISION_LABELS = {Decision.PENDING: _l("Pending"), Decision.APPROVED: _l("Approved"),
                   Decision.ADJUSTED: _l("Adjusted"), Decision.DENIED: _l("Denied")}
KIND_LABELS = {LineKind.ORDER: _l("Work order"),
               LineKind.PART_RETURN: _l("Overdue defective-part return"),
               LineKind.COMPLAINT: _l("Substantiated complaint"),
               LineKind.GRADE: _l("Quarterly evaluation")}
APPEAL_LABELS = {AppealStatus.OPEN: _l("Appeal open"), AppealStatus.UPHELD: _l("Appeal upheld"),
                 AppealStatus.REJECTED: _l("Appeal rejected")}
EVENT_LABELS = {
    "opened": _l("Opened"), "refreshed": _l("Recalculated"), "order_added": _l("Order added"),
    "line_removed": _l("Line removed"), "submitted": _l("Submitted"),
    "withdrawn": _l("Withdrawn"), "regional_forwarded": _l("Regional review passed"),
    "returned": _l("Returned to the agency"), "first_approved": _l("First approval"),
    "approved": _l("Approved"), "paid": _l("Marked paid"), "appealed": _l("Appeal lodged"),
    "appeal_resolved": _l("Appeal decided"), "clean_approved": _l("Clean lines approved"),
    "line_decided": _l("Line decided"),
}


def stage_label(settlement: Settlement) -> str:
    """The state with the step it waits for, as both sides read it."""
    if settlement.awaits_regional_review:
        return _("Submitted · awaiting regional review")
    if settlement.awaits_second_approval:
        return _("Submitted · awaiting second approval")
    if settlement.status == Status.SUBMITTED:
        return _("Submitted · in HQ review")
    return str(STATUS_LABELS[Status(settlement.status)])


def check_version(settlement: Settlement, seen) -> None:
    """Refuse a request made on an out-of-date page (a double click, a second tab)."""
    try:
        seen = int(seen)
    except (TypeError, ValueError):
        seen = None
    if seen != settlement.version:
        raise DomainError(_("This page was out of date: the settlement is now “%(stage)s”. "
                            "Nothing was changed. Check it and try again.",
                            stage=stage_label(settlement)))


def require_status(settlement: Settlement, *allowed: Status) -> None:
    if settlement.status not in allowed:
        raise DomainError(_("Not possible while the settlement is “%(stage)s”.",
                            stage=stage_label(settlement)))


def amounts(settlement: Settlement) -> dict:
    return {"status": settlement.status, "claimed_total": settlement.claimed_total,
            "approved_total": settlement.approved_total, "line_count": settlement.line_count}


def add_event(settlement: Settlement, action: str, actor, *, from_status=None, to_status=None,
              comment: str = "", on_behalf_of_id=None) -> SettlementEvent:
    event = SettlementEvent(agency_id=settlement.agency_id, settlement_id=settlement.id,
                            action=action, from_status=from_status, to_status=to_status,
                            comment=comment or "", actor_id=actor.id if actor else None,
                            on_behalf_of_id=on_behalf_of_id)
    db.session.add(event)
    settlement.updated_at = clock.now()
    return event


def stale_safe(service):
    """A service whose rows a concurrent request changed (their version moved, found at any
    flush, autoflush included) raises the clear DomainError instead of StaleDataError."""

    @wraps(service)
    def guarded(*args, **kwargs):
        try:
            return service(*args, **kwargs)
        except StaleDataError:
            raise DomainError(_("Someone else changed this settlement meanwhile. Nothing was "
                                "changed; reload the page and try again.")) from None

    return guarded


def flush() -> None:
    """Flush; a row changed by someone else meanwhile (its version moved) is a clear error."""
    try:
        db.session.flush()
    except StaleDataError:
        raise DomainError(_("Someone else changed this settlement meanwhile. Nothing was "
                            "changed; reload the page and try again.")) from None


def clean_text(value, field: str, *, required: bool, low: int = 3, high: int = 2000) -> str:
    text = (value or "").strip()
    if not text and not required:
        return ""
    low = low if required else 1  # an optional note may be short ("ok")
    if not low <= len(text) <= high:
        raise DomainError(_("Write between %(low)s and %(high)s characters.", low=low,
                            high=high), field=field)
    return text
