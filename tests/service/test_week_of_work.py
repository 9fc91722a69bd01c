"""A week of an agency's real work and HQ's answers, through the pages, in both languages.

The owner of agency A creates orders by form and imports them from the CSV and XLSX templates,
requests parts, receives them (one line short), uses them on orders, ships the defective
parts back; HQ maintains the catalogs, decides and ships the request (one line partly, one
rejected), inspects the returns (one accepted, one rejected), records a revisit and a
complaint and gives its verdict after the owner answered. Every page on the way is read in
Chinese and in English, every change leaves exactly one audit entry.
"""
import csv
import io
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service import imports
from service.models import (
    Complaint,
    Part,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    PartStock,
    RepairCode,
    Revisit,
    WorkOrder,
    mask_name,
    mask_phone,
)
from tests.factories import sign_in
from tests.service import factories as f

ZONE = ZoneInfo("Asia/Shanghai")
CJK = re.compile(r"[\u3400-\u9fff]")
# Words of the page chrome a Chinese page may hold: the language switch, file formats, units.
# Words a Chinese page may show: names, formats, and the codes an import file holds (the
# import page's example column: service type "onsite", revisit channel "phone").
LATIN_ALLOWED = {"English", "CSV", "XLSX", "km", "SN", "onsite", "phone"}


def form_time(moment) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def file_time(moment) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def visible_text(html: str) -> str:
    """What a reader sees or hears: text, option labels, placeholders, titles, button values."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    spoken = re.findall(r'(?:placeholder|title|aria-label|data-confirm|alt)="([^"]*)"', html)
    text = re.sub(r"<[^>]+>", " ", html)
    return " ".join([text, *spoken]).replace("&#39;", "'").replace("&amp;", "&")


class Week:
    """The world of the week: users' clients, the data they typed, the audit trail."""

    def __init__(self, app, world):
        self.app, self.world = app, world
        self.clients = {}
        self.data: set[str] = set()  # every text a user typed or the fixtures hold
        self.seen_audit = 0
        for user in [*world.users.values(), *world.b_users.values(), *world.a2_users.values()]:
            self.data.update({user.name, user.email})
        for agency in (world.a, world.a2, world.b):
            self.data.update({agency.legal_name, agency.city, agency.address, agency.code,
                              agency.contact_name})
        for region in (world.region1, world.region2):
            self.data.update({region.name_zh, region.name_en, region.code})
        line = world.line
        self.data.update({line.name_zh, line.name_en, line.code})
        # The import pages show example cells (a Chinese and an English name side by side).
        for columns in (imports.ORDER_COLUMNS, imports.REVISIT_COLUMNS,
                        *imports.CATALOG_COLUMNS.values()):
            self.data.update(c.example for c in columns if c.example)

    def client(self, role: Role):
        if role not in self.clients:
            client = self.app.test_client()
            sign_in(client, self.world.user(role))
            self.clients[role] = client
        return self.clients[role]

    def typed(self, *values) -> None:
        """Remember text users entered (and its masked form), to tell it from the chrome.

        Choice values (``onsite``, ``yes``) and short flags are no text anyone typed.
        """
        for value in map(str, values):
            if (value.isascii() and len(value) < 4) or re.fullmatch(r"[a-z_]+", value):
                continue
            self.data.add(value)
            if CJK.search(value) or value.isdigit():
                self.data.update({mask_name(value), mask_phone(value)})

    def _without_data(self, text: str) -> str:
        for value in sorted(self.data, key=len, reverse=True):
            text = text.replace(value, " ")
        return re.sub(r"\S+@\S+", " ", text)

    def read(self, role: Role, url: str, zh: tuple[str, ...], en: tuple[str, ...]) -> str:
        """Read `url` as `role` in Chinese, then in English; returns the English page."""
        client = self.client(role)
        client.get(url)  # as the browser followed the last redirect: its flash is read here
        pages = {}
        for locale, words in (("zh_CN", zh), ("en", en)):
            client.post("/locale", data={"locale": locale})
            response = client.get(url)
            assert response.status_code == 200, (role, url, locale, response.status_code)
            page = response.get_data(as_text=True)
            for word in words:
                assert word in page, (url, locale, word)
            rest = self._without_data(visible_text(page))
            if locale == "zh_CN":
                latin = set(re.findall(r"\b[A-Za-z][a-z]{2,}\b", rest)) - LATIN_ALLOWED
                assert not latin, (url, "untranslated in zh_CN", sorted(latin))
            else:
                assert not CJK.findall(rest.replace("中文", "")), (
                    url, "Chinese left in the English page", sorted(set(CJK.findall(rest))))
            pages[locale] = page
        return pages["en"]

    def audit(self, *actions: str) -> None:
        """The changes since the last call wrote exactly these audit entries, in this order."""
        with self.app.app_context(), unscoped("the test reads the audit log"):
            rows = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        new = [r for r in rows[self.seen_audit:]
               if not r.action.startswith(("auth.", "user.locale_changed"))]
        self.seen_audit = len(rows)
        assert [r.action for r in new] == list(actions), [r.action for r in new]

    def one(self, stmt):
        with self.app.app_context(), unscoped("the test checks what was written"):
            return db.session.execute(stmt).one()

    def scalar(self, stmt):
        with self.app.app_context(), unscoped("the test checks what was written"):
            return db.session.scalar(stmt)

    def rows(self, stmt) -> list[tuple]:
        with self.app.app_context(), unscoped("the test checks what was written"):
            return [tuple(r) for r in db.session.execute(stmt).all()]

    def all(self, stmt):
        with self.app.app_context(), unscoped("the test checks what was written"):
            return list(db.session.scalars(stmt))


