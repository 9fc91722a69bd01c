"""One pooled PostgreSQL connection shared by every request and job never carries a scope.

A portal with a pool of exactly one connection serves, in a random but reproducible order,
agency A's owner, an anonymous visitor, agency B's owner, failing requests (a foreign id, a
number the database refuses) and background jobs in B's scope. After every step the same
connection, used bare, must carry no tenant setting and see no agency row (row-level
security with no scope), and no page or job of anyone but A may show A's canary.
"""
import os
import random

import pytest
from sqlalchemy import select, text

from portal import jobs
from portal.extensions import db
from portal.tenancy import agency_scope, raw_sql_allowed, unscoped
from tests.realapp import Site, session_client

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="needs DATABASE_URL pointing at PostgreSQL (.ci/run sets it)"),
]

STEPS = 1000
PROBE = "test.pool_probe"


def _probe_job(params, tick):
    """What a job in B's scope sees: agency codes through the ORM, A's canary through raw SQL
    (only row-level security stands in the way)."""
    from tenants.models import Agency

    codes = db.session.scalars(select(Agency.code).order_by(Agency.code)).all()
    with raw_sql_allowed("probe the database wall from a job"):
        raw = db.session.execute(text(
            "SELECT count(*) FROM engineers WHERE name LIKE '%CANARY-A%'")).scalar()
    return {"codes": codes, "a_rows": raw}


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("pool"), migrate=True, TENANCY_STRICT=False,
                SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0,
                                           "pool_timeout": 10, "pool_pre_ping": True})
    jobs._handlers[PROBE] = _probe_job
    from types import SimpleNamespace

    from flask import g

    from portal.auth.roles import Role
    from tests.certification.factories import make_engineer
    from tests.factories import build_world

    with site.app.test_request_context():
        world = build_world()
        with unscoped("the pool test seeds engineers of A and B"):
            g._audit_actor = None
            ids = SimpleNamespace(
                a_engineer=make_engineer(world.a, name="Engineer CANARY-A").id,
                b_engineer=make_engineer(world.b, name="Engineer CANARY-B").id,
                b=world.b.id, owner_a=world.user(Role.AGENCY_OWNER).id,
                owner_b=world.b_users[Role.AGENCY_OWNER].id,
                emails={role: world.user(role).email for role in (Role.HQ_ADMIN,
                                                                  Role.AGENCY_OWNER)})
            db.session.commit()
    yield site, ids
    jobs._handlers.pop(PROBE, None)
    site.close()


def _bare_connection_state(app) -> tuple[int, str | None, int, int]:
    """(backend pid, portal.scope, agencies seen, engineers seen) on the pooled connection,
    used without the portal's session (nothing sets a scope)."""
    with app.app_context():
        with db.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT pg_backend_pid(), current_setting('portal.scope', true), "
                "(SELECT count(*) FROM agencies), (SELECT count(*) FROM engineers)")).one()
            conn.rollback()
    return tuple(row)


def test_one_pooled_connection_never_carries_a_scope(pooled, capsys):
    site, ids = pooled
    app = site.app
    owner_a = session_client(app, ids.owner_a)
    owner_b = session_client(app, ids.owner_b)
    anonymous = app.test_client()

    def agency_a():
        page = owner_a.get("/my-agency", follow_redirects=True)
        assert page.status_code == 200 and b"CANARY-A" in page.data
        return page

    def no_user():
        page = anonymous.get("/my-agency")
        assert page.status_code == 302
        verify = anonymous.get("/certification/verify?number=C-0&code=x")
        assert verify.status_code in (200, 404) and b"CANARY-A" not in verify.data
        return verify

    def agency_b():
        for path in ("/my-agency", "/certification/engineers/"):
            page = owner_b.get(path, follow_redirects=True)
            assert page.status_code == 200 and b"CANARY-B" in page.data, path
            assert b"CANARY-A" not in page.data, path
        return page

    def failed_request():
        foreign = owner_b.get(f"/certification/engineers/{ids.a_engineer}")
        assert foreign.status_code == 404 and b"CANARY-A" not in foreign.data
        too_big = owner_b.get("/certification/engineers/99999999999999999999")
        assert too_big.status_code in (400, 404)
        return too_big

    def background_job():
        with app.test_request_context():
            with unscoped("start a probe job as B's owner would"):
                job = jobs.start(PROBE, {}, scope=agency_scope(ids.b), agency_id=ids.b)
                db.session.commit()
                job_id = job.id
            done = jobs.run(job_id)
            assert done.status == jobs.SUCCEEDED, done.error
            assert done.result["codes"] == ["B-FOR"] and done.result["a_rows"] == 0
            db.session.remove()

    steps = [agency_a, no_user, agency_b, failed_request, background_job]
    rng = random.Random(8)  # noqa: S311 - a reproducible order
    order = [agency_a, no_user, agency_b, failed_request, background_job]
    order += [rng.choice(steps) for _ in range(STEPS - len(order))]
    pids, tally = set(), {step.__name__: 0 for step in steps}
    for n, step in enumerate(order):
        step()
        tally[step.__name__] += 1
        pid, scope, agencies, engineers = _bare_connection_state(app)
        pids.add(pid)
        assert scope in (None, ""), f"step {n} ({step.__name__}) left scope {scope!r}"
        assert agencies == 0 and engineers == 0, f"step {n} ({step.__name__}) left rows visible"
    assert len(pids) == 1, f"the pool opened {len(pids)} connections"
    with capsys.disabled():
        print(f"\npooled connection: {len(order)} interleaved steps on one connection "
              f"({', '.join(f'{k} {v}' for k, v in tally.items())}), no scope carried over")


def test_sign_in_works_with_production_sessions(pooled):
    """Production sessions expire objects on commit (the shared test session does not): the
    sign-in must not read the account back after its commit in the anonymous scope."""
    site, ids = pooled
    from tests.factories import PASSWORD

    for role, email in ids.emails.items():
        client = site.app.test_client()
        response = client.post("/auth/sign-in", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, f"{role.value}: sign-in answered " \
                                            f"{response.status_code}"
        assert client.get("/").status_code == 200
