"""Service pages as each reader sees them: masking, per-region figures, overdue lists, and bad
input on every form that changes something (a clear error, nothing written)."""
import io
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.clock import local_now, local_today
from portal.extensions import db
from portal.tenancy import region_scope, scoped, unscoped
from service import supply, widgets
from service.models import (
    Complaint,
    FaultCode,
    Part,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    PartStock,
    RepairCode,
    Revisit,
    WorkOrder,
)
from tests.factories import signed_in
from tests.service import factories as f

ZONE = ZoneInfo("Asia/Shanghai")
PHONE, NAME, ADDRESS = "13598761234", "欧阳娜娜", "徐汇区漕溪北路 18 号"


# --- masking -----------------------------------------------------------------------------------


@pytest.fixture
def order(app, world):
    with app.app_context(), unscoped("an order of A served by A's engineer account"):
        engineer = f.make_engineer(world.a, world.line, user=world.user(Role.ENGINEER))
        made = f.make_order(world.a, world.line, completed=True, engineer=engineer,
                            customer_name=NAME, customer_phone=PHONE,
                            customer_address=ADDRESS)
        db.session.commit()
        return {"id": made.id, "number": made.number, "serial": made.serial_number}


FULL = (Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.ENGINEER, Role.HQ_ADMIN, Role.HQ_SERVICE,
        Role.HQ_PARTS, Role.HQ_SETTLEMENT, Role.HQ_CERTIFIER, Role.AUDITOR)


@pytest.mark.parametrize("role", [*FULL, Role.REGIONAL_MANAGER])
def test_the_customer_is_shown_only_on_the_agencys_and_hqs_detail_pages(app, world, order,
                                                                        role):
    client = signed_in(app, world.user(role))
    detail = client.get(f"/service/orders/{order['id']}").get_data(as_text=True)
    if role in FULL:
        assert PHONE in detail and NAME in detail and ADDRESS in detail
    else:  # the regional manager oversees the agency: masked, no address
        assert PHONE not in detail and NAME not in detail and ADDRESS not in detail
        assert "135****1234" in detail and "欧**娜" in detail  # portal.masking: 欧阳娜娜 → 欧**娜
    for url in ("/service/orders/", f"/service/orders/?q={order['number']}",
                f"/service/orders/?q={order['serial']}", "/service/orders/export.csv",
                "/service/revisits/", "/service/returns/"):
        page = client.get(url).get_data(as_text=True)
        assert PHONE not in page and NAME not in page and ADDRESS not in page, url
    listing = client.get(f"/service/orders/?q={order['serial']}").get_data(as_text=True)
    assert "135****1234" in listing  # the search found it, masked


# --- HQ's figures per region -----------------------------------------------------------------


def test_the_network_card_lists_every_region_of_the_reader(app, world):
    with app.app_context(), unscoped("an open order in region 1 only"):
        f.make_order(world.a, world.line)
        db.session.commit()
    with app.test_request_context(), unscoped("HQ reads the network"):
        network = widgets._network(world.user(Role.HQ_ADMIN))
    assert {world.region1.id, world.region2.id} <= {r.id for r in network["regions"]}
    assert network["figures"]["open_orders"] == {world.region1.id: 1}
    with app.test_request_context(), scoped(region_scope(world.region1.id)):
        mine = widgets._network(world.user(Role.REGIONAL_MANAGER))
    assert [r.id for r in mine["regions"]] == [world.region1.id]
    assert mine["totals"]["open_orders"] == 1
    home = signed_in(app, world.user(Role.HQ_ADMIN)).get("/").get_data(as_text=True)
    assert world.region2.name_en in home  # a quiet region shows its zeros


# --- overdue returns on both sides -------------------------------------------------------------


