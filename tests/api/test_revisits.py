"""HQ's service desk posts revisit scores through the API with the order page's service: once
whatever the retries, a second score corrects the first; the service's refusals in the
caller's language; agencies read only their own revisits; no one else posts one."""
from datetime import timedelta

from flask import g
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service import quality
from service.models import Revisit, WorkOrder
from tests.api.helpers import caller
from tests.service import factories as sf


def _order(app, world, agency, *, completed=True) -> int:
    with app.test_request_context(), unscoped("the test makes an order"):
        g._audit_actor = None
        made = sf.make_order(agency, world.line, completed=completed).id
        db.session.commit()
        return made


def _revisit(app, world, agency) -> int:
    order_id = _order(app, world, agency)
    with app.test_request_context(), unscoped("the test records a revisit"):
        g._audit_actor = None
        order = db.session.scalars(select(WorkOrder).where(WorkOrder.id == order_id)).one()
        made = quality.record_revisit(order, 4, "满意", acting_user=world.user(Role.HQ_SERVICE))
        db.session.commit()
        return made.id


def _count(app, model=Revisit, *where) -> int:
    with app.app_context(), unscoped("the test counts"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _audits(app, action) -> int:
    return _count(app, AuditEntry, AuditEntry.action == action)


def test_hq_records_a_score_once_whatever_the_retries_and_corrects_it(app, client, world):
    order = _order(app, world, world.a)
    desk = caller(app, client, world.user(Role.HQ_SERVICE))
    body = {"work_order_id": order, "score": 5, "comment": "师傅很专业"}
    first = desk.post("/api/v1/revisits/", json=body, headers={"Idempotency-Key": "rv-1"})
    assert first.status_code == 201, first.get_data(as_text=True)
    made = first.json
    assert made["score"] == 5 and made["work_order_id"] == order
    assert made["agency_id"] == world.a.id and made["work_order_number"]
    again = desk.post("/api/v1/revisits/", json=body, headers={"Idempotency-Key": "rv-1"})
    assert again.status_code == 201 and again.json == made
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(app) == 1 and _audits(app, "revisit.recorded") == 1

    corrected = desk.post("/api/v1/revisits/", json={**body, "score": 2, "comment": "又坏了"},
                          headers={"Idempotency-Key": "rv-2"})
    assert corrected.status_code == 200, corrected.get_data(as_text=True)
    assert corrected.json["id"] == made["id"] and corrected.json["score"] == 2
    assert _count(app) == 1 and _audits(app, "revisit.corrected") == 1
    read = desk.get(first.headers["Location"])
    assert read.status_code == 200 and read.json["score"] == 2


def test_the_services_refusals_in_the_callers_language(app, client, world):
    open_order = _order(app, world, world.a, completed=False)
    done = _order(app, world, world.a)
    desk = caller(app, client, world.user(Role.HQ_SERVICE), language="zh-CN")
    url = "/api/v1/revisits/"
    refused = desk.post(url, json={"work_order_id": open_order, "score": 5})
    assert refused.status_code == 422 and refused.json["detail"] == "只能回访已完工的工单。"
    assert refused.headers["Content-Language"].startswith("zh")
    score = desk.post(url, json={"work_order_id": done, "score": 7})
    assert score.status_code == 422 and score.json["detail"] == "评分须为 1 到 5 的整数。"
    assert score.json["errors"][0]["field"] == "score"
    future = (clock.now() + timedelta(days=2)).isoformat()
    later = desk.post(url, json={"work_order_id": done, "score": 3, "revisited_at": future})
    assert later.status_code == 422 and later.json["errors"][0]["field"] == "revisited_at"
    missing = desk.post(url, json={"work_order_id": 99999999, "score": 3})
    assert missing.status_code == 422
    assert missing.json["errors"][0]["field"] == "work_order_id"
    english = caller(app, client, world.user(Role.HQ_SERVICE))
    assert english.post(url, json={"work_order_id": open_order, "score": 5}).json[
        "detail"] == "Only completed orders are revisited."
    assert _count(app) == 0


def test_agencies_read_only_their_own_revisits(app, client, world):
    own, sibling, foreign = (_revisit(app, world, agency)
                             for agency in (world.a, world.a2, world.b))
    owner = caller(app, client, world.user(Role.AGENCY_OWNER))
    listed = owner.get("/api/v1/revisits/")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json["items"]] == [own]
    assert owner.get(f"/api/v1/revisits/{own}").status_code == 200
    for rid in (sibling, foreign, 99999999):
        response = owner.get(f"/api/v1/revisits/{rid}")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
    desk = caller(app, client, world.user(Role.HQ_SERVICE))
    assert {i["id"] for i in desk.get("/api/v1/revisits/").json["items"]} == {
        own, sibling, foreign}
    assert desk.get("/api/v1/revisits/?score=1").json["items"] == []
    manager = caller(app, client, world.user(Role.REGIONAL_MANAGER))
    assert {i["id"] for i in manager.get("/api/v1/revisits/").json["items"]} == {own, sibling}
    engineer = caller(app, client, world.user(Role.ENGINEER))
    assert engineer.get("/api/v1/revisits/").status_code == 403


def test_only_hq_service_posts_revisits(app, client, world):
    order = _order(app, world, world.a)
    for role in (Role.AUDITOR, Role.AGENCY_OWNER, Role.HQ_ADMIN, Role.HQ_DISPATCHER):
        user = caller(app, client, world.user(role))
        response = user.post("/api/v1/revisits/", json={"work_order_id": order, "score": 5},
                             headers={"Idempotency-Key": f"k-{role}"})
        assert response.status_code == 403, (role, response.status_code)
    assert _count(app) == 0
