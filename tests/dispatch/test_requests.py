"""Service requests: the hotline's calls. The rules (catalog, dates, the preferred window, one
open request per serial, numbering), who reads what (the customer masked for every reader but
those who take calls; agencies never), hostile input, the audit log and the double submit."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatch.requests import (
    RequestStatus,
    ServiceRequest,
    ServiceRequestCall,
    cancel_service_request,
    take_call,
)
from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import AGENCY_ROLES, Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import ProductModel, Province
from tests.factories import make_product_line, sign_in

PHONE = "13812345678"


@pytest.fixture
def province(app, world):
    with app.app_context(), unscoped("test fixtures"):
        row = Province(code="GD-T", name_zh="广东", name_en="Guangdong",
                       region_id=world.region1.id)
        db.session.add(row)
        db.session.commit()
        return row.id


@pytest.fixture
def model_id(app, world):
    with app.app_context(), unscoped("test fixtures"):
        return db.session.scalars(select(ProductModel.id).where(
            ProductModel.product_line_id == world.line.id)).first()


@pytest.fixture
def call(world, province, model_id):
    """The service's input of a good call (ids, dates and aware datetimes)."""
    return {"customer_name": "王小明", "customer_phone": PHONE, "province_id": province,
            "city": "深圳市", "district": "南山区", "street": "科技园路 1 号",
            "product_line_id": world.line.id, "product_model_id": model_id,
            "serial_number": "sn-0001", "purchase_date": None, "service_type": "onsite",
            "fault_description": "不制冷", "note": ""}


def _form(call: dict, **changes) -> dict:
    """The same call as the form posts it."""
    data = {k: ("" if v is None else str(v)) for k, v in call.items()}
    return {**data, **changes}


def _count(app, model=ServiceRequest, *where) -> int:
    with app.app_context(), unscoped("test counts rows"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _audit(app) -> list[AuditEntry]:
    with app.app_context(), unscoped("test reads the audit log"):
        return list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("service_request.%")).order_by(AuditEntry.id)))


def make_request(world) -> int:
    """A request waiting for dispatch, made as the rows are (the factory of the isolation
    walk's ``service_request_id``, tests/dispatch/params.py, is this one)."""
    province = db.session.scalar(select(Province.id).where(
        Province.region_id == world.region1.id).order_by(Province.id).limit(1))
    if province is None:
        row = Province(code="SR-P", name_zh="省", name_en="Province",
                       region_id=world.region1.id)
        db.session.add(row)
        db.session.flush()
        province = row.id
    model = db.session.scalar(select(ProductModel.id).where(
        ProductModel.product_line_id == world.line.id).limit(1))
    now = clock.now()
    row = ServiceRequest(
        number=f"SR{clock.local_day(now):%Y%m%d}-9999",
        received_at=now, customer_name="CANARY-SR 王小明", customer_phone="13800009999",
        province_id=province, city="深圳市", district="南山区", street="CANARY-SR 街",
        product_line_id=world.line.id, product_model_id=model, serial_number="SR-CANARY",
        serial_key="SR-CANARY", fault_description="CANARY-SR", service_type="onsite")
    db.session.add(row)
    db.session.flush()
    db.session.add(ServiceRequestCall(request_id=row.id, at=now))
    db.session.flush()
    return row.id


@pytest.fixture
def dispatcher(world):
    return world.user(Role.HQ_DISPATCHER)


# --- rules ------------------------------------------------------------------------------------


def test_a_call_opens_a_numbered_request_on_the_clock_of_the_call(ctx, call, dispatcher):
    now = clock.now()
    taken = take_call(call, acting_user=dispatcher, now=now)
    second = take_call({**call, "serial_number": "SN-0002"}, acting_user=dispatcher, now=now)
    day = f"{clock.local_day(now):%Y%m%d}"
    assert (taken.request.number, second.request.number) == (f"SR{day}-0001", f"SR{day}-0002")
    assert taken.request.status == RequestStatus.NEW and taken.request.received_at == now
    assert taken.request.serial_key == "SN-0001" and not taken.linked
    assert [c.at for c in taken.request.calls] == [now] and taken.call_number == 1


