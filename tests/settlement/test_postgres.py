"""Concurrency on PostgreSQL: racing requests on two connections change money once.

Each test runs real, committed transactions on two threads, so it uses a database of its own
(created, migrated and dropped here) rather than the suite's rolled-back transaction.
"""
import os
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, func, make_url, select

from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.clock import last_ended_month
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import ALL, agency_scope, scoped, unscoped

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="needs DATABASE_URL pointing at PostgreSQL (.ci/run sets it)"),
]


@pytest.fixture(scope="module")
def race_app(worker_id, tmp_path_factory):
    from flask import g
    from flask_migrate import upgrade

    import settlement.models  # noqa: F401 - the tables
    from portal import create_app
    from portal.dbsecurity import grant_app_role
    from tests.conftest import APP_ROLE
    from tests.realapp import scratch_database

    instance = tmp_path_factory.mktemp("race")
    with scratch_database(instance, "stl_race") as owner:
        owner_url = make_url(owner)
        app_url = owner_url.set(username=APP_ROLE, password=None)
        app = create_app({"TESTING": True, "SECRET_KEY": "race", "UPLOAD_ROOT": str(instance),
                          "SQLALCHEMY_DATABASE_URI": app_url.render_as_string(
                              hide_password=False),
                          "MIGRATION_DATABASE_URL": owner, "RATELIMIT_STORAGE_URI": "memory://",
                          "BABEL_DEFAULT_LOCALE": "en"})
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory, revision="heads")
            engine = create_engine(owner_url)
            with engine.begin() as conn:
                grant_app_role(conn, APP_ROLE)
            engine.dispose()
            g._audit_actor = None
            yield app
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def network(race_app):
    """A committed agency of its own, with two completed orders of last month."""
    from tenants.models import ProductLine
    from tests.factories import make_agency, make_product_line, make_region, make_user
    from tests.settlement import factories as f

    with race_app.app_context(), unscoped("race fixtures"):
        line = db.session.scalars(select(ProductLine).order_by(ProductLine.id)).first()
        if line is None:  # the module's one product line and rate card
            line = make_product_line()
            f.rate_card([line], effective=date(2000, 1, 1))
        region = make_region()
        agency = make_agency(region, product_lines=[line])
        users = {Role.AGENCY_OWNER: make_user(Role.AGENCY_OWNER, agency=agency),
                 Role.HQ_SETTLEMENT: make_user(Role.HQ_SETTLEMENT),
                 "colleague": make_user(Role.HQ_SETTLEMENT)}
        last = date(*last_ended_month(), 1)
        code = f.repair_code(line, "1.00")
        orders = [f.order(agency, line, day=last.replace(day=d), repairs=[code],
                          service_type="carry_in") for d in (3, 4)]
        db.session.commit()
        return {"agency": agency.id, "period": (last.year, last.month),
                "users": {k: u.id for k, u in users.items()}, "orders": [o.id for o in orders]}


def _race(app, *actions):
    """Run each action(app) on its own thread and connection; all start at the same moment.

    Returns what each returned, or the DomainError message it raised.
    """
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(n, action):
        with app.app_context():
            try:
                results[n] = action(barrier)
                db.session.commit()
            except DomainError as error:
                db.session.rollback()
                results[n] = error.message
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n, a)) for n, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


CLEAR = ("out of date", "Someone else changed", "just opened", "already open",
         "just claimed", "already in a settlement", "Nothing to claim")


def _one_wins(results, won) -> str:
    """Exactly one action won; the other got a clear message (not a 500). Returns it."""
    winners = [r for r in results if won(r)]
    losers = [r for r in results if not won(r)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], str) and any(c in losers[0] for c in CLEAR), results
    return losers[0]


def _user(user_id):
    with unscoped("load the acting user"):
        return db.session.scalars(select(User).where(User.id == user_id)).one()


def _open(app, network):
    from settlement import services
    from tenants.models import Agency

    with app.app_context(), scoped(agency_scope(network["agency"])):
        agency = db.session.scalars(select(Agency).where(Agency.id == network["agency"])).one()
        s = services.open_settlement(agency, *network["period"],
                                     acting_user=_user(network["users"][Role.AGENCY_OWNER]))
        db.session.commit()
        return s.id, s.version


def _load(settlement_id):
    from settlement.models import Settlement

    return db.session.scalars(select(Settlement).where(Settlement.id == settlement_id)).one()


def test_two_concurrent_submissions_change_money_once(race_app, network):
    from settlement import services

    sid, version = _open(race_app, network)

    def submit(barrier):
        with scoped(agency_scope(network["agency"])):
            s = _load(sid)
            owner = _user(network["users"][Role.AGENCY_OWNER])
            barrier.wait()
            services.submit_settlement(s, acting_user=owner, seen_version=version)
            return "ok"

    results = _race(race_app, submit, submit)
    _one_wins(results, lambda r: r == "ok")
    with race_app.app_context(), unscoped("check"):
        s = _load(sid)
        assert s.status == "submitted" and s.submission_count == 1
        entries = db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "settlement.submitted", AuditEntry.object_id == str(sid)))
        assert entries == 1