def redirect_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def upload(content: bytes, name: str) -> dict:
    return {"file": (io.BytesIO(content), name)}


@pytest.fixture
def week(app, world):
    with app.app_context(), unscoped("the agency's engineer and its certificate"):
        engineer = f.make_engineer(world.a, world.line, user=world.user(Role.ENGINEER),
                                   name="冯工程师")
        f.certify(engineer, world.line, f.today() - timedelta(days=400),
                  f.today() + timedelta(days=300))
        model = f.model_of(world.line)
        db.session.commit()
        ids = {"engineer": engineer.id, "model": model.id}
        names = (model.code, model.name, engineer.name)
    w = Week(app, world)
    w.ids = ids
    w.typed(*names)
    w.audit()  # start the trail after the fixtures
    return w


def test_an_agency_runs_a_week_and_hq_answers_every_request(week):
    w, world = week, week.world
    catalog = hq_maintains_the_catalogs(w, world)
    orders = owner_creates_and_imports_orders(w, world, catalog)
    request_id = owner_requests_parts(w, catalog, orders)
    parts_desk_decides_and_ships(w, request_id)
    owner_receives_with_a_discrepancy(w, catalog, request_id)
    returns = owner_uses_the_parts_and_completes(w, catalog, orders)
    returns_go_back_and_are_inspected(w, returns)
    hq_revisits_and_judges_a_complaint(w, world, orders)
    dashboards_show_the_week(w, world)


# --- Monday: HQ's catalogs ---------------------------------------------------------------------


