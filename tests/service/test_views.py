"""The service pages through the client: a week of agency work, HQ's answers, bad input."""
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.clock import local_today
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import (
    Complaint,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    Revisit,
    WorkOrder,
)
from tests.factories import sign_in
from tests.service import factories as f


def local(moment) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def setup(app, world):
    """A's catalog, an engineer linked to A's engineer account, and an engineer of B."""
    with app.app_context(), unscoped("test data"):
        codes = f.catalog_of(world.line)
        engineer = f.make_engineer(world.a, world.line, user=world.user(Role.ENGINEER),
                                   name="冯工程师")
        foreign = f.make_engineer(world.b, world.line, name="外人")
        # B holds the part A has none of: A's orders cannot use B's stock.
        f.give_stock(world.b, codes["part"], 10)
        ids = {"repair": codes["repair"].id, "fault": codes["fault"].id,
               "part": codes["part"].id, "cheap": codes["cheap"].id,
               "engineer": engineer.id, "foreign_engineer": foreign.id,
               "model": f.model_of(world.line).id}
        db.session.commit()
    return ids


def _scalar(app, stmt):
    with app.app_context(), unscoped("tests read every agency's rows"):
        return db.session.scalar(stmt)


def _count(app, model, *where):
    return _scalar(app, select(func.count(model.id)).where(*where))


def _audits(app) -> int:
    return _count(app, AuditEntry)


def order_form(ids, **overrides) -> dict:
    received = f.ago(days=2)
    data = {"number": "", "service_type": "onsite", "customer_name": "王女士",
            "customer_phone": "13711112222", "customer_address": "浦东新区 1 号",
            "product_model_id": ids["model"], "serial_number": "SN-VIEW-1",
            "purchase_date": (received - timedelta(days=90)).date().isoformat(),
            "received_at": local(received), "responded_at": local(received + timedelta(hours=1)),
            "arrived_at": "", "completed_at": "", "distance_km": "", "engineer_id": ids["engineer"],
            "fault_code_id": ids["fault"], "fault_description": "不制冷", "resolution": "",
            "is_first_time_fix": "y", "parts-0-part_id": "0", "parts-0-quantity": ""}
    data.update(overrides)
    return data


# --- work orders -------------------------------------------------------------------------------


def test_an_agency_creates_edits_and_completes_an_order(app, client, world, setup):
    sign_in(client, world.user(Role.AGENCY_STAFF))
    before = _audits(app)
    response = client.post("/service/orders/new", data=order_form(setup))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    order_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert _audits(app) == before + 1
    page = client.get(f"/service/orders/{order_id}").get_data(as_text=True)
    assert "13711112222" in page and "王女士" in page  # unmasked on the owner's detail page
    listing = client.get("/service/orders/").get_data(as_text=True)
    assert "13711112222" not in listing and "137****2222" in listing
    done = order_form(setup, arrived_at=local(f.ago(days=2) + timedelta(hours=3)),
                      completed_at=local(f.ago(days=2) + timedelta(hours=4)),
                      distance_km="8.5", repair_code_ids=str(setup["repair"]),
                      resolution="更换主板")
    response = client.post(f"/service/orders/{order_id}/edit", data=done)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    order = _scalar(app, select(WorkOrder).where(WorkOrder.id == order_id))
    assert order.status == "completed" and str(order.distance_km) == "8.50"
    assert _audits(app) == before + 2
    # A completed order is locked.
    response = client.post(f"/service/orders/{order_id}/edit", data=done)
    assert response.status_code == 302
    assert _audits(app) == before + 2


