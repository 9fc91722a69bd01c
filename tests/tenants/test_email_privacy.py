"""An agency owner learns nothing about other tenants' accounts and takes no address of theirs.

Found by a black-box test: creating a user with ``admin@hq.demo`` said "already used", so an
owner could list the network's addresses, and could take any address for their agency. Owners
now create accounts with addresses in their agency's e-mail domains, which HQ sets.
"""
import pytest
from sqlalchemy import func, select, update

from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import Agency
from tests.factories import make_user, sign_in

A_DOMAIN = "a-own.example"


def _set_domains(app, agency_id: int, domains: str) -> None:
    with app.app_context(), unscoped("HQ sets an agency's e-mail domains"):
        db.session.execute(update(Agency).where(Agency.id == agency_id)
                           .values(email_domains=domains))
        db.session.commit()


def _state(app) -> tuple[int, int]:
    with app.app_context(), unscoped("the test counts accounts and audit entries"):
        return (db.session.scalar(select(func.count(User.id))),
                db.session.scalar(select(func.count(AuditEntry.id))))


def _new_user(client, email: str, role: str = "agency_staff"):
    return client.post("/users/new", data={"email": email, "name": "Someone", "role": role,
                                           "password": "long enough 1"})


def _page_without(response, email: str) -> str:
    """The answer with the typed address taken out (the form shows it back)."""
    return response.get_data(as_text=True).replace(email, "EMAIL")


@pytest.fixture
def owner(app, client, world):
    _set_domains(app, world.a.id, A_DOMAIN)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    return client


def test_addresses_of_hq_and_other_agencies_answer_like_any_other(app, owner, world):
    hq_admin = world.user(Role.HQ_ADMIN).email
    other_agency = world.b_users[Role.AGENCY_STAFF].email
    unknown = "nobody.at.all@nowhere.example"
    before = _state(app)
    answers = {}
    for email in (hq_admin, other_agency, unknown):
        response = _new_user(owner, email)
        assert response.status_code == 200, email
        answers[email] = _page_without(response, email)
    assert f"Use an address in your agency&#39;s domains: {A_DOMAIN}." in answers[unknown]
    assert "already" not in answers[unknown]
    assert answers[hq_admin] == answers[unknown] == answers[other_agency]
    assert _state(app) == before


def test_a_clash_inside_the_owners_domain_says_nothing_about_the_account(app, owner, world):
    """Only HQ can cause it (an HQ or other agency account in the owner's domain): the
    answer does not say whether, where or whose; nothing is written."""
    with app.app_context(), unscoped("HQ made a B account in A's domain by mistake"):
        make_user(Role.AGENCY_STAFF, agency=world.b, email=f"clash@{A_DOMAIN}")
        make_user(Role.HQ_PARTS, email=f"hq.person@{A_DOMAIN}")
        db.session.commit()
    before = _state(app)
    for email in (f"clash@{A_DOMAIN}", f"hq.person@{A_DOMAIN}"):
        response = _new_user(owner, email)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "This address cannot be used. Ask HQ." in page
        assert "B-FOR" not in page and "CANARY-B" not in page and "already" not in page
    assert _state(app) == before


def test_the_owner_creates_accounts_in_the_agencys_domains(app, owner, world):
    page = owner.get("/users/new").get_data(as_text=True)
    assert f"An address in your agency's domains: {A_DOMAIN}" in page
    assert _new_user(owner, f"New.Staff@{A_DOMAIN.upper()}").status_code == 302
    with app.app_context(), unscoped("read the account back"):
        user = db.session.scalars(select(User).where(User.email == f"new.staff@{A_DOMAIN}")).one()
        assert user.agency_id == world.a.id
    again = _new_user(owner, f"new.staff@{A_DOMAIN}")
    assert "Your agency already has an account with this address." in again.get_data(
        as_text=True)