def hq_maintains_the_catalogs(w: Week, world) -> dict:
    admin = w.client(Role.HQ_ADMIN)
    w.read(Role.HQ_ADMIN, "/service/catalog/repair-codes/new", ("标准工时",), ("Standard hours",))
    repair = {"product_line_id": world.line.id, "code": "WK-R1",
              "description_zh": "更换压缩机", "description_en": "Replace compressor",
              "standard_hours": "2.50", "is_active": "y"}
    assert admin.post("/service/catalog/repair-codes/new", data=repair).status_code == 302
    w.typed(*repair.values())
    w.audit("repair_code.created")
    fault = {"product_line_id": world.line.id, "code": "WK-F1", "description_zh": "不制冷",
             "description_en": "Not cooling", "is_active": "y"}
    assert admin.post("/service/catalog/fault-codes/new", data=fault).status_code == 302
    w.typed(*fault.values())
    w.audit("fault_code.created")
    w.read(Role.HQ_ADMIN, "/service/catalog/repair-codes/", ("维修代码",), ("Repair codes",))

    # The parts desk imports the parts catalog from the CSV template, twice: same result.
    w.read(Role.HQ_PARTS, "/service/catalog/import?kind=part", ("备件编号",), ("Part number",))
    desk = w.client(Role.HQ_PARTS)
    template = desk.get("/service/catalog/import/template?kind=part&format=csv")
    header = next(csv.reader(io.StringIO(template.get_data(as_text=True).lstrip("\ufeff"))))
    assert header[0] == "Part number"  # the desk reads English just now
    rows = [["WK-P1", "压缩机", "Compressor", world.line.code, "320.00", "yes", "yes"],
            ["WK-P2", "温控器", "Thermostat", world.line.code, "12.50", "no", "yes"]]
    for row in rows:
        w.typed(*row)
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    body = out.getvalue().encode("utf-8")
    response = desk.post("/service/catalog/import?kind=part", data=upload(body, "parts.csv"))
    assert response.status_code == 200 and "2 created" in response.get_data(as_text=True)
    w.audit("part.imported")
    response = desk.post("/service/catalog/import?kind=part", data=upload(body, "parts.csv"))
    assert "0 created, 0 updated, 2 skipped" in response.get_data(as_text=True)
    w.audit()
    w.read(Role.HQ_PARTS, "/service/catalog/parts/", ("备件目录", "压缩机"),
           ("Parts catalog", "Compressor"))
    parts = dict(w.rows(select(Part.part_number, Part.id)))
    return {"repair": w.scalar(select(RepairCode.id).where(RepairCode.code == "WK-R1")),
            "returnable": parts["WK-P1"], "plain": parts["WK-P2"]}


# --- Monday to Wednesday: orders by form, CSV and XLSX ------------------------------------------


