"""Webhooks, read: the caller's endpoints (HQ admin: HQ's, and the agencies' to look at; an
agency owner: their own agency's) and each endpoint's delivery log. Endpoints are made and
changed on the Webhooks page; their secrets never travel through the API."""
import json

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.core import PageArgs, api_allow, etag_of, page, page_schema
from api.openapi import sends_etag
from api.webhooks import policy
from api.webhooks.events import EVENTS
from api.webhooks.models import STATUSES, WebhookDelivery, WebhookEndpoint
from portal.policy import roles
from portal.tenancy import get_or_404

blp = Blueprint("api_webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Webhook endpoints and their delivery logs (read).")

READERS = roles(policy.READ)


class EndpointOut(Schema):
    id = fields.Integer(required=True)
    agency_id = fields.Integer(allow_none=True, metadata={
        "description": "The agency whose endpoint it is; null: HQ's."})
    name = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.Function(lambda e: sorted(e.event_set), required=True, metadata={
        "type": "array", "items": {"type": "string", "enum": list(EVENTS)}})
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


class DeliveryOut(Schema):
    id = fields.Integer(required=True)
    endpoint_id = fields.Integer(required=True)
    event = fields.String(required=True, metadata={"enum": list(EVENTS)})
    event_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    redelivery_of_id = fields.Integer(allow_none=True)


class DeliveryDetailOut(DeliveryOut):
    payload = fields.Function(lambda d: json.loads(d.body), required=True, metadata={
        "type": "object", "description": "The body as it was posted."})


class DeliveryArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


EndpointPage = page_schema(EndpointOut, "WebhookEndpointPage")
DeliveryPage = page_schema(DeliveryOut, "WebhookDeliveryPage")


@blp.route("/")
@api_allow(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, EndpointPage)
def list_endpoints(args):
    """The caller's webhook endpoints, by id."""
    return page(select(WebhookEndpoint), WebhookEndpoint, args)


@blp.route("/<int:endpoint_id>")
@api_allow(*READERS)
@blp.response(200, EndpointOut)
@blp.doc(**sends_etag())
def get_endpoint(endpoint_id):
    """One endpoint (ETag: its version)."""
    row = get_or_404(WebhookEndpoint, endpoint_id)
    return row, 200, {"ETag": etag_of(row)}


@blp.route("/<int:endpoint_id>/deliveries")
@api_allow(*READERS)
@blp.arguments(DeliveryArgs, location="query")
@blp.response(200, DeliveryPage)
def list_deliveries(args, endpoint_id):
    """An endpoint's delivery log, oldest first by id; filter by state and time made."""
    row = get_or_404(WebhookEndpoint, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id)
    if args.get("status"):
        stmt = stmt.where(WebhookDelivery.status == args["status"])
    return page(stmt, WebhookDelivery, args, updated_column=WebhookDelivery.created_at)


@blp.route("/deliveries/<int:delivery_id>")
@api_allow(*READERS)
@blp.response(200, DeliveryDetailOut)
def get_delivery(delivery_id):
    """One delivery, with the payload it carries."""
    return get_or_404(WebhookDelivery, delivery_id)
