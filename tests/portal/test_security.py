"""Web security: CSRF, headers, auditors' writes, no state change on GET."""
import pytest

from portal.auth.roles import Role
from portal.tenancy import unscoped
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
    api = 0
    for url in urls:
        response = client.post(url, data={"anything": "1"})
        if url.startswith("/api/v1/"):
            # The API takes no CSRF token: it never reads the session cookie, so a page's
            # session (this signed-in HQ admin) cannot act on it at all.
            assert response.status_code == 401, url
            api += 1
            continue
        tried += 1
        assert response.status_code == 400, url
        assert b"Your form expired" in response.data or b"\xe8\xa1\xa8\xe5\x8d\x95" in response.data
    print(f"CSRF: {tried} state-changing routes refused without a token, {api} API routes "
          f"refused to the session")
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


# --- every page, every download: headers; no state change on GET ------------------------------


def _get_urls(app, world):
    from flask import url_for

    with app.test_request_context():
        return sorted({url_for(r.endpoint, **{a: world.a.id for a in r.arguments})
                       for r in app.url_map.iter_rules()
                       if "GET" in r.methods and r.endpoint not in ("static", "bootstrap.static")
                       and "<path:" not in r.rule})


@pytest.mark.parametrize("role", [Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.AUDITOR],
                         ids=["hq_admin", "agency_owner", "auditor"])
def test_every_get_route_changes_nothing_and_carries_the_headers(app, _transaction, world,
                                                                 capsys, role):
    """Every GET route (HTML, PDF, CSV, JSON, errors) as three roles: the security headers on
    each response, and the database exactly as before (audit log included)."""
    from tests.test_isolation import _fingerprint

    client = app.test_client()
    sign_in(client, world.user(role))
    with app.app_context():
        before = _fingerprint()
    urls, kinds, problems = _get_urls(app, world), {}, []
    for url in urls:
        response = client.get(url)
        kinds[response.mimetype] = kinds.get(response.mimetype, 0) + 1
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        if "unsafe-inline" in csp or "frame-ancestors 'none'" not in csp \
                or "default-src 'self'" not in csp:
            problems.append(f"{url}: CSP {csp!r}")
        if headers.get("X-Content-Type-Options") != "nosniff" \
                or headers.get("Referrer-Policy") != "same-origin":
            problems.append(f"{url}: nosniff/referrer headers missing")
        if headers.get("Cache-Control") != "no-store":  # see also tests/portal/test_no_store.py
            problems.append(f"{url}: Cache-Control {headers.get('Cache-Control')!r}")
        if response.status_code >= 500:
            problems.append(f"{url}: {response.status_code}")
    with app.app_context():
        if _fingerprint() != before:
            problems.append("a GET request changed the database")
    with capsys.disabled():
        print(f"\nGET routes as {role.value}: {len(urls)} routes ({kinds}), "
              f"{len(problems)} problems")
    assert not problems, "\n".join(problems[:30])


def test_state_changing_methods_other_than_post_are_not_served(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    for method in ("PUT", "PATCH", "DELETE"):
        for url in (f"/agencies/{world.a.id}", "/users/new", f"/agencies/{world.a.id}/status"):
            assert client.open(url, method=method).status_code == 405, (method, url)


def test_language_switch_redirects_stay_on_the_site(client, world):
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example",
                   "javascript:alert(1)", "http:/evil.example", "\t//evil.example"):
        response = client.post("/locale", data={"locale": "en", "next": target})
        assert response.status_code == 302
        assert response.headers["Location"] in ("/", "http://portal.test/"), target
    assert client.post("/locale", data={"locale": "en", "next": "/auth/sign-in"}
                       ).headers["Location"].endswith("/auth/sign-in")


# --- PDFs: user text escaped, nothing fetched ---------------------------------------------------


HOSTILE_NAME = '<b>bold</b><img src="http://127.0.0.1:{port}/x.png">'  # fits 64 characters


@pytest.fixture
def listener():
    """A loopback HTTP server that records every request it gets (it should get none)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, hits
    server.shutdown()
    server.server_close()


def test_user_text_in_a_pdf_is_escaped_and_fetches_nothing(app, client, world, listener,
                                                          monkeypatch):
    """An engineer named with markup: the certificate PDF prints the markup as text, and
    WeasyPrint asks for nothing but the portal's own font and stylesheet."""
    from io import BytesIO

    from pypdf import PdfReader

    from portal import pdf
    from tests.certification import factories as cf

    port, hits = listener
    name = HOSTILE_NAME.format(port=port)
    with app.app_context(), unscoped("test"):
        from flask import g

        g._audit_actor = None
        engineer = cf.make_engineer(world.a, name=name)
        certificate = cf.make_certificate(engineer, cf.get_program(world.line, 1))
        from portal.extensions import db

        db.session.commit()
        certificate_id = certificate.id
    fetched = []
    real_fetch = pdf.PortalAssetFetcher.fetch

    def recording(self, url, headers=None):
        fetched.append(url)
        return real_fetch(self, url, headers)

    monkeypatch.setattr(pdf.PortalAssetFetcher, "fetch", recording)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.get(f"/certification/certificates/{certificate_id}/pdf?lang=en")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(BytesIO(response.data)).pages)
    assert "<b>bold</b>" in text.replace(" ", "").replace("\n", "") or "<b>bold" in text
    assert all(url.startswith("file:") and ("/portal/static/pdf/" in url or "wqy" in url)
               for url in fetched), fetched
    assert not hits


