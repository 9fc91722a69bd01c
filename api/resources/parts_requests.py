"""Parts requests: read as the parts pages read them (an agency its own, HQ the network, a
regional manager the region; engineers not at all); an agency's system submits one through
the same transition as the page (``parts_request.submitted``)."""
from flask import url_for
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from api.core import (
    PageArgs,
    api_allow,
    api_performs,
    etag_of,
    idempotent,
    page,
    page_schema,
    perform,
)
from api.openapi import sends_etag
from portal.tenancy import get_or_404
from service import supply
from service.models import LineDecision, LineReason, PartsRequest, PartsRequestLine, RequestStatus
from service.policy import READERS
from tenants.models import Agency

blp = Blueprint("api_parts_requests", __name__, url_prefix="/api/v1/parts-requests",
                description="Agencies' requests for parts (agencies submit; HQ's parts desk "
                            "decides and ships them on the pages).")


class PartsRequestLineIn(Schema):
    part_id = fields.Integer(required=True, strict=True, validate=validate.Range(1, 2**31 - 1))
    quantity = fields.Integer(required=True, strict=True,
                              metadata={"description": "1 to 999."})
    reason = fields.String(load_default=LineReason.STOCK.value,
                           validate=validate.OneOf([r.value for r in LineReason]),
                           metadata={"description": "stock, or work_order (then "
                                     "work_order_id names one of your open orders)."})
    work_order_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                  validate=validate.Range(1, 2**31 - 1))


class PartsRequestIn(Schema):
    lines = fields.List(fields.Nested(PartsRequestLineIn), required=True,
                        validate=validate.Length(max=200),
                        metadata={"description": f"1 to {supply.MAX_LINES} lines."})
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class PartsRequestLineOut(Schema):
    id = fields.Integer(required=True)
    part_id = fields.Integer(required=True)
    part_number = fields.Function(lambda line: line.part.part_number if line.part else None,
                                  required=True, metadata={"type": "string"})
    quantity = fields.Integer(required=True)
    reason = fields.String(required=True, metadata={"enum": [r.value for r in LineReason]})
    work_order_id = fields.Integer(allow_none=True)
    decision = fields.String(required=True,
                             metadata={"enum": [d.value for d in LineDecision]})
    approved_quantity = fields.Integer(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    received_quantity = fields.Integer(allow_none=True)
    discrepancy_note = fields.String(allow_none=True)


class PartsRequestOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    agency_id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in RequestStatus]})
    note = fields.String(required=True)
    submitted_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True)
    carrier = fields.String(allow_none=True)
    tracking_number = fields.String(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    version = fields.Integer(required=True)
    lines = fields.List(fields.Nested(PartsRequestLineOut), required=True)


class PartsRequestArgs(PageArgs):
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in RequestStatus]))


PartsRequestPage = page_schema(PartsRequestOut, "PartsRequestPage")

# A request changes by steps that each stamp a later time: its last change is the latest one.
LAST_CHANGE = func.coalesce(PartsRequest.received_at, PartsRequest.shipped_at,
                            PartsRequest.decided_at, PartsRequest.submitted_at)


LINES = (selectinload(PartsRequest.lines).joinedload(PartsRequestLine.part),)


def _with_lines(stmt):
    return stmt.options(*LINES)


@blp.route("/")
@api_allow(*READERS)
@blp.arguments(PartsRequestArgs, location="query")
@blp.response(200, PartsRequestPage)
def list_parts_requests(args):
    """Parts requests the caller may read, oldest first by id, with their lines; filter by
    state and by last change (submission, decision, shipment or receipt)."""
    stmt = _with_lines(select(PartsRequest))
    if args.get("status"):
        stmt = stmt.where(PartsRequest.status == args["status"])
    return page(stmt, PartsRequest, args, updated_column=LAST_CHANGE)


@blp.route("/", methods=["POST"])
@api_performs("parts_request.submitted")
@idempotent
@blp.arguments(PartsRequestIn)
@blp.response(201, PartsRequestOut)
@blp.doc(**sends_etag(201))
def create_parts_request(data):
    """Submit a parts request to HQ's parts desk for the caller's agency. Send an
    ``Idempotency-Key``: a retry never submits a second request."""
    agency = get_or_404(Agency, current_user.agency_id)
    created = perform(supply.create_parts_request, agency, data["lines"], data["note"])
    return created, 201, {"ETag": etag_of(created),
                          "Location": url_for(".get_parts_request",
                                              parts_request_id=created.id)}


@blp.route("/<int:parts_request_id>")
@api_allow(*READERS)
@blp.response(200, PartsRequestOut)
@blp.doc(**sends_etag())
def get_parts_request(parts_request_id):
    """One parts request with its lines (ETag: its version)."""
    row = get_or_404(PartsRequest, parts_request_id, *LINES)
    return row, 200, {"ETag": etag_of(row)}

