"""Every form the roles can reach, sent hostile values: never a 500, never a write on refusal.

The forms are discovered by crawling the app as each role (tests/hostile.py), so a form added
later is covered without anyone remembering. Values come from a fixed list of classic
attacks and mistakes and from Hypothesis.
"""
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import sign_in
from tests.hostile import HOSTILE_CHOICES, HOSTILE_TEXT, crawl

PER_FIELD = 6
ROLES = [Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.HQ_CERTIFIER,
         Role.HQ_SETTLEMENT, Role.HQ_PARTS, Role.HQ_SERVICE, Role.REGIONAL_MANAGER]
START = ["/", "/agencies/", "/users/", "/network/reference", "/my-agency"]


def _fingerprint(app) -> str:
    digest = hashlib.sha256()
    with app.app_context(), unscoped("compare the whole database before and after"):
        for table in sorted(inspect(db.engine).get_table_names()):
            if table == "audit_entries":
                continue  # sign-in entries; any real write also changes its own table
            query = text(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608 - schema names
            digest.update(table.encode() + repr(db.session.execute(query).all()).encode())
        db.session.commit()
    return digest.hexdigest()


class Tally:
    def __init__(self):
        self.forms = self.fields = self.cases = 0
        self.failures: list[str] = []


def _submit(app, client, form, data, tally, label, before):
    """Send one case; a refused request must leave the database as `before` describes."""
    response = client.post(form.action, data=data, follow_redirects=False)
    tally.cases += 1
    where = f"{form.action} [{label}]"
    if response.status_code >= 500:
        tally.failures.append(f"{where}: {response.status_code}")
    elif response.status_code != 302 and _fingerprint(app) != before:
        tally.failures.append(f"{where}: refused ({response.status_code}) but wrote")
    return response


def _cases_for(form, foreign_ids):
    """(label, data) pairs: empty, one hostile field at a time, foreign ids."""
    base = dict(form.fields)
    yield "empty", {}
    for n, name in enumerate(sorted(set(form.fields) | set(form.choices))):
        if name == "csrf_token":
            continue
        if name in form.choices:
            values = HOSTILE_CHOICES
        else:
            # Every field gets the worst three and a rotating share of the rest, so that the
            # whole list is spread over each form without sending all of it to every field.
            rest = HOSTILE_TEXT[3:]
            start = (n * PER_FIELD) % len(rest)
            values = HOSTILE_TEXT[:3] + (rest + rest)[start:start + PER_FIELD]
        for value in values:
            yield f"{name}={value[:12]!r}", {**base, name: value}
        for ident in foreign_ids:
            yield f"{name}=foreign {ident}", {**base, name: str(ident)}


def _attack(app, connection, client, user, form, foreign_ids, tally, label):
    sign_in(client, user)
    connection.exec_driver_sql("SAVEPOINT hostile_form")
    before = _fingerprint(app)
    for case, data in _cases_for(form, foreign_ids):
        response = _submit(app, client, form, data, tally, f"{label} {case}", before)
        if response.status_code == 302:
            # accepted: undo it, and sign in again in case it touched the session
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_form")
            sign_in(client, user)
            connection.exec_driver_sql("RELEASE SAVEPOINT hostile_form")
            connection.exec_driver_sql("SAVEPOINT hostile_form")
            before = _fingerprint(app)
    connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_form")
    connection.exec_driver_sql("RELEASE SAVEPOINT hostile_form")


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_every_form_survives_hostile_input(app, _transaction, world, capsys, role):
    tally = Tally()
    foreign_ids = sorted({world.b.id, world.b_users[Role.AGENCY_STAFF].id, 987654321})
    client = app.test_client()
    user = world.user(role)
    sign_in(client, user)
    forms, _pages = crawl(client, START)
    for form in forms:
        tally.forms += 1
        tally.fields += len((set(form.fields) | set(form.choices)) - {"csrf_token"})
        _attack(app, _transaction, client, user, form, foreign_ids, tally, role.value)
    with capsys.disabled():
        print(f"\nhostile input as {role.value}: {tally.forms} forms, {tally.fields} fields, "
              f"{tally.cases} cases, {len(tally.failures)} failures")
    assert not tally.failures, "\n".join(tally.failures[:40])


text_values = st.one_of(st.text(max_size=300), st.sampled_from(HOSTILE_TEXT),
                        st.integers(min_value=-10**12, max_value=10**12).map(str),
                        st.dates().map(str))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_values_never_break_a_form(app, _transaction, world, data):
    client = app.test_client()
    role = data.draw(st.sampled_from(ROLES))
    sign_in(client, world.user(role))
    forms, _pages = crawl(client, START, max_pages=40)
    if not forms:
        return
    form = data.draw(st.sampled_from(forms))
    names = sorted(set(form.fields) | set(form.choices))
    values = {n: data.draw(text_values) for n in names if data.draw(st.booleans())}
    tally = Tally()
    _transaction.exec_driver_sql("SAVEPOINT hostile_case")
    _submit(app, client, form, {**form.fields, **values}, tally, "hypothesis",
            _fingerprint(app))
    _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_case")
    _transaction.exec_driver_sql("RELEASE SAVEPOINT hostile_case")
    assert not tally.failures, tally.failures


def _audit_count(app) -> int:
    from sqlalchemy import func, select

    from portal.audit.models import AuditEntry

    with app.app_context(), unscoped("count audit entries"):
        return db.session.scalar(select(func.count(AuditEntry.id)))


def test_an_accepted_form_writes_exactly_one_audit_entry(app, _transaction, world, capsys):
    """Forms sent as the page renders them (edit forms come filled in): when the portal
    accepts one, exactly one audit entry records the change."""
    accepted, problems = 0, []
    for role in ROLES:
        client = app.test_client()
        sign_in(client, world.user(role))
        forms, _pages = crawl(client, START)
        for form in forms:
            _transaction.exec_driver_sql("SAVEPOINT audit_case")
            sign_in(client, world.user(role))
            before = _audit_count(app)
            response = client.post(form.action, data=form.fields)
            if response.status_code == 302 and "/auth/" not in form.action:
                accepted += 1
                written = _audit_count(app) - before
                if written != 1:
                    problems.append(f"{role.value} {form.action}: {written} audit entries")
            _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT audit_case")
            _transaction.exec_driver_sql("RELEASE SAVEPOINT audit_case")
    with capsys.disabled():
        print(f"\naudit completeness: {accepted} accepted forms, {len(problems)} problems")
    assert not problems, "\n".join(problems)
