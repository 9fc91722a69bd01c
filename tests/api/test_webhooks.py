"""Webhooks against a real local HTTP server: deliveries written with the change and sent
after it, signed; a 500 tried again after its delay and given up after 24 hours; no delivery
to a host off the allowed list (a name resolving to loopback included), no redirect
followed; agency A's events never in agency B's deliveries; the pages and the read API show
each manager their own endpoints only (another's is a 404)."""
import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from sqlalchemy import select

from api.webhooks import services
from api.webhooks.delivery import Refused, check_url, deliver_pending
from api.webhooks.models import (
    DELIVERED,
    FAILED,
    GIVEN_UP,
    PENDING,
    WebhookDelivery,
    WebhookEndpoint,
)
from api.webhooks.policy import Owner
from inbox.reminders import tick
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import caller
from tests.dispatch.test_offers import FRIDAY_1700, NAME, PHONE, STREET, Net
from tests.factories import sign_in

ALL_EVENTS = ["offer.made", "offer.accepted", "offer.refused", "sla.warning", "sla.breached"]


class Receiver:
    """A local HTTP server that records each POST and answers as planned."""

    def __init__(self):
        self.received: list[dict] = []
        self.plan: list[int] = []  # statuses to answer, in turn; then 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                outer.received.append({"path": self.path, "headers": dict(self.headers),
                                       "body": self.rfile.read(length)})
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{outer.port}/target")
                else:
                    self.send_response(outer.plan.pop(0) if outer.plan else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(app):
    saved = {k: app.config.get(k) for k in ("PORTAL_WEBHOOK_ALLOWED_HOSTS", "WEBHOOK_DELIVERY")}
    app.config.update(PORTAL_WEBHOOK_ALLOWED_HOSTS="127.0.0.1", WEBHOOK_DELIVERY="manual")
    server = Receiver()
    yield server
    server.close()
    app.config.update(saved)


@pytest.fixture
def friday(ctx):
    with time_machine.travel(FRIDAY_1700, tick=False) as traveller:
        yield traveller


def _endpoint(agency_id, url, events=ALL_EVENTS, *, actor=None) -> WebhookEndpoint:
    with unscoped("the test registers an endpoint"):
        made = services.create_endpoint(Owner(agency_id), {
            "name": f"hook {agency_id}", "url": url, "events": events}, acting_user=actor)
        db.session.commit()
    return made


def _deliveries(endpoint=None) -> list[WebhookDelivery]:
    with unscoped("the test reads the outbox"):
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if endpoint is not None:
            stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint.id)
        rows = list(db.session.scalars(stmt))
        for row in rows:
            db.session.refresh(row)
        return rows


def _verify(secret: str, received: dict) -> dict:
    header = received["headers"]["X-Portal-Signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + received["body"],
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), "the signature does not verify"
    return json.loads(received["body"])


# --- delivery -----------------------------------------------------------------------------------


def test_an_offer_is_delivered_signed_to_hq_and_its_agency_never_to_another(
        ctx, world, receiver, friday):
    net = Net(world)
    hq = _endpoint(None, receiver.url("/hq"))
    mine = _endpoint(world.a.id, receiver.url("/a"))
    other = _endpoint(world.b.id, receiver.url("/b"))
    offer = net.offer(net.call())
    db.session.commit()
    # Written with the change, nothing sent yet.
    assert [d.status for d in _deliveries()] == [PENDING, PENDING]
    assert _deliveries(other) == []

    counts = deliver_pending()
    assert counts == {"delivered": 2, "retry": 0, "given_up": 0}
    assert {r["path"] for r in receiver.received} == {"/hq", "/a"}
    for received, endpoint in ((r, hq if r["path"] == "/hq" else mine)
                               for r in receiver.received):
        body = _verify(endpoint.secret, received)
        assert body["event"] == "offer.made" and received["headers"]["X-Portal-Event"] == \
            "offer.made"
        assert body["data"]["offer_id"] == offer.id
        assert body["data"]["request_number"] == offer.request_number
        assert body["data"]["agency_id"] == world.a.id and body["data"]["status"] == "open"
        text = received["body"].decode()
        for secret in (NAME, "王小明", PHONE, STREET, "CANARY"):
            assert secret not in text
    assert all(d.status == DELIVERED and d.attempts == 1 for d in _deliveries())

    # A's answer reaches A's and HQ's endpoints again; B's never hears of A.
    net.accept(offer)
    db.session.commit()
    deliver_pending()
    assert [json.loads(d.body)["event"] for d in _deliveries(mine)] == ["offer.made",
                                                                        "offer.accepted"]
    assert _deliveries(other) == [] and not any(r["path"] == "/b" for r in receiver.received)


