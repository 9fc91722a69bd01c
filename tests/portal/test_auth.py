"""Sign-in, sessions, throttling and passwords."""
from argon2 import PasswordHasher
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import AgencyStatus
from tests.factories import PASSWORD, sign_in


def _user(app, user_id):
    with app.app_context(), unscoped("test reads the account back"):
        return db.session.scalars(select(User).where(User.id == user_id)).one()


def test_wrong_password_is_refused_with_a_clear_message(client, world):
    user = world.user(Role.HQ_ADMIN)
    response = client.post("/auth/sign-in", data={"email": user.email, "password": "nope"})
    assert response.status_code == 200
    assert b"The email or the password is wrong." in response.data
    assert client.get("/").status_code == 302


def test_unknown_email_gets_the_same_message(client, world):
    response = client.post("/auth/sign-in", data={"email": "nobody@x.example",
                                                  "password": "whatever1234"})
    assert b"The email or the password is wrong." in response.data


def test_email_is_case_insensitive(client, world):
    user = world.user(Role.AUDITOR)
    response = client.post("/auth/sign-in", data={"email": user.email.upper(),
                                                  "password": PASSWORD})
    assert response.status_code == 302


def test_deactivated_user_cannot_sign_in(app, client, world):
    user = world.user(Role.AGENCY_STAFF)
    with app.app_context(), unscoped("test"):
        db.session.scalars(select(User).where(User.id == user.id)).one().is_active_account = False
        db.session.commit()
    response = client.post("/auth/sign-in", data={"email": user.email, "password": PASSWORD})
    assert b"This account cannot sign in" in response.data


def test_users_of_a_terminated_agency_cannot_sign_in_and_lose_their_session(app, client, world):
    from tenants.models import Agency

    owner = world.user(Role.AGENCY_OWNER)
    sign_in(client, owner)
    assert client.get("/").status_code == 200
    with app.app_context(), unscoped("test"):
        agency = db.session.scalars(select(Agency).where(Agency.id == world.a.id)).one()
        agency.status = AgencyStatus.TERMINATED
        db.session.commit()
    assert client.get("/").status_code == 302  # the live session ends too
    response = client.post("/auth/sign-in", data={"email": owner.email, "password": PASSWORD})
    assert b"This account cannot sign in" in response.data


def test_sign_out_ends_the_session_and_the_remember_cookie(app, world):
    user = world.user(Role.HQ_PARTS)
    first = app.test_client()
    first.post("/auth/sign-in", data={"email": user.email, "password": PASSWORD,
                                      "remember": "y"})
    remember = first.get_cookie("remember_token", domain="portal.test")
    assert remember is not None
    stolen = app.test_client()
    stolen.set_cookie("remember_token", remember.value, domain="portal.test")
    assert stolen.get("/").status_code == 200  # the cookie works while signed in
    assert first.post("/auth/sign-out").status_code == 302
    assert first.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("remember_token", remember.value, domain="portal.test")
    assert replay.get("/").status_code == 302


def test_password_change_ends_other_sessions(app, world):
    user = world.user(Role.HQ_SERVICE)
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, user)
    sign_in(elsewhere, user)
    response = here.post("/auth/password", data={"current": PASSWORD, "new": "a new secret 2026",
                                                  "confirm": "a new secret 2026"})
    assert response.status_code == 302
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    fresh = app.test_client()
    assert fresh.post("/auth/sign-in", data={"email": user.email,
                                             "password": "a new secret 2026"}).status_code == 302


def test_password_change_rejects_wrong_current_and_weak_new(client, world):
    user = world.user(Role.HQ_SERVICE)
    sign_in(client, user)
    wrong = client.post("/auth/password", data={"current": "wrong", "new": "a new secret 2026",
                                                "confirm": "a new secret 2026"})
    assert b"The current password is wrong." in wrong.data
    short = client.post("/auth/password", data={"current": PASSWORD, "new": "short",
                                                "confirm": "short"})
    assert short.status_code == 200 and b"10" in short.data
    assert client.post("/auth/sign-out").status_code == 302  # still signed in: nothing changed
    sign_in(client, user)  # the old password still works


