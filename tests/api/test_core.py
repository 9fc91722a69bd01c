"""What every resource of the API shares: only a token signs a call in (never a page's
session), errors are problem documents in the caller's language, a token's calls are rate
limited with Retry-After, an auditor's token reads only, and kept answers of idempotent
POSTs are forgotten after 24 hours."""
from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from api.models import IdempotentRequest
from portal import clock, jobs
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import caller
from tests.api.test_service_requests import _call, _requests
from tests.dispatch.test_offers import Net
from tests.factories import sign_in

PROBLEM = "application/problem+json"


def test_a_pages_session_never_signs_an_api_call_in(app, client, world):
    sign_in(client, world.user(Role.HQ_DISPATCHER))
    assert client.get("/").status_code == 200  # the session works on the pages
    response = client.get("/api/v1/service-requests/")
    assert response.status_code == 401 and response.mimetype == PROBLEM
    assert "Set-Cookie" not in response.headers


def test_unknown_routes_and_methods_answer_as_problems(app, client, world):
    hotline = caller(app, client, world.user(Role.HQ_DISPATCHER), language="zh-CN")
    missing = hotline.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == PROBLEM
    assert missing.json["title"] != "Not found"  # in Chinese
    wrong = hotline.delete("/api/v1/service-requests/")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    foreign = hotline.get("/api/v1/service-requests/987654321")
    assert foreign.status_code == 404 and foreign.json["status"] == 404
    bad = hotline.get("/api/v1/service-requests/?limit=0&cursor=%%%")
    assert bad.status_code == 422 and {e["field"] for e in bad.json["errors"]} >= {"limit"}


def test_an_auditors_token_reads_only(app, client, world):
    with app.app_context():
        net = Net(world)
        db.session.commit()
    auditor = caller(app, client, world.user(Role.AUDITOR))
    assert auditor.get("/api/v1/service-requests/").status_code == 200
    refused = auditor.post("/api/v1/service-requests/", json=_call(net))
    assert refused.status_code == 403 and refused.mimetype == PROBLEM
    assert _requests(app) == 0


def test_a_token_is_rate_limited_with_retry_after(app, client, world):
    before, app.config["API_RATE_LIMIT"] = app.config["API_RATE_LIMIT"], "3/minute"
    try:
        hotline = caller(app, client, world.user(Role.HQ_DISPATCHER))
        answers = [hotline.get("/api/v1/service-requests/").status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        limited = hotline.get("/api/v1/service-requests/")
        assert limited.mimetype == PROBLEM and 1 <= int(limited.headers["Retry-After"]) <= 61
        # Another token has its own allowance.
        other = caller(app, client, world.user(Role.HQ_SERVICE))
        assert other.get("/api/v1/service-requests/").status_code == 200
    finally:
        app.config["API_RATE_LIMIT"] = before


def test_a_key_is_forgotten_after_a_day(app, client, world):
    with app.app_context():
        net = Net(world)
        db.session.commit()
    hotline = caller(app, client, world.user(Role.HQ_DISPATCHER))
    start = clock.now()
    first = hotline.post("/api/v1/service-requests/", json=_call(net, serial="SN-DAY-1"),
                         headers={"Idempotency-Key": "day-1"})
    assert first.status_code == 201
    with time_machine.travel(start + timedelta(hours=25), tick=False):
        # After the window the key names a new request (another serial: a new call).
        later = hotline.post("/api/v1/service-requests/", json=_call(net, serial="SN-DAY-2"),
                             headers={"Idempotency-Key": "day-1"})
        assert later.status_code == 201 and later.json != first.json
        with app.app_context():
            removed = jobs.run_housekeeping()["forget_old_idempotency_keys"]
            db.session.commit()
    assert removed == 0  # the later answer is the key's only row, and it is fresh
    with time_machine.travel(start + timedelta(hours=50), tick=False), app.app_context():
        assert jobs.run_housekeeping()["forget_old_idempotency_keys"] == 1
        db.session.commit()
        with unscoped("the test counts"):
            assert db.session.scalar(select(func.count()).select_from(IdempotentRequest)) == 0
    assert _requests(app) == 2
