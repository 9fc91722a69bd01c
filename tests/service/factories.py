"""Factories of the service area's tests: catalogs, engineers, stock, orders and the rest.

They call the area's services (so the rows carry what the rules derive) and run in whatever
scope the caller set; the isolation parameters call them inside an unscoped block.
"""
import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from certification.models import Certificate, Engineer, EngineerProductLine, Program
from portal import clock
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service import catalog, quality, services, supply
from service.models import LineDecision, OrderStatus, Part, PartReturn, PartStock
from tenants.models import Agency, ProductLine, ProductModel
from tests.factories import (
    make_product_line,  # noqa: F401 - re-exported for the tests
    make_user,
)

_seq = itertools.count(1)


def now() -> datetime:
    """The clock's now, to the second: read when used, since tests may move the clock."""
    return clock.now().replace(microsecond=0)


def today() -> date:
    """The network's day (local), as the rules judge it."""
    return clock.local_today()


def ago(days: float = 0, hours: float = 0) -> datetime:
    """A moment in the past: orders are entered after the work was done."""
    return now() - timedelta(days=days, hours=hours)


def actor(role: Role = Role.AGENCY_STAFF, agency: Agency | None = None) -> User:
    """The user who acts in a service call: one of `role` (of `agency` for agency roles),
    made once per test."""
    email = f"svc-{role.value}-{agency.id if agency else 'hq'}@test.example"
    with unscoped("test actors"):
        user = db.session.scalars(select(User).where(User.email == email)).first()
        return user or make_user(role, agency=agency, email=email)


def staff(agency: Agency) -> User:
    return actor(Role.AGENCY_STAFF, agency)


def hq(role: Role) -> User:
    return actor(role)


def admin() -> User:
    return actor(Role.HQ_ADMIN)


def parts_desk() -> User:
    return actor(Role.HQ_PARTS)


def service_desk() -> User:
    return actor(Role.HQ_SERVICE)


def model_of(line: ProductLine) -> ProductModel:
    return db.session.scalars(select(ProductModel).where(
        ProductModel.product_line_id == line.id).order_by(ProductModel.id)).first()


def make_catalog(line: ProductLine) -> dict:
    """Two repair codes, a fault code and two parts (one returnable) for `line`."""
    n = next(_seq)
    admin = {"acting_user": hq(Role.HQ_ADMIN)}
    out = {
        "repair": catalog.save_catalog_entry("repair_code", None, {
            "product_line_id": line.id, "code": f"R{n}A", "description_zh": "更换主板",
            "description_en": "Replace main board", "standard_hours": Decimal("1.50")}, **admin),
        "repair2": catalog.save_catalog_entry("repair_code", None, {
            "product_line_id": line.id, "code": f"R{n}B", "description_zh": "清洗",
            "description_en": "Clean", "standard_hours": Decimal("0.75")}, **admin),
        "fault": catalog.save_catalog_entry("fault_code", None, {
            "product_line_id": line.id, "code": f"F{n}", "description_zh": "不制冷",
            "description_en": "Not cooling"}, **admin),
        "part": catalog.save_catalog_entry("part", None, {
            "part_number": f"P{n}-RET", "name_zh": "压缩机", "name_en": "Compressor",
            "product_line_id": line.id, "unit_price": Decimal("860.50"),
            "is_returnable": True}, **admin),
        "cheap": catalog.save_catalog_entry("part", None, {
            "part_number": f"P{n}-NR", "name_zh": "螺丝", "name_en": "Screw",
            "product_line_id": line.id, "unit_price": Decimal("0.80"),
            "is_returnable": False}, **admin),
    }
    db.session.flush()
    return out


def catalog_of(line: ProductLine) -> dict:
    """The catalog of `line`, made once."""
    parts = list(db.session.scalars(select(Part).where(Part.product_line_id == line.id)
                                    .order_by(Part.id)))
    if not parts:
        return make_catalog(line)
    from service.models import FaultCode, RepairCode

    repairs = list(db.session.scalars(select(RepairCode).where(
        RepairCode.product_line_id == line.id).order_by(RepairCode.id)))
    fault = db.session.scalars(select(FaultCode).where(
        FaultCode.product_line_id == line.id).order_by(FaultCode.id)).first()
    return {"repair": repairs[0], "repair2": repairs[1], "fault": fault, "part": parts[0],
            "cheap": parts[1]}


def make_engineer(agency: Agency, line: ProductLine | None = None, *, user=None,
                  name=None) -> Engineer:
    n = next(_seq)
    engineer = Engineer(agency_id=agency.id, name=name or f"Engineer {n}",
                        id_number=f"31010119900101{n:04d}", hire_date=date(2020, 1, 1),
                        user_id=user.id if user else None)
    db.session.add(engineer)
    db.session.flush()
    if line is not None:
        db.session.add(EngineerProductLine(agency_id=agency.id, engineer_id=engineer.id,
                                           product_line_id=line.id))
        db.session.flush()
    return engineer


