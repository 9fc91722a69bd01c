"""Web security: CSRF, headers, auditors' writes, no state change on GET."""
import pytest

from portal.auth.roles import Role
from tests.factories import PASSWORD, sign_in


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield app
    app.config["WTF_CSRF_ENABLED"] = False


def _post_rules(app):
    return sorted({r.rule for r in app.url_map.iter_rules()
                   if "POST" in r.methods and r.endpoint != "static"})


def test_every_post_without_a_csrf_token_is_refused(csrf_app, _transaction, world):
    client = csrf_app.test_client()
    # sign in needs a token too: read it from the form
    page = client.get("/auth/sign-in").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert client.post("/auth/sign-in", data={"email": world.user(Role.HQ_ADMIN).email,
                                              "password": PASSWORD,
                                              "csrf_token": token}).status_code == 302
    tried = 0
    from flask import url_for

    with csrf_app.test_request_context():
        urls = []
        for rule in csrf_app.url_map.iter_rules():
            if "POST" not in rule.methods:
                continue
            urls.append(url_for(rule.endpoint, **{a: 1 for a in rule.arguments}))
    for url in urls:
        response = client.post(url, data={"anything": "1"})
        tried += 1
        assert response.status_code == 400, url
        assert b"Your form expired" in response.data or b"\xe8\xa1\xa8\xe5\x8d\x95" in response.data
    print(f"CSRF: {tried} state-changing routes refused without a token")
    assert tried >= 5


def test_sign_in_without_token_is_refused(csrf_app, _transaction, world):
    client = csrf_app.test_client()
    response = client.post("/auth/sign-in", data={"email": world.user(Role.HQ_ADMIN).email,
                                                  "password": PASSWORD})
    assert response.status_code == 400


def test_security_headers_on_every_page(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    for path in ("/", "/agencies/", "/auth/sign-in", "/nonexistent", "/healthz"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_hsts_behind_https(client):
    response = client.get("/auth/sign-in", base_url="https://portal.test")
    assert "max-age" in response.headers["Strict-Transport-Security"]
    assert "Strict-Transport-Security" not in client.get("/auth/sign-in").headers


def test_auditor_writes_are_refused(client, world):
    sign_in(client, world.user(Role.AUDITOR))
    for url in (f"/agencies/{world.a.id}/status", "/agencies/new", "/users/new",
                "/network/regions/new"):
        assert client.post(url, data={"reason": "x", "to_status": "suspended"}).status_code \
            == 403, url
    # but the auditor may still change their own language and sign out
    assert client.post("/locale", data={"locale": "en"}).status_code == 302
    assert client.post("/auth/sign-out").status_code == 302


def test_user_text_is_escaped(app, client, world):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.tenancy import unscoped
    from tenants.models import Agency

    with app.app_context(), unscoped("test"):
        agency = db.session.scalars(select(Agency).where(Agency.id == world.a.id)).one()
        agency.legal_name = "<script>alert(1)</script>"
        db.session.commit()
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = client.get(f"/agencies/{world.a.id}").data
    assert b"<script>alert(1)</script>" not in body
    assert b"&lt;script&gt;" in body


def test_error_pages_are_translated(client):
    client.post("/locale", data={"locale": "en"})
    assert b"This page does not exist" in client.get("/no/such/page").data
    client.post("/locale", data={"locale": "zh_CN"})
    body = client.get("/no/such/page").get_data(as_text=True)
    assert "This page does not exist" not in body


def test_method_not_allowed_page(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    assert client.get("/auth/sign-out").status_code == 405


def test_oversized_request_gets_413(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    response = client.post("/agencies/new", data=big, content_type="application/octet-stream")
    assert response.status_code == 413


def test_values_the_database_refuses_answer_400(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.post(f"/agencies/{world.a.id}/status",
                           data={"to_status": "suspended", "reason": "bad\x00byte"})
    assert response.status_code in (302, 400)  # SQLite stores NUL; PostgreSQL refuses it