@pytest.mark.parametrize("overrides, message", [
    ({"customer_name": ""}, "required"),
    ({"engineer_id": "FOREIGN"}, "Choose an engineer of your agency."),
    ({"product_model_id": "987654"}, "Choose a product model."),
    ({"received_at": "not a time"}, "Not a valid datetime value"),
    ({"responded_at": local(f.ago(days=5))}, "cannot be before"),
    ({"distance_km": "NaN"}, "distance"),
    ({"distance_km": "1e400"}, "distance"),
    ({"distance_km": "-5"}, "distance"),
    ({"purchase_date": "2026-02-30"}, "Not a valid date value"),
    ({"service_type": "teleport"}, "Not a valid choice"),
    ({"serial_number": "序列号"}, "serial number"),
    ({"engineer_id": "abc"}, "Invalid Choice"),
    ({"parts-0-part_id": "PART", "parts-0-quantity": "1"}, "in your stock"),
    ({"parts-0-part_id": "PART", "parts-0-quantity": "-1"}, "between 1 and"),
    ({"fault_code_id": "987654"}, "fault code"),
])
def test_bad_order_input_is_shown_and_nothing_is_written(app, client, world, setup, overrides,
                                                         message):
    values = {"FOREIGN": str(setup["foreign_engineer"]), "PART": str(setup["part"])}
    overrides = {k: values.get(v, v) for k, v in overrides.items()}
    sign_in(client, world.user(Role.AGENCY_OWNER))
    before = (_count(app, WorkOrder), _audits(app))
    response = client.post("/service/orders/new", data=order_form(setup, **overrides))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert (_count(app, WorkOrder), _audits(app)) == before


def test_an_empty_post_is_a_form_error(app, client, world, setup):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post("/service/orders/new", data={})
    assert response.status_code == 200 and _count(app, WorkOrder) == 0


def test_engineers_read_only_their_own_orders(app, client, world, setup):
    with app.app_context(), unscoped("orders"):
        mine = f.make_order(world.a, world.line, engineer_id=setup["engineer"])
        other = f.make_order(world.a, world.line)
        db.session.commit()
        mine_number, other_number = mine.number, other.number
        mine_id, other_id = mine.id, other.id
    sign_in(client, world.user(Role.ENGINEER))
    listing = client.get("/service/orders/").get_data(as_text=True)
    assert mine_number in listing and other_number not in listing
    assert client.get(f"/service/orders/{mine_id}").status_code == 200
    assert client.get(f"/service/orders/{other_id}").status_code == 404
    assert client.get("/service/orders/new").status_code == 403


def test_cancel_returns_parts_and_needs_a_reason(app, client, world, setup):
    with app.app_context(), unscoped("order"):
        order = f.make_order(world.a, world.line)
        db.session.commit()
        order_id = order.id
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post(f"/service/orders/{order_id}/cancel", data={"reason": ""})
    assert response.status_code == 422
    before = _audits(app)
    response = client.post(f"/service/orders/{order_id}/cancel", data={"reason": "客户取消"})
    assert response.status_code == 302 and _audits(app) == before + 1
    assert _scalar(app, select(WorkOrder.status).where(WorkOrder.id == order_id)) == "cancelled"


def test_orders_import_through_the_page(app, client, world, setup):
    sign_in(client, world.user(Role.AGENCY_STAFF))
    assert client.get("/service/orders/import").status_code == 200
    template = client.get("/service/orders/import/template?format=xlsx")
    assert template.status_code == 200 and template.data[:2] == b"PK"
    assert client.get("/service/orders/import/template").mimetype == "text/csv"
    with app.app_context(), unscoped("model code"):
        model = f.model_of(world.line).code
    day = (local_today() - timedelta(days=30)).isoformat()
    csv_text = ("order_number,service_type,customer_name,customer_phone,product_model,"
                "serial_number,received_at\n"
                f"UP-1,carry_in,赵先生,13600000000,{model},SNUP1,{day} 09:00\n"
                f"UP-2,carry_in,钱先生,bad phone,{model},SNUP2,{day} 10:00\n")
    data = {"file": (io.BytesIO(csv_text.encode()), "orders.csv")}
    response = client.post("/service/orders/import", data=data,
                           content_type="multipart/form-data")
    assert response.status_code == 200
    assert "Nothing was written" in response.get_data(as_text=True)
    assert _count(app, WorkOrder) == 0
    data = {"file": (io.BytesIO(csv_text.encode()), "orders.csv"), "good_only": "y"}
    response = client.post("/service/orders/import", data=data,
                           content_type="multipart/form-data")
    assert _count(app, WorkOrder) == 1
    response = client.post("/service/orders/import", data={},
                           content_type="multipart/form-data")
    assert response.status_code == 200 and "Choose a CSV or XLSX file." in response.get_data(
        as_text=True)


