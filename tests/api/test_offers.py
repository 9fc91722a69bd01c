"""Dispatch offers through the API: the agency accepts an offer once whatever the retries (its
work order's id in the answer), refuses with a reason (a note for "other"); answers name the
version read (none: 428, stale: 412); offers hold nothing personal; an agency reads its own
offers only (another agency's, a sibling's and a missing one are the same 404); HQ's readers
list every offer and never answer; errors are problem documents."""
import pytest
import time_machine
from sqlalchemy import func, select

from dispatch.offers import Offer, OfferStatus
from dispatch.requests import RequestStatus, ServiceRequest
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import WorkOrder
from tests.api.helpers import caller
from tests.dispatch.test_offers import FRIDAY_1700, NAME, PHONE, STREET, Net
from tests.isolation_params import AREA_PARAMS

PROBLEM = "application/problem+json"


@pytest.fixture
def friday(app):
    with time_machine.travel(FRIDAY_1700, tick=False) as traveller:
        yield traveller


@pytest.fixture
def net(app, world, friday):
    with app.test_request_context():
        made = Net(world)
        db.session.commit()
    return made


def _open_offer(app, net) -> int:
    """A call in A's city offered to A by the dispatcher (committed)."""
    with app.test_request_context():
        offer = net.offer(net.call())
        db.session.commit()
        return offer.id


def _offer_of(app, world, agency) -> int:
    """An open offer of `agency` (the isolation test's factory)."""
    with app.app_context(), unscoped("test fixtures"):
        offer_id = AREA_PARAMS["dispatch"]["offer_id"].make(world, agency)
        db.session.commit()
        return offer_id


