"""Signing in and out, and changing passwords."""
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.audit.services import record
from portal.auth.models import User
from portal.auth.passwords import hash_password, verify_password
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.tenancy import unscoped

_dummy = {}


def _dummy_hash() -> str:
    if "hash" not in _dummy:
        _dummy["hash"] = hash_password("not a real password")
    return _dummy["hash"]


def authenticate(email: str, password: str) -> User:
    """Return the user for these credentials.

    Raises DomainError when they are wrong or the account may not sign in (deactivated, or
    its agency terminated). Upgrades a weaker password hash in passing.
    """
    with unscoped("sign-in looks the account up by email before any scope exists"):
        user = db.session.scalars(
            select(User).where(func.lower(User.email) == email.strip().lower())
        ).one_or_none()
        if user is None:
            verify_password(_dummy_hash(), password)  # the same work for unknown accounts
            raise DomainError(_("The email or the password is wrong."))
        matches, needs_rehash = verify_password(user.password_hash, password)
        if not matches:
            raise DomainError(_("The email or the password is wrong."))
        if not user.is_active:
            raise DomainError(_("This account cannot sign in: it was deactivated or its agency "
                                "is no longer authorized. Please contact HQ."))
        if needs_rehash:
            user.password_hash = hash_password(password)
        user.last_sign_in_at = utcnow()
        record("auth.sign_in", user, actor=user, agency_id=user.agency_id,
               after={"rehashed": needs_rehash})
        db.session.flush()
    return user


def sign_out(user: User) -> None:
    """End every session and remember-me cookie of `user`."""
    user.rotate_session_token()
    record("auth.sign_out", user, agency_id=user.agency_id)
    db.session.flush()


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password; raises DomainError when the current one is wrong or the new weak."""
    if not verify_password(user.password_hash, current)[0]:
        raise DomainError(_("The current password is wrong."), field="current")
    if new == current:
        raise DomainError(_("The new password must differ from the current one."), field="new")
    if new.lower() in user.email.lower() or user.email.split("@")[0].lower() in new.lower():
        raise DomainError(_("The new password must not contain your email address."),
                          field="new")
    user.password_hash = hash_password(new)
    user.rotate_session_token()
    record("auth.password_changed", user, agency_id=user.agency_id)
    db.session.flush()


def set_password(user: User, new: str) -> None:
    """Set a password without the old one (admin reset, CLI): ends the user's sessions."""
    user.password_hash = hash_password(new)
    user.rotate_session_token()
