"""Who may do what in the network: agencies, reference data and accounts (portal.policy)."""
from flask_babel import lazy_gettext as _l

from portal.auth.roles import AGENCY_ASSIGNABLE, AGENCY_ROLES, HQ_ROLES, Role
from portal.policy import rule

# Pages: who may read them.
NETWORK_READERS = tuple(r for r in Role if r in HQ_ROLES)
AGENCY_MEMBERS = tuple(r for r in Role if r in AGENCY_ROLES)
ACCOUNT_MANAGERS = (Role.HQ_ADMIN, Role.AGENCY_OWNER)


def assignable_roles(user) -> tuple[Role, ...]:
    """The roles `user` may give to an account: every role for HQ admin, staff and engineers
    for an agency owner (in their own agency), none for anyone else."""
    role = getattr(user, "role", None)
    if role == Role.HQ_ADMIN:
        return tuple(Role)
    if role == Role.AGENCY_OWNER:
        return AGENCY_ASSIGNABLE
    return ()


def places_anywhere(user) -> bool:
    """HQ admin gives an account any agency or region; an agency owner only their own."""
    return getattr(user, "role", None) == Role.HQ_ADMIN


def _manages(user, account) -> bool:
    """HQ admin manages every account; an agency owner the staff and engineers of their own
    agency."""
    return places_anywhere(user) or (account.agency_id == user.agency_id
                                     and account.role in assignable_roles(user))


AGENCY_CREATE = rule("agency.create", Role.HQ_ADMIN, system=True)
AGENCY_EDIT = rule("agency.edit", Role.HQ_ADMIN)
# Evaluation's accepted proposals move agencies too (as HQ admin, or the demo as the system).
AGENCY_CHANGE_STATUS = rule("agency.change_status", Role.HQ_ADMIN, system=True)
REFERENCE_EDIT = rule("network.edit_reference", Role.HQ_ADMIN)
ISSUER_EDIT = rule("network.edit_issuer", Role.HQ_ADMIN, system=True)
USER_CREATE = rule("user.create", *ACCOUNT_MANAGERS, system=True)
USER_MANAGE = rule("user.manage", *ACCOUNT_MANAGERS, when=_manages,
                   refusal=_l("You may not manage this account."))
