"""The workplace as its users notice it: who gets a task or a notice for what, that a task goes
away when its subject moves on, that the tick reminds once, that the inbox shows the signed-in
user their own items only, and that its pages cost the same number of queries at any size.
"""
import re
from datetime import timedelta

import pytest
import time_machine
from flask import url_for
from sqlalchemy import func, select

from inbox import announcements, reminders
from inbox import registry as inbox_registry
from inbox.models import TASK, InboxItem
from inbox.notify import raise_items
from inbox.outbox import item_link, item_title
from portal import clock
from portal.auth.roles import HQ_ROLES, Role
from portal.extensions import db
from portal.tenancy import unscoped
from portal.transitions import registry as transitions
from service import supply
from service.models import Complaint
from settlement import review, services
from settlement.models import Settlement
from tests.factories import make_user, sign_in
from tests.settlement.conftest import Env

OWNER = Role.AGENCY_OWNER
# Task events that close by the recipient's own act rather than another event's `closes`:
# an announcement by its acknowledgement (inbox.services.acknowledge).
SELF_CLOSING = ("announcement.",)
# Tasks created by a transition: each must be closed by a later transition of its subject.
TRANSITION_TASKS = ("settlement.submitted", "settlement.returned", "complaint.recorded",
                    "evaluation.published", "settlement.appealed", "evaluation.appealed",
                    "complaint.responded")


def items(*where) -> list[InboxItem]:
    """Every inbox's items matching `where`, fresh from the database (the write path updates
    them in bulk, behind the session's back)."""
    with unscoped("the test reads every inbox"):
        return list(db.session.scalars(
            select(InboxItem).where(*where).order_by(InboxItem.id)
            .execution_options(populate_existing=True)))


def of(user, *where) -> list[InboxItem]:
    return items(InboxItem.recipient_id == user.id, *where)


def open_tasks(user, event: str | None = None) -> list[InboxItem]:
    where = [InboxItem.kind == TASK, InboxItem.closed_at.is_(None)]
    if event:
        where.append(InboxItem.event == event)
    return of(user, *where)


def add_item(user, event: str, *, label="ST-1", due=None, closed=False, read=False,
             subject_id=1) -> InboxItem:
    """An item as the write path would have made it (for the pages' tests)."""
    declared = inbox_registry.get(event)
    now = clock.now()
    with unscoped("the test fills an inbox"):
        item = InboxItem(recipient_id=user.id, agency_id=user.agency_id, event=event,
                         category=declared.category, kind=declared.kind,
                         subject_type="settlements", subject_id=subject_id, label=label,
                         params={}, due_at=due, created_at=now,
                         closed_at=now if closed else None, read_at=now if read else None)
        db.session.add(item)
        db.session.flush()
    return item


# --- the declared table ----------------------------------------------------------------------


def test_every_transition_is_an_inbox_event_or_declared_silent(app, capsys):
    declared = set(transitions())
    events, silent = inbox_registry.events(), inbox_registry.silent_events()
    raised = declared & set(events)
    with capsys.disabled():
        print(f"\ninbox: {len(declared)} transitions: {len(raised)} raise items, "
              f"{len(declared & set(silent))} silent; {len(set(events) - declared)} events "
              f"raised by the tick")
    undeclared = sorted(declared - set(events) - set(silent))
    assert not undeclared, ("declare these transitions in inbox/events.py (an event, or "
                            f"silent with the reason): {undeclared}")
    assert not set(silent) - declared, f"silent but no transition: {set(silent) - declared}"
    scheduled = {name for name, e in events.items() if e.scheduled}
    assert set(events) - declared <= scheduled, "an event is neither a transition nor the tick's"


def test_every_task_is_closed_when_its_subject_moves_on(app):
    events = inbox_registry.events()
    closed_by: dict[str, set[str]] = {}
    for name, declared in events.items():
        for closed in declared.closes:
            assert closed in events, f"{name} closes an unknown event {closed}"
            closed_by.setdefault(closed, set()).add(name)
    tasks = {name for name, declared in events.items() if declared.kind == TASK}
    never_closed = {name for name in tasks - set(closed_by) if not name.startswith(SELF_CLOSING)}
    assert not never_closed, f"tasks that stay open for ever: {sorted(never_closed)}"
    for name in TRANSITION_TASKS:
        assert events[name].kind == TASK and not events[name].scheduled, name
        assert closed_by.get(name, set()) - {name}, f"nothing closes {name}"


