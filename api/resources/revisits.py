"""Revisits (回访): read as the revisit pages read them (an agency its own, HQ the network, a
regional manager the region; engineers not at all); HQ's service desk posts a customer's 1–5
score of a completed order through the same service as the order page (one revisit per order:
a second post corrects it)."""
from flask import url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from api.core import (
    PageArgs,
    Problem,
    api_allow,
    api_performs,
    idempotent,
    page,
    page_schema,
    perform,
)
from portal.extensions import db
from portal.tenancy import get_or_404
from service import quality
from service.models import Revisit, WorkOrder
from service.policy import READERS

blp = Blueprint("api_revisits", __name__, url_prefix="/api/v1/revisits",
                description="HQ's calls to customers after completed orders (回访), scored "
                            "1–5 (HQ service records; agencies read their own).")


class RevisitIn(Schema):
    work_order_id = fields.Integer(required=True, strict=True)
    score = fields.Integer(required=True, strict=True, metadata={"description": "1 to 5."})
    comment = fields.String(load_default="", validate=validate.Length(max=quality.MAX_TEXT))
    revisited_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                        metadata={"description": "When the customer was "
                                                  "called (ISO 8601 with zone); empty: now."})


class RevisitOut(Schema):
    id = fields.Integer(required=True)
    agency_id = fields.Integer(required=True)
    work_order_id = fields.Integer(required=True)
    work_order_number = fields.Function(
        lambda r: r.work_order.number if r.work_order is not None else None,
        required=True, metadata={"type": "string"})
    score = fields.Integer(required=True)
    comment = fields.String(required=True)
    revisited_at = fields.DateTime(required=True)


class RevisitArgs(PageArgs):
    score = fields.Integer(load_default=None, validate=validate.Range(1, 5))
    work_order_id = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1))


RevisitPage = page_schema(RevisitOut, "RevisitPage")


@blp.route("/")
@api_allow(*READERS)
@blp.arguments(RevisitArgs, location="query")
@blp.response(200, RevisitPage)
def list_revisits(args):
    """Revisits the caller may read, oldest first by id; filter by score, order and time of
    the revisit (``updated_since`` compares it)."""
    stmt = select(Revisit).options(joinedload(Revisit.work_order))
    if args.get("score"):
        stmt = stmt.where(Revisit.score == args["score"])
    if args.get("work_order_id"):
        stmt = stmt.where(Revisit.work_order_id == args["work_order_id"])
    return page(stmt, Revisit, args, updated_column=Revisit.revisited_at)


@blp.route("/", methods=["POST"])
@api_performs("revisit.recorded", "revisit.corrected")
@idempotent
@blp.arguments(RevisitIn)
@blp.response(201, RevisitOut)
@blp.alt_response(200, schema=RevisitOut, description="The order had a revisit: corrected.")
def record_revisit(data):
    """Record the customer's score of a completed order (one per order: a second post
    corrects it, answered 200). Send an ``Idempotency-Key``."""
    order = db_order(data["work_order_id"])
    corrected = quality.find_revisit(order) is not None
    revisit = perform(quality.record_revisit, order, data["score"], data["comment"],
                      data["revisited_at"])
    return revisit, 200 if corrected else 201, {
        "Location": url_for(".get_revisit", revisit_id=revisit.id)}


def db_order(order_id: int) -> WorkOrder:
    """The order named in the body: one the caller may read, or a 422 on its field."""
    order = None
    if 0 < order_id < 2**31:
        order = db.session.scalars(select(WorkOrder).where(WorkOrder.id == order_id)
                                   ).one_or_none()
    if order is None:
        message = _("No work order with this id.")
        raise Problem(422, message, [{"field": "work_order_id", "message": message}])
    return order


@blp.route("/<int:revisit_id>")
@api_allow(*READERS)
@blp.response(200, RevisitOut)
def get_revisit(revisit_id):
    """One revisit."""
    return get_or_404(Revisit, revisit_id)
