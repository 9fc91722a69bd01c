"""The events webhooks carry, and where they come from.

Most come from the write path: :func:`on_transition` listens to
:data:`portal.transitions.transitioned` and writes one delivery per subscribed endpoint inside
the change's transaction (they commit or roll back with it). SLA warnings and breaches have no
transition: the workplace tick finds them (:func:`raise_sla_events`, run by the tick's
``workplace.tick`` signal), once per clock and endpoint.

Who hears what: an event about one agency goes to HQ's endpoints that subscribe to it and to
that agency's own endpoints, never to another agency's; a network-wide event (a request no
agency has accepted) to HQ's only. A quarter's publication reaches each agency's endpoints with
that agency's own result. Payloads hold ids, numbers, states, amounts and times: nothing
personal (no customer's name, phone or address; no free-text note).
"""
import json
import secrets
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, cast, exists, literal, or_, select

from api.webhooks.delivery import wake_after_commit
from api.webhooks.models import PENDING, WebhookDelivery, WebhookEndpoint
from portal.clock import now
from portal.extensions import db
from portal.tenancy import unscoped

REASON = "webhooks deliver an event to HQ's endpoints and to its own agency's"

# Every event an endpoint may subscribe to, with its name for people.
EVENTS = {
    "offer.made": _l("Offer made to an agency"),
    "offer.accepted": _l("Offer accepted"),
    "offer.refused": _l("Offer refused"),
    "offer.expired": _l("Offer expired unanswered"),
    "offer.withdrawn": _l("Offer withdrawn"),
    "sla.warning": _l("SLA warning: a milestone is due soon"),
    "sla.breached": _l("SLA breach: a milestone is overdue"),
    "settlement.approved": _l("Settlement approved"),
    "settlement.paid": _l("Settlement paid"),
    "quarter.published": _l("Evaluation quarter published"),
}
# What an agency's own endpoint may subscribe to (its own agency's events).
AGENCY_EVENTS = tuple(EVENTS)

FROM_TRANSITIONS = {
    "dispatch_offer.made": "offer.made",
    "dispatch_offer.accepted": "offer.accepted",
    "dispatch_offer.refused": "offer.refused",
    "dispatch_offer.expired": "offer.expired",
    "dispatch_offer.withdrawn": "offer.withdrawn",
    "settlement.approved": "settlement.approved",
    "settlement.paid": "settlement.paid",
    "evaluation.published": "quarter.published",
}


def _time(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _money(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def _agency_code(agency_id: int | None) -> str | None:
    from tenants.models import Agency

    if agency_id is None:
        return None
    return db.session.scalar(select(Agency.code).where(Agency.id == agency_id))


# --- payloads ----------------------------------------------------------------------------------


def offer_data(offer) -> dict:
    return {"offer_id": offer.id, "request_id": offer.request_id,
            "request_number": offer.request_number, "agency_id": offer.agency_id,
            "agency_code": _agency_code(offer.agency_id), "status": str(offer.status),
            "service_type": str(offer.service_type), "product_line_id": offer.product_line_id,
            "product_model_id": offer.product_model_id, "province_id": offer.province_id,
            "received_at": _time(offer.received_at), "offered_at": _time(offer.offered_at),
            "expires_at": _time(offer.expires_at), "answered_at": _time(offer.answered_at),
            "refusal_reason": offer.refusal_reason or None,
            "work_order_id": offer.work_order_id, "version": offer.version}


def settlement_data(settlement) -> dict:
    return {"settlement_id": settlement.id, "number": settlement.number,
            "agency_id": settlement.agency_id,
            "agency_code": _agency_code(settlement.agency_id),
            "year": settlement.year, "month": settlement.month,
            "status": str(settlement.status), "line_count": settlement.line_count,
            "claimed_total": _money(settlement.claimed_total),
            "approved_total": _money(settlement.approved_total),
            "approved_at": _time(settlement.approved_at),
            "paid_at": _time(getattr(settlement, "paid_at", None)),
            "paid_on": _time(getattr(settlement, "paid_on", None)),
            "payment_reference": getattr(settlement, "payment_reference", None),
            "version": settlement.version}


def quarter_data(quarter) -> dict:
    return {"quarter_id": quarter.id, "year": quarter.year, "quarter": quarter.quarter,
            "status": str(quarter.status), "agency_count": quarter.agency_count,
            "published_at": _time(quarter.published_at),
            "appeal_deadline_at": _time(quarter.appeal_deadline_at)}


def result_data(result) -> dict:
    return {"result_id": result.id, "agency_id": result.agency_id,
            "score": None if result.score is None else str(result.score),
            "grade": result.grade, "rank_national": result.rank_national,
            "rank_national_of": result.rank_national_of, "rank_region": result.rank_region,
            "rank_region_of": result.rank_region_of}


# --- writing deliveries ---------------------------------------------------------------------


def _endpoints(event: str, agency_id: int | None, *, hq: bool = True,
               agencies: bool = True) -> list[WebhookEndpoint]:
    """The active endpoints subscribed to `event` that may hear about `agency_id`: HQ's, and
    that agency's own (none of another agency's)."""
    owners = []
    if hq:
        owners.append(WebhookEndpoint.agency_id.is_(None))
    if agencies and agency_id is not None:
        owners.append(WebhookEndpoint.agency_id == agency_id)
    if not owners:
        return []
    rows = db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.active.is_(True), or_(*owners),
        WebhookEndpoint.events.contains(event)).order_by(WebhookEndpoint.id))
    return [e for e in rows if event in e.event_set]


