"""The offer and appointment pages, through the browser's requests: the dispatcher offers a
request from the suggestion, the agency reads the offer without the customer (before, and
after a refusal, an expiry or a withdrawal, on every dispatch page it can reach), accepts it
and then sees the customer on the dispatched order, books and reschedules the visit.
Who may do what (another agency: 404; HQ reads, never answers), hostile input (4xx and
nothing written) and the double submit."""
import re
from datetime import time, timedelta

import pytest
from sqlalchemy import func, select

from dispatch import coverage, offers
from dispatch.appointments import Appointment
from dispatch.offers import Offer, OfferStatus
from dispatch.requests import RequestStatus, ServiceRequest, take_call
from portal import clock
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import Agency, ProductModel
from tests.certification.factories import make_engineer
from tests.factories import signed_in
from tests.service.factories import make_order

NAME, PHONE, STREET = "顾客甲乙丙", "13912345678", "CUSTSTREET 科技园路 9 号"
PERSONAL = (NAME, PHONE, "CUSTSTREET")
DISTRICT = "南山区"


class Net:
    def __init__(self, app, world):
        self.app, self.world = app, world
        with app.app_context(), unscoped("test fixtures"):
            a = db.session.get(Agency, world.a.id)
            b = db.session.get(Agency, world.b.id)
            row = coverage.declare_coverage(
                a, province_id=a.province_id, city=a.city, district=DISTRICT,
                product_line_id=world.line.id, service_type="onsite", acting_user=None)
            coverage.decide_coverage(row, approve=True, acting_user=None,
                                     seen_version=row.version)
            self.engineer = make_engineer(a, lines=[world.line]).id
            self.foreign_engineer = make_engineer(b, lines=[world.line]).id
            self.model = db.session.scalars(select(ProductModel.id).where(
                ProductModel.product_line_id == world.line.id)).first()
            db.session.commit()

    def call(self, serial="SN-PAGE-1") -> int:
        """A call waiting for dispatch in agency A's covered district."""
        a = self.world.a
        with self.app.test_request_context(), unscoped("test fixtures"):
            taken = take_call({
                "customer_name": NAME, "customer_phone": PHONE, "province_id": a.province_id,
                "city": a.city, "district": DISTRICT, "street": STREET,
                "product_line_id": self.world.line.id, "product_model_id": self.model,
                "serial_number": serial, "purchase_date": None, "service_type": "onsite",
                "fault_description": "不制冷", "note": ""},
                acting_user=self.world.user(Role.HQ_DISPATCHER))
            db.session.commit()
            return taken.request.id

    def request(self, request_id) -> ServiceRequest:
        with self.app.app_context(), unscoped("test reads"):
            row = db.session.get(ServiceRequest, request_id)
            db.session.expunge(row)
            return row

    def offer_of(self, request_id) -> Offer | None:
        with self.app.app_context(), unscoped("test reads"):
            row = db.session.scalars(select(Offer).where(Offer.request_id == request_id)
                                     .order_by(Offer.id.desc())).first()
            if row is not None:
                db.session.expunge(row)
            return row

    def count(self, model, *where) -> int:
        with self.app.app_context(), unscoped("test counts"):
            return db.session.scalar(select(func.count()).select_from(model).where(*where))

    def client(self, role, agency=None):
        users = {None: self.world.users, "a2": self.world.a2_users}
        return signed_in(self.app, users[agency][role])

    def offer(self, request_id) -> Offer:
        """The dispatcher offers the request to agency A through the page."""
        sr = self.request(request_id)
        response = self.client(Role.HQ_DISPATCHER).post(
            f"/dispatch/requests/{request_id}/offer",
            data={"agency_id": self.world.a.id, "version": sr.version})
        assert response.status_code == 302, response.data[:2000]
        return self.offer_of(request_id)


@pytest.fixture
def net(app, world):
    return Net(app, world)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _no_customer(body: str, where: str) -> None:
    leaked = [p for p in PERSONAL if p in body]
    assert not leaked, f"{where} shows {leaked}"


def _agency_pages(offer: Offer) -> list[str]:
    """Every dispatch page an agency user can reach about this offer."""
    return ["/dispatch/offers", "/dispatch/offers?status=open",
            f"/dispatch/offers?status={offer.status}", f"/dispatch/offers/{offer.id}",
            "/dispatch/calendar", "/dispatch/coverage"]


