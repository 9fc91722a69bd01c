"""Route × method × role × (own / sibling / foreign / missing id): nothing leaks, nothing moves.

Walks every URL rule of the application, so a route added later is covered without anyone
remembering. Foreign and missing ids must answer alike (404 when the role may use the route
at all), no response for an agency user may contain another agency's canary, a regional
manager never sees another region's, and a request on a foreign id writes nothing.

Where a parameter can name a row of a quarter not published yet (an evaluation result, its
report, the quarter itself), the user's own such row is tried too ("own-unpublished"): for an
agency user it must answer like a missing id, write nothing, and no agency page may show what
the draft holds.
"""
import hashlib

import pytest
from flask import url_for
from sqlalchemy import inspect, select, text

from portal.auth.roles import AGENCY_ROLES, Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import bearer, token_for
from tests.factories import sign_in
from tests.isolation_params import (
    AREA_PARAMS,
    PARAMS,
    SKIP_ENDPOINTS,
    UNPUBLISHED_CANARIES,
    Owned,
    Reference,
    param_for,
)

MISSING_ID = 987654321
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# What an agency user must not reach: other agencies' rows, and its own of unpublished quarters.
HIDDEN_FROM_AGENCIES = ("sibling", "foreign", "own-unpublished")


# Columns a read may write: a token's last use (written at most once a minute).
READ_STAMPS = {"api_tokens": {"last_used_at"}}
API_PREFIX = "/api/v1/"


_selects: list = []


def _table_selects() -> list:
    """SELECT of every table's columns (a read's stamps left out), reflected once: reading
    PostgreSQL's catalog for every fingerprint would cost more than the matrix itself."""
    if not _selects:
        inspector = inspect(db.engine)
        for table in sorted(inspector.get_table_names()):
            columns = ", ".join(f'"{c["name"]}"' for c in inspector.get_columns(table)
                                if c["name"] not in READ_STAMPS.get(table, ()))
            _selects.append((table, text(f'SELECT {columns} FROM "{table}" ORDER BY 1')))  # noqa: S608
    return _selects


def _fingerprint() -> str:
    """A hash of every row of every table: any write shows."""
    digest = hashlib.sha256()
    with unscoped("the isolation test compares the whole database before and after"):
        for table, query in _table_selects():
            rows = db.session.execute(query).all()
            digest.update(table.encode() + repr(rows).encode())
    db.session.commit()  # close the read's savepoint before the case's own is rolled back
    return digest.hexdigest()