@pytest.mark.parametrize("changes,field", [
    ({"purchase_date": "tomorrow"}, "purchase_date"),
    ({"preferred": (2, 1)}, "preferred_to"),
    ({"preferred": (-3, -1)}, "preferred_from"),
    ({"other_line": True}, "product_model_id"),
    ({"customer_phone": "call me"}, "customer_phone"),
    ({"street": "", "service_type": "onsite"}, "street"),
    ({"service_type": "teleport"}, "service_type"),
    ({"province_id": 999999}, "province_id"),
    ({"serial_number": "  "}, "serial_number"),
], ids=["future-purchase", "window-order", "window-past", "model-of-another-line",
        "phone", "street-for-onsite", "service-type", "province", "serial"])
def test_bad_calls_are_refused_on_their_field(ctx, call, dispatcher, changes, field):
    now = clock.now()
    data = dict(call)
    if changes.pop("purchase_date", None):
        data["purchase_date"] = clock.local_day(now) + timedelta(days=1)
    if "preferred" in changes:
        start, end = changes.pop("preferred")
        data["preferred_from"] = now + timedelta(hours=start)
        data["preferred_to"] = now + timedelta(hours=end)
    if changes.pop("other_line", None):
        other = make_product_line()
        data["product_model_id"] = other.models[0].id
    data.update(changes)
    with pytest.raises(DomainError) as refused:
        take_call(data, acting_user=dispatcher, now=now)
    assert refused.value.field == field
    assert db.session.scalar(select(func.count(ServiceRequest.id))) == 0


def test_a_street_is_optional_but_for_on_site_repairs(ctx, call, dispatcher):
    taken = take_call({**call, "street": "", "service_type": "carry_in"},
                      acting_user=dispatcher)
    assert taken.request.street == ""


def test_a_call_about_the_serial_of_an_open_request_links_to_it(ctx, call, dispatcher):
    now = clock.now()
    first = take_call(call, acting_user=dispatcher, now=now)
    again = take_call({**call, "serial_number": "  Sn-0001 ", "customer_phone": "13900000000",
                       "note": "客户再次来电"}, acting_user=dispatcher,
                      now=now + timedelta(days=29))
    assert again.linked and again.request.id == first.request.id and again.call_number == 2
    assert db.session.scalar(select(func.count(ServiceRequest.id))) == 1
    assert [c.note for c in first.request.calls] == ["", "客户再次来电"]
    # Past the 30 days, or on another product line, the same serial is a new case.
    later = take_call(call, acting_user=dispatcher, now=now + timedelta(days=31))
    assert not later.linked and later.request.id != first.request.id
    other = make_product_line()
    elsewhere = take_call({**call, "product_line_id": other.id,
                           "product_model_id": other.models[0].id}, acting_user=dispatcher,
                          now=now)
    assert not elsewhere.linked


def test_a_cancelled_request_no_longer_catches_duplicate_calls(ctx, call, dispatcher):
    first = take_call(call, acting_user=dispatcher)
    with pytest.raises(DomainError):
        cancel_service_request(first.request, " ", acting_user=dispatcher,
                               seen_version=first.request.version)
    cancel_service_request(first.request, "客户已自行解决", acting_user=dispatcher,
                           seen_version=first.request.version)
    assert first.request.status == RequestStatus.CANCELLED and first.request.cancelled_at
    again = take_call(call, acting_user=dispatcher)
    assert not again.linked and again.request.id != first.request.id
    with pytest.raises(DomainError):  # a cancelled request takes no more calls or cancels
        cancel_service_request(first.request, "again", acting_user=dispatcher,
                               seen_version=first.request.version)


@pytest.mark.parametrize("role", [Role.HQ_SERVICE, Role.AUDITOR, Role.AGENCY_OWNER])
def test_only_dispatchers_take_calls_in_the_service(ctx, call, world, role):
    with pytest.raises(DomainError):
        take_call(call, acting_user=world.user(role))


