"""The live SLA board (服务时效看板): every clock that still runs, sorted by time to breach.

One SQL statement (a UNION ALL) of

* the accept clocks of requests no agency has accepted yet (``new`` or ``offered``), with the
  agency of the open offer when there is one; and
* the milestone clocks (``sla_clocks``) of open work orders that are not met yet, with their
  agency; a clock inside one of its pauses reads ``paused``.

The states come from the stored instants (:func:`dispatch.sla.state_sql`), so the page is a
plain sorted, filtered, paginated SELECT whatever the network's size: the page of rows, its
count and the counts per state are three statements.

Who sees what. Work orders' clocks and offers are agencies' rows: the tenant scope restricts
them (a regional manager reads the region's agencies only). A request is HQ's row, which the
scope does not restrict: in a restricted scope a request is on the board only through an open
offer to an agency the scope shows (the request of a regional manager's agency). A request not
offered yet is the dispatchers' to dispatch and no region's business.
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, and_, case, exists, func, literal, select, union_all

from dispatch.offers import Offer, OfferStatus
from dispatch.requests import RequestStatus, ServiceRequest
from dispatch.sla import ClockState, Milestone, SlaClock, SlaPause, state_sql
from portal.extensions import db
from portal.tenancy import current_scope
from service.models import WorkOrder
from tenants.models import Agency, ProductLine, Province

KINDS = ("request", "order")
# The order of the counts on top of the board (no met clock is live).
LIVE_STATES = (ClockState.ESCALATED, ClockState.BREACHED, ClockState.WARNING,
               ClockState.ON_TIME, ClockState.PAUSED)


@dataclass(frozen=True)
class Filters:
    state: str = ""
    milestone: str = ""
    region_id: int | None = None
    agency_code: str = ""
    service_type: str = ""
    kind: str = ""

    def cleaned(self) -> "Filters":
        """Unknown values are no filter (the query string may hold anything)."""
        return Filters(
            state=self.state if self.state in {s.value for s in LIVE_STATES} else "",
            milestone=self.milestone if self.milestone in {m.value for m in Milestone} else "",
            region_id=self.region_id,
            agency_code=(self.agency_code or "").strip().upper()[:16],
            service_type=self.service_type if self.service_type in (
                "onsite", "carry_in", "phone") else "",
            kind=self.kind if self.kind in KINDS else "")


def _requests(moment: datetime):
    """The accept clocks still running, with the open offer's agency if any."""
    open_offer = and_(Offer.request_id == ServiceRequest.id, Offer.status == OfferStatus.OPEN)
    stmt = select(
        literal("request", String).label("kind"),
        ServiceRequest.id.label("subject_id"),
        ServiceRequest.number.label("number"),
        Agency.id.label("agency_id"), Agency.code.label("agency_code"),
        Agency.legal_name.label("agency_name"),
        func.coalesce(Agency.region_id, Province.region_id).label("region_id"),
        Province.name_zh.label("province_zh"), Province.name_en.label("province_en"),
        ServiceRequest.city.label("city"), ServiceRequest.district.label("district"),
        ProductLine.code.label("line_code"), ProductLine.name_zh.label("line_zh"),
        ProductLine.name_en.label("line_en"),
        ServiceRequest.service_type.label("service_type"),
        literal(Milestone.ACCEPT.value, String).label("milestone"),
        ServiceRequest.accept_warn_at.label("warn_at"),
        ServiceRequest.accept_due_at.label("due_at"),
        ServiceRequest.accept_escalate_at.label("escalate_at"),
        state_sql(ServiceRequest.accepted_at, ServiceRequest.accept_warn_at,
                  ServiceRequest.accept_due_at, ServiceRequest.accept_escalate_at,
                  moment).label("state"),
    ).join(Province, Province.id == ServiceRequest.province_id) \
        .join(ProductLine, ProductLine.id == ServiceRequest.product_line_id)
    scope = current_scope()
    if scope.is_restricted:
        # Only through an open offer to an agency of the scope (the guard filters both).
        stmt = stmt.join(Offer, open_offer).join(Agency, Agency.id == Offer.agency_id)
        if scope.kind == "region":
            stmt = stmt.where(Agency.region_id == scope.id)
    else:
        stmt = stmt.outerjoin(Offer, open_offer).outerjoin(Agency, Agency.id == Offer.agency_id)
    return stmt.where(ServiceRequest.status.in_([RequestStatus.NEW, RequestStatus.OFFERED]),
                      ServiceRequest.accepted_at.is_(None),
                      ServiceRequest.accept_due_at.isnot(None))