def owner_creates_and_imports_orders(w: Week, world, catalog: dict) -> dict:
    owner = w.client(Role.AGENCY_OWNER)
    w.read(Role.AGENCY_OWNER, "/", ("服务工单",), ("Open orders",))
    w.read(Role.AGENCY_OWNER, "/service/orders/new", ("新建工单", "受理"),
           ("New work order", "Received"))
    received = f.now() - timedelta(days=4)
    form = {"number": "", "service_type": "onsite", "customer_name": "王秀英",
            "customer_phone": "13711112222", "customer_address": "浦东新区张江路 88 号",
            "product_model_id": w.ids["model"], "serial_number": "SNWEEK0001",
            "purchase_date": (received - timedelta(days=200)).date().isoformat(),
            "received_at": form_time(received),
            "responded_at": form_time(received + timedelta(minutes=40)),
            "engineer_id": w.ids["engineer"], "fault_code_id": "0",
            "fault_description": "空调不制冷", "is_first_time_fix": "y"}
    w.typed("王秀英", "13711112222", "浦东新区张江路 88 号", "SNWEEK0001", "空调不制冷")
    # A time typed in the wrong order is refused and nothing is written.
    bad = {**form, "responded_at": form_time(received - timedelta(hours=1))}
    response = owner.post("/service/orders/new", data=bad)
    assert response.status_code == 200 and "cannot be before" in response.get_data(as_text=True)
    w.audit()
    onsite = redirect_id(owner.post("/service/orders/new", data=form))
    w.audit("work_order.created")
    page = w.read(Role.AGENCY_OWNER, f"/service/orders/{onsite}", ("工单", "保内"),
                  ("Timeline", "In warranty"))
    assert "王秀英" in page and "13711112222" in page  # the owner's own detail page

    # The call center's export: the CSV template in English, the XLSX one in Chinese.
    w.read(Role.AGENCY_OWNER, "/service/orders/import", ("导入工单",), ("Import work orders",))
    template = owner.get("/service/orders/import/template?format=csv")
    header = next(csv.reader(io.StringIO(template.get_data(as_text=True).lstrip("\ufeff"))))
    keys = [c.key for c in imports.ORDER_COLUMNS]
    assert header[0] == "Order number" and len(header) == len(keys)
    model_code = model_code_of(w)
    first = f.now() - timedelta(days=6)
    csv_rows = [
        {"order_number": "CC-0601", "service_type": "送修", "customer_name": "李建国",
         "customer_phone": "13900001111", "product_model": model_code,
         "serial_number": "SNWEEK0002",
         "purchase_date": (first - timedelta(days=100)).date().isoformat(),
         "received_at": file_time(first), "responded_at": file_time(first + timedelta(hours=1)),
         "completed_at": file_time(first + timedelta(days=1)), "engineer": "冯工程师",
         "fault_code": "WK-F1", "repair_codes": "WK-R1", "resolution": "更换压缩机后正常",
         "first_time_fix": "是"},
        {"order_number": "CC-0602", "service_type": "carry_in", "customer_name": "陈丽",
         "customer_phone": "13900002222", "product_model": model_code,
         "serial_number": "SNWEEK0003",
         "purchase_date": (first - timedelta(days=30)).date().isoformat(),
         "received_at": file_time(first + timedelta(hours=3)), "fault_description": "异响"},
    ]
    for row in csv_rows:
        w.typed(*row.values())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in csv_rows:
        writer.writerow([row.get(k, "") for k in keys])
    body = out.getvalue().encode("utf-8-sig")
    response = owner.post("/service/orders/import", data=upload(body, "call-center.csv"))
    assert response.status_code == 200 and "2 created" in response.get_data(as_text=True)
    w.audit("work_order.imported")
    # The same file again: nothing new.
    response = owner.post("/service/orders/import", data=upload(body, "call-center.csv"))
    assert "0 created, 0 updated, 2 skipped" in response.get_data(as_text=True)
    w.audit()

    owner.post("/locale", data={"locale": "zh_CN"})
    book = load_workbook(io.BytesIO(owner.get("/service/orders/import/template?format=xlsx")
                                    .data))
    sheet = book.active
    assert [c.value for c in sheet[1]][0] == "工单号"
    later = f.now() - timedelta(days=2)
    xlsx_rows = [
        # The same product again 3 days after CC-0601 was completed: a rework.
        {"order_number": "CC-0701", "service_type": "送修", "customer_name": "李建国",
         "customer_phone": "13900001111", "product_model": model_code,
         "serial_number": "SNWEEK0002",
         "purchase_date": (first - timedelta(days=100)).date().isoformat(),
         "received_at": file_time(later), "fault_description": "又不制冷"},
        {"order_number": "CC-0702", "service_type": "电话咨询", "customer_name": "周明",
         "customer_phone": "13900003333", "product_model": model_code,
         "serial_number": "SNWEEK0004", "received_at": file_time(later + timedelta(hours=1)),
         "responded_at": file_time(later + timedelta(hours=1, minutes=5)),
         "completed_at": file_time(later + timedelta(hours=1, minutes=20)),
         "engineer": "冯工程师", "resolution": "指导用户重置遥控器"},
    ]
    for row in xlsx_rows:
        w.typed(*row.values())
        sheet.append([row.get(k, "") for k in keys])
    stream = io.BytesIO()
    book.save(stream)
    response = owner.post("/service/orders/import", data=upload(stream.getvalue(),
                                                                "呼叫中心.xlsx"))
    assert response.status_code == 200 and "已写入" in response.get_data(as_text=True)
    w.audit("work_order.imported")
    numbers = dict(w.rows(select(WorkOrder.number, WorkOrder.id)))
    rework = w.one(select(WorkOrder.is_rework, WorkOrder.rework_of_id)
                   .where(WorkOrder.id == numbers["CC-0701"]))
    assert tuple(rework) == (True, numbers["CC-0601"])
    w.read(Role.AGENCY_OWNER, f"/service/orders/{numbers['CC-0701']}",
           ("返修", "CC-0601"), ("Repeats order", "CC-0601"))
    listing = w.read(Role.AGENCY_OWNER, "/service/orders/?rework=1", ("返修",), ("Rework",))
    assert "CC-0701" in listing and "CC-0601" not in listing
    listing = w.read(Role.AGENCY_OWNER, "/service/orders/?q=SNWEEK0002&sort=received",
                     ("工单",), ("Work orders",))
    assert listing.index("CC-0601") < listing.index("CC-0701")
    assert "李建国" not in listing and "139****1111" in listing  # masked in lists
    return {"onsite": onsite, **numbers}