def envelope(event: str, event_id: str, data: dict, occurred_at=None) -> str:
    """The body as sent (kept in the row: every try sends the same bytes)."""
    return json.dumps({"id": event_id, "event": event,
                       "occurred_at": _time(occurred_at or now()), "data": data},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def queue(event: str, endpoints, data, *, event_id: str | None = None,
          dedupe_key: str | None = None) -> int:
    """One pending delivery of `event` per endpoint; `data` a dict, or `data(endpoint)` for a
    payload that depends on the endpoint (an agency's own result). The caller holds the
    unscoped block and the transaction."""
    event_id = event_id or secrets.token_hex(16)
    moment = now()
    made = 0
    for endpoint in endpoints:
        payload = data(endpoint) if callable(data) else data
        if payload is None:
            continue
        db.session.add(WebhookDelivery(
            agency_id=endpoint.agency_id, endpoint_id=endpoint.id, event=event,
            event_id=event_id, body=envelope(event, event_id, payload, moment), status=PENDING,
            attempts=0, next_attempt_at=moment, created_at=moment, dedupe_key=dedupe_key))
        made += 1
    if made:
        db.session.flush()
        wake_after_commit()
    return made


def on_transition(sender, *, record, actor=None, agency_id=None, transition=None, after=None,
                  reason=None, **_kw) -> None:
    """blinker receiver of :data:`portal.transitions.transitioned`: the change's deliveries,
    in its transaction."""
    name = FROM_TRANSITIONS.get(getattr(transition, "name", ""))
    if name is None or record is None:
        return
    with unscoped(REASON):
        if name == "quarter.published":
            _quarter_published(record)
            return
        owner = getattr(record, "agency_id", None) or agency_id
        data = offer_data(record) if name.startswith("offer.") else settlement_data(record)
        queue(name, _endpoints(name, owner), data)


def _quarter_published(quarter) -> None:
    """HQ's endpoints hear of the quarter; each agency's endpoints of the quarter and their
    own agency's result."""
    from evaluation.models import Result

    name = "quarter.published"
    endpoints = [e for e in db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.active.is_(True), WebhookEndpoint.events.contains(name))
        .order_by(WebhookEndpoint.id)) if name in e.event_set]
    if not endpoints:
        return
    base = quarter_data(quarter)
    agencies = {e.agency_id for e in endpoints if e.agency_id is not None}
    results = {r.agency_id: r for r in db.session.scalars(select(Result).where(
        Result.quarter_id == quarter.id, Result.agency_id.in_(agencies)))} if agencies else {}

    def data(endpoint):
        if endpoint.agency_id is None:
            return base
        result = results.get(endpoint.agency_id)
        return None if result is None else {**base, "result": result_data(result)}

    queue(name, endpoints, data)


# --- the tick's events: SLA warnings and breaches -----------------------------------------------


def _key(prefix: str, column):
    return literal(prefix, String) + cast(column, String)