def _rules(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        yield rule


def _targets(rule, world):
    """(name, kwargs) pairs to call `rule` with."""
    kinds = {p: param_for(rule.endpoint, p) for p in rule.arguments}
    owned = [p for p, kind in kinds.items() if isinstance(kind, Owned)]
    with unscoped("the isolation test makes rows of every agency"):
        def values(agency, unpublished=False):
            out = {}
            for p, kind in kinds.items():
                make = kind.unpublished if unpublished and kind.unpublished else kind.make
                out[p] = make(world, agency) if isinstance(kind, Owned) else make(world)
            return out

        if owned:
            yield "own", values(world.a)
            yield "sibling", values(world.a2)
            yield "foreign", values(world.b)
            yield "missing", {**values(world.a), **{p: MISSING_ID for p in owned}}
        elif rule.arguments:
            yield "reference", values(world.a)
            yield "missing", {p: MISSING_ID for p in rule.arguments}
        else:
            yield "plain", {}
        if any(kind.unpublished for kind in kinds.values()):
            yield "own-unpublished", values(world.a, unpublished=True)


def test_every_url_parameter_is_known(app):
    unknown = sorted({(r.rule, p) for r in _rules(app) for p in r.arguments
                      if param_for(r.endpoint, p) is None})
    assert not unknown, (
        "the isolation test cannot judge these URL parameters; add them to "
        f"tests/isolation_params.py: {unknown}")


def test_route_role_matrix(app, _transaction, world, capsys):
    cases = 0
    failures: list[str] = []
    with app.test_request_context():
        rules = [(rule, list(_targets(rule, world))) for rule in _rules(app)]
        db.session.commit()
        urls = [(rule, [(name, url_for(rule.endpoint, **kw)) for name, kw in targets])
                for rule, targets in rules]
    tokens = {role: token_for(app, world.user(role)) for role in Role}
    for role in Role:
        user = world.user(role)
        forbidden = _forbidden_canaries(role)
        for rule, targets in urls:
            for method in sorted(set(rule.methods) & set(METHODS)):
                statuses = {}
                for name, url in targets:
                    # Each call runs in a savepoint rolled back afterwards, so that a legitimate
                    # write on the user's own row cannot change the world for the next call.
                    _transaction.exec_driver_sql("SAVEPOINT isolation_case")
                    client = app.test_client()
                    api = url.startswith(API_PREFIX)
                    if not api:
                        sign_in(client, user)
                    judge_writes = (
                        (name in ("sibling", "foreign", "missing") and (
                            role in AGENCY_ROLES or (role == Role.REGIONAL_MANAGER
                                                     and name != "sibling")))
                        or (name == "own-unpublished" and role in AGENCY_ROLES))
                    before = None
                    if judge_writes and method != "GET":
                        with app.app_context():
                            before = _fingerprint()
                    if api:  # the API: the role's token, an empty JSON body
                        response = client.open(url, method=method, json={},
                                               headers=bearer(tokens[role]))
                    else:
                        response = client.open(url, method=method, data={})
                    cases += 1
                    statuses[name] = response.status_code
                    where = f"{role.value} {method} {url} ({name})"
                    if response.status_code >= 500:
                        failures.append(f"{where}: {response.status_code}")
                    body = response.get_data()
                    leaked = [c for c in forbidden if c.encode() in body]
                    if leaked:
                        failures.append(f"{where}: shows {leaked}")
                    if before is not None:
                        with app.app_context():
                            if _fingerprint() != before:
                                failures.append(f"{where}: wrote to the database")
                    _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT isolation_case")
                failures.extend(_judge_statuses(role, method, rule.rule, statuses))
    with capsys.disabled():
        print(f"\nisolation matrix: {cases} (route, method, role, object) cases tried")
    assert not failures, "\n".join(failures[:50])


def _forbidden_canaries(role: Role) -> list[str]:
    if role in AGENCY_ROLES:
        return ["CANARY-B", "CANARY-S", *UNPUBLISHED_CANARIES]
    if role == Role.REGIONAL_MANAGER:
        return ["CANARY-B"]
    return []


def _judge_statuses(role, method, rule, statuses) -> list[str]:
    missing = statuses.get("missing")
    problems = []
    restricted = list(HIDDEN_FROM_AGENCIES) if role in AGENCY_ROLES else (
        ["foreign"] if role == Role.REGIONAL_MANAGER else [])
    for name in restricted:
        if name in statuses and statuses[name] != missing:
            problems.append(f"{role.value} {method} {rule}: {name} answered {statuses[name]}, "
                            f"missing answered {missing}")
    # The API refuses an empty body (422) or a change without If-Match (428) before it
    # looks for the row; never with a success.
    expected = (302, 400, 403, 404, 405, *((422, 428) if rule.startswith(API_PREFIX) else ()))
    if missing is not None and missing not in expected:
        problems.append(f"{role.value} {method} {rule}: a missing id answered {missing}")
    return problems


@pytest.mark.parametrize("path", ["/", "/agencies/", "/users/", "/audit/"])
def test_anonymous_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/auth/sign-in" in response.headers["Location"]


def test_every_view_declares_an_access_policy(app):
    from portal.auth.access import policy_of

    with app.test_request_context():
        missing = sorted(r.endpoint for r in app.url_map.iter_rules()
                         if policy_of(r.endpoint) is None)
    assert not missing, f"views without @allow(...) or @public: {missing}"


def test_public_views_are_few(app):
    from portal.auth.access import policy_of

    with app.test_request_context():
        public = sorted(r.endpoint for r in app.url_map.iter_rules()
                        if policy_of(r.endpoint).public and r.endpoint not in SKIP_ENDPOINTS)
    print("public endpoints:", public)
    assert set(public) <= {"auth.sign_in", "web.set_locale", "web.healthz",
                           "certification.verify", "dispatch.status",
                           "api_docs.openapi", "api_docs.docs"}


def test_reference_kinds_are_consistent():
    for params in (PARAMS, *AREA_PARAMS.values()):
        for name, kind in params.items():
            assert isinstance(kind, Owned | Reference), name


_ = select
