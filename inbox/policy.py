"""Who may do what in the workplace."""
from flask_babel import lazy_gettext as _l

from portal.auth.roles import Role
from portal.policy import rule

EVERYONE = tuple(Role)


def _own(user, item) -> bool:
    return item is None or getattr(item, "recipient_id", None) == user.id


READ = rule("inbox.read", *EVERYONE, when=_own,
            refusal=_l("This item belongs to someone else's inbox."))
READ_ALL = rule("inbox.read_all", *EVERYONE)
ACKNOWLEDGE = rule("inbox.acknowledged", *EVERYONE, when=_own,
                   refusal=_l("This item belongs to someone else's inbox."))
PREFERENCES = rule("inbox.preferences_changed", *EVERYONE)
CONFIGURE = rule("workplace.settings_changed", Role.HQ_ADMIN, system=True)
RESEND = rule("mail.resend", Role.HQ_ADMIN, system=True)
ANNOUNCE = rule("announcement.published", Role.HQ_ADMIN, Role.HQ_SERVICE, system=True)
REMIND = rule("announcement.reminded", Role.HQ_ADMIN, Role.HQ_SERVICE, system=True)