def test_overdue_returns_are_listed_for_the_agency_and_for_hq(app, world):
    with app.app_context(), unscoped("returns of A and B, two of them late"):
        late_a, on_time_a, late_b = (f.make_return(world.a, world.line),
                                     f.make_return(world.a, world.line),
                                     f.make_return(world.b, world.line))
        for late in (late_a, late_b):
            late.due_on = local_today() - timedelta(days=2)
        numbers = {name: db.session.scalar(select(WorkOrder.number).where(
            WorkOrder.id == ret.work_order_id)) for name, ret in
            (("late_a", late_a), ("on_time_a", on_time_a), ("late_b", late_b))}
        db.session.commit()
    owner = signed_in(app, world.user(Role.AGENCY_OWNER))
    page = owner.get("/service/returns/?overdue=1").get_data(as_text=True)
    assert numbers["late_a"] in page and "Overdue" in page
    assert numbers["on_time_a"] not in page and numbers["late_b"] not in page
    home = owner.get("/").get_data(as_text=True)
    assert '<div class="value text-danger">1</div><div class="small text-muted">Overdue' in home
    desk = signed_in(app, world.user(Role.HQ_PARTS))
    page = desk.get("/service/returns/?overdue=1").get_data(as_text=True)
    assert numbers["late_a"] in page and numbers["late_b"] in page
    assert numbers["on_time_a"] not in page
    page = desk.get(f"/service/returns/?overdue=1&agency={world.b.id}").get_data(as_text=True)
    assert numbers["late_b"] in page and numbers["late_a"] not in page


# --- bad input on every form -------------------------------------------------------------------