def _sweep(net, offer):
    for role in (Role.AGENCY_OWNER, Role.AGENCY_STAFF):
        client = net.client(role)
        for url in _agency_pages(offer):
            response = client.get(url)
            assert response.status_code in (200, 403, 404), (url, response.status_code)
            _no_customer(_text(response), f"{role.value} {url}")


def _window(days=1, start=time(10, 0), end=time(12, 0)) -> dict:
    day = clock.local_today() + timedelta(days=days)
    return {"day": day.isoformat(), "time_from": start.strftime("%H:%M"),
            "time_to": end.strftime("%H:%M")}


# --- the flow -------------------------------------------------------------------------------


def test_offer_accept_book_and_reschedule_through_the_pages(net, world):
    request_id = net.call()
    dispatcher = net.client(Role.HQ_DISPATCHER)
    page = _text(dispatcher.get(f"/dispatch/requests/{request_id}"))
    assert f'id="suggestion-{world.a.id}"' in page and "/offer" in page
    assert 'id="accept-clock"' in page
    offer = net.offer(request_id)
    assert offer.status == OfferStatus.OPEN and offer.agency_id == world.a.id
    assert net.request(request_id).status == RequestStatus.OFFERED
    page = _text(dispatcher.get(f"/dispatch/requests/{request_id}"))
    assert 'id="open-offer"' in page and f"/dispatch/offers/{offer.id}/withdraw" in page
    assert 'id="suggestions"' not in page  # offered: nothing more to offer
    queue = _text(dispatcher.get("/dispatch/requests/?status=offered"))
    assert net.request(request_id).number in queue and world.a.code in queue

    owner = net.client(Role.AGENCY_OWNER)
    listing = _text(owner.get("/dispatch/offers"))
    assert offer.request_number in listing
    _no_customer(listing, "offers list")
    body = _text(owner.get(f"/dispatch/offers/{offer.id}"))
    assert "不制冷" in body and DISTRICT in body and "Accept" in body
    _no_customer(body, "offer page")

    staff = net.client(Role.AGENCY_STAFF)
    response = staff.post(f"/dispatch/offers/{offer.id}/accept",
                          data={"version": offer.version})
    assert response.status_code == 302
    accepted = net.offer_of(request_id)
    assert accepted.status == OfferStatus.ACCEPTED
    assert response.headers["Location"].endswith(f"/dispatch/orders/{accepted.work_order_id}")
    order_url = f"/dispatch/orders/{accepted.work_order_id}"
    page = _text(owner.get(order_url))
    assert NAME in page and PHONE in page and "CUSTSTREET" in page
    assert 'id="clocks"' in page and 'id="clock-appointment"' in page
    offer_page = _text(owner.get(f"/dispatch/offers/{offer.id}"))
    assert order_url in offer_page and f"/service/orders/{accepted.work_order_id}" in offer_page
    # The same answer again: the page is stale, nothing moves.
    again = staff.post(f"/dispatch/offers/{offer.id}/accept", data={"version": offer.version})
    assert again.status_code == 422

    # Book: engineer, a window tomorrow.
    booked = owner.post(f"{order_url}/appointment", data={
        "version": "0", "engineer_id": net.engineer, **_window()})
    assert booked.status_code == 302, _text(booked)[:3000]
    page = _text(owner.get(order_url))
    assert 'id="current-appointment"' in page
    assert net.count(Appointment) == 1
    # The same form again (a double click): stale, nothing added.
    twice = owner.post(f"{order_url}/appointment", data={
        "version": "0", "engineer_id": net.engineer, **_window()})
    assert twice.status_code == 422 and net.count(Appointment) == 1
    current = _current_id(net)
    # Reschedule without a reason: refused, nothing written.
    refused = owner.post(f"{order_url}/appointment", data={
        "version": str(current), "engineer_id": net.engineer, **_window(days=2)})
    assert refused.status_code == 422 and net.count(Appointment) == 1
    moved = owner.post(f"{order_url}/appointment", data={
        "version": str(current), "engineer_id": net.engineer, "reason": "customer",
        "note": "周末在家", **_window(days=2)})
    assert moved.status_code == 302
    assert net.count(Appointment) == 2
    page = _text(owner.get(order_url))
    assert 'id="appointments"' in page and "周末在家" in page


def _current_id(net) -> int:
    with net.app.app_context(), unscoped("test reads"):
        return db.session.scalar(select(Appointment.id).where(
            Appointment.superseded_at.is_(None)))