def paused_now(moment: datetime):
    """SQL: the clock (SlaClock of the statement) is inside one of its pauses."""
    return exists().where(SlaPause.agency_id == SlaClock.agency_id,
                          SlaPause.clock_id == SlaClock.id,
                          SlaPause.starts_at <= moment, SlaPause.ends_at > moment)


def _orders(moment: datetime):
    """The open work orders' milestone clocks not met yet."""
    return select(
        literal("order", String).label("kind"),
        WorkOrder.id.label("subject_id"),
        WorkOrder.number.label("number"),
        Agency.id.label("agency_id"), Agency.code.label("agency_code"),
        Agency.legal_name.label("agency_name"),
        Agency.region_id.label("region_id"),
        Province.name_zh.label("province_zh"), Province.name_en.label("province_en"),
        ServiceRequest.city.label("city"), ServiceRequest.district.label("district"),
        ProductLine.code.label("line_code"), ProductLine.name_zh.label("line_zh"),
        ProductLine.name_en.label("line_en"),
        WorkOrder.service_type.label("service_type"),
        SlaClock.milestone.label("milestone"),
        SlaClock.warn_at.label("warn_at"), SlaClock.due_at.label("due_at"),
        SlaClock.escalate_at.label("escalate_at"),
        case((paused_now(moment), ClockState.PAUSED.value),
             else_=state_sql(SlaClock.met_at, SlaClock.warn_at, SlaClock.due_at,
                             SlaClock.escalate_at, moment)).label("state"),
    ).join(WorkOrder, and_(WorkOrder.agency_id == SlaClock.agency_id,
                           WorkOrder.id == SlaClock.work_order_id)) \
        .join(Agency, Agency.id == SlaClock.agency_id) \
        .join(ServiceRequest, ServiceRequest.id == SlaClock.request_id) \
        .join(Province, Province.id == ServiceRequest.province_id) \
        .join(ProductLine, ProductLine.id == WorkOrder.product_line_id) \
        .where(SlaClock.met_at.is_(None), WorkOrder.status == "open")


def live_clocks(moment: datetime):
    """The board's rows as a subquery: every live clock, unfiltered."""
    return union_all(_requests(moment), _orders(moment)).subquery("live")


def _where(live, filters: Filters, *, with_state: bool = True) -> list:
    criteria = []
    if with_state and filters.state:
        criteria.append(live.c.state == filters.state)
    if filters.milestone:
        criteria.append(live.c.milestone == filters.milestone)
    if filters.region_id:
        criteria.append(live.c.region_id == filters.region_id)
    if filters.agency_code:
        criteria.append(live.c.agency_code == filters.agency_code)
    if filters.service_type:
        criteria.append(live.c.service_type == filters.service_type)
    if filters.kind:
        criteria.append(live.c.kind == filters.kind)
    return criteria


def board(moment: datetime, filters: Filters = Filters()):
    """SELECT of the filtered board, the nearest breach first (the most overdue on top)."""
    filters = filters.cleaned()
    live = live_clocks(moment)
    return (select(live).where(*_where(live, filters))
            .order_by(live.c.due_at, live.c.kind.desc(), live.c.subject_id, live.c.milestone))


def state_counts(moment: datetime, filters: Filters = Filters()) -> dict[str, int]:
    """{state: rows} of the board under the other filters (one statement)."""
    filters = filters.cleaned()
    live = live_clocks(moment)
    rows = db.session.execute(select(live.c.state, func.count()).where(
        *_where(live, filters, with_state=False)).group_by(live.c.state)).all()
    found = dict(rows)
    return {str(state): found.get(state.value, 0) for state in LIVE_STATES}