# --- settlement: the task moves with the claim ------------------------------------------------


@pytest.fixture
def stl(ctx, world, no_grade_source):
    """The standard world with a rate card and one clean order of last month for A and B."""
    from tests.settlement import factories as f

    env = Env(world)
    with env.fixture():
        f.rate_card([world.line])
    for agency in (world.a, world.b):
        env.order(agency=agency, repairs=[env.code("1.00")], service_type="carry_in")
    env.b_owner = world.b_users[OWNER]
    return env


def _submit(stl, settlement, owner):
    with stl.agency(settlement.agency_id):
        services.submit_settlement(settlement, acting_user=owner,
                                   seen_version=settlement.version, today=stl.today)


def _return(stl, settlement):
    with stl.hq():
        review.return_settlement(settlement, "Add the invoice, please.",
                                 acting_user=stl.reviewer, seen_version=settlement.version)


def test_a_returned_settlement_is_the_owners_task_until_resubmitted(stl):
    s = stl.open(agency=stl.world.b, actor=stl.b_owner)
    _submit(stl, s, stl.b_owner)  # region 2 has no regional manager: HQ reviews at once
    first_review = open_tasks(stl.reviewer, "settlement.submitted")
    assert [(t.subject_type, t.subject_id, t.label) for t in first_review] == [
        ("settlements", s.id, f"{stl.world.b.code} {s.number}")]
    assert not open_tasks(stl.b_owner) and not open_tasks(stl.manager)

    _return(stl, s)
    [task] = open_tasks(stl.b_owner)
    assert (task.event, task.subject_id, task.agency_id) == ("settlement.returned", s.id,
                                                             stl.world.b.id)
    assert item_link(task) == url_for("settlement.settlement", settlement_id=s.id)
    assert s.number in item_title(task)
    assert task.params == {"comment": "Add the invoice, please."}  # HQ's reason travels
    assert not open_tasks(stl.reviewer)
    [done] = of(stl.reviewer)
    assert (done.id, done.closed_by) == (first_review[0].id, "settlement.returned")
    assert not open_tasks(stl.owner), "the other agency's owner hears nothing"

    _submit(stl, s, stl.b_owner)
    assert not open_tasks(stl.b_owner)
    assert of(stl.b_owner)[0].closed_by == "settlement.submitted"
    [again] = open_tasks(stl.reviewer)
    assert (again.event, again.subject_id) == ("settlement.submitted", s.id)
    assert again.id != first_review[0].id and again.due_at is not None


def test_the_settlement_journey_through_the_pages(app, world, no_grade_source):
    """The same journey through the web: each person's badge and inbox follow the claim."""
    from tests.settlement import factories as f

    with app.app_context(), unscoped("test fixtures"):
        env = Env(world)
        f.rate_card([world.line])
        f.order(world.a, world.line, day=env.day, repairs=[f.repair_code(world.line, "1.00")],
                service_type="carry_in")
        db.session.commit()
    people = {role: app.test_client() for role in (OWNER, Role.REGIONAL_MANAGER,
                                                   Role.HQ_SETTLEMENT)}
    for role, client in people.items():
        sign_in(client, world.user(role))
    owner, manager, reviewer = people.values()

    def badge(client) -> int:
        return _badge(client.get("/inbox/").get_data(as_text=True)) or 0

    def act(client, url, **data):
        with app.app_context(), unscoped("the test reads the version"):
            data["version"] = db.session.get(Settlement, sid).version
        response = client.post(url, data=data)
        assert response.status_code == 302, response.get_data(as_text=True)[:1000]

    response = owner.post("/settlements/new", data={"period": f"{env.year}-{env.month:02d}"})
    sid = int(re.search(r"/settlements/(\d+)", response.headers["Location"]).group(1))
    act(owner, f"/settlements/{sid}/submit")
    assert (badge(owner), badge(manager), badge(reviewer)) == (0, 1, 0)
    act(manager, f"/settlements/{sid}/regional-review", outcome="forward", comment="")
    assert (badge(owner), badge(manager), badge(reviewer)) == (0, 0, 1)
    act(reviewer, f"/settlements/{sid}/return", comment="Add the photo, please.")
    assert (badge(owner), badge(manager), badge(reviewer)) == (1, 0, 0)
    page = owner.get("/inbox/").get_data(as_text=True)
    assert "was returned: correct it and submit it again" in page
    [task] = re.findall(r'action="/inbox/(\d+)/open"', page)
    response = owner.post(f"/inbox/{task}/open")
    assert response.headers["Location"].endswith(f"/settlements/{sid}")
    act(owner, f"/settlements/{sid}/submit")
    assert (badge(owner), badge(manager), badge(reviewer)) == (0, 1, 0)


