"""Agencies' systems request parts through the API: once whatever the retries, through the
service the page uses (its refusals in the caller's language); every agency reads only its own
requests; HQ's parts desk reads them all; auditors and HQ never submit one."""
from flask import g
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import PartsRequest
from tests.api.helpers import caller
from tests.service import factories as sf


def _catalog(app, world) -> dict:
    with app.test_request_context(), unscoped("the test makes the catalog"):
        g._audit_actor = None
        codes = sf.catalog_of(world.line)
        out = {"part": codes["part"].id, "cheap": codes["cheap"].id}
        db.session.commit()
        return out


def _request(app, world, agency) -> int:
    with app.test_request_context(), unscoped("the test makes a request"):
        g._audit_actor = None
        made = sf.make_request(agency, world.line).id
        db.session.commit()
        return made


def _open_order(app, world, agency) -> int:
    with app.test_request_context(), unscoped("the test makes an order"):
        g._audit_actor = None
        made = sf.make_order(agency, world.line).id
        db.session.commit()
        return made


def _count(app, *where) -> int:
    with app.app_context(), unscoped("the test counts"):
        return db.session.scalar(select(func.count()).select_from(PartsRequest).where(*where))


def _audits(app, action="parts_request.submitted") -> int:
    with app.app_context(), unscoped("the test counts audit entries"):
        return db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == action))


def _body(app, world) -> dict:
    parts = _catalog(app, world)
    order = _open_order(app, world, world.a)
    return {"lines": [{"part_id": parts["part"], "quantity": 2},
                      {"part_id": parts["cheap"], "quantity": 5, "reason": "work_order",
                       "work_order_id": order}],
            "note": "急需"}


def test_an_agency_submits_a_request_through_the_pages_service(app, client, world):
    body = _body(app, world)
    staff = caller(app, client, world.user(Role.AGENCY_STAFF))
    first = staff.post("/api/v1/parts-requests/", json=body)
    assert first.status_code == 201, first.get_data(as_text=True)
    made = first.json
    assert made["status"] == "submitted" and made["agency_id"] == world.a.id
    assert made["number"].startswith("PR") and made["note"] == "急需"
    assert [(line["quantity"], line["reason"]) for line in made["lines"]] == [
        (2, "stock"), (5, "work_order")]
    assert _count(app) == 1 and _audits(app) == 1

    read = staff.get(first.headers["Location"])
    assert read.status_code == 200 and read.json == made
    assert read.headers["ETag"] == f'"partsrequest-{made["id"]}-v{made["version"]}"'
    assert read.headers["ETag"] == first.headers["ETag"]


# api.models.IdempotentRequest refuses to be created in an agency's scope (TenantScoped's
# default check_tenant_insert): it needs the override inbox.models' preferences have (one's
# own row, in any scope). Remove this mark with that fix.
def test_an_agency_submits_a_request_once_whatever_the_retries(app, client, world):
    body = _body(app, world)
    staff = caller(app, client, world.user(Role.AGENCY_STAFF))
    first = staff.post("/api/v1/parts-requests/", json=body,
                       headers={"Idempotency-Key": "pr-1"})
    assert first.status_code == 201, first.get_data(as_text=True)
    again = staff.post("/api/v1/parts-requests/", json=body,
                       headers={"Idempotency-Key": "pr-1"})
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(app) == 1 and _audits(app) == 1


def test_the_services_refusals_in_the_callers_language(app, client, world):
    parts = _catalog(app, world)
    foreign_order = _open_order(app, world, world.b)
    owner = caller(app, client, world.user(Role.AGENCY_OWNER), language="zh-CN")
    url = "/api/v1/parts-requests/"
    zero = owner.post(url, json={"lines": [{"part_id": parts["part"], "quantity": 0}]})
    assert zero.status_code == 422 and zero.json["detail"] == "每行数量须在 1 到 999 之间。"
    assert zero.json["errors"][0]["field"] == "lines"
    assert zero.headers["Content-Language"].startswith("zh")
    unknown = owner.post(url, json={"lines": [{"part_id": 99999999, "quantity": 1}]})
    assert unknown.status_code == 422 and unknown.json["detail"] == "请从备件目录中选择备件。"
    # Another agency's order is refused like an unknown one.
    theirs = owner.post(url, json={"lines": [{"part_id": parts["part"], "quantity": 1,
                                              "reason": "work_order",
                                              "work_order_id": foreign_order}]})
    assert theirs.status_code == 422
    empty = owner.post(url, json={"lines": []})
    assert empty.status_code == 422
    typed = owner.post(url, json={"lines": [{"part_id": "1", "quantity": 1.5}]})
    assert typed.status_code == 422
    assert typed.json["errors"]
    assert _count(app) == 0 and _audits(app) == 0


def test_agencies_read_only_their_own_requests(app, client, world):
    own, sibling, foreign = (_request(app, world, agency)
                             for agency in (world.a, world.a2, world.b))
    staff = caller(app, client, world.user(Role.AGENCY_STAFF))
    listed = staff.get("/api/v1/parts-requests/")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json["items"]] == [own]
    assert staff.get(f"/api/v1/parts-requests/{own}").status_code == 200
    for rid in (sibling, foreign, 99999999):
        response = staff.get(f"/api/v1/parts-requests/{rid}")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"

    desk = caller(app, client, world.user(Role.HQ_PARTS))
    assert {i["id"] for i in desk.get("/api/v1/parts-requests/").json["items"]} == {
        own, sibling, foreign}
    assert desk.get("/api/v1/parts-requests/?status=shipped").json["items"] == []
    manager = caller(app, client, world.user(Role.REGIONAL_MANAGER))
    assert {i["id"] for i in manager.get("/api/v1/parts-requests/").json["items"]} == {
        own, sibling}
    engineer = caller(app, client, world.user(Role.ENGINEER))
    assert engineer.get("/api/v1/parts-requests/").status_code == 403
    assert engineer.get(f"/api/v1/parts-requests/{own}").status_code == 403


def test_auditors_and_hq_never_submit(app, client, world):
    parts = _catalog(app, world)
    body = {"lines": [{"part_id": parts["part"], "quantity": 1}]}
    for role in (Role.AUDITOR, Role.HQ_PARTS, Role.HQ_ADMIN, Role.ENGINEER):
        user = caller(app, client, world.user(role))
        response = user.post("/api/v1/parts-requests/", json=body,
                             headers={"Idempotency-Key": f"k-{role}"})
        assert response.status_code == 403, (role, response.status_code)
    assert _count(app) == 0 and _audits(app) == 0
