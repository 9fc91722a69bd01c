"""Who manages which webhook endpoints: HQ admin HQ's endpoints, an agency owner their own
agency's (for their own agency's events). HQ admin may also switch off any endpoint (an
agency's system that misbehaves); nobody but its managers reads an endpoint's secret."""
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from portal.auth.roles import Role
from portal.policy import rule

MANAGERS = (Role.HQ_ADMIN, Role.AGENCY_OWNER)


@dataclass(frozen=True)
class Owner:
    """Whose endpoint is being made: HQ's (None) or an agency's."""

    agency_id: int | None


def manages(user, endpoint_or_owner) -> bool:
    """HQ admin manages HQ's endpoints, an agency owner their own agency's."""
    agency_id = endpoint_or_owner.agency_id
    if user.role == Role.HQ_ADMIN:
        return agency_id is None
    return user.role == Role.AGENCY_OWNER and agency_id is not None \
        and agency_id == user.agency_id


def _manages(user, record) -> bool:
    return record is None or manages(user, record)


def _may_deactivate(user, endpoint) -> bool:
    return endpoint is None or user.role == Role.HQ_ADMIN or manages(user, endpoint)


def _manages_delivery(user, delivery) -> bool:
    return delivery is None or manages(user, delivery.endpoint)


NOT_YOURS = _l("HQ administrators manage HQ's webhook endpoints; an agency owner manages "
               "their own agency's.")

CREATE = rule("webhook.endpoint_created", *MANAGERS, when=_manages, refusal=NOT_YOURS,
              system=True)
UPDATE = rule("webhook.endpoint_updated", *MANAGERS, when=_manages, refusal=NOT_YOURS,
              system=True)
DEACTIVATE = rule("webhook.endpoint_deactivated", *MANAGERS, when=_may_deactivate,
                  refusal=NOT_YOURS, system=True)
REDELIVER = rule("webhook.redelivered", *MANAGERS, when=_manages_delivery, refusal=NOT_YOURS,
                 system=True)
# Reading endpoints and their delivery log: the scope shows each manager their own.
READ = rule("webhook.read", *MANAGERS)