def test_weak_hashes_are_upgraded_to_argon2id_on_sign_in(app, client, world):
    user = world.user(Role.HQ_CERTIFIER)
    with app.app_context(), unscoped("test"):
        row = db.session.scalars(select(User).where(User.id == user.id)).one()
        row.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        db.session.commit()
    sign_in(client, user)
    stored = _user(app, user.id).password_hash
    assert stored.startswith("$argon2id$")
    # and a hash with weaker argon2 parameters than configured is upgraded as well
    with app.app_context(), unscoped("test"):
        row = db.session.scalars(select(User).where(User.id == user.id)).one()
        row.password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(
            PASSWORD)
        db.session.commit()
    sign_in(app.test_client(), user)
    assert "m=1024" in _user(app, user.id).password_hash


def test_production_hash_parameters_meet_the_bar():
    from flask import Flask

    from portal.auth import passwords

    app = Flask(__name__)
    with app.app_context():
        hashed = passwords.hash_password("x" * 12)
    assert hashed.startswith("$argon2id$") and "m=65536" in hashed and "t=3" in hashed


def test_sign_in_is_throttled_per_account(client, world):
    user = world.user(Role.HQ_ADMIN)
    for _ in range(5):
        client.post("/auth/sign-in", data={"email": user.email, "password": "bad password"})
    blocked = client.post("/auth/sign-in", data={"email": user.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert b"Too many attempts" in blocked.data


def test_sign_in_is_throttled_per_address(app, client, world):
    for n in range(30):
        client.post("/auth/sign-in", data={"email": f"x{n}@nobody.example",
                                           "password": "bad password"})
    user = world.user(Role.HQ_ADMIN)
    assert client.post("/auth/sign-in", data={"email": user.email,
                                              "password": PASSWORD}).status_code == 429


def test_successful_sign_ins_do_not_count_against_the_limit(client, world):
    user = world.user(Role.HQ_ADMIN)
    for _ in range(8):
        sign_in(client, user)
        client.post("/auth/sign-out")


def test_next_redirects_stay_on_the_site(client, world):
    user = world.user(Role.HQ_ADMIN)
    for target, expected in [("/agencies/", "/agencies/"),
                             ("https://evil.example/", "/"), ("//evil.example", "/"),
                             ("/\\evil.example", "/"), ("javascript:alert(1)", "/")]:
        response = client.post(f"/auth/sign-in?next={target}",
                               data={"email": user.email, "password": PASSWORD})
        assert response.headers["Location"] == expected, target
        client.post("/auth/sign-out")


def test_sign_in_and_sign_out_are_audited(app, client, world):
    user = world.user(Role.AUDITOR)
    sign_in(client, user)
    client.post("/auth/sign-out")
    with app.app_context(), unscoped("test"):
        actions = db.session.scalars(select(AuditEntry.action)
                                     .where(AuditEntry.actor_id == user.id)).all()
    assert actions == ["auth.sign_in", "auth.sign_out"]


def test_session_cookie_flags(app, client, world):
    user = world.user(Role.HQ_ADMIN)
    response = client.post("/auth/sign-in", data={"email": user.email, "password": PASSWORD})
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_replay_after_sign_out_is_refused(app, world):
    user = world.user(Role.HQ_ADMIN)
    client = app.test_client()
    sign_in(client, user)
    stolen = client.get_cookie("session", domain="portal.test").value
    client.post("/auth/sign-out")
    replay = app.test_client()
    replay.set_cookie("session", stolen, domain="portal.test")
    assert replay.get("/").status_code == 302


def test_passwords_never_reach_the_logs(client, world, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    user = world.user(Role.HQ_ADMIN)
    client.post("/auth/sign-in", data={"email": user.email, "password": "S3cret-guess-42"})
    sign_in(client, user)
    client.post("/auth/password", data={"current": PASSWORD, "new": "An0ther-secret-99",
                                        "confirm": "An0ther-secret-99"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("S3cret-guess-42", PASSWORD, "An0ther-secret-99"):
        assert secret not in logged
