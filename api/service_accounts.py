"""Service accounts: a machine's account (the call center, the ERP) with one HQ role and its
scope, that works through API tokens only and never signs in on the pages.

HQ admin makes them here; deactivating one is the network area's account deactivation (which
stops its tokens at once, like any account's).
"""
import secrets

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from api import policy
from portal.audit.services import snapshot
from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.auth.roles import HQ_ROLES, Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from portal.text import clean
from portal.transitions import transition

# The roles a machine may act in: HQ's, never an agency's (an agency's systems use their own
# people's tokens) and never HQ admin's (a token must not make accounts and tokens).
SERVICE_ROLES = tuple(r for r in Role if r in HQ_ROLES and r != Role.HQ_ADMIN)


def _values(user: User) -> dict:
    return snapshot(user, ["email", "name", "role", "region_id", "is_service_account",
                           "is_active_account"])


def _check_email(email: str) -> str:
    address = (email or "").strip().lower()
    if not address or "@" not in address or len(address) > 254:
        raise DomainError(_("Enter a valid e-mail address."), field="email")
    # Addresses are unique across the network: the check must see every account.
    with unscoped("e-mail uniqueness spans all agencies; only a count is read"):
        taken = db.session.scalar(select(func.count(User.id))
                                  .where(func.lower(User.email) == address))
    if taken:
        raise DomainError(_("An account with this email already exists."), field="email")
    return address


def _check_region(role: Role, region_id: int | None) -> int | None:
    if role != Role.REGIONAL_MANAGER:
        return None
    from tenants.models import Region

    if not region_id or not db.session.scalar(select(func.count(Region.id))
                                              .where(Region.id == region_id)):
        raise DomainError(_("A regional manager needs a region."), field="region_id")
    return region_id


@transition("api.service_account_created", User, label=_l("Service account created"),
            permission=policy.SERVICE_ACCOUNT_MANAGE, creates=True, audit=_values)
def create_service_account(email: str, *, name: str, role, region_id: int | None = None,
                           acting_user) -> User:
    """An account for a machine: one HQ role (a regional manager's with its region), no
    agency, a password nobody knows. Raises DomainError for a taken address, a missing name,
    an agency role or HQ admin's, or a regional manager without a region."""
    try:
        role = Role(role)
    except ValueError:
        raise DomainError(_("Choose one of the roles offered."), field="role") from None
    if role not in SERVICE_ROLES:
        raise DomainError(_("Choose one of the roles offered."), field="role")
    name = clean(name)
    if not name or len(name) > 120:
        raise DomainError(_("Give the account a name of at most 120 characters."),
                          field="name")
    user = User(email=_check_email(email), name=name, role=role.value,
                region_id=_check_region(role, region_id), agency_id=None,
                is_service_account=True,
                # A hash of a random secret thrown away at once: no password signs in.
                password_hash=hash_password(secrets.token_urlsafe(32)))
    db.session.add(user)
    return user
