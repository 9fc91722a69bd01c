"""HQ's announcements through the client: who receives one, what HQ sees move as recipients
read and acknowledge, reminders, who may open or send one, bad input (a message, never a write),
and the body's little Markdown that no hostile text gets through."""
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from inbox.models import Announcement, InboxItem
from inbox.views_announcements import render_body
from portal.auth.roles import HQ_ROLES, Role
from portal.clock import local_today
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import make_agency, make_product_line, make_user, sign_in

ADMIN, SERVICE, OWNER, STAFF = (Role.HQ_ADMIN, Role.HQ_SERVICE, Role.AGENCY_OWNER,
                                Role.AGENCY_STAFF)


def as_user(app, user):
    client = app.test_client()
    sign_in(client, user)
    return client


def read(app, fn):
    with app.app_context(), unscoped("the test reads every inbox"):
        return fn()


def items_of(app, announcement_id: int, event="announcement.published") -> list[InboxItem]:
    return read(app, lambda: list(db.session.scalars(
        select(InboxItem).where(InboxItem.announcement_id == announcement_id,
                                InboxItem.event == event).order_by(InboxItem.id))))


def row_counts(app) -> tuple[int, ...]:
    """Announcements, inbox items and audit entries: a refused request adds none."""
    from portal.audit.models import AuditEntry

    return read(app, lambda: tuple(db.session.scalar(select(func.count()).select_from(model))
                                   for model in (Announcement, InboxItem, AuditEntry)))


def send(client, **fields):
    data = {"title": "Winter stock check", "body": "Count your **spare parts** by Friday.",
            "audience": "agencies", "region_id": "0", "product_line_id": "0"}
    data.update({k: v for k, v in fields.items() if v is not None})
    return client.post("/inbox/announcements/new", data=data)


def publish(app, world, *, by=ADMIN, **fields) -> int:
    response = send(as_user(app, world.user(by)), **fields)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return int(re.search(r"/announcements/(\d+)$", response.headers["Location"]).group(1))


def accounts(world, role) -> dict:
    """Agency → that agency's account with `role`."""
    return {world.a.id: world.users[role], world.a2.id: world.a2_users[role],
            world.b.id: world.b_users[role]}


# --- who receives it --------------------------------------------------------------------------


def test_to_all_agencies_every_owner_gets_exactly_one_item_and_hq_none(app, world):
    aid = publish(app, world)
    recipients = [i.recipient_id for i in items_of(app, aid)]
    assert sorted(recipients) == sorted(u.id for u in accounts(world, OWNER).values())
    with app.app_context(), unscoped("the test reads the announcement"):
        assert db.session.get(Announcement, aid).recipient_count == len(recipients)
    hq_ids = {world.users[r].id for r in HQ_ROLES}
    assert not hq_ids & set(recipients)
    item = items_of(app, aid)[0]
    # For information only: a notice (one that asks for acknowledgement is a task).
    assert (item.kind, item.category, item.label) == ("notice", "announcement",
                                                      "Winter stock check")
    asking = publish(app, world, requires_ack="y", ack_by=local_today().isoformat())
    assert {i.kind for i in items_of(app, asking)} == {"task"}


def test_hq_service_publishes_too_and_is_told_how_many_received_it(app, world):
    client = as_user(app, world.user(SERVICE))
    response = send(client, audience="region", region_id=str(world.region1.id))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    aid = int(response.headers["Location"].rsplit("/", 1)[1])
    assert len(items_of(app, aid)) == 2
    assert "Announcement sent to 2 recipients." in page and "0 of 2 read" in page


def test_staff_too_reaches_owners_and_staff_but_not_engineers(app, world):
    aid = publish(app, world, staff_too="y")
    expected = {u.id for role in (OWNER, STAFF) for u in accounts(world, role).values()}
    recipients = [i.recipient_id for i in items_of(app, aid)]
    assert len(recipients) == len(set(recipients)) == len(expected)
    assert set(recipients) == expected


def test_to_a_region_only_its_agencies(app, world):
    aid = publish(app, world, audience="region", region_id=str(world.region1.id))
    assert {i.agency_id for i in items_of(app, aid)} == {world.a.id, world.a2.id}


def test_to_a_product_line_only_agencies_authorized_for_it(app, world):
    with app.app_context(), unscoped("the test authorizes one agency for a new line"):
        from tenants.models import AgencyProductLine

        line = make_product_line()
        db.session.add(AgencyProductLine(agency_id=world.b.id, product_line_id=line.id))
        db.session.commit()
        line_id = line.id
    aid = publish(app, world, audience="product_line", product_line_id=str(line_id))
    assert [i.agency_id for i in items_of(app, aid)] == [world.b.id]


