"""Order entry (#16): choices that follow the product line (with and without htmx), defaults,
required marks, bad combinations refused, and parts requested from an order's page."""
import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service import catalog
from service.models import Part, PartsRequest, PartsRequestLine, RepairCode, WorkOrder
from tenants.models import Agency, AgencyProductLine, ProductModel
from tests.factories import make_product_line, sign_in
from tests.service import factories as f
from tests.service.test_views import local, order_form

HTMX = {"HX-Request": "true"}
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def lines(app, world):
    """A services lines 1 and 2 (each with its catalog); line 3 is B's only."""
    with app.app_context(), unscoped("test data"):
        line2, line3 = make_product_line(), make_product_line()
        db.session.add(AgencyProductLine(agency_id=world.a.id, product_line_id=line2.id))
        db.session.add(AgencyProductLine(agency_id=world.b.id, product_line_id=line3.id))
        db.session.flush()
        one, two, three = (f.catalog_of(x) for x in (world.line, line2, line3))
        for codes in (one, two):
            f.give_stock(world.a, codes["cheap"], 20)
        engineer = f.make_engineer(world.a, world.line, name="冯工程师")
        ids = {"line1": world.line.id, "line2": line2.id, "line3": line3.id,
               "model1": f.model_of(world.line).id, "model2": f.model_of(line2).id,
               "model3": f.model_of(line3).id, "engineer": engineer.id}
        for n, codes in (("1", one), ("2", two), ("3", three)):
            ids.update({f"repair{n}": codes["repair"].id, f"repair{n}b": codes["repair2"].id,
                        f"fault{n}": codes["fault"].id, f"part{n}": codes["cheap"].id,
                        f"code{n}": codes["repair"].code, f"fault_code{n}": codes["fault"].code,
                        f"part_number{n}": codes["cheap"].part_number})
        db.session.commit()
    return ids


def _count(app, model, *where) -> int:
    with app.app_context(), unscoped("tests count every agency's rows"):
        return db.session.scalar(select(func.count(model.id)).where(*where))


def _written(app) -> tuple[int, int, int]:
    return (_count(app, WorkOrder), _count(app, AuditEntry), _count(app, PartsRequest))


