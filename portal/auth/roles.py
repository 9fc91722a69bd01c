"""The eleven roles of the portal and the groups the views speak of."""
from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Role(StrEnum):
    HQ_ADMIN = "hq_admin"
    HQ_CERTIFIER = "hq_certifier"
    HQ_SETTLEMENT = "hq_settlement"
    HQ_PARTS = "hq_parts"
    HQ_SERVICE = "hq_service"
    HQ_DISPATCHER = "hq_dispatcher"
    REGIONAL_MANAGER = "regional_manager"
    AUDITOR = "auditor"
    AGENCY_OWNER = "agency_owner"
    AGENCY_STAFF = "agency_staff"
    ENGINEER = "engineer"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])

    @property
    def is_agency_role(self) -> bool:
        return self in AGENCY_ROLES

    @property
    def is_hq_role(self) -> bool:
        return self not in AGENCY_ROLES


ROLE_LABELS = {
    Role.HQ_ADMIN: _l("HQ administrator"),
    Role.HQ_CERTIFIER: _l("HQ certification (training department)"),
    Role.HQ_SETTLEMENT: _l("HQ settlement"),
    Role.HQ_PARTS: _l("HQ parts desk"),
    Role.HQ_SERVICE: _l("HQ service quality"),
    Role.HQ_DISPATCHER: _l("HQ dispatcher (call center)"),
    Role.REGIONAL_MANAGER: _l("Regional service manager"),
    Role.AUDITOR: _l("Auditor"),
    Role.AGENCY_OWNER: _l("Agency owner"),
    Role.AGENCY_STAFF: _l("Agency staff"),
    Role.ENGINEER: _l("Engineer"),
}

AGENCY_ROLES = frozenset({Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.ENGINEER})
HQ_ROLES = frozenset(Role) - AGENCY_ROLES
# Roles that read the whole network (the regional manager reads one region, scoped by tenancy).
READERS = frozenset(Role)
HQ_STAFF = HQ_ROLES - {Role.AUDITOR, Role.REGIONAL_MANAGER}
# Roles an agency owner may give to the accounts of their own agency.
AGENCY_ASSIGNABLE = (Role.AGENCY_STAFF, Role.ENGINEER)