def test_orders_export_is_masked(app, client, world, setup):
    with app.app_context(), unscoped("order"):
        f.make_order(world.a, world.line, customer_phone="13511112222")
        db.session.commit()
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.get("/service/orders/export.csv")
    assert response.mimetype == "text/csv"
    assert "135****2222" in response.get_data(as_text=True)
    assert "13511112222" not in response.get_data(as_text=True)


# --- a week of parts work ------------------------------------------------------------------------


def _form_values(page: str) -> dict:
    return dict(re.findall(r'name="([\w-]+)" value="([^"]*)"', page))


def test_parts_from_request_to_return(app, client, world, setup):
    owner, parts = world.user(Role.AGENCY_OWNER), world.user(Role.HQ_PARTS)
    sign_in(client, owner)
    assert client.get("/service/parts-requests/new").status_code == 200
    response = client.post("/service/parts-requests/new", data={
        "lines-0-part_id": setup["part"], "lines-0-quantity": "2", "lines-0-reason": "stock",
        "lines-0-work_order_id": "0", "note": "月度备货"})
    assert response.status_code == 302
    request_id = int(response.headers["Location"].rsplit("/", 1)[1])
    line_id = _scalar(app, select(PartsRequestLine.id).where(
        PartsRequestLine.request_id == request_id))
    # The agency cannot decide, ship or receive yet.
    assert client.post(f"/service/parts-requests/{request_id}/decide").status_code == 403
    assert client.post(f"/service/parts-requests/{request_id}/receive").status_code == 422

    hq = app.test_client()
    sign_in(hq, parts)
    response = hq.post(f"/service/parts-requests/{request_id}/decide", data={
        f"decision-{line_id}": "approved", f"approved-{line_id}": "3"})
    assert response.status_code == 422 and "between 1 and the 2" in response.get_data(
        as_text=True)
    response = hq.post(f"/service/parts-requests/{request_id}/decide", data={
        f"decision-{line_id}": "approved", f"approved-{line_id}": "2"})
    assert response.status_code == 302
    response = hq.post(f"/service/parts-requests/{request_id}/ship",
                       data={"carrier": "顺丰", "tracking_number": "SF1001"})
    assert response.status_code == 302
    response = hq.post(f"/service/parts-requests/{request_id}/ship",
                       data={"carrier": "顺丰", "tracking_number": "SF1002"})
    assert response.status_code == 422
    assert _scalar(app, select(PartsRequest.tracking_number)
                   .where(PartsRequest.id == request_id)) == "SF1001"

    response = client.post(f"/service/parts-requests/{request_id}/receive",
                           data={f"received-{line_id}": "2"})
    assert response.status_code == 302
    assert "SF1001" in client.get(f"/service/parts-requests/{request_id}").get_data(
        as_text=True)
    stock_page = client.get("/service/stock/").get_data(as_text=True)
    assert "P" in stock_page

    done = order_form(setup, service_type="carry_in", completed_at=local(f.ago(days=1)),
                      repair_code_ids=str(setup["repair"]), resolution="更换压缩机",
                      **{"parts-0-part_id": str(setup["part"]), "parts-0-quantity": "2"})
    response = client.post("/service/orders/new", data=done)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return_id = _scalar(app, select(PartReturn.id))
    assert return_id
    response = client.post(f"/service/returns/{return_id}/ship",
                           data={"carrier": "顺丰", "tracking_number": "SF2001"})
    assert response.status_code == 302
    response = hq.post(f"/service/returns/{return_id}/inspect",
                       data={"result": "rejected", "reason": ""})
    assert response.status_code == 422
    response = hq.post(f"/service/returns/{return_id}/inspect", data={"result": "accepted"})
    assert response.status_code == 302
    assert _scalar(app, select(PartReturn.status)) == "accepted"