# --- pages and permissions --------------------------------------------------------------------


def _take(client, call, **changes):
    return client.post("/dispatch/requests/new", data=_form(call, **changes))


def _one(app) -> ServiceRequest:
    with app.app_context(), unscoped("test reads"):
        return db.session.scalars(select(ServiceRequest)).one()


def test_the_dispatcher_takes_a_call_and_reads_the_customer(app, client, call, dispatcher):
    sign_in(client, dispatcher)
    assert client.get("/dispatch/requests/new").status_code == 200
    response = _take(client, call, call_key="a" * 32)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    row = _one(app)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert row.number in page and PHONE in page and "王小明" in page and "科技园路" in page
    queue = client.get("/dispatch/requests/").get_data(as_text=True)
    assert row.number in queue and PHONE not in queue and "138****5678" in queue
    linked = _take(client, call, call_key="b" * 32, serial_number=" sn-0001 ")
    assert linked.status_code == 302 and _count(app) == 1
    page = client.get(linked.headers["Location"]).get_data(as_text=True)
    assert f"Linked to {row.number} (call 2)" in page


def test_a_double_submit_books_one_request_and_one_call(app, client, call, dispatcher):
    sign_in(client, dispatcher)
    first = _take(client, call, call_key="c" * 32)
    second = _take(client, call, call_key="c" * 32)
    assert first.status_code == second.status_code == 302
    assert _count(app) == 1 and _count(app, ServiceRequestCall) == 1
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "already recorded" in page


def test_a_double_submit_racing_past_the_look_up_books_one_call(app, client, call, dispatcher,
                                                                monkeypatch):
    """The same form sent twice at the same instant: the second request looks the key up
    before the first has committed, then meets it at the unique index. It answers with the
    first's request (no 500, no second call)."""
    from dispatch import requests as requests_module

    sign_in(client, dispatcher)
    first = _take(client, call, call_key="d" * 32)
    real, calls = requests_module._call_of, []

    def not_yet_committed(key):  # the racing request's look-up missed the first's row
        calls.append(key)
        return None if len(calls) == 1 else real(key)

    monkeypatch.setattr(requests_module, "_call_of", not_yet_committed)
    second = _take(client, call, call_key="d" * 32)
    assert first.status_code == second.status_code == 302
    assert len(calls) == 2  # the miss, then the look-up after the unique index refused it
    assert _count(app) == 1 and _count(app, ServiceRequestCall) == 1
    assert second.headers["Location"] == first.headers["Location"]
    assert "already recorded" in client.get(second.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.HQ_SERVICE, Role.AUDITOR])
def test_other_hq_readers_see_the_customer_masked_and_change_nothing(app, client, ctx, call,
                                                                     world, dispatcher, role):
    taken = take_call(call, acting_user=dispatcher)
    db.session.commit()
    sign_in(client, world.user(role))
    for url in ("/dispatch/requests/", f"/dispatch/requests/{taken.request.id}"):
        page = client.get(url)
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and taken.request.number in text
        assert PHONE not in text and "王小明" not in text and "科技园路" not in text
        assert "138****5678" in text and "王*明" in text
    assert client.get("/dispatch/requests/new").status_code == 403
    assert _take(client, call, serial_number="SN-9").status_code == 403
    assert client.post(f"/dispatch/requests/{taken.request.id}/cancel",
                       data={"reason": "nope", "version": "1"}).status_code == 403
    assert _count(app) == 1


@pytest.mark.parametrize("role", sorted(AGENCY_ROLES))
def test_agencies_never_reach_a_request(app, client, ctx, call, world, role):
    with unscoped("test fixtures"):
        request_id = make_request(world)
    db.session.commit()
    sign_in(client, world.user(role))
    base = f"/dispatch/requests/{request_id}"
    for url in ("/dispatch/requests/", "/dispatch/requests/new", base):
        assert client.get(url).status_code in (403, 404)
    for url, data in (("/dispatch/requests/new", _form(call, serial_number="SN-X")),
                      (f"{base}/cancel", {"reason": "nope", "version": "1"})):
        assert client.post(url, data=data).status_code in (403, 404)
    nav = client.get("/").get_data(as_text=True)
    assert "/dispatch/requests/" not in nav and "CANARY-SR" not in nav
    assert _count(app) == 1


