"""Service requests: the call center creates them (as the hotline page does: a call about the
serial of an open request links to it) and reads them; customer details in full for the
dispatchers only, masked for the other readers."""
from flask import url_for
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

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
from dispatch import policy, requests
from dispatch.requests import RequestStatus, ServiceRequest, ServiceType
from portal.tenancy import get_or_404

blp = Blueprint("api_service_requests", __name__, url_prefix="/api/v1/service-requests",
                description="The hotline's calls (HQ dispatchers create; HQ reads).")


ID = validate.Range(1, 2**31 - 1)  # what an id column holds


class ServiceRequestIn(Schema):
    customer_name = fields.String(required=True, validate=validate.Length(1, 64))
    customer_phone = fields.String(required=True, validate=validate.Length(1, 32))
    province_id = fields.Integer(required=True, strict=True, validate=ID)
    city = fields.String(required=True, validate=validate.Length(1, 64))
    district = fields.String(required=True, validate=validate.Length(1, 64))
    street = fields.String(load_default="", validate=validate.Length(max=200))
    product_line_id = fields.Integer(required=True, strict=True, validate=ID)
    product_model_id = fields.Integer(required=True, strict=True, validate=ID)
    serial_number = fields.String(required=True, validate=validate.Length(1, 64))
    purchase_date = fields.Date(load_default=None, allow_none=True)
    fault_description = fields.String(required=True, validate=validate.Length(3, 4000))
    service_type = fields.String(required=True,
                                 validate=validate.OneOf([s.value for s in ServiceType]))
    preferred_from = fields.AwareDateTime(load_default=None, allow_none=True)
    preferred_to = fields.AwareDateTime(load_default=None, allow_none=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class ServiceRequestOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in RequestStatus]})
    received_at = fields.DateTime(required=True)
    customer_name = fields.Method("_customer_name", required=True,
                                  metadata={"type": "string", "description": "Masked (张*) "
                                            "for readers other than the dispatchers."})
    customer_phone = fields.Method("_customer_phone", required=True,
                                   metadata={"type": "string"})
    province_id = fields.Integer(required=True)
    city = fields.String(required=True)
    district = fields.String(required=True)
    product_line_id = fields.Integer(required=True)
    product_model_id = fields.Integer(required=True)
    serial_number = fields.String(required=True)
    fault_description = fields.String(required=True)
    service_type = fields.String(required=True)
    preferred_from = fields.DateTime(allow_none=True)
    preferred_to = fields.DateTime(allow_none=True)
    accept_due_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


    def _customer_name(self, row):
        if current_user.role in policy.DISPATCHERS:
            return row.customer_name
        return row.masked_customer_name

    def _customer_phone(self, row):
        if current_user.role in policy.DISPATCHERS:
            return row.customer_phone
        return row.masked_customer_phone


class TakenOut(Schema):
    request = fields.Nested(ServiceRequestOut, required=True)
    call_number = fields.Integer(required=True, metadata={
        "description": "This call's place among the request's calls (1: it opened it)."})
    linked = fields.Boolean(required=True, metadata={
        "description": "True: the serial had an open request, and the call was added to it."})


class ServiceRequestArgs(PageArgs):
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in RequestStatus]))


ServiceRequestPage = page_schema(ServiceRequestOut, "ServiceRequestPage")


@blp.route("/")
@api_allow(*policy.REQUEST_READERS)
@blp.arguments(ServiceRequestArgs, location="query")
@blp.response(200, ServiceRequestPage)
def list_requests(args):
    """Service requests, oldest first by id; filter by state and last change."""
    stmt = select(ServiceRequest)
    if args.get("status"):
        stmt = stmt.where(ServiceRequest.status == args["status"])
    return page(stmt, ServiceRequest, args)


@blp.route("/", methods=["POST"])
@api_performs("service_request.created", "service_request.call_linked")
@idempotent
@blp.arguments(ServiceRequestIn)
@blp.response(201, TakenOut)
@blp.alt_response(200, schema=TakenOut, description="The same call sent again (its call "
                  "key), or a replay of an Idempotency-Key: the request it made.")
def create_request(data):
    """Take a call: a new request, or a call linked to the open request of the same serial.
    Send an ``Idempotency-Key``: a retry after a timeout never makes a second request."""
    taken = perform(requests.take_call, data)
    body = {"request": taken.request, "call_number": taken.call_number,
            "linked": taken.linked}
    status = 200 if taken.repeated else 201
    return body, status, {"Location": url_for(".get_request",
                                              service_request_id=taken.request.id)}


@blp.route("/<int:service_request_id>")
@api_allow(*policy.REQUEST_READERS)
@blp.response(200, ServiceRequestOut)
@blp.doc(**sends_etag())
def get_request(service_request_id):
    """One service request (ETag: its version)."""
    row = get_or_404(ServiceRequest, service_request_id)
    return row, 200, {"ETag": etag_of(row)}