def test_terminated_agencies_receive_nothing(app, world):
    from tenants.models import AgencyStatus

    with app.app_context(), unscoped("the test adds a terminated agency"):
        gone = make_agency(world.region1, "GONE", status=AgencyStatus.TERMINATED)
        make_user(OWNER, agency=gone)
        db.session.commit()
        gone_id = gone.id
    aid = publish(app, world)
    assert gone_id not in {i.agency_id for i in items_of(app, aid)}


# --- HQ follows it up -------------------------------------------------------------------------


def _figures(page: str) -> tuple[str, str]:
    read_ = re.search(r"(\d+) of (\d+) read", page)
    acked = re.search(r"(\d+) of (\d+) acknowledged", page)
    return read_.group(0), acked.group(0)


def test_hq_sees_read_and_acknowledged_counts_move(app, world):
    aid = publish(app, world, requires_ack="y", ack_by=local_today().isoformat())
    hq = as_user(app, world.user(ADMIN))
    assert _figures(hq.get(f"/inbox/announcements/{aid}").get_data(as_text=True)) == (
        "0 of 3 read", "0 of 3 acknowledged")

    owner = as_user(app, world.user(OWNER))
    item = items_of(app, aid)[[i.recipient_id for i in items_of(app, aid)].index(
        world.user(OWNER).id)]
    page = owner.get(f"/inbox/announcements/{aid}").get_data(as_text=True)
    assert "Count your <strong>spare parts</strong> by Friday." in page
    assert "Acknowledge" in page
    assert items_of(app, aid)[0].read_at is None  # reading the page writes nothing
    assert owner.post(f"/inbox/{item.id}/open").status_code == 302  # the inbox's link
    assert _figures(hq.get(f"/inbox/announcements/{aid}").get_data(as_text=True)) == (
        "1 of 3 read", "0 of 3 acknowledged")

    response = owner.post(f"/inbox/announcements/{aid}/acknowledge")
    assert response.status_code == 302
    assert "acknowledgement is recorded" in owner.get(response.headers["Location"]).get_data(
        as_text=True)
    mine = [i for i in items_of(app, aid) if i.recipient_id == world.user(OWNER).id][0]
    assert mine.acknowledged_at is not None and mine.closed_at is not None

    page = hq.get(f"/inbox/announcements/{aid}").get_data(as_text=True)
    assert _figures(page) == ("1 of 3 read", "1 of 3 acknowledged")
    assert "A-OWN" in page and "B-FOR" in page
    listing = hq.get("/inbox/announcements/").get_data(as_text=True)
    assert "Winter stock check" in listing

    again = owner.post(f"/inbox/announcements/{aid}/acknowledge", follow_redirects=True)
    assert "You already acknowledged this announcement." in again.get_data(as_text=True)


def test_acknowledging_reads_it_too(app, world):
    aid = publish(app, world, requires_ack="y", ack_by=local_today().isoformat())
    owner = as_user(app, world.b_users[OWNER])
    assert owner.post(f"/inbox/announcements/{aid}/acknowledge").status_code == 302
    page = as_user(app, world.user(SERVICE)).get(f"/inbox/announcements/{aid}")
    assert _figures(page.get_data(as_text=True)) == ("1 of 3 read", "1 of 3 acknowledged")


def test_the_list_costs_the_same_queries_with_one_or_many_announcements(app, world,
                                                                         query_counter):
    publish(app, world)
    hq = as_user(app, world.user(ADMIN))
    with query_counter as one:
        assert hq.get("/inbox/announcements/").status_code == 200
    for n in range(4):
        publish(app, world, title=f"Notice {n}", audience="region",
                region_id=str(world.region2.id), staff_too="y")
    with query_counter as five:
        page = hq.get("/inbox/announcements/").get_data(as_text=True)
    assert "Notice 3" in page
    assert five.count == one.count


def test_the_follow_up_page_costs_the_same_queries_whatever_the_audience(app, world,
                                                                          query_counter):
    small = publish(app, world, audience="region", region_id=str(world.region2.id))
    large = publish(app, world, audience="region", region_id=str(world.region1.id),
                    staff_too="y")
    hq = as_user(app, world.user(ADMIN))
    counts = []
    for aid in (small, large):
        with query_counter as counted:
            assert hq.get(f"/inbox/announcements/{aid}").status_code == 200
        counts.append(counted.count)
    assert counts[0] == counts[1]


# --- reminders --------------------------------------------------------------------------------