def raise_sla_events(moment: datetime | None = None) -> int:
    """Deliveries for the SLA clocks that passed their warning or due time since each endpoint
    was made (an open order's milestone not met, outside a pause), and for requests no agency
    accepted within their accept time (HQ's endpoints only). Once per clock and endpoint:
    running it again adds nothing."""
    moment = moment or now()
    made = 0
    with unscoped("the tick raises SLA events for every endpoint"):
        endpoints = [e for e in db.session.scalars(select(WebhookEndpoint).where(
            WebhookEndpoint.active.is_(True),
            or_(WebhookEndpoint.events.contains("sla.warning"),
                WebhookEndpoint.events.contains("sla.breached"))).order_by(WebhookEndpoint.id))]
        for endpoint in endpoints:
            for event in ("sla.warning", "sla.breached"):
                if event in endpoint.event_set:
                    made += _order_clocks(endpoint, event, moment)
                    if endpoint.agency_id is None:
                        made += _accept_clocks(endpoint, event, moment)
    return made


def _already(endpoint, key):
    return exists().where(WebhookDelivery.endpoint_id == endpoint.id,
                          WebhookDelivery.dedupe_key == key)


def _order_clocks(endpoint, event: str, moment: datetime) -> int:
    from dispatch.board import paused_now
    from dispatch.sla import SlaClock
    from service.models import WorkOrder
    from tenants.models import Agency

    instant = SlaClock.warn_at if event == "sla.warning" else SlaClock.due_at
    key = _key(f"{event}:clock:", SlaClock.id)
    stmt = (select(SlaClock, WorkOrder.number, Agency.code, key.label("key"))
            .join(WorkOrder, and_(WorkOrder.agency_id == SlaClock.agency_id,
                                  WorkOrder.id == SlaClock.work_order_id))
            .join(Agency, Agency.id == SlaClock.agency_id)
            .where(SlaClock.met_at.is_(None), WorkOrder.status == "open", instant <= moment,
                   instant >= endpoint.created_at, ~paused_now(moment),
                   ~_already(endpoint, key))
            .order_by(SlaClock.id))
    if endpoint.agency_id is not None:
        stmt = stmt.where(SlaClock.agency_id == endpoint.agency_id)
    made = 0
    for clock, number, code, dedupe in db.session.execute(stmt).all():
        data = {"subject": "work_order_milestone", "clock_id": clock.id,
                "work_order_id": clock.work_order_id, "work_order_number": number,
                "request_id": clock.request_id, "agency_id": clock.agency_id,
                "agency_code": code, "milestone": clock.milestone,
                "started_at": _time(clock.started_at), "warn_at": _time(clock.warn_at),
                "due_at": _time(clock.due_at), "escalate_at": _time(clock.escalate_at)}
        made += queue(event, [endpoint], data, dedupe_key=dedupe)
    return made


def _accept_clocks(endpoint, event: str, moment: datetime) -> int:
    from dispatch.requests import RequestStatus, ServiceRequest

    instant = ServiceRequest.accept_warn_at if event == "sla.warning" \
        else ServiceRequest.accept_due_at
    key = _key(f"{event}:request:", ServiceRequest.id)
    stmt = (select(ServiceRequest.id, ServiceRequest.number, ServiceRequest.status,
                   ServiceRequest.received_at, ServiceRequest.accept_warn_at,
                   ServiceRequest.accept_due_at, key.label("key"))
            .where(ServiceRequest.status.in_([RequestStatus.NEW, RequestStatus.OFFERED]),
                   ServiceRequest.accepted_at.is_(None), instant.isnot(None),
                   instant <= moment, instant >= endpoint.created_at, ~_already(endpoint, key))
            .order_by(ServiceRequest.id))
    made = 0
    for row in db.session.execute(stmt).all():
        data = {"subject": "service_request_accept", "request_id": row.id,
                "request_number": row.number, "status": str(row.status),
                "received_at": _time(row.received_at), "warn_at": _time(row.accept_warn_at),
                "due_at": _time(row.accept_due_at)}
        made += queue(event, [endpoint], data, dedupe_key=row.key)
    return made


def on_tick(_sender=None, **_kw) -> None:
    """Receiver of the workplace tick's signal: raise the SLA events (in the tick's
    transaction) and send what is due after its commit (retries included)."""
    raise_sla_events(_kw.get("moment"))
    wake_after_commit()
