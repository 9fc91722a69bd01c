"""Labels of settlement states and decisions (a line kind's are in settlement.kinds), and what
every transition of a settlement shares: how the write path names its state, the settlement's
story (events) and the audit's amounts before → after."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import clock
from portal.extensions import db
from portal.transitions import describe
from settlement.models import (
    AppealStatus,
    Decision,
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
APPEAL_LABELS = {AppealStatus.OPEN: _l("Appeal open"), AppealStatus.UPHELD: _l("Appeal upheld"),
                 AppealStatus.REJECTED: _l("Appeal rejected")}
EVENT_LABELS = {
    "opened": _l("Opened"), "lines_decided": _l("Lines decided together"),
    "refreshed": _l("Recalculated"), "order_added": _l("Order added"),
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


describe(Settlement, _l("settlement"), stage_label)


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