def _owner(client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    return client


def _tag(page: str, name: str) -> str:
    """The opening tag of the form control called `name`."""
    found = re.search(rf'<(?:input|select|textarea)[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    assert found, name
    return found.group(0)


def _repair_boxes(page: str) -> set[str]:
    return set(re.findall(r'name="repair_code_ids"[^>]*value="(\d+)"', page))


def _checked_boxes(page: str) -> set[str]:
    return set(re.findall(r'name="repair_code_ids"[^>]*value="(\d+)" checked', page))


def _options(page: str, name: str) -> set[str]:
    select_ = re.search(rf'<select[^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', page,
                        re.S)
    assert select_, name
    return set(re.findall(r'<option[^>]*value="(\d+)"', select_.group(1))) - {"0"}


def _selected(page: str, name: str) -> str | None:
    select_ = re.search(rf'<select[^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', page,
                        re.S)
    chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|'
                       r'<option[^>]*value="([^"]*)"[^>]*selected', select_.group(1))
    return next((g for g in chosen.groups() if g is not None), None) if chosen else None


# --- defaults and marks ------------------------------------------------------------------------


def test_a_new_order_starts_now_with_required_fields_marked(client, world, lines):
    moment = datetime(2026, 12, 31, 23, 45, 30, tzinfo=SHANGHAI)
    with time_machine.travel(moment, tick=False):
        _owner(client, world)
        page = client.get("/service/orders/new").get_data(as_text=True)
    assert 'value="2026-12-31T23:45"' in _tag(page, "received_at")  # local, to the minute
    for name in ("service_type", "customer_name", "customer_phone", "product_line_id",
                 "product_model_id", "serial_number", "received_at"):
        tag = _tag(page, name)
        assert " required" in tag and 'aria-required="true"' in tag, tag
        label = re.search(rf'<label[^>]*for="{name}"[^>]*>(.*?)</label>', page, re.S).group(1)
        assert 'class="text-danger" aria-hidden="true">*</span>' in label, (name, label)
    for name in ("number", "purchase_date", "responded_at", "fault_description"):
        assert "aria-required" not in _tag(page, name)
    assert "marks a field you must fill in." in page  # the legend of the mark
    # Three service types authorized: none is guessed.
    assert re.search(r'<option[^>]*value=""[^>]*>Choose…</option>', page)
    # Two lines: nothing narrowed yet, every model of both lines offered, no codes yet.
    assert _options(page, "product_model_id") == {str(lines["model1"]), str(lines["model2"])}
    assert _repair_boxes(page) == set() and "Choose the product line first" in page
    # htmx, loaded from the portal itself and configured without eval or inline styles.
    assert "/static/js/vendor/htmx.min.js" in page and "/static/js/order_form.js" in page
    assert '"allowEval":false' in page and '"includeIndicatorStyles":false' in page
    assert 'hx-get="/service/orders/choices"' in _tag(page, "product_line_id")
    assert "<script>" not in page and " style=" not in page and " onchange=" not in page


def test_the_only_line_and_the_only_service_type_are_chosen(app, client, world):
    with app.app_context(), unscoped("one service type"):
        db.session.scalars(select(Agency).where(Agency.id == world.a.id)).one() \
            .service_types = "carry_in"
        f.catalog_of(world.line)
        db.session.commit()
    _owner(client, world)
    page = client.get("/service/orders/new").get_data(as_text=True)
    assert _selected(page, "service_type") == "carry_in"
    assert "Choose…" not in page
    assert _selected(page, "product_line_id") == str(world.line.id)
    assert _selected(page, "product_model_id") is not None  # the line's only model
    assert len(_repair_boxes(page)) == 2


def test_a_link_may_name_the_line(client, world, lines):
    _owner(client, world)
    page = client.get(f"/service/orders/new?line={lines['line2']}").get_data(as_text=True)
    assert _repair_boxes(page) == {str(lines["repair2"]), str(lines["repair2b"])}
    page = client.get(f"/service/orders/new?line={lines['line3']}").get_data(as_text=True)
    assert _repair_boxes(page) == set()  # another agency's line narrows nothing


# --- narrowing without script ------------------------------------------------------------------


def test_update_choices_narrows_keeps_what_was_typed_and_saves_nothing(app, client, world,
                                                                      lines):
    _owner(client, world)
    before = _written(app)
    response = client.post("/service/orders/new", data={
        "refresh": "1", "product_line_id": lines["line2"], "customer_name": "王女士",
        "customer_phone": "13711112222", "service_type": "onsite", "received_at": "",
        "product_model_id": lines["model1"], "fault_code_id": lines["fault1"],
        "repair_code_ids": [lines["repair1"], lines["repair2"]],
        "parts-0-part_id": lines["part1"], "parts-0-quantity": "2",
        "parts-1-part_id": lines["part2"], "parts-1-quantity": "3",
        "fault_description": "不制冷"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _written(app) == before
    # Nothing judged: no error shown for the fields not filled in yet.
    assert "is-invalid" not in page and "This field is required" not in page
    assert "王女士" in page and "13711112222" in page and "不制冷" in page
    assert _selected(page, "service_type") == "onsite"
    # The line's choices only; what does not fit the line is dropped, what fits is kept.
    assert _options(page, "product_model_id") == {str(lines["model2"])}
    assert _options(page, "fault_code_id") == {str(lines["fault2"])}
    assert _selected(page, "fault_code_id") != str(lines["fault1"])
    assert _repair_boxes(page) == {str(lines["repair2"]), str(lines["repair2b"])}
    assert _checked_boxes(page) == {str(lines["repair2"])}
    assert _options(page, "parts-0-part_id") == _options(page, "parts-1-part_id")
    assert str(lines["part1"]) not in _options(page, "parts-0-part_id")
    assert _selected(page, "parts-1-part_id") == str(lines["part2"])
    assert 'value="3"' in _tag(page, "parts-1-quantity")
    assert 'value="2"' not in _tag(page, "parts-0-quantity")  # its part left with the line


def test_update_choices_on_the_edit_page(app, client, world, lines):
    with app.app_context(), unscoped("order"):
        order = f.make_order(world.a, world.line)
        db.session.commit()
        order_id = order.id
    _owner(client, world)
    page = client.get(f"/service/orders/{order_id}/edit").get_data(as_text=True)
    assert _selected(page, "product_line_id") == str(lines["line1"])
    assert _repair_boxes(page) == {str(lines["repair1"]), str(lines["repair1b"])}
    before = _written(app)
    response = client.post(f"/service/orders/{order_id}/edit", data={
        "refresh": "1", "product_line_id": lines["line2"]})
    assert response.status_code == 200 and _written(app) == before
    assert _repair_boxes(response.get_data(as_text=True)) == {str(lines["repair2"]),
                                                              str(lines["repair2b"])}


# --- the partial for htmx ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["htmx", "plain"])
def test_the_choices_partial_narrows(client, world, lines, headers):
    _owner(client, world)
    response = client.get("/service/orders/choices", headers=headers, query_string=[
        ("product_line_id", lines["line2"]), ("product_model_id", lines["model1"]),
        ("fault_code_id", lines["fault2"]), ("repair_code_ids", lines["repair1"]),
        ("repair_code_ids", lines["repair2b"]), ("parts-0-part_id", lines["part2"]),
        ("parts-0-quantity", "4")])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" not in page and "<form" not in page  # the fields alone
    for block in ("order-model", "order-fault", "order-repairs", "order-parts"):
        assert f'id="{block}" hx-swap-oob=true' in page
    assert _options(page, "product_model_id") == {str(lines["model2"])}
    assert _options(page, "fault_code_id") == {str(lines["fault2"])}
    assert _selected(page, "fault_code_id") == str(lines["fault2"])
    assert _repair_boxes(page) == {str(lines["repair2"]), str(lines["repair2b"])}
    assert _checked_boxes(page) == {str(lines["repair2b"])}
    assert _selected(page, "parts-0-part_id") == str(lines["part2"])
    assert 'value="4"' in _tag(page, "parts-0-quantity")
    assert "in stock: 20" in page  # the agency's own stock
    # The short names answer alike.
    short = client.get(f"/service/orders/choices?line={lines['line1']}", headers=headers)
    assert _repair_boxes(short.get_data(as_text=True)) == {str(lines["repair1"]),
                                                          str(lines["repair1b"])}


def test_the_choices_partial_refuses_foreign_unknown_and_junk_lines(app, client, world,
                                                                   lines):
    _owner(client, world)
    for line in (lines["line3"], 987654321, "abc", "-1", "1e9", "9" * 40):
        response = client.get(f"/service/orders/choices?line={line}", headers=HTMX)
        assert response.status_code == 404, line
    assert client.get("/service/orders/choices?line=0").status_code == 200
    # B's line with A's codes asked for: still 404, nothing of line 3 shown.
    response = client.get(f"/service/orders/choices?product_line_id={lines['line3']}"
                          f"&repair_code_ids={lines['repair3']}")
    assert response.status_code == 404 and lines["code3"] not in response.get_data(
        as_text=True)
    # Junk in the other fields is no error.
    response = client.get(f"/service/orders/choices?line={lines['line1']}"
                          "&repair_code_ids=x&parts-0-quantity=y&product_model_id=z")
    assert response.status_code == 200
    for role in (Role.HQ_ADMIN, Role.ENGINEER, Role.REGIONAL_MANAGER):
        other = app.test_client()
        sign_in(other, world.user(role))
        assert other.get(f"/service/orders/choices?line={lines['line1']}").status_code == 403


def test_the_choices_partial_runs_a_constant_number_of_queries(app, client, world, lines,
                                                              query_counter):
    _owner(client, world)

    def measure():
        with app.app_context(), unscoped("ids"):
            codes = [str(i) for i in db.session.scalars(select(
                RepairCode.id).where(RepairCode.product_line_id
                                             == lines["line1"]))]
        args = [("line", lines["line1"])] + [("repair_code_ids", c) for c in codes]
        with query_counter:
            response = client.get("/service/orders/choices", query_string=args, headers=HTMX)
        assert response.status_code == 200
        return query_counter.count, len(_repair_boxes(response.get_data(as_text=True)))

    few, shown = measure()
    with app.app_context(), unscoped("a bigger catalog"):
        admin = {"acting_user": f.admin()}
        for n in range(15):
            catalog.save_catalog_entry("repair_code", None, {
                "product_line_id": lines["line1"], "code": f"BIG{n}", "description_zh": "检查",
                "description_en": "Check", "standard_hours": Decimal("0.50")}, **admin)
            catalog.save_catalog_entry("fault_code", None, {
                "product_line_id": lines["line1"], "code": f"BIGF{n}",
                "description_zh": "异响", "description_en": "Noise"}, **admin)
            catalog.save_catalog_entry("part", None, {
                "part_number": f"BIG-P{n}", "name_zh": "零件", "name_en": "Part",
                "product_line_id": lines["line1"], "unit_price": Decimal("1.00")}, **admin)
            db.session.add(ProductModel(product_line_id=lines["line1"], code=f"BIGM{n}",
                                        name="Big", warranty_months=12))
        db.session.commit()
    many, shown_many = measure()
    assert shown_many == shown + 15
    assert many == few, (few, many)
    print(f"choices partial: {few} queries for {shown} codes, {many} for {shown_many}")


# --- saving: bad combinations ------------------------------------------------------------------


def _entry(lines, **overrides) -> dict:
    ids = {"model": lines["model1"], "engineer": lines["engineer"], "fault": lines["fault1"]}
    data = order_form(ids, product_line_id=str(lines["line1"]))
    data.update(overrides)
    return data


@pytest.mark.parametrize("overrides, message", [
    ({"repair_code_ids": "REPAIR2"}, "Choose repair codes of the order&#39;s product line."),
    ({"repair_code_ids": "REPAIR3"}, "Choose repair codes of the order&#39;s product line."),
    ({"fault_code_id": "FAULT2"}, "Choose a fault code of the order&#39;s product line."),
    ({"parts-0-part_id": "PART2", "parts-0-quantity": "1"}, "is not for the order"),
    ({"product_line_id": "LINE2"}, "This model is not of the chosen product line."),
    ({"product_line_id": "LINE2", "product_model_id": "MODEL3"},
     "This model is not of the chosen product line."),
    ({"product_line_id": "LINE3", "product_model_id": "MODEL3"},
     "Your agency is not authorized for this product line."),
])
def test_bad_combinations_are_refused_and_nothing_is_saved(app, client, world, lines,
                                                           overrides, message):
    values = {"REPAIR2": lines["repair2"], "REPAIR3": lines["repair3"],
              "FAULT2": lines["fault2"], "PART2": lines["part2"], "LINE2": lines["line2"],
              "LINE3": lines["line3"], "MODEL3": lines["model3"]}
    data = _entry(lines, **{k: str(values.get(v, v)) for k, v in overrides.items()})
    _owner(client, world)
    before = _written(app)
    response = client.post("/service/orders/new", data=data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page, page[:3000]
    assert "is-invalid" in page or "text-danger" in page
    assert _written(app) == before


def test_a_good_order_of_the_second_line_is_saved(app, client, world, lines):
    _owner(client, world)
    data = _entry(lines, product_line_id=str(lines["line2"]),
                  product_model_id=str(lines["model2"]), fault_code_id=str(lines["fault2"]),
                  repair_code_ids=[str(lines["repair2"]), str(lines["repair2b"])],
                  **{"parts-0-part_id": str(lines["part2"]), "parts-0-quantity": "2"})
    response = client.post("/service/orders/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    with app.app_context(), unscoped("read"):
        order = db.session.scalars(select(WorkOrder)).one()
        assert order.product_line_id == lines["line2"]
        assert sorted(r.repair_code_id for r in order.repairs) == sorted(
            [lines["repair2"], lines["repair2b"]])


# --- parts requested from an order -------------------------------------------------------------


@pytest.fixture
def open_order(app, world, lines):
    with app.app_context(), unscoped("order"):
        order = f.make_order(world.a, world.line, customer_phone="13812345678")
        db.session.commit()
        return order.id, order.number


def test_parts_requested_from_an_order_are_linked_and_shown(app, client, world, lines,
                                                            open_order):
    order_id, number = open_order
    _owner(client, world)
    page = client.get(f"/service/orders/{order_id}").get_data(as_text=True)
    link = f'href="/service/orders/{order_id}/parts-request"'
    assert link in page and "Request parts" in page
    assert "No parts requested for this order yet." in page
    form = client.get(f"/service/orders/{order_id}/parts-request").get_data(as_text=True)
    assert number in form and 'id="linked-order"' in form
    assert _options(form, "lines-0-part_id") == {
        str(lines["part1"]), str(_first_part(app, lines["line1"]))}  # the order's line only
    assert 'name="lines-0-work_order_id"' not in form and 'name="lines-0-reason"' not in form
    before = _written(app)
    response = client.post(f"/service/orders/{order_id}/parts-request", data={
        "lines-0-part_id": lines["part1"], "lines-0-quantity": "2",
        "lines-0-reason": "stock", "lines-0-work_order_id": "0",  # ignored: it is the order's
        "lines-1-part_id": lines["part2"], "lines-1-quantity": "1",
        "note": "急需"})
    # A part of another line is refused; nothing written.
    assert response.status_code == 200 and "not for that order" in response.get_data(
        as_text=True)
    assert _written(app) == before
    response = client.post(f"/service/orders/{order_id}/parts-request", data={
        "lines-0-part_id": lines["part1"], "lines-0-quantity": "2", "note": "急需"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/service/orders/{order_id}#parts-requests")
    assert _count(app, AuditEntry) == before[1] + 1
    with app.app_context(), unscoped("read"):
        line = db.session.scalars(select(PartsRequestLine)).one()
        assert (line.work_order_id, line.reason, line.quantity) == (order_id, "work_order", 2)
        request_number = db.session.scalar(select(PartsRequest.number))
        request_id = line.request_id
    page = client.get(f"/service/orders/{order_id}").get_data(as_text=True)
    assert f'href="/service/parts-requests/{request_id}"' in page and request_number in page
    assert "svc-request-submitted" in page and lines["part_number1"] in page
    shown = client.get(f"/service/parts-requests/{request_id}").get_data(as_text=True)
    assert f'href="/service/orders/{order_id}"' in shown and "For work order" in shown


def _first_part(app, line_id):
    with app.app_context(), unscoped("ids"):
        return db.session.scalar(select(Part.id).where(
            Part.product_line_id == line_id).order_by(Part.id))


def test_another_agency_cannot_link_a_request_to_a_foreign_order(app, client, world, lines,
                                                                 open_order):
    order_id, _number = open_order
    sign_in(client, world.b_users[Role.AGENCY_OWNER])
    before = _written(app)
    assert client.get(f"/service/orders/{order_id}/parts-request").status_code == 404
    response = client.post(f"/service/orders/{order_id}/parts-request", data={
        "lines-0-part_id": lines["part1"], "lines-0-quantity": "1"})
    assert response.status_code == 404
    assert client.get("/service/orders/987654321/parts-request").status_code == 404
    # Nor through the plain request form: the order is not one of B's.
    with app.app_context(), unscoped("stock"):
        f.give_stock(world.b, f.catalog_of(world.line)["cheap"], 1)
        db.session.commit()
    response = client.post("/service/parts-requests/new", data={
        "lines-0-part_id": lines["part1"], "lines-0-quantity": "1",
        "lines-0-reason": "work_order", "lines-0-work_order_id": str(order_id)})
    assert response.status_code == 200 and "needs one of your open orders" in response.get_data(
        as_text=True)
    assert _written(app) == before


def test_no_request_button_where_none_may_be_made(app, client, world, lines):
    with app.app_context(), unscoped("order"):
        done = f.make_order(world.a, world.line, completed=True)
        db.session.commit()
        done_id = done.id
    _owner(client, world)
    page = client.get(f"/service/orders/{done_id}").get_data(as_text=True)
    assert f"/service/orders/{done_id}/parts-request" not in page
    response = client.get(f"/service/orders/{done_id}/parts-request")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/service/orders/{done_id}")
    parts_desk = app.test_client()
    sign_in(parts_desk, world.user(Role.HQ_PARTS))
    assert parts_desk.get(f"/service/orders/{done_id}/parts-request").status_code == 403


# --- the order page ----------------------------------------------------------------------------


def test_the_order_page_dials_phones_and_keeps_amounts_whole(app, client, world, lines,
                                                            open_order):
    order_id, _number = open_order
    with app.app_context(), unscoped("a used part"):
        codes = f.catalog_of(world.line)
        f.give_stock(world.a, codes["part"], 1)
        used = f.make_order(world.a, world.line, parts=[(codes["part"].id, 1)],
                            customer_phone="13812345678")
        db.session.commit()
        used_id = used.id
    _owner(client, world)
    page = client.get(f"/service/orders/{used_id}").get_data(as_text=True)
    assert '<a class="text-nowrap" href="tel:13812345678">13812345678</a>' in page
    amounts = re.findall(r'<td class="([^"]*)">[^<]*860\.50', page)
    assert amounts and all("text-nowrap" in c for c in amounts), amounts
    manager = app.test_client()
    sign_in(manager, world.user(Role.REGIONAL_MANAGER))
    page = manager.get(f"/service/orders/{used_id}").get_data(as_text=True)
    assert "tel:" not in page and '<span class="text-nowrap">138****5678</span>' in page


def test_entering_an_order_by_the_page(app, client, world, lines):
    """The journey without script: line, update, model, codes, save."""
    _owner(client, world)
    page = client.get("/service/orders/new").get_data(as_text=True)
    received = re.search(r'name="received_at"[^>]*value="([^"]+)"', _tag(page, "received_at"))
    assert received
    data = _entry(lines, received_at=local(f.ago(hours=1)), responded_at="",
                  product_model_id="0", fault_code_id="0", refresh="1")
    page = client.post("/service/orders/new", data=data).get_data(as_text=True)
    assert _options(page, "product_model_id") == {str(lines["model1"])}
    data.pop("refresh")
    data.update(product_model_id=str(lines["model1"]), repair_code_ids=str(lines["repair1"]))
    response = client.post("/service/orders/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
