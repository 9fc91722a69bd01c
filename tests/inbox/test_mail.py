"""E-mail from the workplace, through a real SMTP server (aiosmtpd, see tests/inbox/smtp.py).

What a recipient notices: one e-mail per item, in their language, linking to the portal; never
twice; never lost when the relay is down or refuses an address (it waits and goes later, as the
same message); their preferences obeyed except for legal deadlines; one digest a day; never
another agency's data. Delivery is ``manual`` here: only :func:`deliver_pending` sends.

The database is touched in :func:`system` blocks (their own app context, like the delivery
worker's); the test client's requests run outside them, each with its own context.
"""
import re
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from time import monotonic

import pytest
import time_machine
from flask import url_for
from sqlalchemy import Integer, String, func, literal, select

from inbox import registry
from inbox.models import FAILED, QUEUED, SENT, InboxItem, MailMessage, WorkplaceSettings
from inbox.notify import create, raise_items
from inbox.outbox import MAX_ATTEMPTS, deliver_pending
from inbox.reminders import queue_digests
from portal import clock
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db, mail
from portal.tenancy import unscoped
from service import quality
from service.models import Complaint, Verdict
from settlement.models import Settlement
from tests.factories import signed_in
from tests.inbox.smtp import HOST, SmtpServer, closed_port, silent_port

BASE = "https://portal.example.test"
MISSING = object()
CJK = re.compile(r"[\u4e00-\u9fff]")
NOTHING = {"sent": 0, "retry": 0, "failed": 0}


@contextmanager
def mail_settings(app, port: int | None, timeout: int = 5):
    """The portal configured for an SMTP server on `port` (None: e-mail off), then as before.

    Flask-Mailman copies the MAIL_* settings when it is initialised (and picks its in-memory
    backend under TESTING), so it is initialised again with the SMTP backend, and after."""
    values = {"MAIL_SERVER": HOST if port else None, "MAIL_PORT": port or 25,
              "MAIL_TIMEOUT": timeout, "MAIL_BACKEND": "smtp", "MAIL_DELIVERY": "manual",
              "MAIL_DEFAULT_SENDER": "Service Network Portal <portal@portal.example.test>",
              "PORTAL_BASE_URL": BASE}
    saved = {key: app.config.get(key, MISSING) for key in values}
    app.config.update(values)
    mail.init_app(app)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is MISSING:
                app.config.pop(key, None)
            else:
                app.config[key] = value
        mail.init_app(app)


@pytest.fixture
def relay(app):
    """A listening SMTP server the portal sends to."""
    with SmtpServer() as server, mail_settings(app, server.port):
        yield server


@pytest.fixture
def down(app):
    """The port of an SMTP server that is down (the portal is configured for it)."""
    port = closed_port()
    with mail_settings(app, port):
        yield port


@pytest.fixture
def mail_off(app):
    with mail_settings(app, None):
        yield


@contextmanager
def system(app):
    """The whole network's view, in a context of its own (the write path, the worker)."""
    with app.test_request_context(), unscoped("tests read every recipient's e-mail"):
        yield


# --- helpers (inside system blocks) ------------------------------------------------------------

def owner(world, agency=None) -> User:
    """The agency's owner (A's by default), loaded in the current block."""
    users = world.b_users if agency is world.b else world.users
    return db.session.get(User, users[Role.AGENCY_OWNER].id)


def settlement(agency, number: str) -> Settlement:
    row = Settlement(agency_id=agency.id, number=number, year=2026, month=1, status="draft",
                     computed_on=clock.local_today())
    db.session.add(row)
    db.session.flush()
    return row


def approved(world, agency, number: str) -> Settlement:
    """A settlement of `agency` that HQ approved: the agency's owner is told; committed."""
    record = settlement(agency, number)
    raise_items(registry.get("settlement.approved"),
                registry.Context(record, world.user(Role.HQ_SETTLEMENT).id, agency.id))
    db.session.commit()
    return record