def model_code_of(w: Week) -> str:
    from tenants.models import ProductModel

    return w.scalar(select(ProductModel.code).where(ProductModel.id == w.ids["model"]))


# --- Wednesday: parts ---------------------------------------------------------------------------


def owner_requests_parts(w: Week, catalog: dict, orders: dict) -> int:
    owner = w.client(Role.AGENCY_OWNER)
    w.read(Role.AGENCY_OWNER, "/service/parts-requests/new", ("新建备件申请",),
           ("New parts request",))
    lines = {"lines-0-part_id": catalog["returnable"], "lines-0-quantity": "3",
             "lines-0-reason": "work_order", "lines-0-work_order_id": orders["onsite"],
             "lines-1-part_id": catalog["plain"], "lines-1-quantity": "5",
             "lines-1-reason": "stock", "lines-1-work_order_id": "0",
             "lines-2-part_id": catalog["returnable"], "lines-2-quantity": "2",
             "lines-2-reason": "stock", "lines-2-work_order_id": "0",
             "note": "本周备货"}
    w.typed("本周备货")
    # A negative quantity is refused, nothing written.
    response = owner.post("/service/parts-requests/new",
                          data={**lines, "lines-1-quantity": "-5"})
    assert response.status_code == 200 and w.scalar(select(PartsRequest.id)) is None
    request_id = redirect_id(owner.post("/service/parts-requests/new", data=lines))
    w.audit("parts_request.submitted")
    w.read(Role.AGENCY_OWNER, f"/service/parts-requests/{request_id}", ("已提交",),
           ("Submitted",))
    return request_id


def parts_desk_decides_and_ships(w: Week, request_id: int) -> None:
    desk = w.client(Role.HQ_PARTS)
    listing = w.read(Role.HQ_PARTS, "/service/parts-requests/?status=submitted",
                     ("备件申请",), ("Parts requests",))
    number = w.scalar(select(PartsRequest.number).where(PartsRequest.id == request_id))
    assert number in listing
    w.read(Role.HQ_PARTS, f"/service/parts-requests/{request_id}", ("批准", "驳回"),
           ("Approve", "Reject"))
    line_ids = w.all(select(PartsRequestLine.id).where(
        PartsRequestLine.request_id == request_id).order_by(PartsRequestLine.id))
    first, second, third = line_ids
    decision = {f"decision-{first}": "approved", f"approved-{first}": "2",
                f"decision-{second}": "approved", f"approved-{second}": "5",
                f"decision-{third}": "rejected", f"reason-{third}": "总部库存不足，下周补发"}
    w.typed("总部库存不足，下周补发")
    # More than requested, or a rejection without a reason: refused, nothing written.
    for bad in ({f"approved-{first}": "4"}, {f"reason-{third}": ""}):
        response = desk.post(f"/service/parts-requests/{request_id}/decide",
                             data={**decision, **bad})
        assert response.status_code == 422
    w.audit()
    response = desk.post(f"/service/parts-requests/{request_id}/decide", data=decision)
    assert response.status_code == 302
    w.audit("parts_request.decided")
    ship = {"carrier": "顺丰速运", "tracking_number": "SF1400000001"}
    w.typed(*ship.values())
    assert desk.post(f"/service/parts-requests/{request_id}/ship", data=ship).status_code == 302
    w.audit("parts_request.shipped")
    again = desk.post(f"/service/parts-requests/{request_id}/ship",
                      data={**ship, "tracking_number": "SF1400000002"})
    assert again.status_code == 422
    w.audit()
    page = w.read(Role.HQ_PARTS, f"/service/parts-requests/{request_id}",
                  ("已发货", "SF1400000001"), ("Shipped", "SF1400000001"))
    assert "SF1400000002" not in page