def test_a_500_is_tried_again_after_its_delay_then_delivered(ctx, world, receiver, friday):
    net = Net(world)
    hq = _endpoint(None, receiver.url())
    net.offer(net.call())
    db.session.commit()
    receiver.plan = [500]
    assert deliver_pending() == {"delivered": 0, "retry": 1, "given_up": 0}
    [delivery] = _deliveries(hq)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (FAILED, 1, 500)
    assert delivery.next_attempt_at == FRIDAY_1700 + timedelta(minutes=1)
    assert deliver_pending()["retry"] == 0 and len(receiver.received) == 1  # not due yet

    friday.move_to(FRIDAY_1700 + timedelta(minutes=1, seconds=1))
    assert deliver_pending()["delivered"] == 1
    [delivery] = _deliveries(hq)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DELIVERED, 2, None)
    first, second = receiver.received
    assert first["body"] == second["body"]  # the same event, the same bytes
    assert first["headers"]["X-Portal-Signature"] != second["headers"]["X-Portal-Signature"]
    _verify(hq.secret, second)


def test_a_delivery_is_given_up_after_24_hours_of_failures(ctx, world, receiver, friday):
    net = Net(world)
    hq = _endpoint(None, receiver.url())
    net.offer(net.call())
    db.session.commit()
    waits = []
    for _ in range(100):
        receiver.plan = [503]
        deliver_pending()
        [delivery] = _deliveries(hq)
        if delivery.status == GIVEN_UP:
            break
        waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
        friday.move_to(delivery.next_attempt_at)
    assert delivery.status == GIVEN_UP and delivery.next_attempt_at is None
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(waits) == timedelta(hours=1)
    assert delivery.last_attempt_at - delivery.created_at <= timedelta(hours=24)
    assert delivery.last_attempt_at - delivery.created_at >= timedelta(hours=23)
    tries = len(receiver.received)
    friday.move_to(delivery.created_at + timedelta(days=3))
    deliver_pending()
    assert len(receiver.received) == tries  # given up: never again


def test_a_redirect_is_not_followed(ctx, world, receiver, friday):
    net = Net(world)
    hq = _endpoint(None, receiver.url("/redirect"))
    net.offer(net.call())
    db.session.commit()
    deliver_pending()
    assert [r["path"] for r in receiver.received] == ["/redirect"]
    [delivery] = _deliveries(hq)
    assert (delivery.status, delivery.last_status_code) == (FAILED, 302)


# --- where deliveries may go ----------------------------------------------------------------


