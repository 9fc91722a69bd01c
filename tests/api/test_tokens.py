"""API tokens and service accounts: made on the pages (shown once, kept as a SHA-256), used on
the API, revoked, expired, stopped with their account or agency, audited, never logged; HQ
admin's service accounts never sign in; the CLI prints a working token."""
import hashlib
import logging
import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from api.models import ApiToken
from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.clock import now
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import bearer, token_for
from tests.factories import PASSWORD, password_hash, sign_in, signed_in

TOKEN = re.compile(r"snp_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")
REQUESTS = "/api/v1/service-requests/"
INBOX = "/api/v1/inbox/"


def _made(response) -> str:
    """The token a page shows (once)."""
    found = TOKEN.findall(response.get_data(as_text=True))
    assert len(set(found)) == 1, response.get_data(as_text=True)[:2000]
    return found[0]


def _rows(app, model, *where):
    with app.app_context(), unscoped("the test reads what was written"):
        return list(db.session.scalars(select(model).where(*where)))


def _count(app, model, *where) -> int:
    with app.app_context(), unscoped("the test counts"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _audits(app, action: str) -> list[AuditEntry]:
    return _rows(app, AuditEntry, AuditEntry.action == action)


def _token_row(app, token: str) -> ApiToken:
    prefix = token.split("_")[1]
    (row,) = _rows(app, ApiToken, ApiToken.prefix == prefix)
    return row


# --- one's own tokens ------------------------------------------------------------------------


def test_a_token_made_on_the_page_is_shown_once_and_kept_as_a_hash(app, client, world):
    dispatcher = world.user(Role.HQ_DISPATCHER)
    sign_in(client, dispatcher)
    made = client.post("/api-tokens/new", data={"name": "Call center", "days": "30"})
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    token = _made(made)
    assert all(token not in cookie for cookie in made.headers.getlist("Set-Cookie"))

    row = _token_row(app, token)
    assert row.recipient_id == dispatcher.id and row.name == "Call center"
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr([getattr(row, c.key) for c in ApiToken.__table__.columns])
    assert row.expires_at - now() > timedelta(days=29)
    (entry,) = _audits(app, "api.token_created")
    assert entry.after["prefix"] == row.prefix and token not in repr(entry.after)

    listed = client.get("/api-tokens/").get_data(as_text=True)
    assert token not in listed and row.shown in listed and "Call center" in listed

    works = client.get(REQUESTS, headers=bearer(token))
    assert works.status_code == 200, works.get_data(as_text=True)
    assert _token_row(app, token).last_used_at is not None


def test_revoking_a_token_stops_it_and_is_audited(app, client, world):
    user = world.user(Role.HQ_DISPATCHER)
    token = token_for(app, user)
    assert client.get(REQUESTS, headers=bearer(token)).status_code == 200
    sign_in(client, user)
    row = _token_row(app, token)
    revoked = client.post(f"/api-tokens/{row.id}/revoke")
    assert revoked.status_code == 302
    assert _token_row(app, token).revoked_at is not None
    assert [e.object_id for e in _audits(app, "api.token_revoked")] == [str(row.id)]

    refused = client.get(REQUESTS, headers=bearer(token))
    assert refused.status_code == 401
    (entry,) = _audits(app, "api.token_refused")
    assert entry.after == {"prefix": row.prefix, "why": "revoked"}
    again = client.post(f"/api-tokens/{row.id}/revoke", follow_redirects=True)
    assert "already revoked" in again.get_data(as_text=True)


def test_an_expired_token_is_refused_and_audited(app, client, world):
    token = token_for(app, world.user(Role.HQ_DISPATCHER), days=1)
    with time_machine.travel(now() + timedelta(days=1, minutes=1), tick=False):
        assert client.get(REQUESTS, headers=bearer(token)).status_code == 401
    (entry,) = _audits(app, "api.token_refused")
    assert entry.after["why"] == "expired"


def test_a_deactivated_account_and_a_terminated_agency_stop_their_tokens_at_once(
        app, client, world):
    staff = world.user(Role.AGENCY_STAFF)
    owner_b = world.b_users[Role.AGENCY_OWNER]
    staff_token, owner_token = token_for(app, staff), token_for(app, owner_b)
    assert client.get(INBOX, headers=bearer(staff_token)).status_code == 200
    assert client.get(INBOX, headers=bearer(owner_token)).status_code == 200

    admin = signed_in(app, world.user(Role.HQ_ADMIN))
    assert admin.post(f"/users/{staff.id}/active", data={"active": "0"}).status_code == 302
    assert client.get(INBOX, headers=bearer(staff_token)).status_code == 401

    from tenants.services import change_agency_status

    with app.app_context(), unscoped("the test terminates agency B"):
        agency = db.session.merge(world.b)
        change_agency_status(agency, "terminated", "contract ended", acting_user=None,
                             confirmed=True)
        db.session.commit()
    assert client.get(INBOX, headers=bearer(owner_token)).status_code == 401
    why = sorted(e.after["why"] for e in _audits(app, "api.token_refused"))
    assert why == ["account inactive", "account inactive"]


def test_nobody_revokes_another_accounts_token(app, client, world):
    token = token_for(app, world.b_users[Role.AGENCY_OWNER])
    row = _token_row(app, token)
    for role in (Role.AGENCY_OWNER, Role.HQ_ADMIN):
        other = signed_in(app, world.user(role))
        assert other.post(f"/api-tokens/{row.id}/revoke").status_code == 404
        assert row.shown not in other.get("/api-tokens/").get_data(as_text=True)
    assert _token_row(app, token).revoked_at is None
    assert client.get(INBOX, headers=bearer(token)).status_code == 200


def test_an_agency_user_makes_and_revokes_a_token_of_their_own(app, client, world):
    sign_in(client, world.user(Role.ENGINEER))
    token = _made(client.post("/api-tokens/new", data={"name": "Shop system", "days": "7"}))
    assert client.get(INBOX, headers=bearer(token)).status_code == 200
    row = _token_row(app, token)
    assert client.post(f"/api-tokens/{row.id}/revoke").status_code == 302
    assert client.get(INBOX, headers=bearer(token)).status_code == 401


def test_an_auditor_makes_a_token_that_only_reads(app, client, world):
    sign_in(client, world.user(Role.AUDITOR))
    page = client.get("/api-tokens/")
    assert page.status_code == 200 and "read only" in page.get_data(as_text=True)
    token = _made(client.post("/api-tokens/new", data={"name": "Audit export", "days": "5"}))
    assert client.get(REQUESTS, headers=bearer(token)).status_code == 200
    refused = client.post(REQUESTS, json={}, headers=bearer(token, **{"Idempotency-Key": "a"}))
    assert refused.status_code == 403


def test_bad_names_and_lifetimes_are_refused_in_the_readers_language(app, client, world):
    sign_in(client, world.user(Role.HQ_SETTLEMENT))
    client.post("/locale", data={"locale": "zh_CN"})
    for data, message in ((({"name": "ERP", "days": "0"}), "数值须在 1 到 366 之间"),
                          ({"name": "ERP", "days": "367"}, "数值须在 1 到 366 之间"),
                          ({"name": "", "days": "90"}, "此项为必填项"),
                          ({"name": "   ", "days": "90"}, "此项为必填项")):
        refused = client.post("/api-tokens/new", data=data)
        assert refused.status_code == 400, data
        body = refused.get_data(as_text=True)
        assert message in body and not TOKEN.search(body), data
    assert _count(app, ApiToken) == 0
    assert not _audits(app, "api.token_created")


# --- service accounts ----------------------------------------------------------------------


def _new_account(admin, **changes):
    data = {"email": "erp@hq.example", "name": "ERP", "role": "hq_settlement",
            "region_id": "0"}
    data.update(changes)
    return admin.post("/service-accounts/new", data=data)


def test_hq_admin_makes_a_service_account_and_its_token(app, client, world):
    admin = signed_in(app, world.user(Role.HQ_ADMIN))
    made = _new_account(admin, email="Callcenter@HQ.example", name="Call center",
                        role="hq_dispatcher")
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    (account,) = _rows(app, User, User.is_service_account.is_(True))
    assert account.email == "callcenter@hq.example" and account.role == Role.HQ_DISPATCHER
    assert account.agency_id is None and account.password_hash.startswith("$argon2")
    assert made.headers["Location"].endswith(f"/service-accounts/{account.id}")
    assert [e.object_id for e in _audits(app, "api.service_account_created")] == [
        str(account.id)]
    listed = admin.get("/service-accounts/").get_data(as_text=True)
    assert "callcenter@hq.example" in listed

    shown = admin.post(f"/service-accounts/{account.id}/tokens",
                       data={"name": "Hotline", "days": "366"})
    assert shown.status_code == 201 and shown.headers["Cache-Control"] == "no-store"
    token = _made(shown)
    row = _token_row(app, token)
    assert row.recipient_id == account.id
    assert row.created_by_id == world.user(Role.HQ_ADMIN).id
    assert token not in admin.get(f"/service-accounts/{account.id}").get_data(as_text=True)
    assert row.shown in admin.get(f"/service-accounts/{account.id}").get_data(as_text=True)
    assert client.get(REQUESTS, headers=bearer(token)).status_code == 200
    # HQ admin's own page lists HQ admin's tokens only.
    assert row.shown not in admin.get("/api-tokens/").get_data(as_text=True)

    revoked = admin.post(f"/service-accounts/{account.id}/tokens/{row.id}/revoke")
    assert revoked.status_code == 302
    assert client.get(REQUESTS, headers=bearer(token)).status_code == 401


def test_a_deactivated_service_account_stops_its_tokens(app, client, world):
    admin = signed_in(app, world.user(Role.HQ_ADMIN))
    _new_account(admin)
    (account,) = _rows(app, User, User.is_service_account.is_(True))
    token = _made(admin.post(f"/service-accounts/{account.id}/tokens",
                             data={"name": "ERP", "days": "90"}))
    assert client.get("/api/v1/settlements/", headers=bearer(token)).status_code == 200
    assert admin.post(f"/service-accounts/{account.id}/active",
                      data={"active": "0"}).status_code == 302
    assert client.get("/api/v1/settlements/", headers=bearer(token)).status_code == 401
    page = admin.get(f"/service-accounts/{account.id}").get_data(as_text=True)
    assert "Create token" not in page  # no new token for an account that cannot use it


def test_a_service_account_never_signs_in(app, client, world):
    admin = signed_in(app, world.user(Role.HQ_ADMIN))
    _new_account(admin)
    with app.app_context(), unscoped("the test gives the account a known password"):
        account = db.session.scalars(select(User).where(User.is_service_account.is_(True))).one()
        account.password_hash = password_hash()
        db.session.commit()
    refused = client.post("/auth/sign-in", data={"email": "erp@hq.example",
                                                 "password": PASSWORD})
    assert refused.status_code != 302
    assert "The email or the password is wrong." in refused.get_data(as_text=True)
    assert client.get("/api-tokens/").status_code == 302  # still signed out


def test_service_accounts_take_hq_roles_only_and_are_hq_admins_business(app, client, world):
    admin = signed_in(app, world.user(Role.HQ_ADMIN))
    for changes in ({"role": "agency_owner"}, {"role": "hq_admin"},
                    {"role": "regional_manager", "region_id": "0"},
                    {"email": world.user(Role.HQ_PARTS).email}, {"name": ""}):
        assert _new_account(admin, **changes).status_code == 400, changes
    assert _count(app, User, User.is_service_account.is_(True)) == 0
    regional = _new_account(admin, role="regional_manager",
                            region_id=str(world.region1.id))
    assert regional.status_code == 302
    (account,) = _rows(app, User, User.is_service_account.is_(True))
    assert account.region_id == world.region1.id

    for role in (Role.HQ_DISPATCHER, Role.AGENCY_OWNER, Role.AUDITOR):
        other = signed_in(app, world.user(role))
        assert other.get("/service-accounts/").status_code == 403
        assert other.get(f"/service-accounts/{account.id}").status_code == 403
        assert _new_account(other, email="x@hq.example").status_code == 403
        assert other.post(f"/service-accounts/{account.id}/tokens",
                          data={"name": "x", "days": "9"}).status_code == 403
    # A person's account is no service account: its tokens are not HQ admin's to make.
    person = world.user(Role.HQ_PARTS).id
    assert admin.get(f"/service-accounts/{person}").status_code == 404
    assert admin.post(f"/service-accounts/{person}/tokens",
                      data={"name": "x", "days": "9"}).status_code == 404
    assert _count(app, ApiToken) == 0


# --- the command and the log -----------------------------------------------------------------


def test_the_command_prints_a_working_token(app, client, world):
    dispatcher = world.user(Role.HQ_DISPATCHER)
    result = app.test_cli_runner().invoke(args=["api-token", "create", "--user",
                                                dispatcher.email.upper(), "--name", "Demo"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert TOKEN.fullmatch(token)
    assert client.get(REQUESTS, headers=bearer(token)).status_code == 200
    bad = app.test_cli_runner().invoke(args=["api-token", "create", "--user",
                                             dispatcher.email, "--name", "x", "--days", "400"])
    assert bad.exit_code != 0 and _count(app, ApiToken) == 1


@pytest.fixture
def every_logger():
    """Every logger listening (the migrations' logging.config.fileConfig disables the loggers
    that exist when the test app is made, api.tokens among them)."""
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values()
               if isinstance(lg, logging.Logger)]
    disabled = [lg for lg in loggers if lg.disabled]
    for lg in disabled:
        lg.disabled = False
    yield
    for lg in disabled:
        lg.disabled = True


def test_tokens_never_reach_the_log(app, client, world, caplog, every_logger):
    caplog.set_level(logging.DEBUG)
    user = world.user(Role.HQ_DISPATCHER)
    live, dead = token_for(app, user), token_for(app, user, name="old")
    sign_in(client, user)
    client.post(f"/api-tokens/{_token_row(app, dead).id}/revoke")
    made = _made(client.post("/api-tokens/new", data={"name": "Logged?", "days": "3"}))
    assert client.get(REQUESTS, headers=bearer(live)).status_code == 200
    assert client.get(REQUESTS, headers=bearer(dead)).status_code == 401
    assert client.get(REQUESTS, headers=bearer(live + "x")).status_code == 401
    assert "API token" in caplog.text  # the log was listening: the refusal is logged
    logged = caplog.text + repr([r.args for r in caplog.records])
    for token in (live, dead, made):
        secret = token.split("_", 2)[2]
        assert secret not in logged


def test_token_forms_need_the_pages_csrf_token(app, client, world, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    user = world.user(Role.HQ_PARTS)
    token = token_for(app, user)
    row = _token_row(app, token)
    client.post("/auth/sign-in", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": _csrf(client.get("/auth/sign-in"))})
    page = client.get("/api-tokens/")
    assert page.status_code == 200
    assert client.post(f"/api-tokens/{row.id}/revoke").status_code in (302, 400)
    assert client.post("/api-tokens/new", data={"name": "x", "days": "9"}).status_code == 400
    assert _token_row(app, token).revoked_at is None and _count(app, ApiToken) == 1
    csrf = _csrf(page)
    assert client.post(f"/api-tokens/{row.id}/revoke",
                       data={"csrf_token": csrf}).status_code == 302
    assert _token_row(app, token).revoked_at is not None
    made = client.post("/api-tokens/new", data={"name": "x", "days": "9", "csrf_token": csrf})
    assert client.get(INBOX, headers=bearer(_made(made))).status_code == 200


def _csrf(response) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                     response.get_data(as_text=True)).group(1)