def owner_receives_with_a_discrepancy(w: Week, catalog: dict, request_id: int) -> None:
    owner = w.client(Role.AGENCY_OWNER)
    w.read(Role.AGENCY_OWNER, f"/service/parts-requests/{request_id}", ("确认收货",),
           ("Confirm receipt",))
    first, second, _third = w.all(select(PartsRequestLine.id).where(
        PartsRequestLine.request_id == request_id).order_by(PartsRequestLine.id))
    receipt = {f"received-{first}": "2", f"received-{second}": "4",
               f"note-{second}": "少到 1 个温控器"}
    w.typed("少到 1 个温控器")
    # A short line without a note is refused.
    response = owner.post(f"/service/parts-requests/{request_id}/receive",
                          data={**receipt, f"note-{second}": ""})
    assert response.status_code == 422
    w.audit()
    response = owner.post(f"/service/parts-requests/{request_id}/receive", data=receipt)
    assert response.status_code == 302
    w.audit("parts_request.received")
    page = w.read(Role.AGENCY_OWNER, f"/service/parts-requests/{request_id}", ("差异",),
                  ("Discrepancy",))
    assert "少到 1 个温控器" in page
    stock = w.read(Role.AGENCY_OWNER, "/service/stock/", ("备件库存",), ("Parts stock",))
    assert "WK-P1" in stock and "WK-P2" in stock
    held = dict(w.rows(select(PartStock.part_id, PartStock.quantity)))
    assert held == {catalog["returnable"]: 2, catalog["plain"]: 4}


# --- Thursday: the parts go into orders ---------------------------------------------------------


def owner_uses_the_parts_and_completes(w: Week, catalog: dict, orders: dict) -> list[int]:
    owner = w.client(Role.AGENCY_OWNER)
    onsite = orders["onsite"]
    w.read(Role.AGENCY_OWNER, f"/service/orders/{onsite}/edit", ("使用备件",),
           ("Parts used",))
    received = f.now() - timedelta(days=4)
    done = {"number": "", "service_type": "onsite", "customer_name": "王秀英",
            "customer_phone": "13711112222", "customer_address": "浦东新区张江路 88 号",
            "product_model_id": w.ids["model"], "serial_number": "SNWEEK0001",
            "purchase_date": (received - timedelta(days=200)).date().isoformat(),
            "received_at": form_time(received),
            "responded_at": form_time(received + timedelta(minutes=40)),
            "arrived_at": form_time(received + timedelta(hours=5)), "distance_km": "18.6",
            "completed_at": form_time(received + timedelta(hours=7)),
            "engineer_id": w.ids["engineer"], "fault_code_id": "0",
            "fault_description": "空调不制冷", "repair_code_ids": [str(catalog["repair"])],
            "resolution": "更换压缩机，加注冷媒", "is_first_time_fix": "y",
            "parts-0-part_id": catalog["returnable"], "parts-0-quantity": "1",
            "parts-1-part_id": catalog["plain"], "parts-1-quantity": "2"}
    w.typed("更换压缩机，加注冷媒")
    # More than the stock holds: refused, nothing taken.
    response = owner.post(f"/service/orders/{onsite}/edit",
                          data={**done, "parts-0-quantity": "3"})
    assert response.status_code == 200 and "in your stock" in response.get_data(as_text=True)
    w.audit()
    assert redirect_id(owner.post(f"/service/orders/{onsite}/edit", data=done)) == onsite
    w.audit("work_order.completed")

    # The open imported carry-in order is repaired with the second compressor.
    repair = orders["CC-0602"]
    first = f.now() - timedelta(days=6)
    carry_in = {"number": "CC-0602", "service_type": "carry_in", "customer_name": "陈丽",
                "customer_phone": "13900002222", "customer_address": "",
                "product_model_id": w.ids["model"], "serial_number": "SNWEEK0003",
                "purchase_date": (first - timedelta(days=30)).date().isoformat(),
                "received_at": form_time(first + timedelta(hours=3)),
                "responded_at": form_time(first + timedelta(hours=4)),
                "completed_at": form_time(f.now() - timedelta(days=1)),
                "engineer_id": w.ids["engineer"], "fault_code_id": "0",
                "fault_description": "异响", "repair_code_ids": [str(catalog["repair"])],
                "resolution": "更换压缩机", "is_first_time_fix": "",
                "parts-0-part_id": catalog["returnable"], "parts-0-quantity": "1"}
    assert redirect_id(owner.post(f"/service/orders/{repair}/edit", data=carry_in)) == repair
    w.audit("work_order.completed")
    held = dict(w.rows(select(PartStock.part_id, PartStock.quantity)))
    assert held == {catalog["returnable"]: 0, catalog["plain"]: 2}
    page = w.read(Role.AGENCY_OWNER, f"/service/orders/{onsite}", ("旧件返还", "完工"),
                  ("Defective-part returns", "Completed"))
    assert "WK-P1" in page
    returns = w.all(select(PartReturn.id).order_by(PartReturn.id))
    assert len(returns) == 2  # one per compressor; the thermostat is not returnable
    return returns