@pytest.fixture
def objects(app, world):
    """One object in each state a form acts on, all of agency A."""
    with app.app_context(), unscoped("objects of every state"):
        completed = f.make_order(world.a, world.line, completed=True)
        opened = f.make_order(world.a, world.line)
        foreign = f.make_order(world.b, world.line)
        open_complaint = f.make_complaint(world.a)
        answered = f.make_complaint(world.a)
        from service import quality

        quality.respond_to_complaint(answered, "已处理", acting_user=f.staff(answered.agency))
        submitted = f.make_request(world.a, world.line, state="submitted")
        approved = f.make_request(world.a, world.line, state="approved")
        shipped = f.make_request(world.a, world.line, state="shipped")
        due = f.make_return(world.a, world.line)
        sent = f.make_return(world.a, world.line)
        supply.ship_return(sent, "顺丰", "SF0001", acting_user=f.staff(sent.agency))
        line_of = {r.id: supply._lines(r)[0].id for r in (submitted, shipped)}
        ids = {"completed": completed.id, "open": opened.id, "foreign_order": foreign.id,
               "complaint": open_complaint.id, "answered": answered.id,
               "submitted": submitted.id, "approved": approved.id, "shipped": shipped.id,
               "submitted_line": line_of[submitted.id], "shipped_line": line_of[shipped.id],
               "due": due.id, "sent": sent.id, "line": world.line.id, "a": world.a.id,
               "part": f.catalog_of(world.line)["part"].id,
               "future": (local_now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}
        db.session.commit()
    return ids


def _state(app) -> tuple:
    """Everything the forms below could change, as one comparable value."""
    with app.app_context(), unscoped("the test compares every agency's rows"):
        def rows(*columns):
            return sorted(tuple(r) for r in db.session.execute(select(*columns)).all())
        return (
            db.session.scalar(select(func.count(AuditEntry.id)).where(
                ~AuditEntry.action.like("auth.%"))),
            rows(WorkOrder.id, WorkOrder.status, WorkOrder.version),
            rows(Complaint.id, Complaint.status, Complaint.version),
            rows(Revisit.id, Revisit.score),
            rows(PartsRequest.id, PartsRequest.status, PartsRequest.version),
            rows(PartsRequestLine.id, PartsRequestLine.approved_quantity,
                 PartsRequestLine.received_quantity),
            rows(PartReturn.id, PartReturn.status, PartReturn.version),
            rows(PartStock.id, PartStock.quantity),
            rows(RepairCode.id, RepairCode.standard_hours), rows(FaultCode.id), rows(Part.id),
        )


FUTURE = "{future}"  # two days ahead on the network's wall clock, when the test runs
COMPLAINT = {"agency_code": "A-OWN", "order_number": "", "channel": "hotline",
             "severity": "major", "description": "上门迟到"}
REPAIR = {"product_line_id": "{line}", "code": "BAD-1", "description_zh": "检测",
          "description_en": "Check", "standard_hours": "1.00", "is_active": "y"}
SHIP = {"carrier": "顺丰", "tracking_number": "SF123"}

BAD = [
    # (role, url, data, message shown)
    (Role.HQ_SERVICE, "/service/complaints/new", {}, "This field is required."),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "agency_code": "NO-SUCH"},
     "No agency with this code."),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "agency_code": "A" * 17},
     "Field cannot be longer than 16 characters."),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "agency_code": "%_' OR 1=1"},
     "No agency with this code."),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "channel": "pigeon"},
     "Not a valid choice"),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "received_at": "yesterday"},
     "Not a valid datetime value"),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "received_at": FUTURE},
     "cannot be in the future"),
    (Role.HQ_SERVICE, "/service/complaints/new", {**COMPLAINT, "description": "x" * 4001},
     "Field cannot be longer than 4000 characters."),
    (Role.AGENCY_OWNER, "/service/complaints/{complaint}/respond", {"response": ""},
     "This field is required."),
    (Role.AGENCY_OWNER, "/service/complaints/{answered}/respond", {"response": "再答一次"},
     "already answered"),
    (Role.HQ_SERVICE, "/service/complaints/{answered}/verdict",
     {"verdict": "maybe", "verdict_note": "理由"}, "Not a valid choice"),
    (Role.HQ_SERVICE, "/service/complaints/{answered}/verdict",
     {"verdict": "substantiated", "verdict_note": ""}, "This field is required."),
    (Role.HQ_SERVICE, "/service/orders/{completed}/revisit", {"score": "abc"},
     "Invalid Choice: could not coerce."),
    (Role.HQ_SERVICE, "/service/orders/{completed}/revisit", {"score": "7"},
     "The score is a whole number from 1 to 5."),
    (Role.HQ_SERVICE, "/service/orders/{completed}/revisit", {"score": "-1"},
     "The score is a whole number from 1 to 5."),
    (Role.HQ_SERVICE, "/service/orders/{completed}/revisit",
     {"score": "5", "revisited_at": FUTURE}, "cannot be in the future"),
    (Role.HQ_SERVICE, "/service/orders/{open}/revisit", {"score": "5"},
     "Only completed orders are revisited."),
    (Role.AGENCY_OWNER, "/service/orders/{open}/cancel", {"reason": ""},
     "This field is required."),
    (Role.HQ_ADMIN, "/service/catalog/repair-codes/new", {}, "This field is required."),
    (Role.HQ_ADMIN, "/service/catalog/repair-codes/new", {**REPAIR, "standard_hours": "-1"},
     "standard hours between 0 and 100"),
    (Role.HQ_ADMIN, "/service/catalog/repair-codes/new", {**REPAIR, "standard_hours": "abc"},
     "Not a valid decimal value"),
    (Role.HQ_ADMIN, "/service/catalog/repair-codes/new",
     {**REPAIR, "product_line_id": "987654"}, "Choose a product line."),
    (Role.HQ_ADMIN, "/service/catalog/repair-codes/new", {**REPAIR, "code": "bad code!"},
     "Use up to 32 letters"),
    (Role.HQ_ADMIN, "/service/catalog/fault-codes/new",
     {**REPAIR, "description_en": ""}, "This field is required."),
    (Role.HQ_PARTS, "/service/parts-requests/{submitted}/decide",
     {"decision-{submitted_line}": "approved", "approved-{submitted_line}": "-1"},
     "The approved quantity must be between 1 and the 3 requested."),
    (Role.HQ_PARTS, "/service/parts-requests/{submitted}/decide",
     {"decision-{submitted_line}": "approved", "approved-{submitted_line}": "abc"},
     "The approved quantity must be between 1 and the 3 requested."),
    (Role.HQ_PARTS, "/service/parts-requests/{submitted}/decide",
     {"decision-{submitted_line}": "maybe"}, "Decide every line of the request."),
    (Role.HQ_PARTS, "/service/parts-requests/{submitted}/decide", {},
     "Decide every line of the request."),
    (Role.HQ_PARTS, "/service/parts-requests/{submitted}/ship", SHIP,
     "Only approved requests can be shipped."),
    (Role.HQ_PARTS, "/service/parts-requests/{approved}/ship", {**SHIP, "carrier": ""},
     "This field is required."),
    (Role.HQ_PARTS, "/service/parts-requests/{shipped}/ship", SHIP,
     "This request was already shipped."),
    (Role.AGENCY_OWNER, "/service/parts-requests/{approved}/receive",
     {"received-{submitted_line}": "3"}, "only after it was shipped"),
    (Role.AGENCY_OWNER, "/service/parts-requests/{shipped}/receive",
     {"received-{shipped_line}": "-1"}, "between 0 and the 3 shipped"),
    (Role.AGENCY_OWNER, "/service/parts-requests/{shipped}/receive",
     {"received-{shipped_line}": "4"}, "between 0 and the 3 shipped"),
    (Role.AGENCY_OWNER, "/service/parts-requests/{shipped}/receive", {},
     "between 0 and the 3 shipped"),
    (Role.AGENCY_OWNER, "/service/parts-requests/new",
     {"lines-0-part_id": "{part}", "lines-0-quantity": "1", "lines-0-reason": "work_order",
      "lines-0-work_order_id": "{foreign_order}"}, "needs one of your open orders"),
    (Role.AGENCY_OWNER, "/service/parts-requests/new",
     {"lines-0-part_id": "{part}", "lines-0-quantity": "0"}, "between 1 and"),
    (Role.AGENCY_OWNER, "/service/returns/{due}/ship", {**SHIP, "tracking_number": ""},
     "This field is required."),
    (Role.AGENCY_OWNER, "/service/returns/{sent}/ship", SHIP,
     "This part was already shipped back."),
    (Role.HQ_PARTS, "/service/returns/{sent}/inspect", {"result": "maybe"},
     "Not a valid choice"),
    (Role.HQ_PARTS, "/service/returns/{sent}/inspect", {"result": "rejected", "reason": "x"},
     "Give the reason for the rejection."),
    (Role.HQ_PARTS, "/service/returns/{due}/inspect", {"result": "accepted"},
     "Only parts shipped back and not yet inspected can be inspected."),
]


