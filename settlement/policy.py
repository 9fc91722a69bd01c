"""Who may do what with settlements, written once: the route guards (``performs``), the
settlement page and templates (``can``) and the transitions (their ``permission``) read it.

A rule says who may by role, and by person where the record decides (a delegation is ended by
the colleague who gave it). Conditions that depend on the day (an approver's stand-in holds
the powers on the days of the delegation) are the services' own, in
:mod:`settlement.delegation`; the page asks the same functions.
"""
from flask_babel import lazy_gettext as _l

from portal.auth.roles import HQ_ROLES, Role
from portal.policy import rule

# --- who reads (page guards) ----------------------------------------------------------------

READERS = tuple(r for r in Role if r != Role.ENGINEER)
HQ_READERS = tuple(HQ_ROLES)
OWNER = (Role.AGENCY_OWNER,)
REVIEWERS = (Role.HQ_SETTLEMENT,)
APPROVERS = (Role.HQ_SETTLEMENT, Role.HQ_ADMIN)
REGIONAL = (Role.REGIONAL_MANAGER, *APPROVERS)
# An approver out of office hands their powers (DELEGATORS) to an HQ colleague (DELEGATES).
DELEGATORS = REGIONAL
DELEGATES = APPROVERS
ADMIN = (Role.HQ_ADMIN,)

# --- the agency's claim (a job or a command may act too: the demo, the synthetic network) ---

OPEN = rule("settlement.opened", *OWNER, system=True)
RECALCULATE = rule("settlement.recalculated", *OWNER, system=True)
ADD_ORDER = rule("settlement.order_added", *OWNER, system=True)
REMOVE_LINE = rule("settlement.line_removed", *OWNER, system=True)
WITHDRAW = rule("settlement.withdrawn", *OWNER, system=True)
SUBMIT = rule("settlement.submitted", *OWNER, system=True)
ADD_EVIDENCE = rule("settlement.evidence_added", *OWNER, system=True)
DELETE_EVIDENCE = rule("settlement.evidence_deleted", *OWNER, system=True)
APPEAL = rule("settlement.appealed", *OWNER)

# --- review -------------------------------------------------------------------------------


def _returns(user, settlement) -> bool:
    """The region's reviewers return a claim in regional review; HQ's approvers one in HQ
    review."""
    return settlement.awaits_regional_review or user.role in APPROVERS


FORWARD = rule("settlement.regional_forwarded", *REGIONAL)
RETURN = rule("settlement.returned", *REGIONAL, when=_returns)
DECIDE_LINE = rule("settlement.line_decided", *REVIEWERS)
DECIDE_LINES = rule("settlement.lines_decided", *REVIEWERS)  # a selection, in one go
APPROVE_CLEAN = rule("settlement.clean_lines_approved", *REVIEWERS)
# The first approval and the approval (the second one above the threshold) alike.
APPROVE = rule("settlement.approve", *APPROVERS)
PAY = rule("settlement.paid", Role.HQ_SETTLEMENT,
           role_refusal=_l("HQ settlement staff record payments."))
RESOLVE_APPEAL = rule("settlement.appeal_resolved", *REVIEWERS)

# --- HQ configuration ---------------------------------------------------------------------

CHANGE_SETTINGS = rule("settlement.settings_changed", *ADMIN, system=True)
CHANGE_DISPOSITIONS = rule("settlement.dispositions_changed", *ADMIN, system=True)
CREATE_RATE_CARD = rule("settlement.rate_card_created", *ADMIN, system=True)
CHANGE_RATE_CARD = rule("settlement.rate_card_changed", *ADMIN, system=True)

# --- delegations ----------------------------------------------------------------------------

DELEGATE = rule("settlement.delegation_created", *DELEGATORS,
                role_refusal=_l("Your role has no approval powers to delegate."))
END_DELEGATION = rule(
    "settlement.delegation_ended", *DELEGATORS,
    when=lambda user, d: user.id == d.delegator_id or user.role == Role.HQ_ADMIN,
    refusal=_l("Only the colleague who delegated can end this delegation."))