def test_the_pdf_fetcher_refuses_file_and_network_urls(app, listener):
    """Even markup that reached the renderer unescaped loads nothing from disk or network."""
    from weasyprint import HTML

    from portal.pdf import PortalAssetFetcher

    port, hits = listener
    urls = [f"http://127.0.0.1:{port}/a.png", "file:///etc/passwd", "file:///etc/hosts",
            f"https://127.0.0.1:{port}/b.css", "ftp://127.0.0.1/c.png",
            "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'><image "
            "href='file:///etc/passwd'/></svg>"]
    body = "".join(f'<img src="{u}"><link rel="stylesheet" href="{u}">' for u in urls)
    fetcher = PortalAssetFetcher()
    pdf = HTML(string=f"<html><body>{body}<p style=\"background: url('file:///etc/hosts')\">"
                      f"x</p></body></html>", base_url=None, url_fetcher=fetcher).write_pdf()
    assert pdf.startswith(b"%PDF")
    assert not hits
    assert {u for u in urls if not u.startswith("data:")} <= set(fetcher.refused)
    print(f"PDF fetcher: {len(fetcher.refused)} URLs refused, {len(hits)} network requests")


# --- sign-in throttling shared through Redis ------------------------------------------------------


REDIS_URL = "redis://127.0.0.1:6379/14"


def _redis_or_skip():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379 (.ci/run starts it)")


@pytest.fixture
def own_limiter():
    """The limiter is one object bound to the last app initialised: give it back after."""
    from portal.extensions import limiter

    saved = dict(limiter.__dict__)
    yield
    limiter.__dict__.clear()
    limiter.__dict__.update(saved)


def test_sign_in_throttling_is_shared_between_workers_through_redis(tmp_path, own_limiter):
    """Two portal processes with REDIS_URL: failed sign-ins counted by one refuse the next
    attempt at the other, even with the right password."""
    import json
    import subprocess
    import sys
    import uuid

    _redis_or_skip()
    from portal.extensions import db as _db
    from tests.realapp import Site

    prefix = f"portal-test-{uuid.uuid4().hex[:8]}"
    site = Site(tmp_path / "worker1", migrate=True, REDIS_URL=REDIS_URL,
                RATELIMIT_KEY_PREFIX=prefix, PORTAL_SIGN_IN_LIMIT_ACCOUNT="5 per 15 minutes")
    try:
        assert "redis" in type(limiter_storage(site.app)).__name__.lower()
        with site.app.app_context(), unscoped("an account"):
            from tests.factories import make_region, make_user

            make_region()
            email = make_user(Role.HQ_ADMIN).email
            _db.session.commit()
        worker2 = f"""
import json, sys
from portal import create_app
app = create_app({{"SQLALCHEMY_DATABASE_URI": {site.app.config['SQLALCHEMY_DATABASE_URI']!r},
    "REDIS_URL": {REDIS_URL!r}, "RATELIMIT_KEY_PREFIX": {prefix!r}, "SECRET_KEY": "w2",
    "WTF_CSRF_ENABLED": False, "TESTING": True}})
client = app.test_client()
codes = [client.post("/auth/sign-in", data={{"email": {email!r}, "password": "wrong pass {{n}}"
         .format(n=n)}}).status_code for n in range(3)]
print(json.dumps(codes))
"""
        done = subprocess.run([sys.executable, "-c", worker2],  # noqa: S603 - our own script
                              capture_output=True, text=True,
                              timeout=120, check=False,
                              env={**__import__("os").environ,
                                   "PORTAL_INSTANCE_PATH": str(tmp_path / "worker2")})
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, 200, 200]
        client = site.app.test_client()
        for n in range(2):
            assert client.post("/auth/sign-in", data={"email": email,
                                                      "password": f"bad {n}"}).status_code == 200
        blocked = client.post("/auth/sign-in", data={"email": email, "password": PASSWORD})
        assert blocked.status_code == 429, "the limit was not shared between the workers"
        import redis

        keys = redis.Redis.from_url(REDIS_URL).keys(f"*{prefix}*")
        assert keys, "no throttling counter in Redis"
        # The account's growing delay is counted there too, not in one worker's memory.
        assert any(b"sign-in-delay/failures/" in key for key in keys), keys
    finally:
        import redis

        store = redis.Redis.from_url(REDIS_URL)
        for key in store.keys(f"*{prefix}*"):
            store.delete(key)
        site.close()


def limiter_storage(app):
    from portal.extensions import limiter

    with app.app_context():
        return limiter.storage


# --- passwords never stored in readable places --------------------------------------------------


def test_passwords_reach_neither_logs_nor_audit_log(app, client, world, caplog):
    import logging

    from sqlalchemy import select

    from portal.audit.models import AuditEntry
    from portal.extensions import db

    caplog.set_level(logging.DEBUG)
    user = world.user(Role.HQ_ADMIN)
    client.post("/auth/sign-in", data={"email": user.email, "password": "Wr0ng-guess-77"})
    sign_in(client, user)
    client.post("/auth/password", data={"current": PASSWORD, "new": "N3w-secret-portal-1",
                                        "confirm": "N3w-secret-portal-1"})
    client.post("/users/new", data={"email": "new.person@test.example", "name": "New",
                                    "role": "hq_parts", "password": "Fr3sh-account-pw-9",
                                    "locale": "zh_CN"})
    with app.app_context(), unscoped("read the audit log"):
        entries = db.session.scalars(select(AuditEntry)).all()
        stored = " ".join(f"{e.before} {e.after} {e.reason}" for e in entries)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("Wr0ng-guess-77", PASSWORD, "N3w-secret-portal-1", "Fr3sh-account-pw-9",
                   "$argon2"):
        assert secret not in logged, secret
        assert secret not in stored, secret
