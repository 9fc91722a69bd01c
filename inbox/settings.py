"""HQ admin's settings of the workplace: escalation thresholds, deadlines, the digest hour."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from inbox import policy
from inbox.models import WorkplaceSettings
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.transitions import transition

FIELDS = ("settlement_review_days", "complaint_verdict_days", "complaint_response_hours",
          "digest_hour")
RANGES = {"settlement_review_days": (1, 90), "complaint_verdict_days": (1, 90),
          "complaint_response_hours": (1, 720), "digest_hour": (0, 23)}


def current() -> WorkplaceSettings:
    """The settings row (its migration writes the defaults)."""
    row = db.session.scalars(select(WorkplaceSettings).where(WorkplaceSettings.id == 1)) \
        .one_or_none()
    if row is None:  # a database the migration did not reach: the defaults, not saved
        row = WorkplaceSettings(id=1, settlement_review_days=5, complaint_verdict_days=7,
                                complaint_response_hours=48, digest_hour=18, version=1)
    return row


def _values(row: WorkplaceSettings) -> dict:
    return {name: getattr(row, name) for name in FIELDS}


@transition("workplace.settings_changed", WorkplaceSettings, permission=policy.CONFIGURE,
            label=_l("Workplace settings changed"), versioned=True, audit=_values)
def save_settings(row: WorkplaceSettings, data: dict, *, acting_user) -> None:
    for name, (low, high) in RANGES.items():
        value = data.get(name)
        if not isinstance(value, int) or not low <= value <= high:
            raise DomainError(_("Enter a whole number from %(low)s to %(high)s.", low=low,
                                high=high), field=name)
    for name in FIELDS:
        setattr(row, name, data[name])
