"""The public status page: request number + the phone's last four digits → the milestones and
the agency's name, nothing personal; one answer for an unknown number and for wrong digits;
throttled per address like the certificate check; a GET only fills the form in."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatch.appointments import book_appointment
from dispatch.coverage import CoverageStatus
from dispatch.offers import accept_offer, make_offer
from dispatch.requests import cancel_service_request, take_call
from dispatch.status import normal_number, phone_tail, public_status
from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from tenants.models import Agency, ProductModel
from tests.certification.factories import make_engineer
from tests.dispatch.test_coverage import make_coverage

URL = "/dispatch/status"
PHONE = "138 1234 5678"
DIGITS = "5678"
NAME, STREET, SERIAL, FAULT = "王小明", "科技园路 1 号", "SN-STATUS-77", "压缩机不启动"
ENGINEER = "李师傅 ENGINEER-CANARY"
# Whatever the page shows, none of these may appear in it.
PERSONAL = (NAME, "小明", "13812345678", "138 1234 5678", "138****5678", STREET, "科技园路",
            SERIAL, FAULT, ENGINEER, "李师傅")


def _dispatched(app, world, *, offer=True, accept=True, book=False, cancel=False) -> str:
    """A call about a product in agency A's city; offered to A and accepted by A's owner as
    asked, with a booked appointment. Returns the request's number."""
    dispatcher, owner = world.user(Role.HQ_DISPATCHER), world.user(Role.AGENCY_OWNER)
    with app.test_request_context(), unscoped("the test builds a dispatched order"):
        agency = db.session.get(Agency, world.a.id)
        make_coverage(agency, status=CoverageStatus.APPROVED, line_id=world.line.id)
        model = db.session.scalars(select(ProductModel.id).where(
            ProductModel.product_line_id == world.line.id)).first()
        request = take_call({
            "customer_name": NAME, "customer_phone": PHONE, "province_id": agency.province_id,
            "city": agency.city, "district": "南山区", "street": STREET,
            "product_line_id": world.line.id, "product_model_id": model,
            "serial_number": SERIAL, "purchase_date": None, "service_type": "onsite",
            "fault_description": FAULT, "note": ""}, acting_user=dispatcher).request
        if cancel:
            cancel_service_request(request, "客户不需要了", acting_user=dispatcher,
                                   seen_version=request.version)
        elif offer:
            made = make_offer(request, agency.id, acting_user=dispatcher)
            if accept:
                with scoped(agency_scope(agency.id, owner.id)):
                    order = accept_offer(made, acting_user=owner, seen_version=made.version)
                    if book:
                        engineer = make_engineer(agency, name=ENGINEER)
                        start = clock.now() + timedelta(days=1)
                        book_appointment(order, engineer.id, start, start + timedelta(hours=2),
                                         acting_user=owner)
        number = request.number
        db.session.commit()
    return number


def _check(client, number, digits, **kw):
    return client.post(URL, data={"number": number, "digits": digits}, **kw)


def _agency_name(app, world) -> str:
    with app.app_context(), unscoped("the test reads the agency's name"):
        return db.session.get(Agency, world.a.id).legal_name


def _no_personal_data(page: str) -> None:
    for secret in PERSONAL:
        assert secret not in page, secret


# --- the answer ---------------------------------------------------------------------------------


def test_the_right_digits_show_the_milestones_the_agency_and_the_window(app, client, world):
    number = _dispatched(app, world, book=True)
    response = _check(client, number.lower(), DIGITS)        # case does not matter
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert number in page and _agency_name(app, world) in page
    for label in ("Accepted by a service agency", "Appointment booked", "On site", "Completed",
                  "Milestones", "Done", "In progress", "Expected by", "Reached"):
        assert label in page, label
    assert page.index("Appointment booked") < page.index("On site") < page.index(
        ">Completed<")
    assert "Appointment</dt>" in page                          # the booked window
    _no_personal_data(page)
    assert DIGITS not in page                                  # the digits are not echoed


def test_before_the_agency_accepts_the_page_names_no_agency(app, client, world):
    number = _dispatched(app, world, accept=False)            # offered to A, not answered
    page = _check(client, number, DIGITS).get_data(as_text=True)
    assert "Waiting for dispatch" in page and "Not dispatched yet" in page
    assert _agency_name(app, world) not in page and "CANARY-A" not in page
    assert "Accepted" in page and "On site" not in page       # only the accept clock yet
    _no_personal_data(page)


def test_a_cancelled_request_says_so_without_open_clocks(app, client, world):
    number = _dispatched(app, world, cancel=True)
    page = _check(client, number, DIGITS).get_data(as_text=True)
    assert "Cancelled" in page and "Expected by" not in page
    _no_personal_data(page)


def test_wrong_digits_and_an_unknown_number_give_the_same_answer(app, client, world):
    number = _dispatched(app, world, book=True)
    unknown_number = number[:-4] + "9998"
    wrong = _check(client, number, "1234")
    unknown = _check(client, unknown_number, DIGITS)
    assert wrong.status_code == unknown.status_code == 200
    for response in (wrong, unknown):
        page = response.get_data(as_text=True)
        assert "No service request matches this number and these digits" in page
        assert _agency_name(app, world) not in page and "Milestones" not in page
        _no_personal_data(page)
    # Byte for byte the same page, but for the number typed back into the form and the form's
    # CSRF token (signed with the second it was made in).
    def same(page: str, typed: str) -> str:
        return re.sub(r'(name="csrf_token"[^>]*value=")[^"]*"', r'\1"', page.replace(typed, "N"))

    assert (same(wrong.get_data(as_text=True), number)
            == same(unknown.get_data(as_text=True), unknown_number))