def test_reminder_goes_only_to_those_who_have_not_acknowledged_and_once_a_day(app, world):
    aid = publish(app, world, requires_ack="y",
                  ack_by=(local_today() + timedelta(days=3)).isoformat())
    assert as_user(app, world.user(OWNER)).post(
        f"/inbox/announcements/{aid}/acknowledge").status_code == 302

    hq = as_user(app, world.user(SERVICE))
    response = hq.post(f"/inbox/announcements/{aid}/remind", follow_redirects=True)
    assert "2 recipients reminded." in response.get_data(as_text=True)
    reminded = items_of(app, aid, "announcement.reminded")
    assert sorted(i.recipient_id for i in reminded) == sorted(
        [world.a2_users[OWNER].id, world.b_users[OWNER].id])

    response = hq.post(f"/inbox/announcements/{aid}/remind", follow_redirects=True)
    assert "Nobody to remind" in response.get_data(as_text=True)
    assert len(items_of(app, aid, "announcement.reminded")) == 2

    # Acknowledging closes the announcement's task and its reminder alike.
    assert as_user(app, world.b_users[OWNER]).post(
        f"/inbox/announcements/{aid}/acknowledge").status_code == 302
    mine = [i for i in items_of(app, aid) + items_of(app, aid, "announcement.reminded")
            if i.recipient_id == world.b_users[OWNER].id]
    assert len(mine) == 2 and all(i.closed_at is not None for i in mine)


def test_an_announcement_without_acknowledgement_is_not_reminded(app, world):
    aid = publish(app, world)
    hq = as_user(app, world.user(ADMIN))
    assert "Remind those" not in hq.get(f"/inbox/announcements/{aid}").get_data(as_text=True)
    response = hq.post(f"/inbox/announcements/{aid}/remind", follow_redirects=True)
    assert "asks for no acknowledgement" in response.get_data(as_text=True)
    assert items_of(app, aid, "announcement.reminded") == []


# --- who may ----------------------------------------------------------------------------------


def test_agency_users_open_only_announcements_addressed_to_them(app, world):
    to_region2 = publish(app, world, audience="region", region_id=str(world.region2.id))
    a_owner = as_user(app, world.user(OWNER))
    assert a_owner.get(f"/inbox/announcements/{to_region2}").status_code == 404
    assert a_owner.get("/inbox/announcements/999999").status_code == 404
    assert a_owner.post(f"/inbox/announcements/{to_region2}/acknowledge").status_code == 404
    b_owner = as_user(app, world.b_users[OWNER])
    page = b_owner.get(f"/inbox/announcements/{to_region2}").get_data(as_text=True)
    assert "Winter stock check" in page
    assert "B-FOR" not in page  # the follow-up table is HQ's
    # Owners only, unless staff_too: the staff of the region's agency is not addressed.
    assert as_user(app, world.b_users[STAFF]).get(
        f"/inbox/announcements/{to_region2}").status_code == 404
    # The regional manager and HQ roles outside the writers are not recipients either.
    for role in (Role.REGIONAL_MANAGER, Role.HQ_SETTLEMENT, Role.AUDITOR):
        assert as_user(app, world.user(role)).get(
            f"/inbox/announcements/{to_region2}").status_code == 404, role


@pytest.mark.parametrize("role", [OWNER, STAFF, Role.ENGINEER, Role.REGIONAL_MANAGER,
                                  Role.HQ_SETTLEMENT, Role.AUDITOR])
def test_only_hq_admin_and_service_list_send_and_remind(app, world, role):
    aid = publish(app, world, requires_ack="y", ack_by=local_today().isoformat())
    client = as_user(app, world.user(role))
    before = row_counts(app)
    assert client.get("/inbox/announcements/").status_code == 403
    assert client.get("/inbox/announcements/new").status_code == 403
    assert send(client).status_code == 403
    assert client.post(f"/inbox/announcements/{aid}/remind").status_code == 403
    assert row_counts(app) == before