def complaint(world, agency=None) -> Complaint:
    """HQ service records a complaint (a legal task for the agency's owner and staff) and the
    request commits."""
    made = quality.create_complaint(agency or world.a, {
        "channel": "hotline", "severity": "major", "description": "客户投诉上门迟到"},
        acting_user=world.user(Role.HQ_SERVICE))
    db.session.commit()
    return made


def messages(**where) -> list[MailMessage]:
    return list(db.session.scalars(select(MailMessage).filter_by(**where)
                                   .order_by(MailMessage.id)))


def message_to(user) -> MailMessage:
    (row,) = messages(recipient_id=user.id)
    return row


def local(day, hour: int, minute: int = 0):
    """The clock at `hour`:`minute` of the network's local `day`."""
    moment = clock.from_local(datetime.combine(day, time(hour, minute)))
    return time_machine.travel(moment, tick=False)


def later(**delta):
    """The clock moved on by `delta` (a retry's wait has passed)."""
    return time_machine.travel(clock.now() + timedelta(**delta), tick=False)


def prefer(app, user, **modes) -> None:
    """`user` saves their e-mail preferences on the page (other categories: immediately)."""
    response = signed_in(app, user).post("/inbox/settings", data={
        category: modes.get(category, "immediate") for category in registry.CATEGORIES})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


# --- 1. one e-mail, in the recipient's language, linking to the portal ------------------------

@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_an_item_is_one_email_in_the_recipients_language(app, world, relay, locale):
    with system(app):
        user = owner(world)
        user.locale = locale
        record = approved(world, world.a, "ST202601-0007")
        assert deliver_pending() == {**NOTHING, "sent": 1}
        row = message_to(user)
        assert row.status == SENT and row.sent_at is not None
        link = BASE + url_for("settlement.settlement", settlement_id=record.id)
        address, message_id, stored_subject = user.email, row.message_id, row.subject

    (received,) = relay.received
    assert received.rcpt_tos == [address]
    assert received.mail_from == "portal@portal.example.test"
    assert received.header("Message-ID") == message_id
    subject = received.header("Subject")
    assert "ST202601-0007" in subject and stored_subject == subject
    assert received.message.get_content_type() == "multipart/alternative"
    assert link in received.text and f'href="{link}"' in received.html
    assert f"{BASE}/inbox/" in received.text
    if locale == "zh_CN":
        assert received.header("Content-Language") == "zh-CN"
        assert CJK.search(subject), f"the subject is not Chinese: {subject!r}"
        assert CJK.search(received.text) and CJK.search(received.html)
    else:
        assert received.header("Content-Language") == "en"
        assert subject == "Settlement A-OWN ST202601-0007 was approved"
        assert not CJK.search(subject + received.text)


# --- 2. each message once ----------------------------------------------------------------------

def test_delivering_twice_sends_each_message_once(app, world, relay):
    with system(app):
        complaint(world)  # the owner's and the staff's task
        approved(world, world.a, "ST202601-0008")
        assert deliver_pending() == {**NOTHING, "sent": 3}
        assert deliver_pending() == NOTHING
        assert [m.status for m in messages()] == [SENT] * 3
    assert len(relay.received) == 3
    assert len({r.header("Message-ID") for r in relay.received}) == 3
    assert len({r.peer for r in relay.received}) == 1  # over one SMTP connection


# --- 3. a relay that is down or refuses: the change stands, the e-mail waits ------------------

