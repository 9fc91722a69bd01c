"""Isolation-test parameters of the service area (see tests/isolation_params.py).

Each factory makes a row of the given agency that carries the agency's canary in its text,
so that a page showing it to another agency fails the canary check too.
"""
from sqlalchemy import select

from portal.extensions import db
from service.models import FaultCode, Part, RepairCode
from tests.isolation_params import Owned, Reference
from tests.service import factories as f


def _canary(agency) -> str:
    return next((w for w in agency.legal_name.split() if w.startswith("CANARY")), "")


def _order(world, agency):
    return f.make_order(agency, world.line, completed=True,
                        customer_name=f"客户 {_canary(agency)}").id


def _complaint(world, agency):
    return f.make_complaint(agency, text=f"投诉 {_canary(agency)}").id


def _request(world, agency):
    return f.make_request(agency, world.line, state="submitted").id


def _return(world, agency):
    return f.make_return(agency, world.line).id


def _reference(model):
    def make(world):
        f.catalog_of(world.line)
        return db.session.scalar(select(model.id).where(
            model.product_line_id == world.line.id).order_by(model.id))
    return make


def _revisit(world, agency):
    """HQ's revisit of a completed order of `agency` (the canary in its comment)."""
    from service import quality

    order = f.make_order(agency, world.line, completed=True,
                         customer_name=f"客户 {_canary(agency)}")
    return quality.record_revisit(order, 4, f"回访 {_canary(agency)}",
                                  acting_user=f.service_desk()).id


PARAMS: dict = {
    "order_id": Owned(_order),
    "complaint_id": Owned(_complaint),
    "request_id": Owned(_request),
    "parts_request_id": Owned(_request),  # the API's name for a parts request
    "revisit_id": Owned(_revisit),
    "return_id": Owned(_return),
    "repair_code_id": Reference(_reference(RepairCode)),
    "fault_code_id": Reference(_reference(FaultCode)),
    "part_id": Reference(_reference(Part)),
}