def test_hosts_off_the_allowed_list_are_refused(ctx, app, receiver):
    port = receiver.port
    for url in (f"http://localhost:{port}/", "http://10.1.2.3/", "http://169.254.169.254/",
                f"http://user:pw@127.0.0.1:{port}/", f"ftp://127.0.0.1:{port}/",
                "http://[::1]/", "http://2130706433/", "not a url"):
        with pytest.raises(Refused):
            check_url(url)
    assert check_url(receiver.url()).address == "127.0.0.1"
    # A listed name that resolves to loopback: refused unless the address is listed too.
    app.config["PORTAL_WEBHOOK_ALLOWED_HOSTS"] = "localhost"
    with pytest.raises(Refused, match="loopback"):
        check_url(f"http://localhost:{port}/")
    app.config["PORTAL_WEBHOOK_ALLOWED_HOSTS"] = "localhost, 127.0.0.0/8, ::1"
    assert check_url(f"http://localhost:{port}/").address in ("127.0.0.1", "::1")
    app.config["PORTAL_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    with pytest.raises(DomainError) as refused, unscoped("the test registers an endpoint"):
        services.create_endpoint(Owner(None), {"name": "x", "url": f"http://localhost:{port}/",
                                               "events": ["offer.made"]}, acting_user=None)
    assert refused.value.field == "url"


def test_the_list_is_checked_again_before_each_try(ctx, app, world, receiver, friday):
    net = Net(world)
    hq = _endpoint(None, receiver.url())
    net.offer(net.call())
    db.session.commit()
    app.config["PORTAL_WEBHOOK_ALLOWED_HOSTS"] = "hooks.example.com"
    deliver_pending()
    assert receiver.received == []
    [delivery] = _deliveries(hq)
    assert delivery.status == FAILED and "allowed webhook hosts" in delivery.last_error


# --- SLA events from the tick ---------------------------------------------------------------


def test_sla_warnings_come_once_from_the_tick_to_hq_and_the_agency(ctx, world, receiver,
                                                                   friday):
    from dispatch.sla import SlaClock

    net = Net(world)
    hq = _endpoint(None, receiver.url(), ["sla.warning"])
    mine = _endpoint(world.a.id, receiver.url(), ["sla.warning"])
    other = _endpoint(world.b.id, receiver.url(), ["sla.warning"])
    _request, _offer, order = net.accepted_order()
    db.session.commit()
    with unscoped("the test reads the clocks"):
        warn_at = min(c.warn_at for c in db.session.scalars(
            select(SlaClock).where(SlaClock.work_order_id == order.id)))
    friday.move_to(warn_at + timedelta(minutes=1))
    for _ in range(2):  # the tick runs again: nothing twice
        tick()  # the workplace's tick raises the SLA events in its transaction
        db.session.commit()
    made = _deliveries(mine)
    assert made and all(json.loads(d.body)["data"]["work_order_id"] == order.id for d in made)
    assert len({d.dedupe_key for d in made}) == len(made)
    assert len(_deliveries(hq)) >= len(made) and _deliveries(other) == []


# --- pages and the read API -----------------------------------------------------------------


def test_pages_show_each_manager_their_own_endpoints_only(app, client, world, receiver):
    with app.app_context():
        admin = world.user(Role.HQ_ADMIN)
        hq = _endpoint(None, receiver.url("/hq"), actor=admin)
        theirs = _endpoint(world.b.id, receiver.url("/b"))
        sibling = _endpoint(world.a2.id, receiver.url("/s"))
    owner = world.user(Role.AGENCY_OWNER)
    sign_in(client, owner)
    made = client.post("/webhooks/new", data={"name": "Shop", "url": receiver.url("/a"),
                                               "events": ["offer.made", "sla.breached"]})
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    with app.app_context(), unscoped("the test reads the endpoint"):
        mine = db.session.scalars(select(WebhookEndpoint).where(
            WebhookEndpoint.name == "Shop")).one()
        assert mine.agency_id == world.a.id and mine.event_set == {"offer.made",
                                                                   "sla.breached"}
    assert client.get("/webhooks/new").status_code == 200
    assert client.get(f"/webhooks/{mine.id}/deliveries").status_code == 200
    page = client.get(f"/webhooks/{mine.id}")
    assert page.status_code == 200 and mine.secret in page.get_data(as_text=True)
    listing = client.get("/webhooks/").get_data(as_text=True)
    assert "Shop" in listing and receiver.url("/hq") not in listing
    assert receiver.url("/b") not in listing
    for foreign in (hq, theirs, sibling):
        assert client.get(f"/webhooks/{foreign.id}").status_code == 404
        assert client.get(f"/webhooks/{foreign.id}/deliveries").status_code == 404
        assert client.post(f"/webhooks/{foreign.id}/deactivate",
                           data={"version": 1}).status_code == 404
    refused = client.post("/webhooks/new", data={"name": "Bad", "url": "http://localhost/",
                                                  "events": ["offer.made"]})
    assert refused.status_code == 400

    staff = app.test_client()
    sign_in(staff, world.user(Role.AGENCY_STAFF))
    assert staff.get("/webhooks/").status_code == 403

    hq_client = app.test_client()
    sign_in(hq_client, admin)
    seen = hq_client.get(f"/webhooks/{mine.id}")
    assert seen.status_code == 200 and mine.secret not in seen.get_data(as_text=True)
    assert hq.secret in hq_client.get(f"/webhooks/{hq.id}").get_data(as_text=True)

    api = caller(app, app.test_client(), owner)
    listed = api.get("/api/v1/webhooks/")
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json["items"]] == [mine.id]
    assert "secret" not in listed.json["items"][0]
    assert api.get(f"/api/v1/webhooks/{hq.id}").status_code == 404
    assert api.get(f"/api/v1/webhooks/{theirs.id}/deliveries").status_code == 404