def test_a_relay_that_is_down_fails_nothing_and_the_email_goes_once_it_is_back(app, world,
                                                                               down):
    with system(app):
        made = complaint(world)  # the user's action commits whatever the relay's state
        assert deliver_pending() == {**NOTHING, "retry": 2}
        assert db.session.get(Complaint, made.id).status == "open"
        rows = messages()
        assert len(rows) == 2
        for row in rows:
            assert (row.status, row.attempts) == (QUEUED, 1)
            assert "ConnectionRefusedError" in row.last_error
            assert row.next_attempt_at > clock.now()
            assert row.message_id
        first_ids = sorted(row.message_id for row in rows)

    with SmtpServer(port=down) as relay, system(app):
        assert deliver_pending() == NOTHING  # not before the wait is over
        with later(minutes=2):
            assert deliver_pending() == {**NOTHING, "sent": 2}
            assert deliver_pending() == NOTHING
        assert sorted(row.message_id for row in messages(status=SENT)) == first_ids
    assert sorted(r.header("Message-ID") for r in relay.received) == first_ids


def test_a_relay_that_never_answers_costs_one_timeout_for_the_whole_batch(app, world):
    with silent_port() as port, mail_settings(app, port, timeout=1), system(app):
        complaint(world)
        started = monotonic()
        assert deliver_pending() == {**NOTHING, "retry": 2}
        assert monotonic() - started < 3  # MAIL_TIMEOUT once, not once per message
        for row in messages():
            assert (row.status, row.attempts) == (QUEUED, 1)
            assert "timed out" in row.last_error


def test_a_refused_recipient_waits_and_gets_the_same_message_later(app, world, relay):
    with system(app):
        user, staff = owner(world), db.session.get(User, world.user(Role.AGENCY_STAFF).id)
        relay.refuse(user.email)
        complaint(world)
        assert deliver_pending() == {**NOTHING, "sent": 1, "retry": 1}
        assert len(relay.to(staff.email)) == 1 and relay.to(user.email) == []
        row = message_to(user)
        assert (row.status, row.attempts) == (QUEUED, 1)
        assert "550" in row.last_error
        assert row.next_attempt_at > clock.now()
        first_id = row.message_id

        relay.refuse()  # the mailbox is back
        assert deliver_pending() == NOTHING
        with later(minutes=2):
            assert deliver_pending() == {**NOTHING, "sent": 1}
            assert deliver_pending() == NOTHING
        assert message_to(user).message_id == first_id
    (received,) = relay.to(user.email)
    assert received.header("Message-ID") == first_id
    assert len(relay.to(staff.email)) == 1


def test_after_the_last_try_hq_admin_sees_the_failure_and_sends_it_again(app, world, down):
    with system(app):
        user = owner(world)
        address = user.email
        complaint(world)
        start = clock.now()
        for attempt in range(MAX_ATTEMPTS):  # every wait is over 7 hours later
            with time_machine.travel(start + timedelta(hours=7 * attempt), tick=False):
                deliver_pending()
        row = message_to(user)
        assert (row.status, row.attempts) == (FAILED, MAX_ATTEMPTS)
        assert row.last_error and row.subject
        row_id, first_id = row.id, row.message_id
        with later(days=30):
            assert deliver_pending() == NOTHING  # given up: no more tries by itself

    admin = signed_in(app, world.user(Role.HQ_ADMIN))
    page = admin.get("/inbox/outbox").get_data(as_text=True)
    assert address in page and f"/inbox/outbox/{row_id}/resend" in page
    assert admin.post(f"/inbox/outbox/{row_id}/resend").status_code == 302

    with system(app):
        row = db.session.get(MailMessage, row_id)
        assert (row.status, row.attempts, row.last_error) == (QUEUED, 0, None)
        with SmtpServer(port=down) as relay:
            assert deliver_pending() == {**NOTHING, "sent": 1}
        # The staff's message stays failed: HQ admin sent one again, not all.
        staff = messages(recipient_id=world.user(Role.AGENCY_STAFF).id)
        assert [m.status for m in staff] == [FAILED]
    (received,) = relay.received
    assert received.rcpt_tos == [address]
    assert received.header("Message-ID") == first_id


