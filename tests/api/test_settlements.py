"""HQ's ERP through the API: an approved settlement marked paid once, whatever the retries,
with the version it read (If-Match); the service's refusals in the caller's language; agencies
read only their own settlements; auditors and agencies never mark one paid."""
from datetime import date, timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from settlement import review, services
from settlement.models import Settlement, Status
from tests.api.helpers import caller
from tests.settlement import factories as f


@pytest.fixture(autouse=True)
def _no_grades(no_grade_source):
    """No quarter's grade line: the claims hold their order lines only."""


def _claim(app, world, agency, *, approved=True) -> int:
    """A settlement of `agency` for last month with one clean 130.00 line: submitted, and
    (by default) approved by HQ settlement."""
    with app.test_request_context(), unscoped("the test builds a claim"):
        g._audit_actor = None
        today = clock.local_today()
        year, month = clock.last_ended_month(today)
        from settlement.config import rate_card_in_force

        if rate_card_in_force(today) is None:
            f.rate_card([world.line])
        code = f.repair_code(world.line, "1.00")
        f.order(agency, world.line, day=date(year, month, 10),
                repairs=[code], service_type="carry_in")
        s = services.open_settlement(agency, year, month, acting_user=None, today=today)
        services.submit_settlement(s, acting_user=None, seen_version=s.version, today=today)
        if s.awaits_regional_review:
            s.regional_reviewed_at = s.submitted_at  # the regional step is not this test's
        if approved:
            hq = world.user(Role.HQ_SETTLEMENT)
            review.approve_clean_lines(s, acting_user=hq, seen_version=s.version)
            assert review.approve_settlement(s, acting_user=hq, seen_version=s.version,
                                             today=today)
            assert s.status == Status.APPROVED
        db.session.commit()
        return s.id


def _state(app, sid):
    with app.app_context(), unscoped("the test reads the settlement back"):
        s = db.session.scalars(select(Settlement).where(Settlement.id == sid)).one()
        return s.status, s.version, s.payment_reference


def _audits(app, sid, action="settlement.paid") -> int:
    with app.app_context(), unscoped("the test counts audit entries"):
        return db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.object_id == str(sid)))


def _paid(today):
    return {"payment_reference": "CMB-2026-0042", "paid_on": today.isoformat()}


def test_the_erp_marks_an_approved_settlement_paid_once(app, client, world):
    sid = _claim(app, world, world.a)
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    read = erp.get(f"/api/v1/settlements/{sid}")
    assert read.status_code == 200, read.get_data(as_text=True)
    body = read.json
    assert body["status"] == "approved" and body["claimed_total"] == "130.00"
    assert body["approved_total"] == "130.00" and isinstance(body["lines"], list)
    etag = read.headers["ETag"]

    today = clock.local_today()
    headers = {"If-Match": etag, "Idempotency-Key": "erp-pay-1"}
    first = erp.post(f"/api/v1/settlements/{sid}/paid", json=_paid(today), headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json["status"] == "paid" and first.json["payment_reference"] == "CMB-2026-0042"
    assert first.json["paid_on"] == today.isoformat() and first.json["paid_at"]
    assert first.headers["ETag"] != etag

    again = erp.post(f"/api/v1/settlements/{sid}/paid", json=_paid(today), headers=headers)
    assert again.status_code == 200 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _audits(app, sid) == 1
    assert _state(app, sid)[0] == Status.PAID

    # The same key with another body is refused; a new key on the paid settlement is the
    # service's refusal (its version moved too): nothing changes.
    other = erp.post(f"/api/v1/settlements/{sid}/paid",
                     json={"payment_reference": "CMB-OTHER"}, headers=headers)
    assert other.status_code == 422
    later = erp.post(f"/api/v1/settlements/{sid}/paid", json=_paid(today),
                     headers={"If-Match": first.headers["ETag"], "Idempotency-Key": "erp-2"})
    assert later.status_code == 422 and later.mimetype == "application/problem+json"
    assert _audits(app, sid) == 1


@pytest.mark.parametrize("language, words", [("en", "Not possible while"),
                                              ("zh-CN", "不能进行此操作")])
def test_paid_before_approval_is_the_services_refusal_in_the_callers_language(
        app, client, world, language, words):
    sid = _claim(app, world, world.a, approved=False)
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT), language=language)
    etag = erp.get(f"/api/v1/settlements/{sid}").headers["ETag"]
    before = _state(app, sid)
    response = erp.post(f"/api/v1/settlements/{sid}/paid", json=_paid(clock.local_today()),
                        headers={"If-Match": etag, "Idempotency-Key": "erp-early"})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert words in response.json["detail"]
    if language.startswith("zh"):
        assert response.headers["Content-Language"].startswith("zh")
    assert _state(app, sid) == before and _audits(app, sid) == 0