def test_two_concurrent_openings_of_a_month_make_one_claim(race_app, network):
    from settlement import services
    from tenants.models import Agency

    def open_month(barrier):
        with scoped(agency_scope(network["agency"])):
            agency = db.session.scalars(select(Agency).where(
                Agency.id == network["agency"])).one()
            owner = _user(network["users"][Role.AGENCY_OWNER])
            barrier.wait()
            return services.open_settlement(agency, *network["period"], acting_user=owner).id

    results = _race(race_app, open_month, open_month)
    _one_wins(results, lambda r: isinstance(r, int))
    with race_app.app_context(), unscoped("check"):
        from settlement.models import Claim

        live = db.session.scalar(select(func.count(Claim.id)).where(
            Claim.work_order_id.in_(network["orders"]), Claim.is_live.is_(True)))
        assert live == 2


def test_the_database_holds_one_live_claim_when_two_drafts_race(race_app, network):
    """Two drafts add the same order at the same moment: the partial unique index decides."""
    from settlement import services
    from tenants.models import Agency
    from tests.settlement import factories as f

    year, month = network["period"]
    with race_app.app_context(), unscoped("fixture"):
        from service.models import WorkOrder

        line_id = db.session.scalar(select(WorkOrder.product_line_id).where(
            WorkOrder.id == network["orders"][0]))
        from tenants.models import ProductLine

        line = db.session.scalars(select(ProductLine).where(ProductLine.id == line_id)).one()
        agency = db.session.scalars(select(Agency).where(Agency.id == network["agency"])).one()
        earlier = date(year, month, 1) - timedelta(days=20)
        f.order(agency, line, day=earlier, repairs=[f.repair_code(line)])
        late = f.order(agency, line, day=earlier, repairs=[f.repair_code(line)])
        late_id, late_number = late.id, late.number
        db.session.commit()
    first, _v = _open(race_app, network)                 # this month (holds its two orders)
    with race_app.app_context(), scoped(agency_scope(network["agency"])):
        agency = db.session.scalars(select(Agency).where(Agency.id == network["agency"])).one()
        owner = _user(network["users"][Role.AGENCY_OWNER])
        second = services.open_settlement(agency, earlier.year, earlier.month, acting_user=owner).id
        # the earlier month's draft holds `late`'s sibling; `late` itself is released again
        s2 = _load(second)
        line_of_late = next(ln for ln in s2.lines if ln.work_order_id == late_id)
        services.remove_line(s2, line_of_late, acting_user=owner, seen_version=s2.version)
        db.session.commit()

    def add_to(settlement_id):
        def action(barrier):
            with scoped(agency_scope(network["agency"])):
                s = _load(settlement_id)
                owner = _user(network["users"][Role.AGENCY_OWNER])
                barrier.wait()
                return services.add_order(s, late_number, acting_user=owner,
                                          seen_version=s.version).id
        return action

    results = _race(race_app, add_to(first), add_to(second))
    _one_wins(results, lambda r: isinstance(r, int))
    with race_app.app_context(), unscoped("check"):
        from settlement.models import Claim

        assert db.session.scalar(select(func.count(Claim.id)).where(
            Claim.work_order_id == late_id, Claim.is_live.is_(True))) == 1


def test_two_concurrent_approvals_approve_once(race_app, network):
    from settlement import review, services

    sid, version = _open(race_app, network)
    with race_app.app_context(), scoped(agency_scope(network["agency"])):
        s = _load(sid)
        services.submit_settlement(s, acting_user=_user(network["users"][Role.AGENCY_OWNER]),
                                   seen_version=version)
        db.session.commit()
    with race_app.app_context(), scoped(ALL):
        s = _load(sid)
        assert not s.awaits_regional_review
        review.approve_clean_lines(s, acting_user=_user(network["users"][Role.HQ_SETTLEMENT]),
                                   seen_version=s.version)
        db.session.commit()
        seen = s.version

    def approve(user_key):
        def action(barrier):
            with scoped(ALL):
                s = _load(sid)
                user = _user(network["users"][user_key])
                barrier.wait()
                return review.approve_settlement(s, acting_user=user, seen_version=seen)
        return action

    results = _race(race_app, approve(Role.HQ_SETTLEMENT), approve("colleague"))
    _one_wins(results, lambda r: r is True)
    with race_app.app_context(), unscoped("check"):
        assert db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "settlement.approved", AuditEntry.object_id == str(sid))) == 1