# --- Friday: the defective parts go back ------------------------------------------------------


def returns_go_back_and_are_inspected(w: Week, returns: list[int]) -> None:
    owner, desk = w.client(Role.AGENCY_OWNER), w.client(Role.HQ_PARTS)
    listing = w.read(Role.AGENCY_OWNER, "/service/returns/", ("旧件返还", "待返还"),
                     ("Defective-part returns", "To be returned"))
    assert listing.count("WK-P1") == 2
    for n, return_id in enumerate(returns, start=1):
        w.read(Role.AGENCY_OWNER, f"/service/returns/{return_id}", ("寄回",),
               ("Ship the defective part back to HQ",))
        tracking = f"YT98000{n}"
        w.typed(tracking)
        response = owner.post(f"/service/returns/{return_id}/ship",
                              data={"carrier": "圆通", "tracking_number": tracking})
        assert response.status_code == 302
        w.audit("part_return.shipped")
    w.typed("圆通")
    listing = w.read(Role.HQ_PARTS, "/service/returns/?status=shipped", ("旧件返还",),
                     ("Defective-part returns",))
    assert listing.count("WK-P1") == 2  # HQ sees both parts on their way
    accepted, rejected = returns
    w.read(Role.HQ_PARTS, f"/service/returns/{accepted}", ("检验",), ("Receive and inspect",))
    response = desk.post(f"/service/returns/{accepted}/inspect", data={"result": "accepted"})
    assert response.status_code == 302
    w.audit("part_return.inspected")
    response = desk.post(f"/service/returns/{rejected}/inspect",
                         data={"result": "rejected", "reason": ""})
    assert response.status_code == 422
    w.audit()
    w.typed("非原装件，序列号不符")
    response = desk.post(f"/service/returns/{rejected}/inspect",
                         data={"result": "rejected", "reason": "非原装件，序列号不符"})
    assert response.status_code == 302
    w.audit("part_return.inspected")
    statuses = w.all(select(PartReturn.status).order_by(PartReturn.id))
    assert statuses == ["accepted", "rejected"]
    page = w.read(Role.AGENCY_OWNER, f"/service/returns/{rejected}", ("已驳回",),
                  ("Rejected",))
    assert "非原装件，序列号不符" in page
    overdue = w.read(Role.HQ_PARTS, "/service/returns/?overdue=1", ("旧件返还",),
                     ("No returns match these filters.",))
    assert "WK-P1" not in overdue  # shipped on time


# --- HQ service quality -------------------------------------------------------------------------


