"""A call center that retries after a timeout, on PostgreSQL: two POSTs with the same
Idempotency-Key arrive at the same instant, each on its own thread, connection and session
against a portal with its own database (tests/realapp.Site). Both pass the look-up for a kept
answer before either writes (a barrier); the key's unique index makes the second wait for the
first's commit, roll its own work back and answer with the first's answer. One request."""
import os
import threading

import pytest
from flask import g
from sqlalchemy import func, select

from api import core
from dispatch.requests import ServiceRequest
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import ProductModel
from tests.api.helpers import bearer, token_for
from tests.factories import make_agency, make_product_line, make_region, make_user
from tests.realapp import Site

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="concurrent replays need PostgreSQL (row locks on the key's "
                              "unique index): set DATABASE_URL=postgresql://… (.ci/run sets it)"),
]


@pytest.fixture(scope="module")
def site(app, tmp_path_factory):  # the session app makes the application role
    from tests.conftest import answering_grades

    with answering_grades(None):
        made = Site(tmp_path_factory.mktemp("idempotency-race"), migrate=True,
                    TENANCY_STRICT=False)
        yield made
        made.close()


def test_two_concurrent_replays_make_one_request(site, monkeypatch):
    app = site.app
    with app.test_request_context(), unscoped("race fixtures"):
        g._audit_actor = None
        line = make_product_line()
        agency = make_agency(make_region(), product_lines=[line])
        dispatcher = make_user(Role.HQ_DISPATCHER)
        model = db.session.scalar(select(ProductModel.id).where(
            ProductModel.product_line_id == line.id))
        call = {"customer_name": "王小明", "customer_phone": "13912345678",
                "province_id": agency.province_id, "city": agency.city, "district": "南山区",
                "street": "科技园路 1 号", "product_line_id": line.id, "product_model_id": model,
                "serial_number": "SN-RACE-1", "fault_description": "不制冷",
                "service_type": "onsite"}
        dispatcher_id = dispatcher.id
        db.session.commit()
    token = token_for(app, dispatcher_id)

    barrier = threading.Barrier(2, timeout=10)
    original = core._kept
    first_look = threading.local()

    def kept_then_wait(key):
        found = original(key)
        if not getattr(first_look, "done", False):
            first_look.done = True
            barrier.wait()  # both requests looked and found nothing before either writes
        return found

    monkeypatch.setattr(core, "_kept", kept_then_wait)
    answers = [None, None]

    def post(index):
        client = app.test_client()
        answers[index] = client.post("/api/v1/service-requests/", json=call,
                                     headers=bearer(token, **{"Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 201], [a.get_data(as_text=True)[:300] for a in answers]
    assert answers[0].json == answers[1].json
    assert {a.headers.get("Idempotent-Replayed") for a in answers} == {None, "true"}
    with app.app_context(), unscoped("the test counts"):
        assert db.session.scalar(select(func.count()).select_from(ServiceRequest).where(
            ServiceRequest.serial_key == "SN-RACE-1")) == 1
