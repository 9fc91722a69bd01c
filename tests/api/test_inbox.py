"""The inbox through the API: the token's account's own items only (anyone else's, even in
the same agency, is a 404), an unread filter, and marking read through the inbox page's
service: twice is harmless, and auditors may do it too (self-service, as on the page)."""
from sqlalchemy import select

from inbox import registry
from inbox.models import InboxItem
from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import caller

EVENT = "settlement.returned"


def _item(app, user, *, label="JS-1", read=False) -> int:
    declared = registry.get(EVENT)
    with app.app_context(), unscoped("the test fills an inbox"):
        item = InboxItem(recipient_id=user.id, agency_id=user.agency_id, event=EVENT,
                         category=declared.category, kind=declared.kind,
                         subject_type="settlements", subject_id=1, label=label, params={},
                         created_at=clock.now(), read_at=clock.now() if read else None)
        db.session.add(item)
        db.session.commit()
        return item.id


def _ids(response) -> set:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["id"] for row in response.json["items"]}


def test_each_account_reads_its_own_items_only(app, client, world):
    owner = world.users[Role.AGENCY_OWNER]
    mine = {_item(app, owner, label="JS-A-1"), _item(app, owner, label="JS-A-2", read=True)}
    others = {
        "colleague": _item(app, world.users[Role.AGENCY_STAFF], label="JS-STAFF"),
        "sibling": _item(app, world.a2_users[Role.AGENCY_OWNER], label="JS-CANARY-S"),
        "foreign": _item(app, world.b_users[Role.AGENCY_OWNER], label="JS-CANARY-B"),
        "hq": _item(app, world.users[Role.HQ_ADMIN], label="JS-HQ"),
    }
    api = caller(app, client, owner)
    listed = api.get("/api/v1/inbox/")
    assert _ids(listed) == mine
    assert "CANARY-S" not in listed.get_data(as_text=True)
    assert "CANARY-B" not in listed.get_data(as_text=True)
    for name, item_id in others.items():
        for response in (api.get(f"/api/v1/inbox/{item_id}"),
                         api.post(f"/api/v1/inbox/{item_id}/read")):
            assert response.status_code == 404, name
            assert response.mimetype == "application/problem+json"
    assert api.get("/api/v1/inbox/999999999").status_code == 404

    unread = api.get("/api/v1/inbox/", query_string={"unread": "true"})
    assert len(unread.json["items"]) == 1 and unread.json["items"][0]["read_at"] is None
    item = unread.json["items"][0]
    assert item["label"] == "JS-A-1" and item["title"] and item["kind"] in ("task", "notice")
    assert len(_ids(api.get("/api/v1/inbox/", query_string={"unread": "false"}))) == 1

    # HQ admin reads the whole network's pages, yet not anyone else's inbox.
    admin = caller(app, client, world.users[Role.HQ_ADMIN])
    assert _ids(admin.get("/api/v1/inbox/")) == {others["hq"]}
    assert admin.get(f"/api/v1/inbox/{min(mine)}").status_code == 404


def test_marking_read_twice_is_harmless(app, client, world):
    owner = world.users[Role.AGENCY_OWNER]
    item_id = _item(app, owner)
    api = caller(app, client, owner)
    first = api.post(f"/api/v1/inbox/{item_id}/read")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json["read_at"] is not None
    again = api.post(f"/api/v1/inbox/{item_id}/read")
    assert again.status_code == 200 and again.json["read_at"] == first.json["read_at"]
    assert _ids(api.get("/api/v1/inbox/", query_string={"unread": "true"})) == set()
    with app.app_context(), unscoped("the test reads the audit trail"):
        assert db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "inbox.read")).first() is not None


# api.models.IdempotentRequest refuses to be created in an agency's scope (TenantScoped's
# default check_tenant_insert): it needs the override inbox.models' preferences have
# (one's own row, in any scope). Remove this mark with that fix.
def test_an_idempotency_key_replays_the_answer(app, client, world):
    owner = world.users[Role.AGENCY_OWNER]
    item_id = _item(app, owner)
    api = caller(app, client, owner)
    keyed = api.post(f"/api/v1/inbox/{item_id}/read", headers={"Idempotency-Key": "r-1"})
    replay = api.post(f"/api/v1/inbox/{item_id}/read", headers={"Idempotency-Key": "r-1"})
    assert keyed.status_code == replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == keyed.json


def test_auditors_mark_their_own_items_read(app, client, world):
    auditor = world.users[Role.AUDITOR]
    item_id = _item(app, auditor)
    api = caller(app, client, auditor)
    response = api.post(f"/api/v1/inbox/{item_id}/read")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["read_at"] is not None
    # Someone else's item: missing for an auditor too.
    other = _item(app, world.users[Role.AGENCY_OWNER])
    assert api.post(f"/api/v1/inbox/{other}/read").status_code == 404
    assert client.post(f"/api/v1/inbox/{item_id}/read").status_code == 401
