"""Who may do what with tokens, service accounts and webhooks."""
from flask_babel import lazy_gettext as _l

from portal.auth.roles import Role
from portal.policy import rule


def _own_or_service_account(user, owner) -> bool:
    """One's own tokens; HQ admin also a service account's."""
    if owner is None or user.id == owner.id:
        return True
    return user.role == Role.HQ_ADMIN and owner.is_service_account


def _token_of_own_or_service_account(user, token) -> bool:
    return token is None or _own_or_service_account(user, token.user)


# Every role may have tokens (an auditor's read only: the route guard refuses their writes).
TOKEN_CREATE = rule("api.token_created", *Role, when=_own_or_service_account, system=True,
                    refusal=_l("You make tokens for your own account only; HQ administrators "
                               "also for service accounts."))
TOKEN_REVOKE = rule("api.token_revoked", *Role, when=_token_of_own_or_service_account,
                    system=True,
                    refusal=_l("You revoke your own tokens only; HQ administrators also a "
                               "service account's."))
SERVICE_ACCOUNT_MANAGE = rule("api.service_account", Role.HQ_ADMIN, system=True)
WEBHOOK_MANAGE = rule("api.webhook", Role.HQ_ADMIN, Role.AGENCY_OWNER)
