"""Isolation-test parameters of webhooks (see tests/isolation_params.py): an endpoint and a
delivery of the given agency, carrying its canary in the name, URL and body, so another agency
(or HQ's pages for an agency's secret) must neither open them nor show the canary."""
from api.webhooks.models import DELIVERED, WebhookDelivery, WebhookEndpoint
from portal.extensions import db

# Imported by tests/isolation_params.py once it has defined these (never import this first).
from tests.isolation_params import Owned  # noqa: E402,I001


def _canary(agency) -> str:
    return next((w for w in agency.legal_name.split() if w.startswith("CANARY")), "")


def _endpoint(world, agency) -> WebhookEndpoint:
    canary = _canary(agency)
    endpoint = WebhookEndpoint(agency_id=agency.id, name=f"hook {canary}",
                               url=f"https://hooks.example.com/{canary}",
                               events="offer.made offer.accepted", secret=f"whsec_{canary}",
                               active=True)
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


def _delivery(world, agency) -> int:
    endpoint = _endpoint(world, agency)
    delivery = WebhookDelivery(agency_id=agency.id, endpoint_id=endpoint.id, event="offer.made",
                               event_id="0" * 32, status=DELIVERED, attempts=1,
                               body=f'{{"data":{{"note":"{_canary(agency)}"}}}}')
    db.session.add(delivery)
    db.session.flush()
    return delivery.id


PARAMS = {
    "endpoint_id": Owned(lambda world, agency: _endpoint(world, agency).id),
    "delivery_id": Owned(_delivery),
}
