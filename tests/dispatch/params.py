"""Isolation-test parameters of dispatch (see tests/isolation_params.py).

A calendar exception is HQ's, one for the whole network: every role may read the calendar,
only HQ admin removes one."""
import itertools
from datetime import timedelta

from sqlalchemy import select

from dispatch.models import CalendarException
from dispatch.requests import ServiceRequest, ServiceRequestCall
from portal import clock
from portal.clock import local_today
from portal.extensions import db
from tenants.models import ProductModel, Province

# Imported by tests/isolation_params.py once it has defined these (never import this first).
from tests.isolation_params import Owned, Reference  # noqa: E402,I001

_coverage_n = itertools.count(1)
_request_n = itertools.count(1)


def _exception(world) -> int:
    row = CalendarException(day=local_today() + timedelta(days=30), note="test")
    db.session.add(row)
    db.session.flush()
    return row.id


def _service_request(world) -> int:
    """A call waiting for dispatch, with the canary in its customer's fields."""
    province = db.session.scalar(select(Province.id).where(
        Province.region_id == world.region1.id).order_by(Province.id).limit(1))
    if province is None:
        row = Province(code="SR-P", name_zh="省", name_en="Province", region_id=world.region1.id)
        db.session.add(row)
        db.session.flush()
        province = row.id
    model = db.session.scalar(select(ProductModel.id).where(
        ProductModel.product_line_id == world.line.id).limit(1))
    now, n = clock.now(), next(_request_n)
    row = ServiceRequest(
        number=f"SR{clock.local_day(now):%Y%m%d}-9{n:03d}", received_at=now,
        customer_name="CANARY-SR 王小明", customer_phone="13800009999", province_id=province,
        city="深圳市", district="南山区", street="CANARY-SR 街", product_line_id=world.line.id,
        product_model_id=model, serial_number=f"SR-CANARY-{n}", serial_key=f"SR-CANARY-{n}",
        fault_description="CANARY-SR", service_type="onsite")
    db.session.add(row)
    db.session.flush()
    db.session.add(ServiceRequestCall(request_id=row.id, at=now))
    db.session.flush()
    return row.id


def _coverage(world, agency) -> int:
    """An approved coverage area of `agency` (a new district each time: no duplicate)."""
    from dispatch import coverage
    from tenants.models import Agency

    agency = db.session.scalars(select(Agency).where(Agency.id == agency.id)).one()
    row = coverage.declare_coverage(
        agency, province_id=agency.province_id, city=agency.city,
        district=f"D{next(_coverage_n)}", product_line_id=world.line.id,
        service_type="onsite", acting_user=None)
    coverage.decide_coverage(row, approve=True, acting_user=None, seen_version=row.version)
    db.session.flush()
    return row.id


def _canary(agency) -> str:
    from tenants.models import Agency

    name = db.session.scalar(select(Agency.legal_name).where(Agency.id == agency.id))
    return next((w for w in name.split() if w.startswith("CANARY")), "")


def _offer_row(world, agency, request_id: int, **values):
    """An offer of `agency` (its canary in the fault text) made just now."""
    from dispatch.offers import Offer

    request = db.session.get(ServiceRequest, request_id)
    now = clock.now()
    row = Offer(agency_id=agency.id, request_id=request.id, offered_at=now,
                expires_at=now + timedelta(hours=2), request_number=request.number,
                received_at=request.received_at, province_id=request.province_id,
                city=request.city, district=request.district,
                product_line_id=request.product_line_id,
                product_model_id=request.product_model_id, service_type=request.service_type,
                fault_description=f"故障 {_canary(agency)}", **values)
    db.session.add(row)
    db.session.flush()
    return row


def _offer(world, agency) -> int:
    """An open offer to `agency` of a request waiting for its answer."""
    request_id = _service_request(world)
    db.session.get(ServiceRequest, request_id).status = "offered"
    return _offer_row(world, agency, request_id).id


def _dispatched_order(world, agency) -> int:
    """An open work order of `agency` that came from an accepted offer: its SLA clocks run
    (its customer carries the agency's canary)."""
    from dispatch import sla
    from tests.service.factories import make_order

    request_id = _service_request(world)
    request = db.session.get(ServiceRequest, request_id)
    order = make_order(agency, world.line, service_type="onsite",
                       customer_name=f"客户 {_canary(agency)}")
    now = clock.now()
    request.status, request.accepted_at = "accepted", now
    _offer_row(world, agency, request_id, status="accepted", answered_at=now,
               work_order_id=order.id)
    sla.start_order_clocks(order, request, accepted_at=now)
    db.session.flush()
    return order.id


PARAMS: dict = {"exception_id": Reference(_exception), "coverage_id": Owned(_coverage),
                "service_request_id": Reference(_service_request),
                "offer_id": Owned(_offer), "work_order_id": Owned(_dispatched_order)}