def test_bad_parts_request_input(app, client, world, setup):
    sign_in(client, world.user(Role.AGENCY_STAFF))
    for data in ({}, {"lines-0-part_id": setup["part"], "lines-0-quantity": "-4"},
                 {"lines-0-part_id": "987654", "lines-0-quantity": "1"},
                 {"lines-0-part_id": setup["part"], "lines-0-quantity": "99999999999"},
                 {"lines-0-part_id": setup["part"], "lines-0-quantity": "1",
                  "lines-0-reason": "work_order", "lines-0-work_order_id": "987654"}):
        response = client.post("/service/parts-requests/new", data=data)
        assert response.status_code == 200
    assert _count(app, PartsRequest) == 0


# --- quality -----------------------------------------------------------------------------------


def test_complaint_and_revisit_flow(app, client, world, setup):
    with app.app_context(), unscoped("order"):
        order = f.make_order(world.a, world.line, completed=True)
        db.session.commit()
        order_id, number = order.id, order.number
    hq = app.test_client()
    sign_in(hq, world.user(Role.HQ_SERVICE))
    response = hq.post("/service/complaints/new", data={
        "agency_code": world.a.code, "order_number": "NOPE", "channel": "hotline",
        "severity": "major", "description": "上门迟到"})
    assert response.status_code == 200 and _count(app, Complaint) == 0
    response = hq.post("/service/complaints/new", data={
        "agency_code": world.b.code, "order_number": number, "channel": "hotline",
        "severity": "major", "description": "上门迟到"})
    assert response.status_code == 200 and _count(app, Complaint) == 0
    response = hq.post("/service/complaints/new", data={
        "agency_code": world.a.code.lower(), "order_number": number, "channel": "hotline",
        "severity": "major", "description": "上门迟到"})
    assert response.status_code == 302
    complaint_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert hq.post(f"/service/orders/{order_id}/revisit", data={"score": "9"}).status_code == 422
    assert hq.post(f"/service/orders/{order_id}/revisit",
                   data={"score": "4", "comment": "满意"}).status_code == 302

    sign_in(client, world.user(Role.AGENCY_OWNER))
    assert "满意" in client.get("/service/revisits/").get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)
    assert "Complaints to answer" in home
    response = client.post(f"/service/complaints/{complaint_id}/respond",
                           data={"response": "已致歉"})
    assert response.status_code == 302
    assert client.post(f"/service/complaints/{complaint_id}/verdict",
                       data={"verdict": "substantiated"}).status_code == 403
    response = hq.post(f"/service/complaints/{complaint_id}/verdict",
                       data={"verdict": "substantiated", "verdict_note": "属实"})
    assert response.status_code == 302
    assert _scalar(app, select(Complaint.status)) == "closed"
    assert _count(app, Revisit) == 1


# --- catalogs ----------------------------------------------------------------------------------


def test_catalog_roles_and_bad_input(app, client, world, setup):
    parts_desk = world.user(Role.HQ_PARTS)
    sign_in(client, parts_desk)
    assert client.get("/service/catalog/repair-codes/new").status_code == 403
    assert client.get("/service/catalog/import?kind=repair_code").status_code == 403
    assert client.get("/service/catalog/import?kind=part").status_code == 200
    assert client.get("/service/catalog/import?kind=nope").status_code == 404
    good = {"part_number": "NEW-1", "name_zh": "风扇", "name_en": "Fan",
            "product_line_id": world.line.id, "unit_price": "12.30", "is_returnable": "y",
            "is_active": "y"}
    for bad in ({"unit_price": "-1"}, {"unit_price": "NaN"}, {"unit_price": "1.234"},
                {"product_line_id": "987654"}, {"part_number": "bad number!"},
                {"part_number": "P1-RET"} if False else {"name_zh": ""}):
        response = client.post("/service/catalog/parts/new", data={**good, **bad})
        assert response.status_code == 200, bad
    assert client.post("/service/catalog/parts/new", data=good).status_code == 302
    assert client.post("/service/catalog/parts/new", data=good).status_code == 200  # taken
    sign_in(app.test_client(), world.user(Role.HQ_ADMIN))
    admin = app.test_client()
    sign_in(admin, world.user(Role.HQ_ADMIN))
    response = admin.post("/service/catalog/repair-codes/new", data={
        "product_line_id": world.line.id, "code": "X1", "description_zh": "检测",
        "description_en": "Check", "standard_hours": "0", "is_active": "y"})
    assert response.status_code == 302
    assert client.get("/service/catalog/repair-codes/?sort=-hours").status_code == 200