def test_hq_staff_announcement_reaches_all_of_hq_and_no_agency(app, world):
    aid = publish(app, world, audience="hq")
    recipients = {i.recipient_id for i in items_of(app, aid)}
    assert world.user(SERVICE).id in recipients and world.user(Role.HQ_PARTS).id in recipients
    assert world.user(ADMIN).id not in recipients  # nobody is told what they just did
    # Auditors and regional managers are HQ's people too (auditors read; they may confirm).
    assert world.user(Role.AUDITOR).id in recipients
    assert world.user(Role.REGIONAL_MANAGER).id in recipients
    assert not recipients & {u.id for u in accounts(world, OWNER).values()}
    page = as_user(app, world.user(Role.HQ_PARTS)).get(f"/inbox/announcements/{aid}")
    assert page.status_code == 200


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"title": ""}, "This field is required."),
    ({"body": "   "}, "This field is required."),
    ({"audience": "region"}, "Choose the region or product line it goes to."),
    ({"audience": "region", "region_id": "987654"},
     "Choose the region or product line it goes to."),
    ({"audience": "region", "region_id": "99999999999999999999"},
     "Choose the region or product line it goes to."),
    ({"audience": "product_line", "product_line_id": "0"},
     "Choose the region or product line it goes to."),
    ({"audience": "product_line", "product_line_id": "x"}, "Invalid Choice: could not coerce."),
    ({"audience": "everybody"}, "Not a valid choice."),
    ({"requires_ack": "y"}, "Acknowledgement needs a day that is today or later."),
    ({"requires_ack": "y", "ack_by": "yesterday"}, "Not a valid date value."),
    ({"title": "x" * 201}, "Field cannot be longer than 200 characters."),
])
def test_bad_input_shows_a_message_and_writes_nothing(app, world, fields, message):
    client = as_user(app, world.user(ADMIN))
    before = row_counts(app)
    response = send(client, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert row_counts(app) == before


def test_bad_input_reads_in_the_users_language(app, world):
    client = as_user(app, world.user(ADMIN))
    before = row_counts(app)
    yesterday = (local_today() - timedelta(days=1)).isoformat()
    english = send(client, requires_ack="y", ack_by=yesterday)
    assert english.status_code == 400
    assert "Acknowledgement needs a day that is today or later." in english.get_data(
        as_text=True)
    chinese = client.post("/inbox/announcements/new", headers={"Accept-Language": "zh-CN"},
                          data={"title": "", "body": "x", "audience": "agencies"})
    assert chinese.status_code == 400
    assert "This field is required." not in chinese.get_data(as_text=True)
    assert row_counts(app) == before


def test_the_form_offers_the_regions_and_product_lines(app, world):
    page = as_user(app, world.user(SERVICE)).get("/inbox/announcements/new").get_data(
        as_text=True)
    assert "R-ONE" in page and "R-TWO" in page and world.line.code in page


# --- the body's Markdown ----------------------------------------------------------------------


def test_body_formatting():
    html = render_body("Hello **all** and *you*.\nSecond line\n\n- one\n- two http://x.test/a?b=1&c=2."
                       "\n\nMore")
    assert html == (
        "<p>Hello <strong>all</strong> and <em>you</em>.<br>\nSecond line</p>\n"
        "<ul><li>one</li><li>two <a href=\"http://x.test/a?b=1&amp;c=2\" rel=\"noopener\" "
        "target=\"_blank\">http://x.test/a?b=1&amp;c=2</a>.</li></ul>\n<p>More</p>")


def test_body_in_chinese_with_a_link_and_emphasis():
    html = render_body("请**务必**在周五前查看https://portal.test/x，谢谢")
    assert html == ('<p>请<strong>务必</strong>在周五前查看<a href="https://portal.test/x" '
                    'rel="noopener" target="_blank">https://portal.test/x</a>，谢谢</p>')


def test_a_star_in_an_address_never_becomes_a_tag_inside_it():
    html = render_body("**see https://x.test/a*b*c** now")
    assert '<a href="https://x.test/a' in html
    assert "<em>" not in html.split('href="')[1].split('"')[0]


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "javascript:alert(1)",
    'http://x.test/" onmouseover="alert(1)',
    "http://x.test/'onfocus='alert(1)' autofocus '",
    "**<b onclick=alert(1)>x</b>**",
    "- <iframe src=//evil.test>",
    "*<svg/onload=alert(1)>*",
    "http://x.test/&quot;><script>alert(1)</script>",
    "data:text/html,<script>alert(1)</script>",
])
def test_hostile_body_stays_inert(hostile):
    html = str(render_body(hostile))
    tags = re.findall(r"<(/?)(\w+)([^>]*)>", html)
    assert {name for _, name, _ in tags} <= {"p", "br", "ul", "li", "strong", "em", "a"}
    for closing, name, attributes in tags:
        if name != "a" or closing:
            assert attributes.strip() == "", html
        else:
            assert re.fullmatch(r' href="https?://[^"<>\s]*" rel="noopener" target="_blank"',
                                attributes), html
    assert "javascript:" not in "".join(a for _, _, a in tags)


def test_unclosed_markers_in_a_long_message_render_fast():
    hostile = "**a *b " * 3000 + "http://x.test/" * 200
    started = time.perf_counter()
    render_body(hostile)
    assert time.perf_counter() - started < 0.5


def test_hostile_title_and_body_are_inert_on_the_page(app, world):
    aid = publish(app, world, title="<script>alert('t')</script>",
                  body="<img src=x onerror=alert(1)> **ok**")
    page = as_user(app, world.user(OWNER)).get(f"/inbox/announcements/{aid}").get_data(
        as_text=True)
    assert "<script>alert('t')</script>" not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; <strong>ok</strong>" in page