def test_a_work_order_number_is_not_a_way_in(app, client, world):
    """Work order numbers repeat between agencies; only the request number is asked for."""
    _dispatched(app, world)
    with app.app_context(), unscoped("the test reads the order's number"):
        from service.models import WorkOrder

        order_number = db.session.scalar(select(WorkOrder.number))
    response = _check(client, order_number, DIGITS)
    assert response.status_code == 400 and b"like SR20261206-0001" in response.data


@pytest.mark.parametrize("number,digits,message", [
    ("", "", "This field is required."),
    ("SR" + "1" * 500, DIGITS, "like SR20261206-0001"),
    ("SR20261206-0001", "12a4", "last four digits"),
    ("SR20261206-0001", "123", "last four digits"),
    ("SR20261206-0001", "12345", "last four digits"),
    ("SR20261206-0001", "5" * 5000, "last four digits"),
    ("SR20261206-0001", "١٢٣٤", "last four digits"),          # other scripts' digits
    ("<script>alert(1)</script>", DIGITS, "like SR20261206-0001"),
    ("SR20261206-0001\x00", DIGITS, "like SR20261206-0001"),
])
def test_bad_input_is_refused_with_a_message(app, client, world, number, digits, message):
    response = _check(client, number, digits)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert b"<script>alert(1)" not in response.data


def test_full_width_digits_and_spaces_are_read_as_typed_on_a_chinese_keyboard(app, client,
                                                                              world):
    number = _dispatched(app, world)
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in number)
    response = _check(client, f" {wide} ", "５６ ７８")
    assert response.status_code == 200 and _agency_name(app, world) in response.get_data(
        as_text=True)


# --- the form, the throttle, no sign-in ---------------------------------------------------------


def test_a_get_fills_the_number_in_but_looks_nothing_up(app, client, world):
    number = _dispatched(app, world)
    response = client.get(f"{URL}?number={number}&digits={DIGITS}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'value="{number}"' in page and "is filled in" in page
    assert _agency_name(app, world) not in page and "Milestones" not in page
    assert f'value="{DIGITS}"' not in page                     # digits never from the address
    assert client.get(f"{URL}?number={'X' * 5000}").status_code == 200
    assert client.get(URL).status_code == 200


def test_failed_look_ups_are_throttled_but_successes_are_not_counted(app, client, world):
    number = _dispatched(app, world)
    for _ in range(8):
        assert _check(client, number, DIGITS).status_code == 200   # never counted
    for _ in range(5):
        assert _check(client, number, "0000").status_code == 200
    assert _check(client, number, "0000").status_code == 429
    assert _check(client, number, DIGITS).status_code == 429        # this number rests here
    chinese = _check(client, number, DIGITS, headers={"Accept-Language": "zh-CN"})
    assert chinese.status_code == 429 and "尝试次数过多" in chinese.get_data(as_text=True)
    elsewhere = _check(client, number, DIGITS, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert elsewhere.status_code == 200                             # a stranger blocks no one
    assert _agency_name(app, world) in elsewhere.get_data(as_text=True)


def test_one_address_guessing_many_numbers_is_stopped(app, client, world):
    day = f"{clock.local_day(clock.now()):%Y%m%d}"
    for n in range(20):
        assert _check(client, f"SR{day}-{n + 1000:04d}", "0000").status_code == 200
    assert _check(client, f"SR{day}-2000", "0000").status_code == 429


def test_bad_input_does_not_use_up_the_allowance(app, client, world):
    number = _dispatched(app, world)
    for _ in range(30):
        assert _check(client, number, "abc").status_code == 400
    assert _check(client, number, DIGITS).status_code == 200


def test_the_page_needs_no_sign_in_and_writes_nothing(app, client, world):
    number = _dispatched(app, world, book=True)

    def audit_rows():
        with app.app_context(), unscoped("the test counts audit entries"):
            return db.session.scalar(select(func.count()).select_from(AuditEntry))

    before = audit_rows()
    assert client.get(URL).status_code == 200
    assert _check(client, number, DIGITS).status_code == 200
    assert _check(client, number, "0000").status_code == 200
    assert audit_rows() == before


# --- the pieces ---------------------------------------------------------------------------------


def test_phone_tail_and_number_folding():
    assert phone_tail("+86 138-1234-5678") == "5678"
    assert phone_tail("(010) 6543 2100") == "2100"
    assert phone_tail("12-3") == ""
    assert normal_number(" sr２０２６１２０６-０００１ ") == "SR20261206-0001"
    assert normal_number(None) == ""


def test_the_service_answers_none_for_anything_but_a_match(ctx, world):
    assert public_status("SR20261206-0001", "") is None
    assert public_status("SR20261206-0001", "5678") is None
    assert public_status(None, None) is None


@pytest.mark.parametrize("kind,body", [
    ("application/json", b'{"number": "SR20261206-0001", "digits": "5678"}'),
    ("application/xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                        b'"file:///etc/passwd">]><x>&e;</x>'),
    ("application/octet-stream", bytes(range(256))),
    ("application/x-www-form-urlencoded", b"%ZZ=%%&&==&number[]=1&digits[x]=2"),
])
def test_non_form_bodies_are_refused_without_a_500(app, client, world, kind, body):
    """Flask-WTF reads a JSON body as the form (CSRF still applies outside tests): that one is
    an ordinary failed look-up; the others are bad input."""
    response = client.post(URL, data=body, content_type=kind)
    assert response.status_code == (200 if kind == "application/json" else 400)