def test_a_delivery_is_sent_again_on_request_and_another_agencys_is_a_404(
        app, client, world, receiver):
    with app.app_context(), time_machine.travel(FRIDAY_1700, tick=False):
        net = Net(world)
        mine = _endpoint(world.a.id, receiver.url("/a"))
        theirs = _endpoint(world.b.id, receiver.url("/b"))
        net.offer(net.call())
        db.session.commit()
        deliver_pending()
        [first] = _deliveries(mine)
        with unscoped("the test makes a delivery of B's"):
            foreign = WebhookDelivery(agency_id=world.b.id, endpoint_id=theirs.id,
                                      event="offer.made", event_id="f" * 32, body="{}",
                                      status=DELIVERED)
            db.session.add(foreign)
            db.session.commit()
            foreign_id = foreign.id
    sign_in(client, world.user(Role.AGENCY_OWNER))
    assert client.get(f"/webhooks/deliveries/{first.id}").status_code == 200
    assert client.get(f"/webhooks/deliveries/{foreign_id}").status_code == 404
    assert client.post(f"/webhooks/deliveries/{foreign_id}/redeliver").status_code == 404
    again = client.post(f"/webhooks/deliveries/{first.id}/redeliver")
    assert again.status_code == 302
    with app.app_context():
        first_again, second = _deliveries(mine)
        assert second.redelivery_of_id == first.id and second.event_id == first.event_id
        assert second.body == first.body and second.status == PENDING


@pytest.mark.postgres
def test_row_level_security_shows_an_agency_its_own_endpoints_and_deliveries_only(
        ctx, world, receiver):
    from sqlalchemy import text

    from portal.tenancy import agency_scope, raw_sql_allowed, scoped

    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    hq = _endpoint(None, receiver.url("/hq"))
    mine = _endpoint(world.a.id, receiver.url("/a"))
    _endpoint(world.b.id, receiver.url("/b"))
    with scoped(agency_scope(world.a.id)), raw_sql_allowed("the test checks the wall itself"):
        seen = db.session.execute(text("SELECT id FROM webhook_endpoints")).scalars().all()
        assert seen == [mine.id]
        with pytest.raises(Exception), db.session.begin_nested():  # noqa: B017
            db.session.execute(text(
                "INSERT INTO webhook_deliveries (agency_id, endpoint_id, event, event_id, body, "
                "status, attempts, created_at) VALUES (NULL, :e, 'offer.made', 'x', '{}', "
                "'pending', 0, now())"), {"e": hq.id})  # HQ's row: refused
