"""E-mail: the outbox written with the change, delivered after the commit, each message once.

Rows are written in the transaction that created the items (:mod:`inbox.notify`). After the
commit the job runner delivers them: an RQ worker when ``REDIS_URL`` is set, else a thread of
this process, within seconds; the tick also delivers what is due (retries). A sender claims a
batch (``queued`` → ``sending`` with its token), so two workers never send the same row; the
Message-ID is set before the first try and kept, so a retry is recognisably the same message.
An SMTP server that is down, slow (``MAIL_TIMEOUT``) or refuses a recipient fails nothing but
the try: the row waits with a growing delay and, after :data:`MAX_ATTEMPTS`, is listed as
failed for HQ admin, who may send it again.
"""
import secrets
from datetime import timedelta
from email.utils import make_msgid

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_mailman import EmailMultiAlternatives
from sqlalchemy import or_, select, update

from inbox import policy, registry
from inbox.models import FAILED, QUEUED, SENDING, SENT, InboxItem, MailMessage
from portal.background import Courier
from portal.extensions import db, mail
from portal.models import utcnow
from portal.tenancy import unscoped
from portal.transitions import note, transition

MAX_ATTEMPTS = 6
BATCH = 200
# Waits after the 1st, 2nd… failed try (then FAILED).
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
           timedelta(hours=2), timedelta(hours=6))
CLAIM_EXPIRES = timedelta(minutes=15)  # a sender that died mid-batch: its rows go again
REASON = "the delivery worker sends every recipient's e-mail"


def enabled() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


# --- after the commit ------------------------------------------------------------------------

# Delivered after each commit that queued mail (MAIL_DELIVERY = "manual": only the tick and
# the tests deliver).
courier = Courier("mail", lambda: deliver_pending(),
                  manual=lambda app: app.config.get("MAIL_DELIVERY", "background") == "manual",
                  worker="inbox.outbox.deliver_in_worker", job_timeout=600)
wake_after_commit = courier.after_commit


def deliver_in_worker() -> None:
    courier.run_in_worker()


# --- delivery --------------------------------------------------------------------------------