def test_the_regional_manager_reviews_first_then_hq(stl):
    s = stl.open()
    _submit(stl, s, stl.owner)
    [regional] = open_tasks(stl.manager, "settlement.submitted")
    assert not open_tasks(stl.reviewer)
    stl.forward(s)
    assert of(stl.manager)[0].closed_by == "settlement.regional_forwarded"
    [hq_task] = open_tasks(stl.reviewer)
    assert (hq_task.event, hq_task.subject_id) == ("settlement.regional_forwarded", s.id)
    _return(stl, s)
    assert not open_tasks(stl.reviewer) and not open_tasks(stl.manager)
    assert [t.event for t in open_tasks(stl.owner)] == ["settlement.returned"]
    _submit(stl, s, stl.owner)
    assert not open_tasks(stl.owner)
    assert len(open_tasks(stl.manager, "settlement.submitted")) == 1  # reviewed again
    assert regional.id not in {t.id for t in open_tasks(stl.manager)}


def test_a_complaint_is_the_agencys_task_then_hqs(ctx, world):
    from service import quality

    hq_service, owner, staff = (world.user(Role.HQ_SERVICE), world.user(OWNER),
                                world.user(Role.AGENCY_STAFF))
    with unscoped("HQ records a complaint"):
        complaint = quality.create_complaint(
            world.a, {"channel": "hotline", "severity": "major", "description": "Late again."},
            acting_user=hq_service)
    for person in (owner, staff):
        [task] = open_tasks(person)
        assert (task.event, task.subject_id) == ("complaint.recorded", complaint.id)
        assert task.due_at == complaint.received_at + timedelta(hours=48)
    assert not of(world.b_users[OWNER]) and not of(hq_service)

    with unscoped("the agency answers"):
        quality.respond_to_complaint(complaint, "We called the customer.", acting_user=staff)
    assert not open_tasks(owner) and not open_tasks(staff)
    [verdict] = open_tasks(hq_service)
    assert verdict.event == "complaint.responded"

    with unscoped("HQ judges"):
        quality.give_verdict(complaint, "not_substantiated", "The customer agreed.",
                             acting_user=hq_service)
    assert not open_tasks(hq_service)
    assert [(i.event, i.kind) for i in of(owner, InboxItem.read_at.is_(None),
                                          InboxItem.closed_at.is_(None))] == [
        ("complaint.closed", "notice")]


# --- nobody is told what they did themselves ---------------------------------------------------


def test_the_actor_gets_no_item_for_their_own_act(ctx, world):
    admin = world.user(Role.HQ_ADMIN)
    with unscoped("HQ announces"):
        announcement = announcements.publish(
            None, {"title": "Holiday hours", "body": "Closed on Monday.", "audience": "hq"},
            acting_user=admin)
    reached = {i.recipient_id for i in items(InboxItem.announcement_id == announcement.id)}
    hq_staff = {world.user(r).id for r in HQ_ROLES}
    assert reached == hq_staff - {admin.id}

    # The agency's staff acts: the owner is told, the staff member is not.
    staff, owner = world.user(Role.AGENCY_STAFF), world.user(OWNER)

    class Shipped:  # the parts request the write path hands over (only what the event reads)
        id, number, __tablename__ = 424242, "PR-SELF", "parts_requests"

    made = raise_items(inbox_registry.get("parts_request.shipped"),
                       inbox_registry.Context(Shipped(), staff.id, world.a.id))
    assert made == 1, "raise_items says how many items it made"
    assert not of(staff) and [i.label for i in of(owner)] == ["PR-SELF"]


def test_an_announcement_is_a_task_only_when_it_asks_for_acknowledgement(ctx, world):
    """An announcement for information must not sit among the open tasks (and in the
    navigation's count) for ever: nothing but an acknowledgement closes a task of it."""
    admin, owner = world.user(Role.HQ_ADMIN), world.user(OWNER)
    data = {"body": "Read me.", "audience": "agencies"}
    with unscoped("HQ announces"):
        info = announcements.publish(None, {**data, "title": "New price list"},
                                     acting_user=admin)
        ack = announcements.publish(None, {**data, "title": "Sign the code of conduct",
                                           "requires_ack": True,
                                           "ack_by": clock.local_today() + timedelta(days=3)},
                                    acting_user=admin)
    [to_ack] = of(owner, InboxItem.announcement_id == ack.id)
    assert to_ack.is_open and to_ack.due_at is not None
    [for_info] = of(owner, InboxItem.announcement_id == info.id)
    assert for_info.kind == "notice", "an announcement for information is a notice"


