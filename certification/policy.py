"""Who may do what in certification, written once (see portal.policy).

The route guards (``@performs`` / ``@allow``), the templates (``can('…', record)``) and the
services (through their transitions) all read these rules. Agency rows are scoped by the
tenancy guard (an owner sees their own agency only), so the rules speak of roles.
"""
from portal.auth.roles import AGENCY_ROLES, HQ_ROLES, Role
from portal.policy import rule

# Role groups of the pages that read (lists, details, the menu).
CERTIFIERS = (Role.HQ_CERTIFIER, Role.HQ_ADMIN)
OWNER = (Role.AGENCY_OWNER,)
AGENCY_READERS = (Role.AGENCY_OWNER, Role.AGENCY_STAFF)
ENGINEER_READERS = (*HQ_ROLES, *AGENCY_READERS)
SESSION_READERS = tuple(HQ_ROLES)
COVERAGE_READERS = ENGINEER_READERS
PDF_READERS = (*CERTIFIERS, Role.AUDITOR, Role.REGIONAL_MANAGER, *AGENCY_ROLES)

# --- engineers: the agency owner manages their agency's engineers --------------------------
ENGINEER_REGISTER = rule("certification.engineer.register", *OWNER)
ENGINEER_EDIT = rule("certification.engineer.edit", *OWNER)
ENGINEER_LEAVE = rule("certification.engineer.leave", *OWNER)
# Who opens an engineer's page (an engineer's own account sees its certificates only).
ENGINEER_READ = rule("certification.engineer.read", *ENGINEER_READERS)

# --- nominations: the owner nominates and withdraws, HQ admits to a session ------------------
# `system=True`: the demo loader (a command, no person) builds the network's history too.
NOMINATE = rule("certification.nomination.nominate", *OWNER, system=True)
WITHDRAW = rule("certification.nomination.withdraw", *OWNER)

# --- programs and exam sessions: HQ's training department ------------------------------------
PROGRAM_CREATE = rule("certification.program.create", *CERTIFIERS, system=True)
PROGRAM_EDIT = rule("certification.program.edit", *CERTIFIERS)
SESSION_CREATE = rule("certification.session.create", *CERTIFIERS, system=True)
SESSION_EDIT = rule("certification.session.edit", *CERTIFIERS)
ADMIT = rule("certification.session.admit", *CERTIFIERS, system=True)
SEAT_RELEASE = rule("certification.seat.release", *CERTIFIERS)
# Recording a session's scores issues (or renews) the certificates of those who passed.
SCORE = rule("certification.session.score", *CERTIFIERS, system=True)

# --- certificates ---------------------------------------------------------------------------
REVOKE = rule("certification.certificate.revoke", *CERTIFIERS, system=True)
CERTIFICATE_PDF = rule("certification.certificate.pdf", *PDF_READERS)
