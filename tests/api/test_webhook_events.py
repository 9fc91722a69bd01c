"""The settlement and evaluation events of the webhooks, through the real services, pages and
API: a settlement approved (on the review page) and paid (by the ERP through the API, or on the
page) writes one pending delivery per subscribed endpoint — HQ's and the settlement's own
agency's, never a sibling's or a foreign agency's — in the change's transaction (a change
rolled back writes none), amounts as decimal strings and nothing personal, delivered signed to
a local receiver; a quarter's publication tells HQ of the quarter and each agency of its own
result only; an inactive endpoint and one not subscribed to the event get nothing."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from api.webhooks import services as webhook_services
from api.webhooks.delivery import deliver_pending
from api.webhooks.models import (
    DELIVERED,
    GIVEN_UP,
    PENDING,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal import clock
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import TenantSession, unscoped
from settlement import review
from settlement.models import Settlement, Status
from tests.api import test_webhooks as _webhooks
from tests.api.helpers import caller
from tests.api.test_settlements import _claim
from tests.api.test_webhooks import _deliveries, _endpoint, _verify
from tests.evaluation import factories as ef
from tests.evaluation.conftest import fast_pdfs  # noqa: F401 - a fixture
from tests.factories import sign_in

receiver = _webhooks.receiver  # the fixture: a local HTTP server that records each POST

SETTLEMENT_EVENTS = ["settlement.approved", "settlement.paid"]
ENVELOPE = {"id", "event", "occurred_at", "data"}
SETTLEMENT_KEYS = {"settlement_id", "number", "agency_id", "agency_code", "year", "month",
                   "status", "line_count", "claimed_total", "approved_total", "approved_at",
                   "paid_at", "paid_on", "payment_reference", "version"}
QUARTER_KEYS = {"quarter_id", "year", "quarter", "status", "agency_count", "published_at",
                "appeal_deadline_at"}
RESULT_KEYS = {"result_id", "agency_id", "score", "grade", "rank_national", "rank_national_of",
               "rank_region", "rank_region_of"}
AMOUNT = re.compile(r"^-?\d+\.\d{2}$")
# The settlement factories' customer (tests/settlement/factories.order).
CUSTOMER = ("张三", "13800001111")


def _personal(world) -> list[str]:
    """Text no payload may hold: the agencies' names, addresses, contacts and bank accounts,
    the users' names and e-mail addresses, the customers' names and phones, the canaries."""
    texts = {"CANARY", *CUSTOMER}
    for agency in (world.a, world.a2, world.b):
        texts |= {agency.legal_name, agency.address, agency.contact_name, agency.contact_phone,
                  agency.bank_account}
    for users in (world.users, world.b_users, world.a2_users):
        for user in users.values():
            texts |= {user.name, user.email}
    return sorted(t for t in texts if t)


def _no_personal_data(world, body: str) -> None:
    for text in _personal(world):
        assert text not in body, text


def _switched_off(endpoint):
    with unscoped("the test switches an endpoint off"):
        endpoint = db.session.get(WebhookEndpoint, endpoint.id)  # this session's row
        webhook_services.deactivate_endpoint(endpoint, acting_user=None,
                                             seen_version=endpoint.version)
        db.session.commit()
        assert endpoint.active is False
    return endpoint


class Hooks:
    """Every kind of endpoint an event could wrongly reach, on one local receiver."""

    def __init__(self, app, world, receiver, events):
        with app.app_context():
            self.hq = _endpoint(None, receiver.url("/hq"), events)
            self.own = _endpoint(world.a.id, receiver.url("/own"), events)
            self.sibling = _endpoint(world.a2.id, receiver.url("/sibling"), events)
            self.foreign = _endpoint(world.b.id, receiver.url("/foreign"), events)
            self.hq_off = _switched_off(_endpoint(None, receiver.url("/hq-off"), events))
            self.own_off = _switched_off(_endpoint(world.a.id, receiver.url("/own-off"),
                                                   events))
            others = ["offer.made", "offer.accepted", "sla.warning", "sla.breached"]
            self.hq_deaf = _endpoint(None, receiver.url("/hq-deaf"), others)
            self.own_deaf = _endpoint(world.a.id, receiver.url("/own-deaf"), others)

    @property
    def silent(self):
        return (self.sibling, self.foreign, self.hq_off, self.own_off, self.hq_deaf,
                self.own_deaf)

    def by_path(self, path):
        return {f"/{k.replace('_', '-')}": v for k, v in vars(self).items()}[path]


def _deliver(app) -> dict:
    with app.app_context():
        return deliver_pending()


def _events(app, endpoint) -> list[str]:
    with app.app_context():
        return [d.event for d in _deliveries(endpoint)]


def _all_deliveries(app) -> list[WebhookDelivery]:
    with app.app_context():
        return _deliveries()


def _count(app) -> int:
    with app.app_context(), unscoped("the test counts the outbox"):
        return db.session.scalar(select(func.count(WebhookDelivery.id)))


def _settlement(app, sid) -> Settlement:
    with app.app_context(), unscoped("the test reads the settlement"):
        return db.session.scalars(select(Settlement).where(Settlement.id == sid)).one()


def _check_settlement_body(world, body: dict, sid: int, event: str, status: str) -> dict:
    assert set(body) == ENVELOPE and body["event"] == event
    data = body["data"]
    assert set(data) == SETTLEMENT_KEYS  # nothing else: no personal field can slip in
    assert data["settlement_id"] == sid and data["status"] == status
    assert data["agency_id"] == world.a.id and data["agency_code"] == world.a.code
    for key in ("claimed_total", "approved_total"):
        assert isinstance(data[key], str) and AMOUNT.match(data[key]), (key, data[key])
    assert data["claimed_total"] == "130.00" and data["approved_total"] == "130.00"
    return data


def _approve_on_the_page(app, world, sid) -> None:
    reviewer = app.test_client()
    sign_in(reviewer, world.user(Role.HQ_SETTLEMENT))
    for action in ("approve-clean", "approve"):
        response = reviewer.post(f"/settlements/{sid}/{action}",
                                 data={"version": _settlement(app, sid).version})
        assert response.status_code == 302, (action, response.get_data(as_text=True)[:2000])
    assert _settlement(app, sid).status == Status.APPROVED


# --- (1) a settlement approved, then paid -----------------------------------------------------


@pytest.mark.usefixtures("no_grade_source")
def test_approved_on_the_page_and_paid_by_the_erp_reach_hq_and_the_own_agency_only(
        app, client, world, receiver):
    hooks = Hooks(app, world, receiver, SETTLEMENT_EVENTS)
    sid = _claim(app, world, world.a, approved=False)
    assert _count(app) == 0  # opening and submitting are no events

    _approve_on_the_page(app, world, sid)
    # Written with the approval, one per subscribed endpoint, nothing sent yet.
    approved = _all_deliveries(app)
    assert sorted((d.endpoint_id, d.event, d.status) for d in approved) == sorted(
        [(hooks.hq.id, "settlement.approved", PENDING),
         (hooks.own.id, "settlement.approved", PENDING)])
    assert len({d.event_id for d in approved}) == 1  # one event, one id for every endpoint
    assert receiver.received == []
    for endpoint in hooks.silent:
        assert _events(app, endpoint) == []

    assert _deliver(app) == {"delivered": 2, "retry": 0, "given_up": 0}
    assert sorted(r["path"] for r in receiver.received) == ["/hq", "/own"]
    for received in receiver.received:
        body = _verify(hooks.by_path(received["path"]).secret, received)
        assert received["headers"]["X-Portal-Event"] == "settlement.approved"
        data = _check_settlement_body(world, body, sid, "settlement.approved", "approved")
        assert data["approved_at"] and data["paid_at"] is None
        assert data["payment_reference"] is None
        _no_personal_data(world, received["body"].decode())
        signed = int(dict(p.split("=", 1) for p in
                          received["headers"]["X-Portal-Signature"].split(","))["t"])
        assert abs(signed - clock.now().timestamp()) < 300

    # The ERP marks it paid through the API: the paid event, again to the same two only.
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    etag = erp.get(f"/api/v1/settlements/{sid}").headers["ETag"]
    headers = {"If-Match": etag, "Idempotency-Key": "erp-pay-webhooks"}
    data = {"payment_reference": "CMB-2026-0042", "paid_on": clock.local_today().isoformat()}
    paid = erp.post(f"/api/v1/settlements/{sid}/paid", json=data, headers=headers)
    assert paid.status_code == 200, paid.get_data(as_text=True)
    again = erp.post(f"/api/v1/settlements/{sid}/paid", json=data, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert _events(app, hooks.hq) == ["settlement.approved", "settlement.paid"]
    assert _events(app, hooks.own) == ["settlement.approved", "settlement.paid"]
    for endpoint in hooks.silent:
        assert _events(app, endpoint) == []  # the replay wrote nothing either

    receiver.received.clear()
    assert _deliver(app) == {"delivered": 2, "retry": 0, "given_up": 0}
    assert sorted(r["path"] for r in receiver.received) == ["/hq", "/own"]
    for received in receiver.received:
        body = _verify(hooks.by_path(received["path"]).secret, received)
        data = _check_settlement_body(world, body, sid, "settlement.paid", "paid")
        assert data["payment_reference"] == "CMB-2026-0042"
        assert data["paid_on"] == clock.local_today().isoformat() and data["paid_at"]
        assert data["version"] == _settlement(app, sid).version
        _no_personal_data(world, received["body"].decode())
    assert all(d.status == DELIVERED for d in _all_deliveries(app))


@pytest.mark.usefixtures("no_grade_source")
def test_a_rolled_back_approval_writes_no_delivery(app, world, receiver):
    hooks = Hooks(app, world, receiver, SETTLEMENT_EVENTS)
    sid = _claim(app, world, world.a, approved=False)
    with app.test_request_context(), unscoped("the test approves and changes its mind"):
        settlement = db.session.get(Settlement, sid)
        hq_user = world.user(Role.HQ_SETTLEMENT)
        review.approve_clean_lines(settlement, acting_user=hq_user,
                                   seen_version=settlement.version)
        assert review.approve_settlement(settlement, acting_user=hq_user,
                                         seen_version=settlement.version)
        # In the change's transaction: there, flushed, before any commit.
        inside = db.session.scalars(select(WebhookDelivery.endpoint_id)).all()
        assert sorted(inside) == sorted([hooks.hq.id, hooks.own.id])
        db.session.rollback()
        assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 0
    assert _count(app) == 0 and _settlement(app, sid).status == Status.SUBMITTED
    assert _deliver(app) == {"delivered": 0, "retry": 0, "given_up": 0}
    assert receiver.received == []


@pytest.mark.usefixtures("no_grade_source")
def test_a_payment_whose_commit_fails_writes_no_delivery(app, client, world, receiver):
    """The API's payment runs, its deliveries are in the transaction, then the commit fails:
    the settlement stays approved and the outbox holds no paid event."""
    hooks = Hooks(app, world, receiver, SETTLEMENT_EVENTS)
    sid = _claim(app, world, world.a)
    before = _count(app)
    assert before == 2  # the approval's (HQ and own)
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    etag = erp.get(f"/api/v1/settlements/{sid}").headers["ETag"]
    seen = []

    def fail_once(session):
        paying = any(isinstance(row, Settlement) and row.id == sid and row.status == Status.PAID
                     for row in list(session.identity_map.values()))
        if seen or not paying:
            return  # the token's bookkeeping, or after the one failure
        with unscoped("the test looks inside the transaction"):
            seen.append(sorted(session.execute(
                select(WebhookDelivery.endpoint_id).where(
                    WebhookDelivery.event == "settlement.paid")).scalars()))
        raise RuntimeError("the database went away at the commit")

    sa_event.listen(TenantSession, "before_commit", fail_once)
    try:
        response = erp.post(f"/api/v1/settlements/{sid}/paid",
                            json={"payment_reference": "CMB-LOST-1"}, headers={"If-Match": etag})
        assert response.status_code == 500  # the API's error answer, after its rollback
    finally:
        sa_event.remove(TenantSession, "before_commit", fail_once)
    assert seen == [sorted([hooks.hq.id, hooks.own.id])]  # they were written with the change
    assert _count(app) == before and _settlement(app, sid).status == Status.APPROVED
    assert "settlement.paid" not in _events(app, hooks.hq)


@pytest.mark.usefixtures("no_grade_source")
def test_a_refused_payment_writes_no_delivery(app, client, world, receiver):
    hooks = Hooks(app, world, receiver, SETTLEMENT_EVENTS)
    sid = _claim(app, world, world.a)
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    etag = erp.get(f"/api/v1/settlements/{sid}").headers["ETag"]
    future = (clock.local_today() + timedelta(days=3)).isoformat()
    response = erp.post(f"/api/v1/settlements/{sid}/paid",
                        json={"payment_reference": "CMB-1", "paid_on": future},
                        headers={"If-Match": etag})
    assert response.status_code == 422
    assert _events(app, hooks.hq) == ["settlement.approved"]
    assert _events(app, hooks.own) == ["settlement.approved"]


# --- (3) inactive and unsubscribed endpoints --------------------------------------------------


@pytest.mark.usefixtures("no_grade_source")
def test_paid_on_the_page_skips_inactive_and_unsubscribed_endpoints(app, world, receiver):
    """Each endpoint hears exactly the events it subscribes to, while active: one subscribed
    to the payment only never hears of the approval; one switched off after the event was
    written is not sent it (the delivery is given up)."""
    hooks = Hooks(app, world, receiver, SETTLEMENT_EVENTS)
    with app.app_context():
        paid_only = _endpoint(None, receiver.url("/paid-only"), ["settlement.paid"])
        own_approved_only = _endpoint(world.a.id, receiver.url("/own-approved-only"),
                                      ["settlement.approved"])
        late_off = _endpoint(world.a.id, receiver.url("/late-off"), SETTLEMENT_EVENTS)
    sid = _claim(app, world, world.a)  # approved through the services
    reviewer = app.test_client()
    sign_in(reviewer, world.user(Role.HQ_SETTLEMENT))
    response = reviewer.post(f"/settlements/{sid}/pay", data={
        "version": _settlement(app, sid).version, "payment_reference": "CMB-77",
        "paid_on": clock.local_today().isoformat()})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]

    assert _events(app, paid_only) == ["settlement.paid"]
    assert _events(app, own_approved_only) == ["settlement.approved"]
    assert _events(app, late_off) == ["settlement.approved", "settlement.paid"]
    for endpoint in hooks.silent:
        assert _events(app, endpoint) == []

    with app.app_context():
        _switched_off(late_off)
    counts = _deliver(app)
    assert counts == {"delivered": 6, "retry": 0, "given_up": 2}
    paths = sorted(r["path"] for r in receiver.received)
    assert paths == sorted(["/hq", "/hq", "/own", "/own", "/paid-only", "/own-approved-only"])
    with app.app_context():
        assert {d.status for d in _deliveries(late_off)} == {GIVEN_UP}


# --- (2) a quarter published --------------------------------------------------------------------


def _evaluated(world):
    """Orders of the evaluated quarter for A, A2 and B (different numbers: different scores)."""
    for agency, count, late in ((world.a, 14, 0), (world.a2, 12, 6), (world.b, 13, 3)):
        for n in range(count):
            ef.order(agency, world.line, hours=30 if n < late else 1,
                     text=f"CANARY-{agency.code}")


@pytest.mark.usefixtures("fast_pdfs")
def test_publishing_a_quarter_tells_hq_of_it_and_each_agency_its_own_result(
        ctx, world, receiver):
    events = ["quarter.published"]
    hq = _endpoint(None, receiver.url("/hq"), events)
    endpoints = {agency.id: _endpoint(agency.id, receiver.url(f"/{agency.code}"), events)
                 for agency in (world.a, world.a2, world.b)}
    off = _switched_off(_endpoint(world.a.id, receiver.url("/off"), events))
    hq_deaf = _endpoint(None, receiver.url("/hq-deaf"), ["settlement.approved"])
    own_deaf = _endpoint(world.a.id, receiver.url("/own-deaf"), ["settlement.paid"])
    with unscoped("HQ evaluates the quarter"):
        _evaluated(world)
        quarter = ef.computed()
        assert _deliveries() == []  # computing is no publication
        ef.published()
        db.session.commit()
        results = {agency.id: ef.result_of(quarter, agency)
                   for agency in (world.a, world.a2, world.b)}
        quarter = db.session.get(type(quarter), quarter.id)
    assert quarter.status == "published"
    for endpoint in (off, hq_deaf, own_deaf):
        assert _deliveries(endpoint) == []
    made = _deliveries()
    assert sorted(d.endpoint_id for d in made) == sorted([hq.id, *(e.id for e in
                                                                   endpoints.values())])
    assert {d.event for d in made} == {"quarter.published"} and len({d.event_id
                                                                     for d in made}) == 1
    for agency_id, endpoint in endpoints.items():
        [delivery] = _deliveries(endpoint)
        assert delivery.agency_id == agency_id  # the row is the agency's, like its endpoint

    assert deliver_pending() == {"delivered": 4, "retry": 0, "given_up": 0}
    by_path = {r["path"]: r for r in receiver.received}
    assert set(by_path) == {"/hq", *(f"/{a.code}" for a in (world.a, world.a2, world.b))}

    body = _verify(hq.secret, by_path["/hq"])
    assert set(body) == ENVELOPE and body["event"] == "quarter.published"
    assert set(body["data"]) == QUARTER_KEYS  # the quarter, no agency's result
    assert body["data"]["quarter_id"] == quarter.id and body["data"]["status"] == "published"
    assert (body["data"]["year"], body["data"]["quarter"]) == (ef.Q.year, ef.Q.quarter)
    assert body["data"]["published_at"] and body["data"]["appeal_deadline_at"]
    _no_personal_data(world, by_path["/hq"]["body"].decode())

    for agency in (world.a, world.a2, world.b):
        received = by_path[f"/{agency.code}"]
        body = _verify(endpoints[agency.id].secret, received)
        data = body["data"]
        assert set(data) == QUARTER_KEYS | {"result"} and data["quarter_id"] == quarter.id
        own = results[agency.id]
        assert set(data["result"]) == RESULT_KEYS
        assert data["result"]["result_id"] == own.id
        assert data["result"]["agency_id"] == agency.id
        assert data["result"]["score"] == (None if own.score is None else str(own.score))
        assert data["result"]["grade"] == own.grade
        text = received["body"].decode()
        for other_id, other in results.items():
            if other_id != agency.id:
                assert f'"result_id":{other.id},' not in text and \
                    f'"result_id":{other.id}}}' not in text
                assert f'"agency_id":{other_id},' not in text
                if other.score is not None and other.score != own.score:
                    assert str(other.score) not in text, "another agency's score"
        _no_personal_data(world, text)
    # The scores differ, so the checks above could tell one agency's from another's.
    assert len({r.score for r in results.values()}) == 3