def certify(engineer: Engineer, line: ProductLine, valid_from: date, valid_to: date,
            *, revoked_on: date | None = None) -> Certificate:
    program = db.session.scalars(select(Program).where(Program.product_line_id == line.id,
                                                       Program.level == 2)).first()
    if program is None:
        program = Program(product_line_id=line.id, level=2)
        db.session.add(program)
        db.session.flush()
    n = next(_seq)
    cert = Certificate(agency_id=engineer.agency_id, engineer_id=engineer.id,
                       program_id=program.id, product_line_id=line.id, level=2,
                       number=f"TEST-{n:06d}", verification_code="ABCD1234",
                       valid_from=valid_from, valid_to=valid_to, revoked_on=revoked_on)
    db.session.add(cert)
    db.session.flush()
    return cert


def give_stock(agency: Agency, part: Part, quantity: int) -> PartStock:
    """Put parts in an agency's stock as a received request would."""
    from service import stock

    stock.receive(agency.id, part.id, quantity)
    return db.session.scalars(select(PartStock).where(PartStock.agency_id == agency.id,
                                                      PartStock.part_id == part.id)).one()


def order_data(line: ProductLine, **overrides) -> dict:
    n = next(_seq)
    data = {
        "number": f"WO-T{n:05d}", "service_type": "carry_in", "customer_name": "张先生",
        "customer_phone": "13812345678", "customer_address": "",
        "product_model_id": model_of(line).id, "serial_number": f"SN{n:08d}",
        "purchase_date": today() - timedelta(days=100), "received_at": ago(days=3),
        "responded_at": None, "arrived_at": None, "completed_at": None, "distance_km": None,
        "engineer_id": None, "fault_code_id": None, "fault_description": "不开机",
        "repair_code_ids": [], "resolution": "", "is_first_time_fix": True, "parts": [],
    }
    data.update(overrides)
    return data


def completed_data(line: ProductLine, engineer: Engineer, **overrides) -> dict:
    """The input of an order completed yesterday by `engineer`, with one repair code."""
    codes = catalog_of(line)
    base = {"responded_at": ago(days=3) + timedelta(hours=1),
            "completed_at": ago(days=1), "engineer_id": engineer.id,
            "repair_code_ids": [codes["repair"].id], "resolution": "更换主板后正常"}
    base.update(overrides)
    return order_data(line, **base)


def make_order(agency: Agency, line: ProductLine, *, completed=False, engineer=None,
               **overrides):
    if completed:
        engineer = engineer or make_engineer(agency, line)
        return services.create_work_order(agency, completed_data(line, engineer, **overrides),
                                          acting_user=staff(agency))
    return services.create_work_order(agency, order_data(line, **overrides),
                                      acting_user=staff(agency))


def make_return(agency: Agency, line: ProductLine) -> PartReturn:
    """A due return: a returnable part used on a completed in-warranty order."""
    codes = catalog_of(line)
    give_stock(agency, codes["part"], 1)
    order = make_order(agency, line, completed=True, parts=[(codes["part"].id, 1)])
    assert order.status == OrderStatus.COMPLETED and order.is_in_warranty
    return db.session.scalars(select(PartReturn).where(PartReturn.agency_id == agency.id,
                                                       PartReturn.work_order_id == order.id)
                              ).one()


def make_request(agency: Agency, line: ProductLine, *, quantity=3, state="submitted"):
    """A parts request walked to `state` (submitted, approved, shipped or received)."""
    codes = catalog_of(line)
    request = supply.create_parts_request(agency, [
        {"part_id": codes["part"].id, "quantity": quantity, "reason": "stock"}],
        acting_user=staff(agency))
    if state == "submitted":
        return request
    line_id = supply._lines(request)[0].id
    desk = hq(Role.HQ_PARTS)
    supply.decide_parts_request(request, {line_id: {"decision": LineDecision.APPROVED,
                                                    "approved_quantity": quantity}},
                                acting_user=desk)
    if state == "approved":
        return request
    supply.ship_parts_request(request, "顺丰", f"SF{next(_seq):010d}", acting_user=desk)
    if state == "shipped":
        return request
    supply.receive_parts_request(request, {line_id: {"received_quantity": quantity}},
                                 acting_user=staff(agency))
    return request


def make_complaint(agency: Agency, *, text="客户投诉上门迟到", order_number=""):
    return quality.create_complaint(agency, {"channel": "hotline", "severity": "major",
                                             "description": text,
                                             "order_number": order_number},
                                    acting_user=hq(Role.HQ_SERVICE))