def test_the_dispatcher_cancels_with_a_reason(app, client, call, dispatcher):
    sign_in(client, dispatcher)
    _take(client, call)
    row = _one(app)
    url = f"/dispatch/requests/{row.id}/cancel"
    assert client.post(url, data={"reason": "", "version": row.version}).status_code == 422
    assert client.post(url, data={"reason": "客户撤销", "version": row.version + 5}
                       ).status_code == 422  # a stale page
    assert client.post(url, data={"reason": "客户撤销", "version": row.version}
                       ).status_code == 302
    assert _one(app).status == RequestStatus.CANCELLED
    assert "客户撤销" in client.get(f"/dispatch/requests/{row.id}").get_data(as_text=True)


def test_the_queue_filters_and_runs_a_constant_number_of_queries(app, client, ctx, call,
                                                                 dispatcher, query_counter):
    sign_in(client, dispatcher)
    take_call(call, acting_user=dispatcher)
    db.session.commit()

    def count() -> int:
        with query_counter as counter:
            assert client.get("/dispatch/requests/?status=all&page=1").status_code == 200
        return counter.count

    count()  # warm: the first page of a session reads what it keeps
    one = count()
    for n in range(5):
        take_call({**call, "serial_number": f"SN-10{n}"}, acting_user=dispatcher)
    db.session.commit()
    assert count() == one
    found = client.get("/dispatch/requests/?q=sn-103").get_data(as_text=True)
    assert "SN-103" in found and "SN-0001" not in found
    assert "SN-0001" not in client.get("/dispatch/requests/?status=cancelled").get_data(
        as_text=True)
    for junk in ("?line=abc&province=-1&page=zz", "?status=%00&q=" + "x" * 5000):
        assert client.get("/dispatch/requests/" + junk).status_code == 200


# --- hostile input and the audit log ----------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"customer_name": "王" * 5000}, {"city": "x" * 5000}, {"street": "街" * 5000},
    {"fault_description": "坏" * 50000}, {"serial_number": "S" * 5000},
    {"customer_phone": "1" * 5000}, {"note": "n" * 5000},
    {"product_model_id": "abc"}, {"purchase_date": "2026-13-45"},
    {"preferred_from": "yesterday"}, {"call_key": "<script>"},
], ids=lambda c: next(iter(c)))
def test_hostile_input_is_refused_or_kept_harmless(app, client, call, dispatcher, changes):
    sign_in(client, dispatcher)
    response = _take(client, call, **changes)
    assert response.status_code in (302, 400)
    assert response.status_code == 400 or changes == {"call_key": "<script>"}


def test_control_characters_are_dropped_and_html_is_escaped(app, client, call, dispatcher):
    sign_in(client, dispatcher)
    response = _take(client, call, customer_name="王\x00小\x07明",
                     fault_description="<script>alert(1)</script>\x1b 不制冷")
    assert response.status_code == 302
    row = _one(app)
    assert row.customer_name == "王小明" and "\x1b" not in row.fault_description
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_the_audit_log_never_keeps_the_full_phone_or_street(app, client, call, dispatcher):
    sign_in(client, dispatcher)
    _take(client, call)
    _take(client, call, customer_phone="13987654321")  # linked: the caller's phone masked too
    row = _one(app)
    client.post(f"/dispatch/requests/{row.id}/cancel",
                data={"reason": "客户撤销", "version": row.version})
    entries = _audit(app)
    assert [e.action for e in entries] == ["service_request.created",
                                           "service_request.call_linked",
                                           "service_request.cancelled"]
    text = repr([(e.before, e.after, e.reason) for e in entries])
    assert PHONE not in text and "13987654321" not in text and "科技园路" not in text
    assert "138****5678" in text and entries[0].actor_id == dispatcher.id
