"""Bearer tokens: made for oneself (one's own role and scope) or by HQ admin for a service
account, shown once, kept as a SHA-256, revoked at will; each use is checked against the
account as it is now (a deactivated account or a terminated agency stops its tokens at once).
"""
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from api import policy
from api.models import MAX_TOKEN_DAYS, TOKEN_MARK, ApiToken
from portal.audit.services import record as audit
from portal.clock import now
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import describe, note, transition

log = logging.getLogger(__name__)

describe(ApiToken, _l("API token"))

# A token's last use is written at most this often (a busy integration would otherwise write
# on every call).
LAST_USE_STEP = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_parts() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_MARK}_{prefix}_{secrets.token_urlsafe(32)}"


def _audit_values(token: ApiToken) -> dict:
    return {"name": token.name, "prefix": token.prefix, "account": token.recipient_id,
            "expires_at": token.expires_at}


@transition("api.token_created", ApiToken, label=_l("API token created"),
            permission=policy.TOKEN_CREATE, creates=True, audit=_audit_values)
def create_token(owner, *, acting_user, name: str, days: int) -> tuple[ApiToken, str]:
    """A token acting as `owner` (the acting user, or a service account of HQ admin's);
    returns the row and the token, which is never shown again."""
    name = clean(name)
    if not name or len(name) > 80:
        raise DomainError(_("Give the token a name of at most 80 characters."), field="name")
    if not 1 <= int(days) <= MAX_TOKEN_DAYS:
        raise DomainError(_("A token lives from 1 day to 1 year (%(days)s days).",
                            days=MAX_TOKEN_DAYS), field="days")
    if not owner.is_active:
        raise DomainError(_("This account is not active: it cannot have tokens."))
    prefix, secret = _issue_parts()
    token = ApiToken(recipient_id=owner.id, name=name, prefix=prefix, secret_hash=digest(secret),
                     created_by_id=getattr(acting_user, "id", None),
                     expires_at=now() + timedelta(days=int(days)))
    db.session.add(token)
    db.session.flush()
    note(record=token, agency_id=owner.agency_id)
    return token, secret


@transition("api.token_revoked", ApiToken, label=_l("API token revoked"),
            permission=policy.TOKEN_REVOKE, audit=_audit_values)
def revoke_token(token: ApiToken, *, acting_user) -> None:
    if token.revoked_at is not None:
        raise DomainError(_("This token was already revoked."))
    token.revoked_at = now()
    note(agency_id=token.user.agency_id)


def prefix_of(header: str | None) -> str | None:
    """The public prefix of a well-formed ``Bearer snp_<prefix>_<secret>`` header."""
    if not header or not header.startswith("Bearer "):
        return None
    presented = header[len("Bearer "):].strip()
    mark, _sep, rest = presented.partition("_")
    prefix, _sep, secret = rest.partition("_")
    if mark != TOKEN_MARK or len(prefix) != 8 or not secret or len(presented) > 128 \
            or not prefix.isalnum():
        return None
    return prefix


def authenticate(header: str | None):
    """The account a request's ``Authorization: Bearer`` header acts as, or None.

    Runs before any scope exists: the caller holds an unscoped block. A revoked or expired
    token is audited (with its prefix, never the token); a live one notes its last use.
    """
    prefix = prefix_of(header)
    if prefix is None:
        return None
    presented = header[len("Bearer "):].strip()
    token = db.session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).one_or_none()
    if token is None or not hmac.compare_digest(token.secret_hash, digest(presented)):
        return None
    moment = now()
    if not token.is_live(moment) or not token.user.is_active:
        why = ("revoked" if token.revoked_at is not None else
               "expired" if token.expires_at <= moment else "account inactive")
        audit("api.token_refused", token, after={"prefix": token.prefix, "why": why},
              agency_id=token.user.agency_id, actor=token.user)
        db.session.commit()
        log.info("API token %s refused: %s", token.prefix, why)
        return None
    if token.last_used_at is None or moment - token.last_used_at >= LAST_USE_STEP:
        db.session.execute(update(ApiToken).where(ApiToken.id == token.id)
                           .values(last_used_at=moment))
        db.session.commit()
    return token
