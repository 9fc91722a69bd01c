"""Factories of the settlement tests: catalogs, completed work orders, rate cards, claims.

They write rows directly (not through service/ services, which a colleague is finishing), in
whatever scope the caller holds; run them inside ``unscoped(...)`` or the agency's scope.
"""
import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from flask import g
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import (
    Complaint,
    OrderStatus,
    Part,
    PartReturn,
    RepairCode,
    WorkOrder,
    WorkOrderPart,
    WorkOrderRepair,
)
from settlement import config
from tenants.models import ProductModel

_seq = itertools.count(1)
D = Decimal


def at(day: date, hour: int = 4) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def repair_code(line, hours="1.50", code=None) -> RepairCode:
    n = next(_seq)
    rc = RepairCode(product_line_id=line.id, code=code or f"R{n:04d}", description_zh=f"维修{n}",
                    description_en=f"Repair {n}", standard_hours=D(hours))
    db.session.add(rc)
    db.session.flush()
    return rc


def part(line, price="100.00", returnable=False) -> Part:
    n = next(_seq)
    p = Part(part_number=f"P-{n:05d}", name_zh=f"零件{n}", name_en=f"Part {n}",
             product_line_id=line.id, unit_price=D(price), is_returnable=returnable)
    db.session.add(p)
    db.session.flush()
    return p


def model_of(line) -> ProductModel:
    return db.session.scalars(select(ProductModel).where(
        ProductModel.product_line_id == line.id)).first()


def order(agency, line, *, day: date, service_type="onsite", distance="12.00",
          repairs=(), parts=(), in_warranty=True, certified=True, rework_of=None,
          serial=None, engineer_id=None) -> WorkOrder:
    """A completed order serviced on `day`; repairs: [RepairCode], parts: [(Part, qty)]."""
    n = next(_seq)
    o = WorkOrder(agency_id=agency.id, number=f"WO{n:06d}", service_type=service_type,
                  status=OrderStatus.COMPLETED, customer_name="张三", customer_phone="13800001111",
                  product_line_id=line.id, product_model_id=model_of(line).id,
                  serial_number=serial or f"SN{n:08d}", purchase_date=day - timedelta(days=30),
                  is_in_warranty=in_warranty, received_at=at(day, 1), responded_at=at(day, 2),
                  arrived_at=at(day, 3) if service_type == "onsite" else None,
                  completed_at=at(day, 4), service_date=day,
                  distance_km=D(distance) if service_type == "onsite" and distance else None,
                  engineer_id=engineer_id, is_engineer_certified=certified,
                  is_rework=rework_of is not None,
                  rework_of_id=rework_of.id if rework_of is not None else None,
                  resolution="fixed")
    db.session.add(o)
    db.session.flush()
    for rc in repairs:
        db.session.add(WorkOrderRepair(agency_id=agency.id, work_order_id=o.id,
                                       repair_code_id=rc.id, standard_hours=rc.standard_hours))
    for p, quantity in parts:
        db.session.add(WorkOrderPart(agency_id=agency.id, work_order_id=o.id, part_id=p.id,
                                     quantity=quantity, unit_price=p.unit_price))
    db.session.flush()
    return o


def overdue_return(o: WorkOrder, p: Part, quantity=1, due=None) -> PartReturn:
    wop = db.session.scalars(select(WorkOrderPart).where(
        WorkOrderPart.agency_id == o.agency_id, WorkOrderPart.work_order_id == o.id,
        WorkOrderPart.part_id == p.id)).one()
    r = PartReturn(agency_id=o.agency_id, work_order_part_id=wop.id, work_order_id=o.id,
                   part_id=p.id, quantity=quantity, unit_price=p.unit_price,
                   due_on=due or o.service_date + timedelta(days=30))
    db.session.add(r)
    db.session.flush()
    return r


def substantiated_complaint(agency) -> Complaint:
    now = clock.now()
    c = Complaint(agency_id=agency.id, channel="hotline", severity="major",
                  description="late", status="closed", received_at=now - timedelta(days=3),
                  verdict="substantiated", verdict_note="ok", closed_at=now)
    db.session.add(c)
    db.session.flush()
    return c


def fee_rows(lines, *, callout="50.00", free_km="10.00", per_km="1.50", max_km="60.00",
             pct="8.00"):
    return [{"product_line_id": line.id, "service_type": kind, "callout_fee": D(callout),
             "free_km": D(free_km), "per_km": D(per_km), "max_km": D(max_km),
             "parts_handling_pct": D(pct)}
            for line in lines for kind in ("phone", "onsite", "carry_in")]


TIERS = {1: D("60.00"), 2: D("70.00"), 3: D("80.00"), 4: D("90.00"), 5: D("100.00")}


def rate_card(lines, effective=date(2020, 1, 1), tiers=None, **fees):
    with unscoped("HQ enters a rate card"):
        return config.create_rate_card({
            "effective_from": effective, "note": "test", "tier_rates": dict(tiers or TIERS),
            "fees": fee_rows(lines, **fees)}, acting_user=None)


def no_audit_actor():
    g._audit_actor = None