# --- refusal, expiry, withdrawal: nothing personal ever ------------------------------------


def test_refusing_needs_a_reason_and_leaves_the_agency_nothing_personal(net, world):
    request_id = net.call()
    offer = net.offer(request_id)
    owner = net.client(Role.AGENCY_OWNER)
    url = f"/dispatch/offers/{offer.id}/refuse"
    response = owner.post(url, data={"version": offer.version, "reason": ""})
    assert response.status_code == 422
    assert net.offer_of(request_id).status == OfferStatus.OPEN
    other = owner.post(url, data={"version": offer.version, "reason": "other", "note": ""})
    assert other.status_code == 422 and net.offer_of(request_id).status == OfferStatus.OPEN
    long = owner.post(url, data={"version": offer.version, "reason": "other",
                                 "note": "x" * 1001})
    assert long.status_code == 422 and net.offer_of(request_id).status == OfferStatus.OPEN
    done = owner.post(url, data={"version": offer.version, "reason": "capacity",
                                 "note": "两人休假"})
    assert done.status_code == 302
    refused = net.offer_of(request_id)
    assert refused.status == OfferStatus.REFUSED and refused.refusal_note == "两人休假"
    assert net.request(request_id).status == RequestStatus.NEW
    _sweep(net, refused)
    # The dispatcher sees the refusal, and A no longer in the suggestion.
    page = _text(net.client(Role.HQ_DISPATCHER).get(f"/dispatch/requests/{request_id}"))
    assert "两人休假" in page and 'id="offer-history"' in page
    assert f'id="suggestion-{world.a.id}"' not in page


def _push_back(net, offer_id, minutes=120):
    """The offer was made `minutes` ago and its answer window has passed."""
    with net.app.app_context(), unscoped("the test moves the offer back in time"):
        row = db.session.get(Offer, offer_id)
        row.offered_at = row.offered_at - timedelta(minutes=minutes)
        row.expires_at = clock.now() - timedelta(minutes=1)
        db.session.commit()


def test_accepting_after_the_answer_window_is_refused_with_the_reason(net):
    request_id = net.call()
    offer = net.offer(request_id)
    _push_back(net, offer.id)
    owner = net.client(Role.AGENCY_OWNER)
    page = _text(owner.get(f"/dispatch/offers/{offer.id}"))
    assert "/accept" not in page
    response = owner.post(f"/dispatch/offers/{offer.id}/accept",
                          data={"version": offer.version})
    assert response.status_code == 422
    assert "time to answer this offer has passed" in _text(response)
    assert net.offer_of(request_id).status == OfferStatus.OPEN
    _no_customer(_text(response), "refused accept")
    with net.app.test_request_context(), unscoped("the tick"):
        assert offers.expire_offers() == 1
        db.session.commit()
    expired = net.offer_of(request_id)
    assert expired.status == OfferStatus.EXPIRED
    _sweep(net, expired)


def test_withdrawn_offer_leaves_nothing_and_only_the_dispatcher_withdraws(net):
    request_id = net.call()
    offer = net.offer(request_id)
    url = f"/dispatch/offers/{offer.id}/withdraw"
    assert net.client(Role.HQ_SERVICE).post(url, data={"version": offer.version}
                                            ).status_code == 403
    assert net.client(Role.AGENCY_OWNER).post(url, data={"version": offer.version}
                                              ).status_code == 403
    response = net.client(Role.HQ_DISPATCHER).post(url, data={"version": offer.version})
    assert response.status_code == 302
    withdrawn = net.offer_of(request_id)
    assert withdrawn.status == OfferStatus.WITHDRAWN
    assert net.request(request_id).status == RequestStatus.NEW
    _sweep(net, withdrawn)


# --- who may ----------------------------------------------------------------------------------


def test_another_agency_gets_404_for_the_offer_and_the_order(net):
    request_id = net.call()
    offer = net.offer(request_id)
    sibling = net.client(Role.AGENCY_OWNER, "a2")
    assert sibling.get(f"/dispatch/offers/{offer.id}").status_code == 404
    assert sibling.post(f"/dispatch/offers/{offer.id}/accept",
                        data={"version": offer.version}).status_code == 404
    assert offer.request_number not in _text(sibling.get("/dispatch/offers"))
    assert net.client(Role.AGENCY_STAFF).post(f"/dispatch/offers/{offer.id}/accept", data={
        "version": offer.version}).status_code == 302
    order_id = net.offer_of(request_id).work_order_id
    assert sibling.get(f"/dispatch/orders/{order_id}").status_code == 404
    assert sibling.post(f"/dispatch/orders/{order_id}/appointment", data={
        "version": "0", "engineer_id": net.engineer, **_window()}).status_code == 404
    assert net.count(Appointment) == 0