def test_only_hq_admin_sends_a_failed_email_again(app, world, down):
    with system(app):
        complaint(world)
        db.session.execute(MailMessage.__table__.update().values(status=FAILED,
                                                                 attempts=MAX_ATTEMPTS))
        db.session.commit()
        row_id = messages()[0].id
    for role in (Role.HQ_SERVICE, Role.AUDITOR, Role.AGENCY_OWNER):
        response = signed_in(app, world.user(role)).post(f"/inbox/outbox/{row_id}/resend")
        assert response.status_code in (403, 404), role
    with system(app):
        assert db.session.get(MailMessage, row_id).status == FAILED


# --- 4. e-mail off -----------------------------------------------------------------------------

def test_without_mail_server_nothing_is_queued_and_the_outbox_says_so(app, world, mail_off):
    with system(app):
        complaint(world)
        assert db.session.scalar(select(func.count()).select_from(InboxItem)) == 2
        assert messages() == []
        assert deliver_pending() == NOTHING
    page = signed_in(app, world.user(Role.HQ_ADMIN)).get("/inbox/outbox")
    assert page.status_code == 200
    assert "E-mail is off" in page.get_data(as_text=True)


# --- 5. preferences: off, legal tasks, the daily digest ------------------------------------------

def test_off_silences_notices_but_never_a_legal_task(app, world, relay):
    prefer(app, world.users[Role.AGENCY_OWNER], quality="off")
    with system(app):
        user = owner(world)
        made = complaint(world)  # a legal task (the answer's deadline binds): mailed anyway
        assert registry.get("complaint.recorded").legal
        quality.give_verdict(made, Verdict.SUBSTANTIATED, "上门迟到属实",
                             acting_user=world.user(Role.HQ_SERVICE))  # a notice, same category
        db.session.commit()
        events = db.session.scalars(select(InboxItem.event).where(
            InboxItem.recipient_id == user.id).order_by(InboxItem.id)).all()
        assert events == ["complaint.recorded", "complaint.closed"]  # both reach the inbox
        assert [m.item.event for m in messages(recipient_id=user.id)] == ["complaint.recorded"]
        deliver_pending()
        address, number = user.email, made.id
    (received,) = relay.to(address)
    # A complaint without a work order is known by its own number.
    assert received.header("Subject") == f"Answer complaint #{number} by its deadline"


def test_a_legal_reminder_reaches_a_user_who_turned_its_category_off(app, world, relay):
    prefer(app, world.users[Role.AGENCY_OWNER], parts="off")
    with system(app):
        user = owner(world)
        declared = registry.get("reminder.return_due")
        assert declared.legal and declared.category == "parts"
        # As the tick raises it: its own recipients, with the occurrence's key.
        rows = select(literal(user.id), literal(world.a.id), literal(None, Integer),
                      literal(None, String), literal(None, InboxItem.due_at.type),
                      literal("return_due:1", String))
        create(declared, registry.Context(None, None, None), "part_returns", None, rows=rows)
        db.session.commit()
        assert deliver_pending() == {**NOTHING, "sent": 1}
        address = user.email
    assert len(relay.to(address)) == 1


def test_digest_is_one_email_a_day_listing_the_days_items(app, world, relay):
    for users in (world.users, world.b_users):
        prefer(app, users[Role.AGENCY_OWNER], settlement="digest")
    day, settings = clock.local_today(), WorkplaceSettings(id=1, digest_hour=18)
    with system(app):
        a_owner, b_owner = owner(world), owner(world, world.b)
        with local(day, 10):
            approved(world, world.a, "ST202601-0101")
            approved(world, world.a, "ST202601-0102")
            approved(world, world.b, "ST202601-0201")
            assert messages() == []  # nothing immediately
            assert deliver_pending() == NOTHING
        with local(day, 18, 30):  # the digest hour has passed
            queue_digests(settings)
            queue_digests(settings)  # idempotent: one per user per day
            db.session.commit()
            rows = messages(kind="digest")
            assert sorted(r.recipient_id for r in rows) == sorted([a_owner.id, b_owner.id])
            assert {r.digest_day for r in rows} == {day}
            assert deliver_pending() == {**NOTHING, "sent": 2}
        with local(day, 23):
            queue_digests(settings)
            db.session.commit()
            assert len(messages(kind="digest")) == 2 and deliver_pending() == NOTHING
        addresses = a_owner.email, b_owner.email

    (a_mail,) = relay.to(addresses[0])
    (b_mail,) = relay.to(addresses[1])
    assert day.isoformat() in a_mail.header("Subject")
    for part in (a_mail.text, a_mail.html):
        assert "ST202601-0101" in part and "ST202601-0102" in part
        assert "ST202601-0201" not in part
    assert "ST202601-0201" in b_mail.text and "ST202601-0101" not in b_mail.text


