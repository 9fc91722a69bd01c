"""Dispatch offers: the agency's systems list their offers, read one and accept or refuse it
(as the offer page does); HQ's readers list every offer.

An offer carries the request's non-personal facts only (area, product, fault, service type,
preferred time): the customer reaches the agency on the work order that accepting creates.
Answering names the offer's version (``If-Match``: its ETag); send an ``Idempotency-Key`` so a
retry after a timeout gets the first answer again.
"""
from flask import url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from api.core import (
    PageArgs,
    api_allow,
    api_performs,
    etag_of,
    idempotent,
    if_match,
    page,
    page_schema,
    perform,
)
from api.openapi import needs_if_match, sends_etag
from dispatch import offers, policy
from dispatch.offers import REFUSAL_REASONS, Offer, OfferStatus
from portal.tenancy import get_or_404

blp = Blueprint("api_offers", __name__, url_prefix="/api/v1/offers",
                description="Service requests offered to an agency (the agency answers; HQ "
                            "reads).")

# The moment an offer last changed: made, then answered (accepted, refused, expired or
# withdrawn) once.
CHANGED_AT = func.coalesce(Offer.answered_at, Offer.offered_at)
_INSTANT = fields.DateTime()


class OfferOut(Schema):
    id = fields.Integer(required=True)
    agency_id = fields.Integer(required=True)
    request_number = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in OfferStatus]})
    offered_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True, metadata={
        "description": "The end of the answer window (business time from the offer)."})
    answered_at = fields.DateTime(allow_none=True)
    refusal_reason = fields.String(required=True, metadata={
        "description": "Empty unless refused.", "enum": ["", *REFUSAL_REASONS]})
    refusal_note = fields.String(required=True)
    work_order_id = fields.Integer(allow_none=True, metadata={
        "description": "The agency's work order, once accepted."})
    received_at = fields.DateTime(required=True, metadata={
        "description": "When the customer called (the SLA clocks run from here)."})
    province_id = fields.Integer(required=True)
    city = fields.String(required=True)
    district = fields.String(required=True)
    product_line_id = fields.Integer(required=True)
    product_model_id = fields.Integer(required=True)
    service_type = fields.String(required=True)
    fault_description = fields.String(required=True)
    preferred_from = fields.DateTime(allow_none=True)
    preferred_to = fields.DateTime(allow_none=True)
    updated_at = fields.Method("_updated_at", required=True, metadata={
        "type": "string", "format": "date-time",
        "description": "The last change: the answer, else the offer."})
    version = fields.Integer(required=True)

    def _updated_at(self, row):
        return _INSTANT._serialize(row.answered_at or row.offered_at, "updated_at", row)


class OfferArgs(PageArgs):
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in OfferStatus]),
                           metadata={"description": "Only offers in this state."})


class AcceptedOut(Schema):
    work_order_id = fields.Integer(required=True, metadata={
        "description": "The work order accepting made (GET /api/v1/work-orders/{id})."})
    work_order_number = fields.String(required=True)
    offer = fields.Nested(OfferOut, required=True)


class RefuseIn(Schema):
    reason = fields.String(required=True, validate=validate.OneOf(list(REFUSAL_REASONS)),
                           metadata={"description": "Why: " + ", ".join(REFUSAL_REASONS)})
    note = fields.String(load_default="", validate=validate.Length(max=1000), metadata={
        "description": "Required (2 to 1000 characters) when the reason is \"other\"."})


OfferPage = page_schema(OfferOut, "OfferPage")


@blp.route("/")
@api_allow(*policy.OFFER_READERS)
@blp.arguments(OfferArgs, location="query")
@blp.response(200, OfferPage)
def list_offers(args):
    """Offers, oldest first by id: an agency's own, every offer for HQ's readers. Filter by
    state and last change (``updated_since``: offered or answered since)."""
    stmt = select(Offer)
    if args.get("status"):
        stmt = stmt.where(Offer.status == args["status"])
    return page(stmt, Offer, args, updated_column=CHANGED_AT)


@blp.route("/<int:offer_id>")
@api_allow(*policy.OFFER_READERS)
@blp.response(200, OfferOut)
@blp.doc(**sends_etag())
def get_offer(offer_id):
    """One offer (ETag: its version)."""
    row = get_or_404(Offer, offer_id)
    return row, 200, {"ETag": etag_of(row)}


@blp.route("/<int:offer_id>/accept", methods=["POST"])
@api_performs("dispatch_offer.accepted")
@idempotent
@blp.response(201, AcceptedOut)
@blp.doc(**needs_if_match("the offer"))
def accept_offer(offer_id):
    """Accept an open offer within its window (``If-Match``: the offer's ETag): the agency's
    work order is made with the customer, its SLA clocks running from the call. Send an
    ``Idempotency-Key``: a retry gets the same work order, never a second one."""
    row = get_or_404(Offer, offer_id)
    if_match(row)
    order = perform(offers.accept_offer, row, seen_version=row.version)
    body = {"work_order_id": order.id, "work_order_number": order.number, "offer": row}
    return body, 201, {"Location": url_for("api_work_orders.get_work_order",
                                           work_order_id=order.id)}


@blp.route("/<int:offer_id>/refuse", methods=["POST"])
@api_performs("dispatch_offer.refused")
@idempotent
@blp.arguments(RefuseIn)
@blp.response(200, OfferOut)
@blp.doc(**needs_if_match("the offer"))
@blp.doc(**sends_etag())
def refuse_offer(data, offer_id):
    """Refuse an open offer with a reason (a note for "other"; ``If-Match``: the offer's
    ETag); the request goes back to HQ's dispatcher."""
    row = get_or_404(Offer, offer_id)
    if_match(row)
    perform(offers.refuse_offer, row, data["reason"], data["note"], seen_version=row.version)
    return row, 200, {"ETag": etag_of(row)}