def test_bad_payment_input_is_refused_by_the_service(app, client, world):
    sid = _claim(app, world, world.a)
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT), language="zh-CN")
    etag = erp.get(f"/api/v1/settlements/{sid}").headers["ETag"]
    future = clock.local_today() + timedelta(days=3)
    for data, field in (({"payment_reference": "x"}, "payment_reference"),
                        ({"payment_reference": "CMB-1", "paid_on": future.isoformat()},
                         "paid_on")):
        response = erp.post(f"/api/v1/settlements/{sid}/paid", json=data,
                            headers={"If-Match": etag})
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.json["errors"][0]["field"] == field
    missing = erp.post(f"/api/v1/settlements/{sid}/paid", json={}, headers={"If-Match": etag})
    assert missing.status_code == 422
    assert _state(app, sid)[0] == Status.APPROVED and _audits(app, sid) == 0


def test_a_stale_or_missing_if_match_changes_nothing(app, client, world):
    sid = _claim(app, world, world.a)
    erp = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    status, version, _ref = _state(app, sid)
    stale = f'"settlement-{sid}-v{version - 1}"'
    url, data = f"/api/v1/settlements/{sid}/paid", _paid(clock.local_today())
    response = erp.post(url, json=data, headers={"If-Match": stale, "Idempotency-Key": "k-1"})
    assert response.status_code == 412
    assert erp.post(url, json=data).status_code == 428
    assert _state(app, sid) == (status, version, None) and _audits(app, sid) == 0


def test_agencies_read_only_their_own_settlements(app, client, world):
    own, sibling, foreign = (_claim(app, world, agency, approved=False)
                             for agency in (world.a, world.a2, world.b))
    owner = caller(app, client, world.user(Role.AGENCY_OWNER))
    listed = owner.get("/api/v1/settlements/")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json["items"]] == [own]
    assert owner.get(f"/api/v1/settlements/{own}").status_code == 200
    for sid in (sibling, foreign, 99999999):
        response = owner.get(f"/api/v1/settlements/{sid}")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"

    manager = caller(app, client, world.user(Role.REGIONAL_MANAGER))
    assert {i["id"] for i in manager.get("/api/v1/settlements/").json["items"]} == {
        own, sibling}
    auditor = caller(app, client, world.user(Role.AUDITOR))
    assert {i["id"] for i in auditor.get("/api/v1/settlements/").json["items"]} == {
        own, sibling, foreign}
    engineer = caller(app, client, world.user(Role.ENGINEER))
    assert engineer.get("/api/v1/settlements/").status_code == 403


def test_filters_and_cursor_pages(app, client, world):
    ids = [_claim(app, world, agency, approved=agency is world.a)
           for agency in (world.a, world.a2, world.b)]
    hq = caller(app, client, world.user(Role.HQ_SETTLEMENT))
    approved = hq.get("/api/v1/settlements/?status=approved").json["items"]
    assert [i["id"] for i in approved] == [ids[0]]
    assert hq.get("/api/v1/settlements/?status=nonsense").status_code == 422
    later = (clock.now() + timedelta(hours=1)).isoformat()
    response = hq.get("/api/v1/settlements/", query_string={"updated_since": later})
    assert response.status_code == 200 and response.json["items"] == []
    seen, cursor = [], None
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = hq.get("/api/v1/settlements/", query_string=query).json
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids)


def test_auditors_and_agencies_never_mark_paid(app, client, world):
    sid = _claim(app, world, world.a)
    etag = caller(app, client, world.user(Role.HQ_SETTLEMENT)).get(
        f"/api/v1/settlements/{sid}").headers["ETag"]
    before = _state(app, sid)
    for role in (Role.AUDITOR, Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.HQ_ADMIN):
        user = caller(app, client, world.user(role))
        response = user.post(f"/api/v1/settlements/{sid}/paid", json=_paid(clock.local_today()),
                             headers={"If-Match": etag, "Idempotency-Key": f"try-{role}"})
        assert response.status_code == 403, (role, response.status_code)
    assert _state(app, sid) == before and _audits(app, sid) == 0
