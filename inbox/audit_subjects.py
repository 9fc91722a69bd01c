"""How the audit log names the workplace's records: announcements by title, the rest by kind."""
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from inbox.announcements import AUDIENCE_LABELS
from inbox.models import Announcement, InboxItem, MailMessage, WorkplaceSettings
from portal.audit.subjects import Field, day, flag, state, subject


def register() -> None:
    subject("Announcement", select(Announcement.id, Announcement.title), "inbox.announcement",
            "announcement_id", noun=_l("Announcement"), model=Announcement,
            fields={"title": Field(_l("Title")),
                    "audience": state("inbox.audience", _l("Audience"), AUDIENCE_LABELS),
                    "staff_too": flag(_l("Staff too")),
                    "requires_ack": flag(_l("Acknowledgement required")),
                    "ack_by": day(_l("Acknowledge by")),
                    "recipients": Field(_l("Recipients")),
                    "reminded": Field(_l("Reminded"))})
    # Someone's own inbox and mail: named by kind only, never opened from the log.
    subject("InboxItem", None, None, None, noun=_l("Inbox item"), model=InboxItem,
            fields={"items": Field(_l("Items"))})
    subject("MailMessage", None, "inbox.outbox_page", None, noun=_l("E-mail"),
            model=MailMessage)
    subject("WorkplaceSettings", None, "inbox.workplace_settings", None,
            noun=_l("Workplace settings"), model=WorkplaceSettings)
