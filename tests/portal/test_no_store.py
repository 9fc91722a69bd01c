"""Private downloads are not cached: every response but the public static files says
`Cache-Control: no-store` (pages, CSV, PDF, JSON, evidence, redirects and error pages).

Walks every GET route of the application, so that a route added later is covered without
anyone remembering; each route is asked by one role after another until one may read it.
"""
from flask import url_for

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import sign_in
from tests.isolation_params import SKIP_ENDPOINTS, Owned, param_for

# HQ admin reads most; the others read what only they may (their agency's claims, reports…).
ROLES = [Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.HQ_SETTLEMENT, Role.HQ_SERVICE, Role.HQ_PARTS,
         Role.HQ_CERTIFIER, Role.AUDITOR, Role.REGIONAL_MANAGER, Role.AGENCY_STAFF,
         Role.ENGINEER]

# The downloads the black-box test found cacheable: each must be read (200) by some role.
DOWNLOADS = {"service.orders_export", "settlement.statement_pdf", "settlement.export_lines",
             "audit.export", "jobs.progress", "settlement.download",
             "certification.certificate_pdf", "evaluation.trend"}


def _get_urls(app, world) -> list[tuple[str, str]]:
    """(endpoint, URL) of every GET rule, its parameters naming rows of agency A."""
    out = []
    with app.test_request_context(), unscoped("the test makes rows to read"):
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.endpoint in SKIP_ENDPOINTS:
                continue
            values = {}
            for name in rule.arguments:
                kind = param_for(rule.endpoint, name)
                values[name] = (kind.make(world, world.a) if isinstance(kind, Owned)
                                else kind.make(world))
            out.append((rule.endpoint, url_for(rule.endpoint, **values)))
        db.session.commit()
    return out


def test_every_private_response_says_no_store(app, _transaction, world, capsys):
    urls = _get_urls(app, world)
    clients = {None: app.test_client()}  # None: not signed in
    problems, read, tried = [], set(), 0
    for endpoint, url in urls:
        for role in [*ROLES, None]:
            if role not in clients:
                clients[role] = app.test_client()
                sign_in(clients[role], world.user(role))
            response = clients[role].get(url)
            tried += 1
            cache = response.headers.get("Cache-Control", "")
            if cache != "no-store":
                who = role.value if role else "anonymous"
                problems.append(f"{who} GET {url} → {response.status_code}: "
                                f"Cache-Control {cache!r}")
            if response.status_code == 200:
                read.add(endpoint)
                break
    with capsys.disabled():
        print(f"\nno-store: {len(urls)} GET routes, {tried} requests, {len(read)} routes read; "
              f"none read: {sorted({e for e, _u in urls} - read)}")
    assert not problems, "\n".join(problems[:40])
    assert DOWNLOADS <= read, f"never read: {sorted(DOWNLOADS - read)}"


def test_public_static_files_stay_cacheable(client):
    with client.get("/static/favicon.svg") as response:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