def hq_revisits_and_judges_a_complaint(w: Week, world, orders: dict) -> None:
    hq, owner = w.client(Role.HQ_SERVICE), w.client(Role.AGENCY_OWNER)
    onsite = orders["onsite"]
    page = w.read(Role.HQ_SERVICE, f"/service/orders/{onsite}", ("客户回访",),
                  ("Customer revisit",))
    assert "13711112222" in page  # HQ's detail page shows the customer
    manager = w.read(Role.REGIONAL_MANAGER, f"/service/orders/{onsite}", ("客户",),
                     ("Customer",))
    assert "13711112222" not in manager and "137****2222" in manager
    assert "王秀英" not in manager and "张江路" not in manager
    response = hq.post(f"/service/orders/{onsite}/revisit", data={"score": "0"})
    assert response.status_code == 422
    w.audit()
    w.typed("师傅很专业")
    response = hq.post(f"/service/orders/{onsite}/revisit",
                       data={"score": "4", "comment": "师傅很专业"})
    assert response.status_code == 302
    w.audit("revisit.recorded")
    # The call center's scores of the other completed orders come as a file.
    w.read(Role.HQ_SERVICE, "/service/revisits/import", ("导入回访记录",), ("Import revisits",))
    body = ("agency_code,order_number,score,comment\n"
            f"{world.a.code},CC-0601,5,满意\n{world.a.code},CC-0702,3,等待较久\n").encode()
    w.typed("满意", "等待较久")
    response = hq.post("/service/revisits/import", data=upload(body, "revisits.csv"))
    assert "2 created" in response.get_data(as_text=True)
    w.audit("revisit.imported")
    revisits = w.read(Role.AGENCY_OWNER, "/service/revisits/", ("客户回访",),
                      ("Customer revisits",))
    assert "师傅很专业" in revisits and "等待较久" in revisits  # the agency sees its scores
    assert w.scalar(select(Revisit.score).where(Revisit.work_order_id == onsite)) == 4

    w.read(Role.HQ_SERVICE, "/service/complaints/new", ("登记投诉",), ("Record a complaint",))
    complaint = {"agency_code": world.a.code, "order_number": "CC-0701", "channel": "hotline",
                 "severity": "major", "description": "同一台空调一周内两次报修，客户不满"}
    w.typed(complaint["description"])
    complaint_id = redirect_id(hq.post("/service/complaints/new", data=complaint))
    w.audit("complaint.recorded")
    home = w.read(Role.AGENCY_OWNER, "/", ("投诉",),
                  ("Complaints to answer",))
    assert re.search(r'<div class="value text-danger">1</div>\s*<div class="small text-muted">'
                     r"Complaints to answer", home)
    w.read(Role.AGENCY_OWNER, f"/service/complaints/{complaint_id}", ("答复",),
           ("Send response",))
    w.typed("已上门致歉并免费复修")
    response = owner.post(f"/service/complaints/{complaint_id}/respond",
                          data={"response": "已上门致歉并免费复修"})
    assert response.status_code == 302
    w.audit("complaint.responded")
    assert owner.post(f"/service/complaints/{complaint_id}/respond",
                      data={"response": "再次答复"}).status_code == 422
    w.audit()
    w.read(Role.HQ_SERVICE, f"/service/complaints/{complaint_id}", ("判定结果",), ("Verdict",))
    w.typed("返修属实")
    response = hq.post(f"/service/complaints/{complaint_id}/verdict",
                       data={"verdict": "substantiated", "verdict_note": "返修属实"})
    assert response.status_code == 302
    w.audit("complaint.closed")
    received, responded, closed = w.one(select(Complaint.received_at, Complaint.responded_at,
                                               Complaint.closed_at))
    assert received <= responded <= closed
    w.read(Role.AGENCY_OWNER, f"/service/complaints/{complaint_id}", ("投诉成立",),
           ("Substantiated",))


def dashboards_show_the_week(w: Week, world) -> None:
    home = w.read(Role.AGENCY_OWNER, "/", ("工单",),
                  ("Open orders",))
    figures = re.findall(r'<div class="value[^"]*">(\d+)</div>', home)
    # Open: CC-0701 (the rework); no overdue returns, no open requests, no complaint waiting.
    assert figures[:4] == ["1", "0", "0", "0"], figures
    hq = w.read(Role.HQ_ADMIN, "/", ("大区",), ("Region",))
    assert world.region1.name_en in hq and world.region2.name_en in hq
    orders = w.read(Role.HQ_SERVICE, "/service/orders/?q=CC-07", ("工单",), ("Work orders",))
    assert "CC-0701" in orders and "李建国" not in orders
    export = w.client(Role.HQ_SERVICE).get("/service/orders/export.csv").get_data(as_text=True)
    assert "CC-0601" in export and "13900001111" not in export and "139****1111" in export