def test_hq_service_reads_offers_and_orders_but_never_answers(net):
    request_id = net.call()
    offer = net.offer(request_id)
    hq = net.client(Role.HQ_SERVICE)
    assert hq.get("/dispatch/offers").status_code == 200
    page = hq.get(f"/dispatch/offers/{offer.id}")
    assert page.status_code == 200 and "/accept" not in _text(page)
    assert hq.post(f"/dispatch/offers/{offer.id}/accept",
                   data={"version": offer.version}).status_code == 403
    assert hq.post(f"/dispatch/offers/{offer.id}/refuse",
                   data={"version": offer.version, "reason": "capacity"}).status_code == 403
    assert net.offer_of(request_id).status == OfferStatus.OPEN
    net.client(Role.AGENCY_OWNER).post(f"/dispatch/offers/{offer.id}/accept",
                                       data={"version": offer.version})
    order_id = net.offer_of(request_id).work_order_id
    page = hq.get(f"/dispatch/orders/{order_id}")
    assert page.status_code == 200 and 'id="appointment-form"' not in _text(page)
    assert hq.post(f"/dispatch/orders/{order_id}/appointment", data={
        "version": "0", "engineer_id": net.engineer, **_window()}).status_code == 403


def test_an_order_never_dispatched_has_no_dispatch_page(net, world, app):
    with app.app_context(), unscoped("test fixtures"):
        order_id = make_order(world.a, world.line).id
        db.session.commit()
    owner = net.client(Role.AGENCY_OWNER)
    assert owner.get(f"/dispatch/orders/{order_id}").status_code == 404
    assert owner.post(f"/dispatch/orders/{order_id}/appointment", data={
        "version": "0", "engineer_id": net.engineer, **_window()}).status_code == 404


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize("agency_id", ["", "abc", "-1", "0", "99999999999999999999",
                                       "987654321", "1 OR 1=1"])
def test_a_bad_agency_id_offers_nothing(net, agency_id):
    request_id = net.call()
    sr = net.request(request_id)
    response = net.client(Role.HQ_DISPATCHER).post(
        f"/dispatch/requests/{request_id}/offer",
        data={"agency_id": agency_id, "version": sr.version})
    assert 400 <= response.status_code < 500
    assert net.count(Offer) == 0 and net.request(request_id).status == RequestStatus.NEW


def test_an_agency_that_does_not_cover_the_address_is_refused(net, world):
    request_id = net.call()
    sr = net.request(request_id)
    response = net.client(Role.HQ_DISPATCHER).post(
        f"/dispatch/requests/{request_id}/offer",
        data={"agency_id": world.b.id, "version": sr.version})
    assert response.status_code == 422 and "cannot take this request" in _text(response)
    assert net.count(Offer) == 0


def test_a_second_click_on_offer_changes_nothing(net, world):
    request_id = net.call()
    sr = net.request(request_id)
    client = net.client(Role.HQ_DISPATCHER)
    data = {"agency_id": world.a.id, "version": sr.version}
    assert client.post(f"/dispatch/requests/{request_id}/offer", data=data).status_code == 302
    assert client.post(f"/dispatch/requests/{request_id}/offer", data=data).status_code == 422
    assert net.count(Offer) == 1


@pytest.fixture
def dispatched(net):
    request_id = net.call()
    offer = net.offer(request_id)
    net.client(Role.AGENCY_OWNER).post(f"/dispatch/offers/{offer.id}/accept",
                                       data={"version": offer.version})
    return f"/dispatch/orders/{net.offer_of(request_id).work_order_id}/appointment"


