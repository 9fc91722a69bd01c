"""Network pages: permissions, forms, bad input and constant query counts."""
import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import Agency
from tests.factories import PASSWORD, make_agency, make_user, sign_in


def _count(app, model, *where):
    with app.app_context(), unscoped("test counts rows"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _agency_form(world, **changes):
    data = {"code": "NEW-01", "legal_name": "新网点", "agency_type": "station",
            "region_id": world.region1.id, "province_id": 0, "tier": 3,
            "service_types": ["onsite", "phone"], "product_line_ids": [world.line.id],
            "required_l2_engineers": 1, "contact_phone": "13800001111"}
    data.update(changes)
    return data


def test_hq_admin_registers_an_agency(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.post("/agencies/new", data=_agency_form(world))
    assert response.status_code == 302
    assert _count(app, Agency, Agency.code == "NEW-01") == 1


@pytest.mark.parametrize("changes,message", [
    ({"code": ""}, b"This field is required"),
    ({"code": "bad code!"}, b"letters, digits"),
    ({"code": "A-OWN"}, b"already used"),
    ({"tier": 9}, b"between 1 and 5"),
    ({"tier": "x"}, b"Not a valid integer"),
    ({"region_id": 999999}, b"Not a valid choice"),
    ({"product_line_ids": [999999]}, b"not a valid choice"),
    ({"contact_phone": "<script>"}, b"valid phone"),
    ({"bank_account": "12ab"}, b"in digits"),
    ({"auth_valid_from": "2026-05-01", "auth_valid_to": "2026-01-01"}, b"before the start"),
    ({"legal_name": "x" * 500}, b"longer than 200"),
])
def test_bad_agency_input_is_refused_and_writes_nothing(app, client, world, changes, message):
    sign_in(client, world.user(Role.HQ_ADMIN))
    before = _count(app, Agency)
    response = client.post("/agencies/new", data=_agency_form(world, **changes))
    assert response.status_code == 200
    assert message.lower() in response.data.lower()
    assert _count(app, Agency) == before


def test_bank_account_is_masked_and_kept_when_left_empty(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    page = client.get(f"/agencies/{world.a.id}").data
    assert b"6222000011112222" not in page and "•••• 2222".encode() in page
    form = client.get(f"/agencies/{world.a.id}/edit").data
    assert b"6222000011112222" not in form
    client.post(f"/agencies/{world.a.id}/edit",
                data=_agency_form(world, code="A-OWN", bank_account=""))
    with app.app_context(), unscoped("test"):
        assert db.session.scalar(select(Agency.bank_account)
                                 .where(Agency.id == world.a.id)) == "6222000011112222"


def test_status_change_from_the_profile(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.post(f"/agencies/{world.a.id}/status",
                           data={"to_status": "suspended", "reason": "复查不合格"})
    assert response.status_code == 302
    with app.app_context(), unscoped("test"):
        assert db.session.scalar(select(Agency.status).where(Agency.id == world.a.id)) \
            == "suspended"
    bad = client.post(f"/agencies/{world.a.id}/status",
                      data={"to_status": "applicant", "reason": "x y z"})
    assert bad.status_code == 422 and b"cannot go from" in bad.data
    empty = client.post(f"/agencies/{world.a.id}/status", data={"to_status": "active"})
    assert empty.status_code == 422 and b"This field is required" in empty.data


def test_owner_creates_staff_and_cannot_escalate(app, client, world):
    with app.app_context(), unscoped("HQ sets the agency's e-mail domains"):
        db.session.get(Agency, world.a.id).email_domains = "a.example"
        db.session.commit()
    sign_in(client, world.user(Role.AGENCY_OWNER))
    ok = client.post("/users/new", data={"email": "fresh@a.example", "name": "Fresh",
                                         "role": "agency_staff", "password": "long enough 1"})
    assert ok.status_code == 302
    with app.app_context(), unscoped("test"):
        user = db.session.scalars(select(User).where(User.email == "fresh@a.example")).one()
        assert user.agency_id == world.a.id
    escalate = client.post("/users/new", data={"email": "boss@a.example", "name": "Boss",
                                               "role": "hq_admin", "password": "long enough 1",
                                               "agency_id": world.b.id})
    assert escalate.status_code == 200 and b"Not a valid choice" in escalate.data
    assert _count(app, User, User.email == "boss@a.example") == 0


def test_owner_sees_only_own_accounts(client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    body = client.get("/users/").get_data(as_text=True)
    assert "CANARY-A" in body and "CANARY-B" not in body and "CANARY-S" not in body


def test_regional_manager_sees_only_their_region(client, world):
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    body = client.get("/agencies/").get_data(as_text=True)
    assert "A-OWN" in body and "A-SIB" in body and "B-FOR" not in body
    assert client.get(f"/agencies/{world.b.id}").status_code == 404


def test_deactivated_account_is_signed_out_at_once(app, client, world):
    staff = world.user(Role.AGENCY_STAFF)
    theirs = app.test_client()
    sign_in(theirs, staff)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    client.post(f"/users/{staff.id}/active", data={"active": "0"})
    assert theirs.get("/").status_code == 302
    assert theirs.post("/auth/sign-in", data={"email": staff.email,
                                              "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("path", ["/agencies/", "/users/", "/", "/audit/",
                                  "/network/reference"])
def test_list_pages_run_a_constant_number_of_queries(app, client, world, query_counter, path):
    sign_in(client, world.user(Role.HQ_ADMIN))
    with query_counter:
        assert client.get(path).status_code == 200
    few = query_counter.count
    with app.app_context(), unscoped("test adds data"):
        from tenants.models import Region

        region = db.session.scalars(select(Region).where(Region.id == world.region1.id)).one()
        for n in range(30):
            agency = make_agency(region, f"MORE-{n}")
            make_user(Role.AGENCY_STAFF, agency=agency)
        db.session.commit()
    with query_counter:
        assert client.get(path).status_code == 200
    many = query_counter.count
    assert many == few, (few, many)
    print(f"{path}: {many} queries")


@pytest.mark.parametrize("role,shown", [(Role.HQ_ADMIN, True), (Role.HQ_CERTIFIER, False),
                                        (Role.REGIONAL_MANAGER, False)])
def test_buttons_show_to_those_who_may_act(client, world, role, shown):
    sign_in(client, world.user(role))
    pages = (client.get("/agencies/").get_data(as_text=True)
             + client.get(f"/agencies/{world.a.id}").get_data(as_text=True)
             + client.get("/network/reference").get_data(as_text=True))
    for link in ("/agencies/new", f"/agencies/{world.a.id}/edit",
                 f"/agencies/{world.a.id}/status", "/network/regions/new"):
        assert (link in pages) is shown, link


def test_owner_manages_staff_only(client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    page = client.get("/users/").get_data(as_text=True)
    assert f"/users/{world.user(Role.AGENCY_STAFF).id}/edit" in page
    assert f"/users/{world.user(Role.AGENCY_OWNER).id}/edit" not in page
    refused = client.post(f"/users/{world.b_users[Role.AGENCY_STAFF].id}/active",
                          data={"active": "0"})
    assert refused.status_code == 404
