"""Settlements (结算单): read as the settlement pages read them (an agency its own, HQ the
network, a regional manager the region); HQ's ERP marks an approved settlement paid with the
payment reference, through the same transition as the settlement page (``settlement.paid``).
Amounts are exact decimal strings ("130.00"), never floats."""
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import joinedload

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
from portal.tenancy import get_or_404
from settlement import review
from settlement.models import Decision, LineKind, Settlement, Status
from settlement.policy import READERS

blp = Blueprint("api_settlements", __name__, url_prefix="/api/v1/settlements",
                description="Agencies' monthly claims (read as the settlement pages allow); "
                            "HQ settlement (the ERP) marks approved ones paid.")

MONEY = {"as_string": True, "required": True}


class SettlementOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "ST-<agency>-YYYYMM-NN"})
    agency_id = fields.Integer(required=True)
    agency_code = fields.Function(lambda s: s.agency.code if s.agency is not None else None,
                                  required=True, metadata={"type": "string"})
    year = fields.Integer(required=True)
    month = fields.Integer(required=True)
    period = fields.String(required=True, metadata={"description": "YYYY-MM"})
    status = fields.String(required=True, metadata={"enum": [s.value for s in Status]})
    claimed_total = fields.Decimal(**MONEY, metadata={"type": "string",
                                                      "description": "Yuan, two places."})
    approved_total = fields.Decimal(**MONEY, metadata={"type": "string"})
    line_count = fields.Integer(required=True)
    submitted_at = fields.DateTime(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    paid_on = fields.Date(allow_none=True)
    payment_reference = fields.String(allow_none=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


class SettlementLineOut(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": [k.value for k in LineKind]})
    work_order_id = fields.Integer(allow_none=True)
    claimed_amount = fields.Decimal(**MONEY, metadata={"type": "string"})
    decision = fields.String(required=True, metadata={"enum": [d.value for d in Decision]})
    approved_amount = fields.Decimal(as_string=True, allow_none=True,
                                     metadata={"type": "string"})
    reason_code = fields.String(allow_none=True)
    reason_text = fields.String(allow_none=True)


class SettlementDetailOut(SettlementOut):
    lines = fields.List(fields.Nested(SettlementLineOut), required=True)


class SettlementArgs(PageArgs):
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in Status]))


class PaidIn(Schema):
    payment_reference = fields.String(required=True, validate=validate.Length(max=200),
                                      metadata={"description": "The bank's or the ERP's "
                                                "reference of the payment (3 to 64 "
                                                "characters)."})
    paid_on = fields.Date(load_default=None, allow_none=True,
                          metadata={"description": "The payment's local date (China); "
                                    "empty: today. Not in the future, not before the "
                                    "approval."})


SettlementPage = page_schema(SettlementOut, "SettlementPage")


@blp.route("/")
@api_allow(*READERS)
@blp.arguments(SettlementArgs, location="query")
@blp.response(200, SettlementPage)
def list_settlements(args):
    """Settlements the caller may read, oldest first by id; filter by state and last change."""
    stmt = select(Settlement).options(joinedload(Settlement.agency))
    if args.get("status"):
        stmt = stmt.where(Settlement.status == args["status"])
    return page(stmt, Settlement, args)


@blp.route("/<int:settlement_id>")
@api_allow(*READERS)
@blp.response(200, SettlementDetailOut)
@blp.doc(**sends_etag())
def get_settlement(settlement_id):
    """One settlement with its lines (ETag: its version; send it as If-Match to mark it
    paid)."""
    row = get_or_404(Settlement, settlement_id)
    return row, 200, {"ETag": etag_of(row)}


@blp.route("/<int:settlement_id>/paid", methods=["POST"])
@api_performs("settlement.paid")
@idempotent
@blp.arguments(PaidIn)
@blp.response(200, SettlementOut)
@blp.doc(**needs_if_match("the settlement"))
@blp.doc(**sends_etag())
def mark_paid(data, settlement_id):
    """Record the payment of an approved settlement (HQ settlement: the ERP). Send the ETag
    as ``If-Match`` and an ``Idempotency-Key``: a retry never records it twice."""
    row = get_or_404(Settlement, settlement_id)
    if_match(row)
    perform(review.mark_paid, row, data["payment_reference"], data["paid_on"],
            seen_version=row.version)
    return row, 200, {"ETag": etag_of(row)}
