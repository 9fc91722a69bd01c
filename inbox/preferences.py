"""Per user and category: e-mail immediately, in the day's digest, or not at all."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, select

from inbox import policy
from inbox.models import DIGEST, IMMEDIATE, MAIL_MODES, OFF, Preference
from inbox.registry import CATEGORIES
from portal.auth.models import User
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.transitions import note, transition

MODE_LABELS = {IMMEDIATE: _l("Immediately"), DIGEST: _l("Daily digest"), OFF: _l("Off")}


def default_mode(category: str) -> str:
    return IMMEDIATE


def modes_of(user_id: int) -> dict[str, str]:
    """Every category's mode for the account (defaults where it chose none): one query."""
    chosen = dict(db.session.execute(select(Preference.category, Preference.mode)
                                     .where(Preference.recipient_id == user_id)).all())
    return {category: chosen.get(category, default_mode(category)) for category in CATEGORIES}


@transition("inbox.preferences_changed", User, permission=policy.PREFERENCES,
            label=_l("E-mail preferences changed"))
def save_preferences(user: User, wanted: dict[str, str], *, acting_user) -> None:
    """Replace the account's choices; unknown categories or modes change nothing."""
    if set(wanted) - set(CATEGORIES) or any(m not in MAIL_MODES for m in wanted.values()):
        raise DomainError(_("Choose immediately, daily digest or off for each category."))
    before = modes_of(user.id)
    db.session.execute(delete(Preference).where(Preference.recipient_id == user.id)
                       .execution_options(synchronize_session=False))
    rows = [{"recipient_id": user.id, "category": c, "mode": m} for c, m in wanted.items()
            if m != default_mode(c)]
    if rows:
        db.session.execute(insert(Preference), rows)
    note(before=before, after=modes_of(user.id), agency_id=user.agency_id)
