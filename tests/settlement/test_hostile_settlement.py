"""Every settlement form, reached by crawling pages that hold real settlements, sent hostile
values: never a 500, never a write on refusal, every error in the reader's language (Chinese
here); an accepted form writes one audit entry."""
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from settlement import review, services
from tests import test_hostile_input as hostile
from tests.factories import sign_in
from tests.hostile import crawl
from tests.settlement import factories as f
from tests.settlement.conftest import Env

ROLES = [Role.AGENCY_OWNER, Role.HQ_SETTLEMENT, Role.REGIONAL_MANAGER, Role.HQ_ADMIN]
START = ["/settlements/", "/settlements/rate-cards/", "/settlements/configuration",
         "/settlements/delegations"]


def settlement_forms(client):
    """The forms of this area (the crawl follows the menu into other areas too)."""
    forms, _pages = crawl(client, START, max_pages=60)
    return [form for form in forms if urlsplit(form.action).path.startswith("/settlements")]


@pytest.fixture
def seeded(app, world):
    """Agency A has a draft, a claim in regional review and one in HQ review."""
    with app.app_context():
        env = Env(world)
        with unscoped("fixtures"):
            f.rate_card([world.line])
            code = f.repair_code(world.line, "5.00")
            for n in range(3):
                day = env.day.replace(day=1) - timedelta(days=40 * n)
                f.order(world.a, world.line, day=day.replace(day=5), repairs=[code])
        with scoped(agency_scope(world.a.id)):
            opened = []
            for n in range(3):
                day = env.day.replace(day=1) - timedelta(days=40 * n)
                opened.append(services.open_settlement(world.a, day.year, day.month,
                                                       acting_user=env.owner, today=env.today))
            for s in opened[1:]:
                services.submit_settlement(s, acting_user=env.owner, seen_version=s.version,
                                           today=env.today)
        with unscoped("HQ"):
            review.regional_review(opened[2], True, "", acting_user=env.manager,
                                   seen_version=opened[2].version)
        db.session.commit()
    return world


# The values that matter for money forms (the full list runs in tests/test_hostile_input.py).
VALUES = ["", "x" * 5000, "-0.01", "99999999999999999999", "1e309", "NaN",
          "<script>alert('x')</script>", "\x00", "2999-12-31"]


# HQ admin's configuration forms are long; tests/test_hostile_input.py crawls them from the
# navigation, and test_views.py sends them bad input. Here: the forms of real settlements.
HOSTILE_ROLES = [Role.AGENCY_OWNER, Role.HQ_SETTLEMENT, Role.REGIONAL_MANAGER]


@pytest.mark.parametrize("role", HOSTILE_ROLES, ids=[r.value for r in HOSTILE_ROLES])
def test_settlement_forms_survive_hostile_input(app, _transaction, seeded, capsys, role,
                                                monkeypatch):
    monkeypatch.setattr(hostile, "HOSTILE_TEXT", VALUES)
    monkeypatch.setattr(hostile, "HOSTILE_CHOICES", ["", "-1", "<script>"])
    tally = hostile.Tally()
    world = seeded
    foreign_ids = sorted({world.b.id, world.b_users[Role.AGENCY_STAFF].id, 987654321})
    client = hostile.chinese_client(app)  # every refusal must explain itself in Chinese
    user = world.user(role)
    sign_in(client, user)
    forms = settlement_forms(client)
    assert forms
    for form in forms:
        tally.forms += 1
        hostile._attack(app, _transaction, client, user, form, foreign_ids, tally, role.value)
    with capsys.disabled():
        print(f"\nsettlement hostile input as {role.value}: {tally.forms} forms, "
              f"{tally.cases} cases, {tally.errors_shown} errors shown (in Chinese), "
              f"{len(tally.failures)} failures")
    assert not tally.failures, "\n".join(tally.failures[:40])


def test_accepted_settlement_forms_write_one_audit_entry(app, _transaction, seeded, capsys):
    accepted, problems = 0, []
    for role in ROLES:
        client = app.test_client()
        sign_in(client, seeded.user(role))
        for form in settlement_forms(client):
            _transaction.exec_driver_sql("SAVEPOINT audit_case")
            sign_in(client, seeded.user(role))
            before = hostile._audit_count(app)
            response = client.post(form.action, data=form.fields)
            if response.status_code == 302:
                accepted += 1
                written = hostile._audit_count(app) - before
                if written != 1:
                    problems.append(f"{role.value} {form.action}: {written} audit entries")
            _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT audit_case")
            _transaction.exec_driver_sql("RELEASE SAVEPOINT audit_case")
    with capsys.disabled():
        print(f"\nsettlement audit completeness: {accepted} accepted forms")
    assert accepted >= 5 and not problems, "\n".join(problems)
