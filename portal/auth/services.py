"""Signing in and out, and changing passwords."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.auth import policy
from portal.auth.models import User
from portal.auth.passwords import hash_password, verify_password
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.tenancy import unscoped
from portal.transitions import describe, note, transition

describe(User, _l("account"))

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
        if not matches or user.is_service_account:
            raise DomainError(_("The email or the password is wrong."))
        if not user.is_active:
            raise DomainError(_("This account cannot sign in: it was deactivated or its agency "
                                "is no longer authorized. Please contact HQ."))
        signed_in(user, acting_user=user, rehash=password if needs_rehash else None)
    return user


@transition("auth.sign_in", User, label=_l("Signed in"), permission=policy.SIGN_IN)
def signed_in(user: User, *, acting_user, rehash: str | None = None) -> None:
    """Note a sign-in (and upgrade a weaker password hash in passing)."""
    if rehash is not None:
        user.password_hash = hash_password(rehash)
    user.last_sign_in_at = utcnow()
    note(after={"rehashed": rehash is not None}, agency_id=user.agency_id)


@transition("auth.sign_out", User, label=_l("Signed out"), permission=policy.SIGN_OUT)
def sign_out(user: User, *, acting_user) -> None:
    """End every session and remember-me cookie of `user`."""
    user.rotate_session_token()
    note(agency_id=user.agency_id)


@transition("auth.password_changed", User, label=_l("Password changed"),
            permission=policy.CHANGE_PASSWORD)
def change_password(user: User, current: str, new: str, *, acting_user) -> None:
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
    note(agency_id=user.agency_id)


def set_password(user: User, new: str) -> None:
    """Set a password without the old one (admin reset, CLI): ends the user's sessions."""
    user.password_hash = hash_password(new)
    user.rotate_session_token()


@transition("user.locale_changed", User, label=_l("Language changed"),
            permission=policy.CHANGE_LOCALE)
def change_locale(user: User, locale: str, *, acting_user) -> None:
    """Make `locale` the user's language."""
    note(before={"locale": user.locale}, after={"locale": locale}, agency_id=user.agency_id)
    user.locale = locale