def test_an_item_after_the_digest_hour_is_in_the_next_digest(app, world, relay):
    """The day's digest goes out at the digest hour (18:00); what arrives later that evening
    must be in one later digest, not fall between two."""
    prefer(app, world.users[Role.AGENCY_OWNER], settlement="digest")
    day, settings = clock.local_today(), WorkplaceSettings(id=1, digest_hour=18)

    def tick() -> None:
        queue_digests(settings)
        db.session.commit()
        deliver_pending()

    with system(app):
        address = owner(world).email
        with local(day, 10):
            approved(world, world.a, "ST202601-0301")
        with local(day, 18, 30):
            tick()
        with local(day, 19):
            approved(world, world.a, "ST202601-0302")  # after that day's digest went out
            tick()
        for days, hour in ((1, 8), (1, 18), (2, 8), (2, 18)):
            with local(day + timedelta(days), hour, 30):
                tick()
    texts = [received.text for received in relay.to(address)]
    assert len(texts) >= 1 and "ST202601-0301" in texts[0]
    assert [n for text in texts for n in ("ST202601-0301", "ST202601-0302") if n in text] \
        == ["ST202601-0301", "ST202601-0302"], \
        "an item created after the day's digest hour is in no digest"


def test_the_counts_the_tick_reports_are_the_rows_it_made(app, world, relay):
    """`raise_items` and `queue_digests` answer how many items and digests they made (the tick
    prints them, an announcement's reminder audits it): on every database."""
    prefer(app, world.users[Role.AGENCY_OWNER], settlement="digest")
    day, settings = clock.local_today(), WorkplaceSettings(id=1, digest_hour=18)
    with system(app):
        with local(day, 10):
            record = settlement(world.a, "ST202601-0401")
            approve = registry.get("settlement.approved")
            by_hq = registry.Context(record, world.user(Role.HQ_SETTLEMENT).id, world.a.id)
            assert raise_items(approve, by_hq) == 1
            by_owner = registry.Context(record, owner(world).id, world.a.id)
            assert raise_items(approve, by_owner) == 0  # nobody is told what they just did
        with local(day, 18, 30):
            assert queue_digests(settings) == 1
            assert queue_digests(settings) == 0


# --- 6. isolation ------------------------------------------------------------------------------

def test_an_email_never_carries_another_agencys_data(app, world, relay):
    with system(app):
        approved(world, world.a, "ST202601-A001")
        approved(world, world.b, "ST202601-B001")
        complaint(world, world.b)
        deliver_pending()
        assert all(row.agency_id == row.recipient.agency_id for row in messages())
        a_address, b_address = owner(world).email, owner(world, world.b).email

    (a_mail,) = relay.to(a_address)
    a_all = a_mail.message.as_string() + a_mail.text + a_mail.html
    assert "ST202601-A001" in a_all and "CANARY-A" in a_all  # its number, its owner's name
    assert "ST202601-B001" not in a_all and "CANARY-B" not in a_all
    b_mails = relay.to(b_address)
    assert len(b_mails) == 2  # the settlement, the complaint
    b_all = "".join(r.message.as_string() + r.text + r.html for r in b_mails)
    assert "ST202601-B001" in b_all and "CANARY-B" in b_all
    assert "ST202601-A001" not in b_all and "CANARY-A" not in b_all