@pytest.mark.parametrize("role, url, data, message", BAD,
                         ids=[f"{r.value}:{u}:{i}" for i, (r, u, _d, _m) in enumerate(BAD)])
def test_bad_input_is_a_clear_error_and_writes_nothing(app, world, objects, role, url, data,
                                                       message):
    client = signed_in(app, world.user(role))
    url = url.format(**objects)
    data = {k.format(**objects): v.format(**objects) for k, v in data.items()}
    before = _state(app)
    response = client.post(url, data=data)
    assert response.status_code in (200, 422), (response.status_code, url)
    assert message in response.get_data(as_text=True), url
    assert _state(app) == before


@pytest.mark.parametrize("url, body, message", [
    ("/service/revisits/import", b"agency_code,order_number,score\nB-FOR,NOPE,5\n",
     "No order NOPE of agency B-FOR."),
    ("/service/revisits/import", b"agency_code,order_number,score\nA-OWN,{completed},9\n",
     "The score is a whole number from 1 to 5."),
    ("/service/revisits/import", b"agency_code,order_number\nA-OWN,X\n", "Columns missing"),
    ("/service/revisits/import", b"", "Choose a CSV or XLSX file."),
    ("/service/revisits/import", b"\xff\xfe\x00\x00garbage", "neither UTF-8 CSV"),
    ("/service/revisits/import", b"PK\x03\x04not a workbook", "not a readable XLSX"),
    ("/service/catalog/import?kind=part",
     b"part_number,name_zh,name_en,product_line,unit_price,returnable\nN-1,P,Pump,NOPE,-3,x\n",
     "unknown product line"),
])
def test_bad_import_files_write_nothing(app, world, objects, url, body, message):
    with app.app_context(), unscoped("the completed order's number"):
        number = db.session.scalar(select(WorkOrder.number).where(
            WorkOrder.id == objects["completed"]))
    body = body.replace(b"{completed}", number.encode())
    role = Role.HQ_SERVICE if "revisits" in url else Role.HQ_PARTS
    client = signed_in(app, world.user(role))
    before = _state(app)
    files = {"file": (io.BytesIO(body), "upload.csv")} if body else {}
    response = client.post(url, data=files, content_type="multipart/form-data")
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert _state(app) == before


