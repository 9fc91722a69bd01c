"""The demo's year of service work obeys the same rules as the services that write real work.

(How many returns come back late is left to chance per agency; the demo network as a whole
holds overdue ones in every state.)
"""
import random
from datetime import timedelta

from sqlalchemy import func, select

from portal.auth.roles import Role
from portal.clock import local_day, local_today
from portal.extensions import db
from portal.tenancy import unscoped
from service import demo, services
from service.common import is_in_warranty
from service.models import (
    Complaint,
    Part,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    PartStock,
    Revisit,
    WorkOrder,
    WorkOrderPart,
)
from tenants.models import Agency, AgencyProductLine, ProductModel
from tests.service import factories as f


def test_the_demo_year_follows_the_rules(ctx, world):
    with unscoped("the demo loader writes the whole network"):
        line = f.make_product_line("AC")
        db.session.add(AgencyProductLine(agency_id=world.a.id, product_line_id=line.id))
        db.session.flush()
        agency = db.session.scalars(select(Agency).where(Agency.id == world.a.id)).one()
        engineers = [f.make_engineer(agency, line) for _ in range(3)]
        demo.load({"rng": random.Random(11), "product_lines": {"AC": line},
                   "agencies": {agency.code: agency}, "engineers": {agency.code: engineers},
                   "users": {"service@hq.demo": world.user(Role.HQ_SERVICE),
                             "parts@hq.demo": world.user(Role.HQ_PARTS)}})
        orders = list(db.session.scalars(select(WorkOrder).where(
            WorkOrder.agency_id == agency.id)))
        months = {m.id: m.warranty_months for m in db.session.scalars(select(ProductModel))}
        today = local_today()

        # A year of every service type, some of it still open, some rework.
        assert len(orders) >= 95
        days = [local_day(o.received_at) for o in orders]
        assert (max(days) - min(days)).days >= 300 and max(days) >= today - timedelta(days=7)
        assert {o.service_type for o in orders} == {"phone", "onsite", "carry_in"}
        assert {"open", "completed"} <= {o.status for o in orders}
        assert any(o.is_rework for o in orders)
        for o in orders:
            assert o.is_in_warranty == is_in_warranty(
                o.purchase_date, months[o.product_model_id], local_day(o.received_at)), o.number
            if o.status != "cancelled":
                origin = services.find_rework_origin(o)
                assert o.is_rework == (origin is not None), o.number
                assert o.rework_of_id == (origin.id if origin else None), o.number

        # Parts: requests in every state; stock is what arrived minus what was used.
        statuses = set(db.session.scalars(select(PartsRequest.status).where(
            PartsRequest.agency_id == agency.id)))
        assert statuses == {"submitted", "approved", "rejected", "shipped", "received"}
        arrived = dict(db.session.execute(
            select(PartsRequestLine.part_id, func.sum(PartsRequestLine.received_quantity))
            .where(PartsRequestLine.agency_id == agency.id)
            .group_by(PartsRequestLine.part_id)).all())
        used = dict(db.session.execute(
            select(WorkOrderPart.part_id, func.sum(WorkOrderPart.quantity))
            .where(WorkOrderPart.agency_id == agency.id)
            .group_by(WorkOrderPart.part_id)).all())
        for stock in db.session.scalars(select(PartStock).where(
                PartStock.agency_id == agency.id)):
            assert stock.received_total == (arrived.get(stock.part_id) or 0)
            assert stock.used_total == (used.get(stock.part_id) or 0)
            assert stock.quantity == stock.received_total - stock.used_total >= 0

        # A return for each returnable part used in warranty; on time and overdue ones.
        returnable = {p.id for p in db.session.scalars(select(Part).where(
            Part.is_returnable.is_(True)))}
        expected = {row.id for row, order in db.session.execute(
            select(WorkOrderPart, WorkOrder).join(WorkOrder, WorkOrder.id ==
                                                  WorkOrderPart.work_order_id)
            .where(WorkOrderPart.agency_id == agency.id)).all()
            if order.is_in_warranty and row.part_id in returnable}
        returns = list(db.session.scalars(select(PartReturn).where(
            PartReturn.agency_id == agency.id)))
        assert {r.work_order_part_id for r in returns} == expected
        service_day = {o.id: o.service_date for o in orders}
        for r in returns:
            assert r.due_on == service_day[r.work_order_id] + timedelta(days=30)
            assert r.status == "due" or r.shipped_on is not None
        assert any(not r.is_overdue(today) and r.status != "due" for r in returns)

        # Revisits after completion; complaints waiting on both sides and closed ones.
        for revisit, order in db.session.execute(
                select(Revisit, WorkOrder).join(WorkOrder, WorkOrder.id == Revisit.work_order_id)
                .where(Revisit.agency_id == agency.id)).all():
            assert order.status == "completed" and revisit.revisited_at >= order.completed_at
        assert set(db.session.scalars(select(Complaint.status).where(
            Complaint.agency_id == agency.id))) == {"open", "responded", "closed"}
