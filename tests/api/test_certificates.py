"""Certificates through the API: the check by number and code answers what the public check
page shows (any token; a wrong code like an unknown number); the lists and look-ups follow
the certificate pages (an agency its own engineers', an engineer's account its own, HQ all)."""
from datetime import timedelta

from portal.auth.roles import Role
from portal.clock import local_today
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import caller
from tests.certification import factories as f


def _certificates(app, world) -> dict:
    """One certificate per agency (A, its sibling A2, the foreign B), and one of A's engineer
    account; their ids and numbers."""
    with app.app_context(), unscoped("the test issues certificates"):
        program = f.get_program(world.line, 1)
        made = {}
        for key, agency in (("a", world.a), ("a2", world.a2), ("b", world.b)):
            cert = f.make_certificate(f.make_engineer(agency, lines=[world.line]), program,
                                      number=f"API-{key.upper()}-1",
                                      verification_code="K7M2P9QX")
            made[key] = (cert.id, cert.number)
        mine = f.make_engineer(world.a, lines=[world.line],
                               user_id=world.users[Role.ENGINEER].id)
        cert = f.make_certificate(mine, program, number="API-ENG-1")
        made["engineer"] = (cert.id, cert.number)
        old = f.make_certificate(f.make_engineer(world.a, lines=[world.line]), program,
                                 number="API-A-OLD", valid_from=local_today()
                                 - timedelta(days=900), valid_to=local_today()
                                 - timedelta(days=200))
        made["a_expired"] = (old.id, old.number)
        db.session.commit()
    return made


def _ids(response) -> set:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["id"] for row in response.json["items"]}


def test_verify_answers_the_public_checks_facts_for_a_valid_code_only(app, client, world):
    made = _certificates(app, world)
    # Any role's token may check any certificate: these are the facts printed on it.
    foreign = caller(app, client, world.b_users[Role.AGENCY_STAFF])
    found = foreign.get("/api/v1/certificates/verify",
                        query_string={"number": "api-a-1", "code": "K7M2-P9QX"})
    assert found.status_code == 200, found.get_data(as_text=True)
    assert found.json["number"] == made["a"][1] and found.json["state"] == "valid"
    assert "*" in found.json["name"] and found.json["agency"]
    assert set(found.json) >= {"program", "state_label", "valid_to", "revoked_on"}

    wrong = foreign.get("/api/v1/certificates/verify",
                        query_string={"number": made["a"][1], "code": "K7M2P9QY"})
    unknown = foreign.get("/api/v1/certificates/verify",
                          query_string={"number": "API-NONE-1", "code": "K7M2P9QX"})
    for refused in (wrong, unknown):
        assert refused.status_code == 404
        assert refused.mimetype == "application/problem+json"
        assert "No certificate matches" in refused.json["detail"]
    assert wrong.json == unknown.json

    missing = foreign.get("/api/v1/certificates/verify", query_string={"number": "X"})
    assert missing.status_code == 422
    assert client.get("/api/v1/certificates/verify",
                      query_string={"number": made["a"][1], "code": "K7M2P9QX"}
                      ).status_code == 401


def test_agency_sees_its_own_engineers_certificates_only(app, client, world):
    made = _certificates(app, world)
    own = {made["a"][0], made["engineer"][0], made["a_expired"][0]}
    owner = caller(app, client, world.users[Role.AGENCY_OWNER])
    assert _ids(owner.get("/api/v1/certificates/")) == own
    for key in ("a2", "b"):
        gone = owner.get(f"/api/v1/certificates/{made[key][0]}")
        assert gone.status_code == 404 and gone.mimetype == "application/problem+json"
    assert owner.get("/api/v1/certificates/999999999").status_code == 404
    detail = owner.get(f"/api/v1/certificates/{made['a'][0]}")
    assert detail.status_code == 200 and detail.json["verification_code"] == "K7M2P9QX"
    assert detail.json["state"] == "valid" and detail.json["agency_id"] == world.a.id

    # The list page's filters, under its names.
    assert _ids(owner.get("/api/v1/certificates/", query_string={"state": "expired"})) == {
        made["a_expired"][0]}
    assert _ids(owner.get("/api/v1/certificates/", query_string={"q": "API-ENG"})) == {
        made["engineer"][0]}
    assert owner.get("/api/v1/certificates/",
                     query_string={"state": "shiny"}).status_code == 422

    # An engineer's account: its own certificates only, as on the pages.
    engineer = caller(app, client, world.users[Role.ENGINEER])
    assert _ids(engineer.get("/api/v1/certificates/")) == {made["engineer"][0]}
    assert engineer.get(f"/api/v1/certificates/{made['a'][0]}").status_code == 404

    # HQ reads all; the regional manager their region's.
    hq = caller(app, client, world.users[Role.HQ_CERTIFIER])
    assert _ids(hq.get("/api/v1/certificates/")) >= {v[0] for v in made.values()}
    manager = caller(app, client, world.users[Role.REGIONAL_MANAGER])
    seen = _ids(manager.get("/api/v1/certificates/"))
    assert made["a2"][0] in seen and made["b"][0] not in seen


def test_certificate_pages_are_cursor_pages(app, client, world):
    made = _certificates(app, world)
    hq = caller(app, client, world.users[Role.HQ_ADMIN])
    first = hq.get("/api/v1/certificates/", query_string={"limit": 2})
    assert len(first.json["items"]) == 2 and first.json["next_cursor"]
    rest = hq.get("/api/v1/certificates/",
                  query_string={"limit": 200, "cursor": first.json["next_cursor"]})
    seen = _ids(first) | _ids(rest)
    assert seen >= {v[0] for v in made.values()} and not _ids(first) & _ids(rest)
    assert rest.json["next_cursor"] is None
    later = hq.get("/api/v1/certificates/",
                   query_string={"updated_since": "2999-01-01T00:00:00+00:00"})
    assert _ids(later) == set()
