"""The write path of webhooks: make, change and switch off an endpoint, deliver an event
again. Each is a transition (audited; the secret never enters the log)."""
import secrets

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from api.webhooks import policy
from api.webhooks.delivery import MAX_URL, Refused, check_url, wake_after_commit
from api.webhooks.events import AGENCY_EVENTS, EVENTS
from api.webhooks.models import PENDING, WebhookDelivery, WebhookEndpoint
from portal.clock import now
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import describe, note, transition

describe(WebhookEndpoint, _l("webhook endpoint"),
         lambda e: _l("active") if e.active else _l("inactive"))
describe(WebhookDelivery, _l("webhook delivery"))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _values(endpoint: WebhookEndpoint) -> dict:
    return {"name": endpoint.name, "url": endpoint.url, "events": sorted(endpoint.event_set),
            "active": endpoint.active}


def _clean(name: str, url: str, events, agency_id: int | None) -> tuple[str, str, str]:
    name = clean(name)
    if not name or len(name) > 80:
        raise DomainError(_("Give the endpoint a name of at most 80 characters."), field="name")
    url = (url or "").strip()
    if len(url) > MAX_URL:
        raise DomainError(_("Enter the URL (at most %(max)s characters).", max=MAX_URL),
                          field="url")
    try:
        check_url(url)
    except Refused as refused:
        raise DomainError(str(refused), field="url") from None
    wanted = sorted(set(events or ()))
    allowed = EVENTS if agency_id is None else AGENCY_EVENTS
    if not wanted:
        raise DomainError(_("Choose at least one event."), field="events")
    if any(e not in allowed for e in wanted):
        raise DomainError(_("This endpoint cannot subscribe to that event."), field="events")
    return name, url, " ".join(wanted)


@transition("webhook.endpoint_created", WebhookEndpoint, label=_l("Webhook endpoint created"),
            permission=policy.CREATE, creates=True, audit=_values)
def create_endpoint(owner: policy.Owner, data: dict, *, acting_user) -> WebhookEndpoint:
    """An endpoint of HQ (`owner.agency_id` None) or of one agency, with a new secret."""
    name, url, events = _clean(data.get("name"), data.get("url"), data.get("events"),
                               owner.agency_id)
    endpoint = WebhookEndpoint(agency_id=owner.agency_id, name=name, url=url, events=events,
                               secret=new_secret(), active=True,
                               created_by_id=getattr(acting_user, "id", None))
    db.session.add(endpoint)
    db.session.flush()
    note(record=endpoint, agency_id=owner.agency_id)
    return endpoint


@transition("webhook.endpoint_updated", WebhookEndpoint, label=_l("Webhook endpoint changed"),
            permission=policy.UPDATE, versioned=True, audit=_values)
def update_endpoint(endpoint: WebhookEndpoint, data: dict, *, acting_user) -> None:
    """Change the name, URL, events or active flag; `new_secret` true makes a new secret
    (the old one stops signing at once)."""
    endpoint.name, endpoint.url, endpoint.events = _clean(
        data.get("name"), data.get("url"), data.get("events"), endpoint.agency_id)
    endpoint.active = bool(data.get("active", endpoint.active))
    if data.get("new_secret"):
        endpoint.secret = new_secret()
        note(after={"secret": "replaced"})
    endpoint.updated_at = now()


@transition("webhook.endpoint_deactivated", WebhookEndpoint,
            label=_l("Webhook endpoint switched off"), permission=policy.DEACTIVATE,
            source={True}, target=False, state_attr="active", versioned=True, audit=_values,
            wrong_state=_l("This endpoint is already switched off."))
def deactivate_endpoint(endpoint: WebhookEndpoint, *, acting_user) -> None:
    """No more deliveries: those waiting are given up when their turn comes."""
    endpoint.updated_at = now()


@transition("webhook.redelivered", WebhookDelivery, label=_l("Webhook delivery sent again"),
            permission=policy.REDELIVER, creates=True,
            audit=lambda d: {"event": d.event, "event_id": d.event_id,
                             "redelivery_of_id": d.redelivery_of_id})
def redeliver(delivery: WebhookDelivery, *, acting_user) -> WebhookDelivery:
    """The same event (same id and body) again to its endpoint, as a new delivery with 24
    hours of tries of its own; the log keeps the first."""
    endpoint = delivery.endpoint
    if not endpoint.active:
        raise DomainError(_("This endpoint is switched off: switch it on to deliver again."))
    moment = now()
    again = WebhookDelivery(agency_id=delivery.agency_id, endpoint_id=delivery.endpoint_id,
                            event=delivery.event, event_id=delivery.event_id,
                            body=delivery.body, status=PENDING, attempts=0,
                            next_attempt_at=moment, created_at=moment,
                            redelivery_of_id=delivery.id)
    db.session.add(again)
    db.session.flush()
    note(record=again, agency_id=delivery.agency_id)
    wake_after_commit()
    return again