def _count(app, model, *where) -> int:
    with app.app_context(), unscoped("the test counts"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _row(app, model, row_id):
    with app.app_context(), unscoped("the test reads"):
        row = db.session.get(model, row_id)
        db.session.expunge(row)
        return row


def test_the_agency_accepts_its_offer_and_gets_the_work_order(app, client, world, net):
    offer_id = _open_offer(app, net)
    owner = caller(app, client, net.owner)
    read = owner.get(f"/api/v1/offers/{offer_id}")
    assert read.status_code == 200 and read.json["status"] == "open"
    etag = read.headers["ETag"]
    assert etag.endswith(f'-v{read.json["version"]}"')
    text = read.get_data(as_text=True)
    assert "customer" not in text and all(s not in text for s in (NAME, PHONE, STREET))

    missing = owner.post(f"/api/v1/offers/{offer_id}/accept")
    assert missing.status_code == 428 and missing.mimetype == PROBLEM
    accepted = owner.post(f"/api/v1/offers/{offer_id}/accept", headers={"If-Match": etag})
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    order_id = accepted.json["work_order_id"]
    assert accepted.json["offer"]["status"] == "accepted"
    assert accepted.json["offer"]["work_order_id"] == order_id
    assert accepted.headers["Location"].endswith(f"/api/v1/work-orders/{order_id}")
    assert _count(app, WorkOrder) == 1
    assert _row(app, ServiceRequest, _row(app, Offer, offer_id).request_id).status == \
        RequestStatus.ACCEPTED

    # Sent again with the version read before: stale, nothing more is made.
    stale = owner.post(f"/api/v1/offers/{offer_id}/accept", headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.mimetype == PROBLEM
    fresh = owner.get(f"/api/v1/offers/{offer_id}")
    late = owner.post(f"/api/v1/offers/{offer_id}/accept",
                      headers={"If-Match": fresh.headers["ETag"]})
    assert late.status_code == 422 and late.mimetype == PROBLEM
    assert _count(app, WorkOrder) == 1

    order = owner.get(accepted.headers["Location"])
    assert order.status_code == 200 and order.json["customer_name"] == NAME


def test_the_agency_accepts_once_whatever_the_retries(app, client, world, net):
    offer_id = _open_offer(app, net)
    owner = caller(app, client, net.owner)
    etag = owner.get(f"/api/v1/offers/{offer_id}").headers["ETag"]
    headers = {"If-Match": etag, "Idempotency-Key": "accept-1"}
    first = owner.post(f"/api/v1/offers/{offer_id}/accept", headers=headers)
    assert first.status_code == 201, first.get_data(as_text=True)
    again = owner.post(f"/api/v1/offers/{offer_id}/accept", headers=headers)
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(app, WorkOrder) == 1


def test_the_agency_refuses_with_a_reason(app, client, world, net):
    offer_id = _open_offer(app, net)
    staff = caller(app, client, net.staff, language="zh-CN")
    url = f"/api/v1/offers/{offer_id}/refuse"
    etag = staff.get(f"/api/v1/offers/{offer_id}").headers["ETag"]

    missing = staff.post(url, json={"reason": "capacity"})
    assert missing.status_code == 428 and missing.mimetype == PROBLEM
    stale = staff.post(url, json={"reason": "capacity"},
                       headers={"If-Match": etag.replace("-v1", "-v0")})
    assert stale.status_code == 412 and stale.mimetype == PROBLEM
    unknown = staff.post(url, json={"reason": "weather"}, headers={"If-Match": etag})
    assert unknown.status_code == 422 and unknown.json["errors"][0]["field"] == "reason"
    no_note = staff.post(url, json={"reason": "other"}, headers={"If-Match": etag})
    assert no_note.status_code == 422 and no_note.mimetype == PROBLEM
    assert no_note.json["errors"][0]["field"] == "note"
    assert no_note.headers["Content-Language"].startswith("zh")
    assert _row(app, Offer, offer_id).status == OfferStatus.OPEN

    refused = staff.post(url, json={"reason": "other", "note": "工程师休假"},
                         headers={"If-Match": etag})
    assert refused.status_code == 200, refused.get_data(as_text=True)
    assert (refused.json["status"], refused.json["refusal_reason"],
            refused.json["refusal_note"]) == ("refused", "other", "工程师休假")
    assert refused.headers["ETag"] != etag
    request = _row(app, ServiceRequest, _row(app, Offer, offer_id).request_id)
    assert request.status == RequestStatus.NEW


def test_a_refusal_retried_with_its_key_gets_the_first_answer(app, client, world, net):
    offer_id = _open_offer(app, net)
    staff = caller(app, client, net.staff)
    etag = staff.get(f"/api/v1/offers/{offer_id}").headers["ETag"]
    headers = {"If-Match": etag, "Idempotency-Key": "refuse-1"}
    body = {"reason": "capacity"}
    first = staff.post(f"/api/v1/offers/{offer_id}/refuse", json=body, headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    again = staff.post(f"/api/v1/offers/{offer_id}/refuse", json=body, headers=headers)
    assert again.status_code == 200 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"


def test_an_agency_reads_and_answers_its_own_offers_only(app, client, world, net):
    own = _open_offer(app, net)
    sibling, foreign = _offer_of(app, world, world.a2), _offer_of(app, world, world.b)
    owner = caller(app, client, net.owner)
    listed = owner.get("/api/v1/offers/")
    assert listed.status_code == 200
    assert [o["id"] for o in listed.json["items"]] == [own]
    for other in (sibling, foreign, 999999):
        for response in (owner.get(f"/api/v1/offers/{other}"),
                         owner.post(f"/api/v1/offers/{other}/accept",
                                    headers={"If-Match": "*"}),
                         owner.post(f"/api/v1/offers/{other}/refuse",
                                    json={"reason": "capacity"}, headers={"If-Match": "*"})):
            assert response.status_code == 404 and response.mimetype == PROBLEM
            assert "CANARY" not in response.get_data(as_text=True)
    assert _count(app, Offer, Offer.status != OfferStatus.OPEN) == 0

    dispatcher = caller(app, client, net.dispatcher)
    everything = dispatcher.get("/api/v1/offers/?status=open")
    assert {o["id"] for o in everything.json["items"]} == {own, sibling, foreign}
    assert dispatcher.get(f"/api/v1/offers/{foreign}").status_code == 200
    answered = dispatcher.get("/api/v1/offers/?status=accepted")
    assert answered.status_code == 200 and answered.json["items"] == []


def test_hq_reads_but_never_answers(app, client, world, net):
    offer_id = _open_offer(app, net)
    auditor = caller(app, client, world.user(Role.AUDITOR))
    read = auditor.get(f"/api/v1/offers/{offer_id}")
    assert read.status_code == 200
    for path in ("accept", "refuse"):
        refused = auditor.post(f"/api/v1/offers/{offer_id}/{path}", json={"reason": "area"},
                               headers={"If-Match": read.headers["ETag"]})
        assert refused.status_code == 403 and refused.mimetype == PROBLEM
    dispatcher = caller(app, client, net.dispatcher)
    assert dispatcher.post(f"/api/v1/offers/{offer_id}/accept",
                           headers={"If-Match": read.headers["ETag"]}).status_code == 403
    manager = caller(app, client, world.user(Role.REGIONAL_MANAGER))
    assert manager.get("/api/v1/offers/").status_code == 403
    assert _row(app, Offer, offer_id).status == OfferStatus.OPEN


def test_pages_follow_the_cursor_and_the_last_change(app, client, world, net, friday):
    first, second, third = (_open_offer(app, net) for _ in range(3))
    owner = caller(app, client, net.owner)
    one = owner.get("/api/v1/offers/?limit=2")
    assert [o["id"] for o in one.json["items"]] == [first, second]
    two = owner.get(f"/api/v1/offers/?limit=2&cursor={one.json['next_cursor']}")
    assert [o["id"] for o in two.json["items"]] == [third] and two.json["next_cursor"] is None
    bad = owner.get("/api/v1/offers/?cursor=nonsense")
    assert bad.status_code == 422 and bad.mimetype == PROBLEM

    mark = "2026-11-20T09:10:00Z"  # 17:10 in Shanghai
    friday.move_to("2026-11-20T09:20:00Z")
    etag = owner.get(f"/api/v1/offers/{second}").headers["ETag"]
    owner.post(f"/api/v1/offers/{second}/refuse", json={"reason": "parts"},
               headers={"If-Match": etag})
    since = owner.get("/api/v1/offers/", query_string={"updated_since": mark})
    assert [o["id"] for o in since.json["items"]] == [second]
    assert since.json["items"][0]["updated_at"].startswith("2026-11-20T09:20")