# --- constant query counts ---------------------------------------------------------------------

LISTS = ["/service/orders/", "/service/orders/?sort=-completed&status=completed",
         "/service/complaints/", "/service/revisits/", "/service/parts-requests/",
         "/service/stock/", "/service/returns/", "/service/returns/?overdue=1",
         "/service/catalog/parts/", "/service/catalog/repair-codes/",
         "/service/catalog/fault-codes/", "/service/orders/?q=WO-T&rework=0&warranty=in",
         "/service/orders/?type=carry_in&from=2020-01-01&sort=number&page=1",
         "/service/parts-requests/?status=open", "/service/complaints/?status=open"]


def _grow(app, world, n: int) -> None:
    with app.app_context(), unscoped("grow the data"):
        for agency in (world.a, world.b):
            f.give_stock(agency, f.catalog_of(world.line)["cheap"], 100)
            for _ in range(n):
                order = f.make_order(agency, world.line, completed=True)
                f.make_complaint(agency, order_number=order.number)
                f.make_request(agency, world.line, state="received")
                f.make_return(agency, world.line)
                from service import quality

                quality.record_revisit(order, 5, "好", acting_user=f.service_desk())
        db.session.commit()


@pytest.mark.parametrize("role", [Role.AGENCY_OWNER, Role.HQ_ADMIN, Role.REGIONAL_MANAGER])
def test_lists_run_a_constant_number_of_queries(app, client, world, setup, query_counter,
                                                role):
    sign_in(client, world.user(role))
    _grow(app, world, 1)
    few = {}
    for url in LISTS:
        with query_counter:
            assert client.get(url).status_code == 200, url
        few[url] = query_counter.count
    _grow(app, world, 4)
    for url in LISTS:
        with query_counter:
            assert client.get(url).status_code == 200
        assert query_counter.count == few[url], (url, few[url], query_counter.count)
    print({url: n for url, n in few.items()})


def test_home_widgets_run_a_constant_number_of_queries(app, world, setup, query_counter):
    from portal.tenancy import agency_scope, region_scope, scoped
    from service import widgets

    def counts():
        out = []
        with app.test_request_context():
            for scope, load, user in (
                    (agency_scope(world.a.id), widgets._agency, world.user(Role.AGENCY_OWNER)),
                    (region_scope(world.region1.id), widgets._network,
                     world.user(Role.REGIONAL_MANAGER)),
                    (None, widgets._network, world.user(Role.HQ_ADMIN))):
                with scoped(scope) if scope else unscoped("HQ"), query_counter:
                    figures = load(user)
                out.append(query_counter.count)
        return out, figures

    _grow(app, world, 1)
    few, _figures = counts()
    _grow(app, world, 3)
    many, figures = counts()
    assert few == many == [1, 6, 6]
    assert figures["totals"]["open_complaints"] == 8  # 4 per agency, both regions


def test_detail_pages_render_for_every_reader(app, client, world, setup):
    with app.app_context(), unscoped("rows"):
        ret = f.make_return(world.a, world.line)
        complaint = f.make_complaint(world.a)
        request = f.make_request(world.a, world.line, state="shipped")
        urls = [f"/service/orders/{ret.work_order_id}", f"/service/returns/{ret.id}",
                f"/service/complaints/{complaint.id}", f"/service/parts-requests/{request.id}"]
        db.session.commit()
    for role in (Role.AGENCY_OWNER, Role.HQ_PARTS, Role.HQ_SERVICE, Role.AUDITOR,
                 Role.REGIONAL_MANAGER):
        reader = app.test_client()
        sign_in(reader, world.user(role))
        for url in urls:
            assert reader.get(url).status_code == 200, (role, url)


def test_pages_speak_chinese(app, client, world, setup):
    user = world.user(Role.AGENCY_OWNER)
    sign_in(client, user)
    client.post("/locale", data={"locale": "zh_CN"})
    page = client.get("/service/orders/").get_data(as_text=True)
    assert "工单" in page