def test_a_file_over_the_import_limit_is_refused_with_a_clear_error(app, world, objects,
                                                                    monkeypatch):
    client = signed_in(app, world.user(Role.AGENCY_OWNER))
    monkeypatch.setitem(app.config, "SERVICE_IMPORT_MAX_BYTES", 4096)
    body = b"order_number,service_type\n" + b"WO-1,onsite\n" * 1000
    before = _state(app)
    response = client.post("/service/orders/import", data={"file": (io.BytesIO(body), "big.csv")})
    assert response.status_code == 200
    assert "The file is larger than 4 KB." in response.get_data(as_text=True)
    assert _state(app) == before
    # Past the request limit the server refuses the upload itself, with its own page.
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 8192)
    response = client.post("/service/orders/import",
                           data={"file": (io.BytesIO(body * 2), "bigger.csv")})
    assert response.status_code == 413
    assert "The file is too large." in response.get_data(as_text=True)
    assert _state(app) == before


# --- the order list: filters, search, sorting, paging ------------------------------------------


def test_order_list_filters_search_sorts_and_pages(app, world, monkeypatch):
    with app.app_context(), unscoped("orders of every kind"):
        from tenants.models import AgencyProductLine

        other_line = f.make_product_line()
        db.session.add(AgencyProductLine(agency_id=world.a.id, product_line_id=other_line.id))
        db.session.flush()
        mine, theirs = (f.make_engineer(world.a, world.line, name="甲工程师"),
                        f.make_engineer(world.a, world.line, name="乙工程师"))
        made = {
            "onsite": f.make_order(world.a, world.line, number="F-ONSITE",
                                   service_type="onsite", received_at=f.ago(days=20)),
            "done": f.make_order(world.a, world.line, completed=True, engineer=mine,
                                 number="F-DONE", serial_number="SNFILTER1",
                                 received_at=f.ago(days=10)),
            "repeat": f.make_order(world.a, world.line, number="F-REPEAT",
                                   serial_number="SNFILTER1", received_at=f.ago(hours=12),
                                   engineer_id=theirs.id),
            "old": f.make_order(world.a, world.line, number="F-OLD", purchase_date=None,
                                received_at=f.ago(days=40)),
            "line": f.make_order(world.a, other_line, number="F-LINE",
                                 received_at=f.ago(days=5)),
        }
        db.session.commit()
        ids = {"mine": mine.id, "line": other_line.id}
        day = {k: o.received_at.astimezone(ZONE).date().isoformat() for k, o in made.items()}
    client = signed_in(app, world.user(Role.AGENCY_STAFF))

    def numbers(query: str) -> list[str]:
        page = client.get(f"/service/orders/?{query}").get_data(as_text=True)
        return re.findall(r">(F-[A-Z]+)</a>", page)

    everything = {"F-ONSITE", "F-DONE", "F-REPEAT", "F-OLD", "F-LINE"}
    assert set(numbers("")) == everything
    assert numbers("status=completed") == ["F-DONE"]
    assert numbers("type=onsite") == ["F-ONSITE"]
    assert numbers(f"line={ids['line']}") == ["F-LINE"]
    assert numbers(f"engineer={ids['mine']}") == ["F-DONE"]
    assert set(numbers(f"from={day['old']}&to={day['onsite']}")) == {"F-OLD", "F-ONSITE"}
    assert numbers("warranty=out") == ["F-OLD"]
    assert "F-OLD" not in numbers("warranty=in")
    assert numbers("rework=1") == ["F-REPEAT"]
    assert set(numbers("q=SNFILTER")) == {"F-DONE", "F-REPEAT"}
    assert numbers("q=F-LI") == ["F-LINE"]
    assert set(numbers("status=nonsense&type=%27;drop&line=abc&from=2026-13-99")) == everything
    assert numbers("sort=received") == ["F-OLD", "F-ONSITE", "F-DONE", "F-LINE", "F-REPEAT"]
    assert numbers("sort=-received") == ["F-REPEAT", "F-LINE", "F-DONE", "F-ONSITE", "F-OLD"]
    assert numbers("sort=number")[:2] == ["F-DONE", "F-LINE"]
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    pages = [numbers(f"sort=received&page={n}") for n in (1, 2, 3)]
    assert pages == [["F-OLD", "F-ONSITE"], ["F-DONE", "F-LINE"], ["F-REPEAT"]]