# --- evaluation: one INSERT … SELECT reaches every owner ----------------------------------------


@pytest.fixture
def quick_reports(monkeypatch):
    """Stand-in PDFs (the reports are rendered and read in the evaluation tests)."""
    from evaluation import reports

    def fake(figures, locale):
        return f"%PDF-1.4 {figures['number']} {locale} {reports.fingerprint(figures)}".encode()

    monkeypatch.setattr(reports, "render_report", fake)
    monkeypatch.setattr(reports, "render_ranking", fake)


def test_a_published_quarter_reaches_every_owner_once(ctx, world, quick_reports, query_counter):
    from evaluation.models import Result
    from tests.evaluation import factories as ef

    owners = [world.user(OWNER).id, world.a2_users[OWNER].id, world.b_users[OWNER].id]
    with unscoped("HQ publishes the quarter"):
        owners.append(make_user(OWNER, agency=world.a).id)
        quarter = ef.computed()
        with query_counter as counter:
            ef.publication.publish_quarter(quarter)
        label, deadline = quarter.label, quarter.appeal_deadline_at
        results = dict(db.session.execute(select(Result.agency_id, Result.id)
                                          .where(Result.quarter_id == quarter.id)).all())
    inserts = [s for s in counter.statements if re.match(r"\s*INSERT INTO inbox_items", s)]
    assert len(inserts) == 1, "one INSERT … SELECT whatever the network's size"
    published = items(InboxItem.event == "evaluation.published")
    assert sorted(i.recipient_id for i in published) == sorted(owners)
    for item in published:
        assert item.kind == TASK and item.subject_id == results[item.agency_id]
        assert (item.due_at, item.label) == (deadline, label)


def test_an_unanswered_evaluation_task_closes_when_its_deadline_passes(ctx, world,
                                                                      quick_reports):
    """After the deadline the result stands final: the owner can no longer act, and the
    tick takes the task off their list."""
    from tests.evaluation import factories as ef

    owner = world.user(OWNER)
    with unscoped("HQ publishes the quarter"):
        quarter = ef.computed()
        ef.publication.publish_quarter(quarter)
    assert open_tasks(owner, "evaluation.published")
    reminders.tick()
    assert open_tasks(owner, "evaluation.published"), "open while the window is"
    with time_machine.travel(quarter.appeal_deadline_at + timedelta(minutes=1)):
        reminders.tick()
    assert not open_tasks(owner, "evaluation.published")
    [task] = of(owner, InboxItem.event == "evaluation.published")
    assert task.closed_by == "deadline_passed"


def test_an_evaluation_task_ends_with_the_owners_answer_or_the_final_quarter(
        ctx, world, quick_reports):
    from evaluation import services as evaluation
    from tests.evaluation import factories as ef

    a, a2, b = (world.user(OWNER), world.a2_users[OWNER], world.b_users[OWNER])
    hq_service, admin = world.user(Role.HQ_SERVICE), world.user(Role.HQ_ADMIN)
    with unscoped("HQ publishes, the agencies answer"):
        quarter = ef.computed()
        ef.publication.publish_quarter(quarter)
        evaluation.acknowledge_result(ef.result_of(quarter, world.a), acting_user=a)
        appeal = evaluation.lodge_appeal(ef.result_of(quarter, world.b),
                                         "Two revisits are another agency's.", None,
                                         acting_user=b)
    assert not open_tasks(a) and not open_tasks(b)
    assert [t.event for t in open_tasks(a2)] == ["evaluation.published"]
    for person in (hq_service, admin):
        assert [t.event for t in open_tasks(person)] == ["evaluation.appealed"]

    with unscoped("HQ decides, the quarter closes"):
        evaluation.reject_appeal(appeal, note="The revisits are B's.", acting_user=hq_service)
        assert not open_tasks(hq_service) and not open_tasks(admin)
        assert [i.event for i in of(b, InboxItem.kind == "notice")] == [
            "evaluation.appeal_rejected"]
        quarter.published_at -= timedelta(days=8)
        quarter.appeal_deadline_at -= timedelta(days=8)
        evaluation.finalize_quarter(quarter, acting_user=admin)
    assert not open_tasks(a2), "the final quarter ends the task nobody answered"