def test_the_owner_cannot_move_an_account_to_a_foreign_address(app, owner, world):
    staff = world.user(Role.AGENCY_STAFF)
    data = {"email": world.b_users[Role.AGENCY_STAFF].email, "name": "Renamed",
            "role": "agency_staff"}
    before = _state(app)
    refused = owner.post(f"/users/{staff.id}/edit", data=data)
    assert refused.status_code == 200 and b"Use an address in your agency" in refused.data
    assert _state(app) == before
    # An account made before the domains keeps its address through other changes.
    kept = owner.post(f"/users/{staff.id}/edit", data={**data, "email": staff.email})
    assert kept.status_code == 302


def test_without_domains_the_owner_is_told_to_ask_hq(app, client, world):
    _set_domains(app, world.a.id, "")
    sign_in(client, world.user(Role.AGENCY_OWNER))
    page = client.get("/users/").get_data(as_text=True)
    assert "HQ has not set the e-mail domains of your agency yet." in page
    assert 'href="/users/new"' not in page
    before = _state(app)
    for response in (client.get("/users/new"), _new_user(client, "someone@anywhere.example")):
        assert response.status_code == 302 and response.headers["Location"] == "/users/"
    assert _state(app) == before


# --- HQ admin -------------------------------------------------------------------------------


def _agency_form(world, agency: Agency, **changes):
    data = {"code": agency.code, "legal_name": "Agency", "agency_type": "station",
            "region_id": agency.region_id, "province_id": 0, "tier": 3,
            "service_types": ["onsite"], "product_line_ids": [world.line.id],
            "required_l2_engineers": 1}
    return {**data, **changes}


def _domains_of(app, agency_id: int) -> str:
    with app.app_context(), unscoped("read the agency back"):
        return db.session.scalar(select(Agency.email_domains).where(Agency.id == agency_id))


def test_hq_admin_sets_an_agencys_domains(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    saved = client.post(f"/agencies/{world.a.id}/edit", data=_agency_form(
        world, world.a, email_domains=" SH-C01.com， @mail.sh-c01.cn sh-c01.com "))
    assert saved.status_code == 302
    assert _domains_of(app, world.a.id) == "sh-c01.com,mail.sh-c01.cn"
    assert "sh-c01.com, mail.sh-c01.cn" in client.get(f"/agencies/{world.a.id}/edit").get_data(
        as_text=True)
    assert "sh-c01.com, mail.sh-c01.cn" in client.get(f"/agencies/{world.a.id}").get_data(
        as_text=True)
    with app.app_context(), unscoped("read the audit log"):
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "agency.updated").order_by(AuditEntry.id.desc())).first()
        assert entry.after["email_domains"] == "sh-c01.com,mail.sh-c01.cn"


@pytest.mark.parametrize("domains,message", [
    ("not a domain!", "is not a domain name"),
    ("localhost", "is not a domain name"),
    ("-bad.com", "is not a domain name"),
    ("a@b.com", "is not a domain name"),
    (",".join(f"d{n}.com" for n in range(11)), "at most 10 domains"),
    ("b-for.example", "already belongs to agency B-FOR"),
])
def test_bad_or_taken_domains_are_refused_and_write_nothing(app, client, world, domains,
                                                            message):
    _set_domains(app, world.b.id, "b-for.example")
    sign_in(client, world.user(Role.HQ_ADMIN))
    refused = client.post(f"/agencies/{world.a.id}/edit",
                          data=_agency_form(world, world.a, email_domains=domains))
    assert refused.status_code == 200 and message in refused.get_data(as_text=True)
    assert _domains_of(app, world.a.id) == ""


def test_hq_admin_creates_accounts_with_any_address_and_is_told_of_clashes(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    created = client.post("/users/new", data={
        "email": "owner@anything.example", "name": "Owner", "role": "agency_owner",
        "agency_id": world.a.id, "password": "long enough 1"})
    assert created.status_code == 302
    taken = client.post("/users/new", data={
        "email": world.b_users[Role.AGENCY_STAFF].email, "name": "X", "role": "hq_parts",
        "password": "long enough 1"})
    assert taken.status_code == 200
    assert b"An account with this email already exists." in taken.data