def deliver_pending(limit: int | None = None) -> dict:
    """Send every message that is due; returns counts. Safe to run in several workers."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not enabled():
        return counts
    while limit is None or sum(counts.values()) < limit:
        claimed = _claim(BATCH if limit is None else min(BATCH, limit - sum(counts.values())))
        if not claimed:
            break
        _send_batch(claimed, counts)
    return counts


def _claim(size: int) -> list[int]:
    token = secrets.token_hex(8)
    now = utcnow()
    with unscoped(REASON):
        due = select(MailMessage.id).where(or_(
            (MailMessage.status == QUEUED) & (MailMessage.next_attempt_at <= now),
            (MailMessage.status == SENDING) & (MailMessage.claimed_at < now - CLAIM_EXPIRES),
        )).order_by(MailMessage.id).limit(size)
        ids = list(db.session.scalars(due))
        if not ids:
            db.session.commit()
            return []
        db.session.execute(
            update(MailMessage).where(MailMessage.id.in_(ids), or_(
                MailMessage.status == QUEUED,
                (MailMessage.status == SENDING) & (MailMessage.claimed_at < now - CLAIM_EXPIRES)))
            .values(status=SENDING, claimed_at=now, claim=token)
            .execution_options(synchronize_session=False))
        mine = list(db.session.scalars(select(MailMessage.id).where(
            MailMessage.id.in_(ids), MailMessage.status == SENDING,
            MailMessage.claim == token)))
        domain = _domain()
        for message in db.session.scalars(select(MailMessage).where(
                MailMessage.id.in_(mine), MailMessage.message_id.is_(None))):
            message.message_id = make_msgid(idstring=f"outbox.{message.id}", domain=domain)
        db.session.commit()
    return mine


def _domain() -> str:
    sender = current_app.config.get("MAIL_DEFAULT_SENDER") or "portal@localhost"
    return str(sender).rsplit("@", 1)[-1].strip(">") or "localhost"


def _send_batch(ids: list[int], counts: dict) -> None:
    with unscoped(REASON):
        messages = list(db.session.scalars(select(MailMessage).where(MailMessage.id.in_(ids))
                                           .order_by(MailMessage.id)))
        results = {}
        try:
            connection = mail.get_connection(fail_silently=False)
            connection.open()
        except Exception as error:  # noqa: BLE001 - the server is down: every row waits
            for message in messages:
                results[message.id] = _describe(error)
            connection = None
        if connection is not None:
            try:
                for message in messages:
                    try:
                        email = compose(message)
                        email.connection = connection
                        email.send()
                        results[message.id] = None
                    except Exception as error:  # noqa: BLE001 - refused, timed out, reset
                        results[message.id] = _describe(error)
                        try:  # a broken connection: reopen for the rest
                            connection.close()
                            connection.open()
                        except Exception:  # noqa: BLE001, S110
                            pass
            finally:
                try:
                    connection.close()
                except Exception:  # noqa: BLE001, S110
                    pass
        now = utcnow()
        for message in messages:
            error = results.get(message.id)
            message.claimed_at, message.claim = None, None
            if error is None:
                message.status, message.sent_at, message.last_error = SENT, now, None
                counts["sent"] += 1
            elif message.attempts + 1 >= MAX_ATTEMPTS:
                message.attempts += 1
                message.status, message.last_error = FAILED, error
                counts["failed"] += 1
            else:
                message.attempts += 1
                message.status, message.last_error = QUEUED, error
                message.next_attempt_at = now + BACKOFF[min(message.attempts - 1,
                                                            len(BACKOFF) - 1)]
                counts["retry"] += 1
            message.subject = _subject_of(message)
        db.session.commit()


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


# --- composing -------------------------------------------------------------------------------

def _locale_of(user) -> str:
    return user.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")


def _subject_of(message: MailMessage) -> str:
    with force_locale(_locale_of(message.recipient)):
        return str(_subject(message))[:250]


def _subject(message: MailMessage):
    if message.kind == "digest":
        return _l("Your day in the Service Network Portal: %(day)s",
                  day=message.digest_day.isoformat())
    return item_title(message.item)


def item_title(item: InboxItem) -> str:
    declared = registry.get(item.event)
    params = {"label": item.label or "", **(item.params or {})}
    if declared is None:
        return item.event
    return str(declared.title_for(params)) % params if "%(" in str(
        declared.title_for(params)) else str(declared.title_for(params))


def item_link(item: InboxItem, role=None) -> str | None:
    declared = registry.get(item.event)
    if declared is None or declared.link is None:
        return None
    try:
        return declared.link(item, role)
    except Exception:  # noqa: BLE001 - an area not installed, a route renamed
        return None


def compose(message: MailMessage) -> EmailMultiAlternatives:
    """The message in the recipient's language, with links to the portal."""
    base = (current_app.config.get("PORTAL_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    user = message.recipient
    with current_app.test_request_context(base_url=base), force_locale(_locale_of(user)):
        if message.kind == "digest":
            from inbox.queries import digest_items

            items = [(item, item_title(item), _absolute(base, item_link(item, user.role)))
                     for item in digest_items(message.recipient_id, message.digest_day)]
            context = {"items": items, "day": message.digest_day}
            template = "inbox/mail/digest"
        else:
            item = message.item
            context = {"item": item, "title": item_title(item),
                       "link": _absolute(base, item_link(item, user.role))}
            template = "inbox/mail/item"
        context.update(user=user, inbox=base + "/inbox/", preferences=base + "/inbox/settings")
        subject = str(_subject(message))
        text = render_template(template + ".txt", **context)
        html = render_template(template + ".html", **context)
    email = EmailMultiAlternatives(
        subject=subject, body=text, to=[message.to_address or user.email],
        headers={"Message-ID": message.message_id,
                 "Content-Language": "zh-CN" if _locale_of(user) == "zh_CN" else "en",
                 "Auto-Submitted": "auto-generated"})
    email.attach_alternative(html, "text/html")
    return email


def _absolute(base: str, path: str | None) -> str | None:
    if not path:
        return None
    return path if path.startswith("http") else base + path


# --- HQ admin: sending a failed message again -----------------------------------------------

@transition("mail.resend", MailMessage, permission=policy.RESEND, source={FAILED},
            label=_l("E-mail queued again"))
def resend(message: MailMessage, *, acting_user) -> None:
    message.status, message.attempts, message.next_attempt_at = QUEUED, 0, utcnow()
    message.last_error = None
    note(agency_id=message.agency_id)
    wake_after_commit()