# --- the tick --------------------------------------------------------------------------------


@pytest.fixture
def due_things(ctx, world):
    """Of agency A: a certificate expiring in 20 days, a defective part overdue since
    yesterday, a complaint open for 8 days (the agency has not answered), another the agency
    answered 8 days ago (HQ's verdict is late), an order whose claim window closes in 4
    days, and a published evaluation whose appeal deadline is tomorrow."""
    from settlement.api import claim_window_days
    from tests.certification import factories as cf
    from tests.evaluation import factories as ef
    from tests.settlement import factories as sf

    today = clock.local_today()
    with unscoped("the test builds what is due"):
        engineer = cf.make_engineer(world.a, lines=[world.line],
                                    user_id=world.user(Role.ENGINEER).id)
        certificate = cf.make_certificate(engineer, cf.get_program(world.line, 1),
                                          valid_to=today + timedelta(days=20))
        overdue = ef.part_return(world.a, world.line, due_on=today - timedelta(days=1),
                                 shipped_on=None)
        complaint = Complaint(agency_id=world.a.id, channel="hotline", severity="major",
                              description="no answer", status="open",
                              received_at=clock.now() - timedelta(days=8))
        answered = Complaint(agency_id=world.a.id, channel="hotline", severity="major",
                             description="answered", status="responded",
                             received_at=clock.now() - timedelta(days=9),
                             response="we came back", responded_at=clock.now()
                             - timedelta(days=8))
        db.session.add_all([complaint, answered])
        sf.order(world.a, world.line, day=today - timedelta(days=claim_window_days() - 4))
        result = ef.light_result(world.a)
        ef.light_quarter().appeal_deadline_at = clock.now() + timedelta(days=1)
        db.session.flush()
    return certificate, overdue, complaint, result, answered


def test_the_tick_reminds_once(app, world, due_things):
    certificate, overdue, complaint, result, answered = due_things
    owner, staff = world.user(OWNER), world.user(Role.AGENCY_STAFF)
    expected = {
        ("reminder.claim_window", owner.id, None),
        ("reminder.evaluation_deadline", owner.id, result.id),
        ("reminder.certificate_30", owner.id, certificate.id),
        ("reminder.certificate_30", world.user(Role.ENGINEER).id, certificate.id),
        ("reminder.return_overdue", owner.id, overdue.id),
        ("reminder.return_overdue", staff.id, overdue.id),
        ("reminder.complaint_response", owner.id, complaint.id),
        ("reminder.complaint_response", staff.id, complaint.id),
        ("escalation.complaint_verdict", world.user(Role.HQ_SERVICE).id, answered.id)}
    first = reminders.tick()
    first.pop("reminder.coverage_gap")  # the standard world's lines have no certified holder
    made = items(InboxItem.event != "reminder.coverage_gap")
    assert sorted((i.event, i.recipient_id, i.subject_id) for i in made) == sorted(expected)
    again = reminders.tick()
    result = app.test_cli_runner().invoke(args=["workplace", "tick", "--no-deliver"])
    assert result.exit_code == 0, result.output
    assert [i.id for i in items(InboxItem.event != "reminder.coverage_gap")] == [
        i.id for i in made], "the tick made something twice"
    assert not of(world.b_users[OWNER], InboxItem.event != "reminder.coverage_gap"), \
        "another agency hears nothing of A's"

    # What the tick reports (the command prints it) is what it made.
    assert {name: n for name, n in first.items() if n} == {
        "reminder.certificate_30": 2, "reminder.return_overdue": 2,
        "reminder.complaint_response": 2, "escalation.complaint_verdict": 1,
        "reminder.claim_window": 1, "reminder.evaluation_deadline": 1}
    assert not any(again.values()), again
    assert "items and digests created: 0" in result.output, result.output

    # Shipping the part closes the reminder; the next tick does not raise it again.
    with unscoped("the agency ships"):
        supply.ship_return(overdue, "SF", "SF123", acting_user=staff)
    assert not open_tasks(owner, "reminder.return_overdue")
    assert not open_tasks(staff, "reminder.return_overdue")
    reminders.tick()
    assert not open_tasks(owner, "reminder.return_overdue")