@pytest.mark.parametrize("changes,message", [
    (_window(days=-1), "cannot start in the past"),
    (_window(start=time(12, 0), end=time(10, 0)), "must end after it starts"),
    (_window(start=time(10, 0), end=time(10, 0)), "must end after it starts"),
    ({"day": "0001-01-01", "time_from": "00:10", "time_to": "02:00"}, "century"),
    ({"day": "not a day", "time_from": "10:00", "time_to": "12:00"}, None),
    ({"day": "2030-01-01", "time_from": "25:00", "time_to": "26:00"}, None),
    ({"note": "x" * 1001}, None),
    ({"engineer_id": "abc"}, None),
    ({"engineer_id": "987654321"}, "engineer of your agency"),
    ({"version": "abc"}, None),
])
def test_hostile_appointments_write_nothing(net, dispatched, changes, message):
    data = {"version": "0", "engineer_id": net.engineer, **_window(), **changes}
    response = net.client(Role.AGENCY_OWNER).post(dispatched, data=data)
    assert 400 <= response.status_code < 500, response.status_code
    if message:
        assert message in _text(response)
    assert net.count(Appointment) == 0


def test_a_foreign_engineer_cannot_be_booked(net, dispatched):
    response = net.client(Role.AGENCY_OWNER).post(dispatched, data={
        "version": "0", "engineer_id": net.foreign_engineer, **_window()})
    assert response.status_code == 422 and net.count(Appointment) == 0
    assert not re.search("CANARY-B", _text(response))


def test_bad_offer_ids_are_404(net):
    owner = net.client(Role.AGENCY_OWNER)
    for url in ("/dispatch/offers/987654321", "/dispatch/orders/987654321"):
        assert owner.get(url).status_code == 404
    assert owner.post("/dispatch/offers/987654321/accept", data={}).status_code == 404
    assert owner.get("/dispatch/offers/abc").status_code == 404
    assert owner.get("/dispatch/offers?status=%27;drop").status_code == 200



# --- constant queries ---------------------------------------------------------------------------


def _statements(client, url, query_counter) -> int:
    with query_counter:
        assert client.get(url).status_code == 200
    return query_counter.count


def test_the_pages_query_a_constant_number_of_times(net, world, query_counter):
    """One offer or five, one appointment or three: the same number of statements."""
    owner, dispatcher = net.client(Role.AGENCY_OWNER), net.client(Role.HQ_DISPATCHER)
    first = net.call("SN-Q-0")
    offer = net.offer(first)
    owner.post(f"/dispatch/offers/{offer.id}/refuse", data={"version": offer.version,
                                                             "reason": "capacity"})
    before = {url: _statements(c, url, query_counter) for c, url in (
        (owner, "/dispatch/offers"), (dispatcher, "/dispatch/offers"),
        (dispatcher, f"/dispatch/requests/{first}"), (dispatcher, "/dispatch/requests/"),
        (dispatcher, "/dispatch/requests/?status=all"))}
    for n in range(1, 5):
        request_id = net.call(f"SN-Q-{n}")
        made = net.offer(request_id)
        if n % 2:
            owner.post(f"/dispatch/offers/{made.id}/refuse",
                       data={"version": made.version, "reason": "area"})
    with net.app.app_context(), unscoped("the test offers the first request again"):
        _withdraw_and_reoffer(net, first)
    after = {url: _statements(c, url, query_counter) for c, url in (
        (owner, "/dispatch/offers"), (dispatcher, "/dispatch/offers"),
        (dispatcher, f"/dispatch/requests/{first}"), (dispatcher, "/dispatch/requests/"),
        (dispatcher, "/dispatch/requests/?status=all"))}
    assert after == before

    accepted_request = net.call("SN-Q-9")
    made = net.offer(accepted_request)
    owner.post(f"/dispatch/offers/{made.id}/accept", data={"version": made.version})
    order_url = f"/dispatch/orders/{net.offer_of(accepted_request).work_order_id}"
    owner.post(f"{order_url}/appointment",
               data={"version": "0", "engineer_id": net.engineer, **_window()})
    one = _statements(owner, order_url, query_counter)
    for days in (2, 3):
        owner.post(f"{order_url}/appointment", data={
            "version": str(_current_id(net)), "engineer_id": net.engineer,
            "reason": "agency", **_window(days=days)})
    assert net.count(Appointment) == 3
    assert _statements(owner, order_url, query_counter) == one


def _withdraw_and_reoffer(net, request_id):
    """Two more rows in the first request's history: offered again and withdrawn, twice."""
    for _ in range(2):
        with net.app.test_request_context():
            sr = db.session.get(ServiceRequest, request_id)
            made = offers.make_offer(sr, net.world.a.id,
                                     acting_user=net.world.user(Role.HQ_DISPATCHER))
            offers.withdraw_offer(made, acting_user=net.world.user(Role.HQ_DISPATCHER),
                                  seen_version=made.version)
            db.session.commit()
