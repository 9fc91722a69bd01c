"""Who may do what in the quarterly evaluation, written once: read by the route guards
(``performs`` / ``allow``), by the templates (``can('evaluation.…', record)``) and by the
services (their transitions' permissions).

Jobs, commands and the demo compute, publish and finalize quarters and answer results without
a signed-in person: those rules say ``system=True``.
"""
from portal.auth.roles import HQ_ROLES, Role
from portal.policy import rule

# --- who reads which pages ------------------------------------------------------------------------
# An agency's evaluation is its owner's (PRODUCT.md §1): staff handle orders, parts and read
# settlements, engineers their own work; both are refused (403) like any role not allowed.
# What an agency reads of a quarter is limited to published ones in evaluation.queries.
AGENCY_READERS = (Role.AGENCY_OWNER,)
HQ_READERS = tuple(sorted(HQ_ROLES))
READERS = (*AGENCY_READERS, *HQ_READERS)
# The network ranking names every agency: HQ roles that read the whole network only.
RANKING_READERS = tuple(sorted(HQ_ROLES - {Role.REGIONAL_MANAGER}))
VERIFIERS = (Role.AUDITOR, Role.HQ_ADMIN, Role.HQ_SERVICE)
# Who computes and publishes quarters (and may run those jobs again).
OPERATORS = (Role.HQ_ADMIN, Role.HQ_SERVICE)
INSPECTORS = (Role.REGIONAL_MANAGER, Role.HQ_SERVICE)

READ_QUARTER = rule("evaluation.read_quarter", *HQ_READERS)
READ_RANKING = rule("evaluation.read_ranking", *RANKING_READERS)
VERIFY = rule("evaluation.verify", *VERIFIERS)

# --- HQ: quarters ---------------------------------------------------------------------------------
COMPUTE = rule("evaluation.compute", *OPERATORS, system=True)
PUBLISH = rule("evaluation.publish", *OPERATORS, system=True)
FINALIZE = rule("evaluation.finalize", *OPERATORS, system=True)
INSPECT = rule("evaluation.inspect", *INSPECTORS)

# --- the agency answers its result and rates HQ ---------------------------------------------------
ACKNOWLEDGE = rule("evaluation.acknowledge", Role.AGENCY_OWNER, system=True)
APPEAL = rule("evaluation.appeal", Role.AGENCY_OWNER, system=True)
RATE_HQ = rule("evaluation.rate_hq", Role.AGENCY_OWNER, system=True)

# --- HQ: appeals, consequences, schemes -----------------------------------------------------------
RESOLVE_APPEAL = rule("evaluation.resolve_appeal", *OPERATORS)
DECIDE_PROPOSAL = rule("evaluation.decide_proposal", Role.HQ_ADMIN)
CREATE_SCHEME = rule("evaluation.create_scheme", Role.HQ_ADMIN)