def test_an_overdue_part_replaces_its_due_soon_task(ctx, world):
    from tests.evaluation import factories as ef

    owner, staff = world.user(OWNER), world.user(Role.AGENCY_STAFF)
    today = clock.local_today()
    with unscoped("a part to return within two days"):
        part = ef.part_return(world.a, world.line, due_on=today + timedelta(days=2),
                              shipped_on=None)
    reminders.tick()
    assert [t.event for t in open_tasks(owner)] == ["reminder.return_due"]
    with unscoped("three days later"):
        part.due_on = today - timedelta(days=1)
        db.session.flush()
    reminders.tick()
    for person in (owner, staff):
        assert [t.event for t in open_tasks(person)] == ["reminder.return_overdue"]
        [due] = of(person, InboxItem.event == "reminder.return_due")
        assert due.closed_by == "reminder.return_overdue"


def test_no_renewal_reminder_for_an_engineer_who_left(ctx, world):
    """The owner cannot nominate someone who left for the renewal exam: no reminder asks."""
    from certification.models import EngineerStatus
    from tests.certification import factories as cf

    today = clock.local_today()
    with unscoped("an engineer who left, with a certificate expiring in 20 days"):
        engineer = cf.make_engineer(world.a, lines=[world.line], status=EngineerStatus.LEFT,
                                    left_on=today - timedelta(days=10))
        cf.make_certificate(engineer, cf.get_program(world.line, 1),
                            valid_to=today + timedelta(days=20))
    reminders.tick()
    assert not [i.event for i in of(world.user(OWNER))
                if i.event.startswith("reminder.certificate")]


# --- the pages ---------------------------------------------------------------------------------


@pytest.fixture
def inboxes(app, world):
    """Agency A's owner: three open tasks (one overdue, one due in two days, one undated),
    a closed one, an unread notice; B's owner: one open task."""
    now = clock.now()
    with app.test_request_context():
        owner, other = world.user(OWNER), world.b_users[OWNER]
        mine = {
            "overdue": add_item(owner, "settlement.returned", label="ST-LATE",
                                due=now - timedelta(hours=3, minutes=5)),
            "soon": add_item(owner, "settlement.returned", label="ST-SOON",
                             due=now + timedelta(days=2, hours=1)),
            "undated": add_item(owner, "settlement.returned", label="ST-UNDATED"),
            "closed": add_item(owner, "settlement.returned", label="ST-CLOSED", closed=True),
            "notice": add_item(owner, "settlement.approved", label="ST-APPROVED"),
        }
        theirs = add_item(other, "settlement.returned", label="ST-THEIRS",
                          due=now + timedelta(days=1))
        db.session.commit()
    return owner, other, mine, theirs


def _badge(html: str) -> int | None:
    found = re.search(r'class="badge rounded-pill[^"]*"[^>]*>(\d+)<', html)
    return int(found.group(1)) if found else None


def test_the_inbox_shows_my_items_only(client, inboxes):
    owner, _other, _mine, _theirs = inboxes
    sign_in(client, owner)
    html = client.get("/inbox/").get_data(as_text=True)
    for label in ("ST-LATE", "ST-SOON", "ST-UNDATED", "ST-APPROVED"):
        assert label in html
    assert "ST-CLOSED" not in html  # done: shown under "Everything"
    assert "ST-THEIRS" not in html
    assert "ST-CLOSED" in client.get("/inbox/?state=all").get_data(as_text=True)
    assert _badge(html) == 3  # the open tasks


def _fresh(app, item) -> InboxItem:
    with app.app_context():
        return items(InboxItem.id == item.id)[0]


def test_someone_elses_item_is_a_404_and_stays_as_it_was(app, client, inboxes):
    owner, _other, _mine, theirs = inboxes
    sign_in(client, owner)
    assert client.post(f"/inbox/{theirs.id}/read").status_code == 404
    assert client.post(f"/inbox/{theirs.id}/open").status_code == 404
    assert client.post("/inbox/999999/read").status_code == 404
    item = _fresh(app, theirs)
    assert item.read_at is None and item.closed_at is None


def test_mark_read_open_and_mark_all_read(app, client, inboxes):
    owner, _other, mine, theirs = inboxes
    sign_in(client, owner)
    assert client.post(f"/inbox/{mine['notice'].id}/read").status_code == 302
    assert _fresh(app, mine["notice"]).read_at is not None
    assert _fresh(app, mine["overdue"]).read_at is None
    response = client.post(f"/inbox/{mine['soon'].id}/open")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/settlements/{mine['soon'].subject_id}")
    soon = _fresh(app, mine["soon"])
    assert soon.read_at is not None and soon.closed_at is None  # read is not done
    assert client.post("/inbox/read-all").status_code == 302
    with app.app_context():
        assert not of(owner, InboxItem.read_at.is_(None))
    assert _fresh(app, theirs).read_at is None
    # Reading is not doing: the open tasks still count.
    assert _badge(client.get("/inbox/").get_data(as_text=True)) == 3


def test_home_shows_what_waits_for_me_with_its_due_time(client, inboxes):
    owner, _other, _mine, _theirs = inboxes
    sign_in(client, owner)
    html = client.get("/").get_data(as_text=True)
    assert "Waiting for me" in html
    waiting = html[html.index("Waiting for me"):]
    assert re.search(r"overdue by 3\s+hours", waiting), waiting[:2000]
    assert re.search(r"due in 2\s+days", waiting), waiting[:2000]
    assert waiting.index("ST-LATE") < waiting.index("ST-SOON") < waiting.index("ST-UNDATED")
    assert "ST-THEIRS" not in html and "ST-CLOSED" not in waiting
    assert _badge(html) == 3


@pytest.mark.parametrize("role", list(Role))
def test_every_role_opens_its_inbox(app, client, world, role):
    user = world.user(role)
    with app.app_context():
        add_item(user, "settlement.returned", label="ST-MINE",
                 due=clock.now() + timedelta(days=1))
        db.session.commit()
    sign_in(client, user)
    response = client.get("/inbox/")
    assert response.status_code == 200, f"{role}: {response.status_code}"
    assert "ST-MINE" in response.get_data(as_text=True)


# --- query counts ------------------------------------------------------------------------------


def _fill(app, user, n: int, start: int) -> None:
    with app.app_context():
        now = clock.now()
        for k in range(start, start + n):
            event = "settlement.returned" if k % 3 else "settlement.approved"
            add_item(user, event, label=f"ST-{k:04d}", subject_id=k,
                     due=now + timedelta(hours=k - 30) if event == "settlement.returned"
                     else None, read=k % 5 == 0)
        db.session.commit()


def test_the_inbox_and_home_cost_the_same_queries_at_any_size(app, client, world,
                                                              query_counter, capsys):
    owner = world.user(OWNER)
    _fill(app, owner, 3, 1)
    sign_in(client, owner)
    pages = ("/inbox/", "/inbox/?state=all", "/")
    client.get("/")  # the first request of a session warms what every request shares

    def measure():
        counts = {}
        for url in pages:
            with query_counter as counter:
                assert client.get(url).status_code == 200
            counts[url] = counter.count
        return counts

    few = measure()
    _fill(app, owner, 57, 4)
    with app.app_context(), unscoped("count"):
        assert db.session.scalar(select(func.count(InboxItem.id)).where(
            InboxItem.recipient_id == owner.id)) == 60
    many = measure()
    with capsys.disabled():
        print(f"\ninbox queries with 3 items: {few}; with 60: {many}")
    assert few == many



def test_a_coverage_gap_is_told_once_to_the_owner_and_the_regions_manager(ctx, world):
    """Agency A is authorized for a product line and has no certified engineer for it."""
    from certification.queries import coverage_statement

    with unscoped("the test reads the network's coverage"):
        gaps = db.session.execute(coverage_statement(clock.local_today(), gaps_only=True)).all()
    short = {row.agency_id for row in gaps}
    assert world.a.id in short, "the standard world's agencies have no certified engineers"
    reminders.tick()
    told = items(InboxItem.event == "reminder.coverage_gap")
    owner, manager = world.user(OWNER), world.user(Role.REGIONAL_MANAGER)
    mine = [i for i in told if i.recipient_id == owner.id]
    assert mine and all(i.subject_id == world.a.id and world.a.code in i.label for i in mine)
    assert {i.subject_id for i in told if i.recipient_id == manager.id} == {
        a.id for a in (world.a, world.a2) if a.id in short}, "the manager's region only"
    assert all(i.subject_id == world.b.id for i in told
               if i.recipient_id == world.b_users[OWNER].id)
    reminders.tick()
    assert len(items(InboxItem.event == "reminder.coverage_gap")) == len(told), "told twice"
