"""The workplace in a real browser: tasks that arrive, e-mail that goes out, tasks that close.

(a) HQ settlement returns SH-C01's claim in HQ review: the owner finds the task in "waiting for
me" and the navigation's count, gets the e-mail in Chinese with the link, opens the task from
the inbox and submits again; the task is gone, the regional manager passes the claim on and
HQ settlement has it in its inbox again. (b) HQ admin sends an announcement to every agency
that asks for acknowledgement; SH-C01's owner opens it from the inbox and acknowledges; HQ's
follow-up moves from 0 read / 0 acknowledged to 1 / 1 for SH-C01.

E-mail: the live portal of conftest.py sends its e-mail to the session's SMTP server
(:func:`mailbox`), and the journeys read the messages back.
"""
import re
import time
from datetime import timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

import pytest

from portal.clock import local_today

OWNER = "owner@sh-c01.demo"
MANAGER = "east.manager@hq.demo"
REVIEWER = "settlement@hq.demo"
ADMIN = "admin@hq.demo"
AGENCY = "SH-C01"
RETURN_COMMENT = "请补充第 2 行的现场照片后重新提交(收件箱浏览器测试)。"
ANNOUNCEMENT_BODY = "各网点:\n\n请于本周内**更新值班表**。\n- 值班电话\n- 值班工程师"


# --- page helpers ------------------------------------------------------------------------------


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _inbox_count(page) -> int:
    """The open tasks counted beside "Inbox" in the navigation (0 when no badge)."""
    badge = page.locator("nav a.nav-link[href='/inbox/'] .badge")
    if not badge.count():
        return 0
    return int(re.match(r"\s*(\d+)", badge.first.inner_text()).group(1))


def _waiting_for_me(page):
    """The home page's "waiting for me" card."""
    return page.locator(".card").filter(has=page.locator("h2 a[href='/inbox/']"))


def _tasks(page, text: str):
    """The inbox's open-task buttons whose title holds `text`."""
    rows = page.locator(".list-group-item").filter(
        has=page.locator(".badge.text-bg-primary")).filter(has_text=text)
    return rows.locator("form[action$='/open'] button")


def _path(url: str) -> str:
    return urlsplit(url).path


def _plain_text(message) -> str:
    return message.get_body(("plain",)).get_content()


# --- (a) a returned settlement -----------------------------------------------------------------


def _settlement_in_hq_review(reviewer, base: str) -> str:
    """The address of a submitted claim of SH-C01 that HQ may return (past the regional
    review)."""
    reviewer.goto(f"{base}/settlements/?status=submitted&q={AGENCY}")
    links = [a.get_attribute("href") for a in
             reviewer.locator("table a[href^='/settlements/']").all()]
    for href in links:
        if not re.fullmatch(r"/settlements/\d+", href or ""):
            continue
        reviewer.goto(base + href)
        if reviewer.locator("form[action$='/return']").count():
            return reviewer.url
    pytest.fail(f"no submitted claim of {AGENCY} in HQ review among {links}")


def test_a_returned_settlement_reaches_the_owner_and_comes_back_to_hq(journey, mailbox):
    base = journey.base
    owner = journey.as_user(OWNER, "zh_CN")  # the e-mail goes out in the owner's language
    owner_tasks = _inbox_count(owner)

    reviewer = journey.as_user(REVIEWER, "zh_CN")
    settlement_url = _settlement_in_hq_review(reviewer, base)
    settlement_path = _path(settlement_url)
    number = reviewer.locator("h1").first.inner_text()
    number = re.search(r"ST-[A-Za-z0-9_-]+-\d{6}-\d{2,}", number).group(0)
    journey.step(reviewer, "hq-review")
    reviewer.locator("form[action$='/return']").evaluate(
        "f => f.closest('details') && (f.closest('details').open = true)")
    reviewer.fill("form[action$='/return'] textarea[name=comment]", RETURN_COMMENT)
    _submit(reviewer, "form[action$='/return'] [type=submit]")
    assert reviewer.locator("form[action$='/return']").count() == 0, "not returned"
    hq_tasks_after_return = _inbox_count(reviewer)
    journey.step(reviewer, "hq-returned")

    mail = mailbox.wait_for(lambda m: OWNER in str(m["To"]) and number in str(m["Subject"]))
    assert "退回" in str(mail["Subject"]), mail["Subject"]
    assert mail["Content-Language"] == "zh-CN"
    link = f"{base}{settlement_path}"
    assert link in _plain_text(mail), _plain_text(mail)
    assert RETURN_COMMENT in _plain_text(mail), "HQ's comment is in the e-mail"
    assert f'href="{link}"' in mail.get_body(("html",)).get_content()

    owner.goto(f"{base}/")
    waiting = _waiting_for_me(owner)
    assert "我的待办" in waiting.locator("h2").inner_text()
    task = waiting.locator(f"a[href='{settlement_path}']")
    assert task.count() == 1 and number in task.inner_text(), waiting.inner_text()
    assert _inbox_count(owner) == owner_tasks + 1
    journey.step(owner, "owner-home-task")

    owner.goto(f"{base}/inbox/")
    journey.step(owner, "owner-inbox")
    assert _tasks(owner, number).count() == 1
    with owner.expect_navigation():
        _tasks(owner, number).click()
    assert _path(owner.url) == settlement_path, owner.url
    assert RETURN_COMMENT in owner.content()
    journey.step(owner, "owner-opens-the-return")
    _submit(owner, "form[action$='/submit'] button")
    assert owner.locator("form[action$='/submit']").count() == 0, "not resubmitted"
    journey.step(owner, "owner-resubmitted")

    owner.goto(f"{base}/")
    assert _waiting_for_me(owner).locator(f"a[href='{settlement_path}']").count() == 0
    assert _inbox_count(owner) == owner_tasks
    journey.step(owner, "owner-home-task-gone")

    manager = journey.as_user(MANAGER, "en")  # East has a regional manager: first review
    manager.goto(settlement_url)
    manager.check("input[name=outcome][value=forward]")
    manager.fill("textarea[name=comment]", "照片已补充,同意提交总部。")
    _submit(manager, "form[action$='/regional-review'] [type=submit]")
    assert manager.locator("form[action$='/regional-review']").count() == 0, "not forwarded"

    reviewer.goto(f"{base}/")
    assert _inbox_count(reviewer) == hq_tasks_after_return + 1
    journey.step(reviewer, "hq-home-task-back")
    reviewer.goto(f"{base}/inbox/?kind=task&category=settlement")
    journey.step(reviewer, "hq-inbox-task-back")
    # Settlement numbers repeat across agencies: the newest task of that number is this one.
    with reviewer.expect_navigation():
        _tasks(reviewer, number).last.click()
    assert _path(reviewer.url) == settlement_path, reviewer.url
    assert reviewer.locator("form[action$='/return']").count() == 1
    journey.step(reviewer, "hq-opens-the-resubmission", switch=False)
    journey.finish()


# --- (b) an announcement acknowledged -----------------------------------------------------------


def _agency_row(page):
    """The follow-up table's row of SH-C01: (recipients, read, acknowledged)."""
    row = page.locator("table tbody tr").filter(has_text=f"{AGENCY} ·")
    assert row.count() == 1, page.locator("table").first.inner_text()
    cells = row.locator("td.text-end").all_inner_texts()
    return tuple(int(c.replace(",", "").strip()) for c in cells)


def _totals(page) -> str:
    return page.locator("h2 + p").first.inner_text()


def test_an_announcement_is_acknowledged_by_an_agency(journey, mailbox):
    base = journey.base
    title = f"网点值班表更新通知 {int(time.time())}"
    admin = journey.as_user(ADMIN, "en")
    admin.goto(f"{base}/inbox/announcements/")
    journey.step(admin, "hq-announcements")
    admin.goto(f"{base}/inbox/announcements/new")
    journey.step(admin, "hq-announcement-form")
    admin.fill("input[name=title]", title)
    admin.fill("textarea[name=body]", ANNOUNCEMENT_BODY)
    admin.select_option("select[name=audience]", "agencies")
    admin.check("input[name=requires_ack]")
    admin.fill("input[name=ack_by]", (local_today() + timedelta(days=7)).isoformat())
    _submit(admin, "form[novalidate] > button[type=submit]")
    assert re.search(r"/inbox/announcements/\d+$", admin.url), admin.url
    announcement_url = admin.url
    assert _agency_row(admin) == (1, 0, 0)
    before = _totals(admin)
    journey.step(admin, "hq-announcement-sent")

    owner = journey.as_user(OWNER, "zh_CN")
    owner.goto(f"{base}/inbox/")
    journey.step(owner, "owner-inbox")
    with owner.expect_navigation():
        _tasks(owner, title).click()
    assert owner.url == announcement_url, owner.url
    assert "更新值班表" in owner.locator("article strong").inner_text()
    journey.step(owner, "owner-reads-announcement")
    _submit(owner, "form[action$='/acknowledge'] button")
    assert owner.locator("form[action$='/acknowledge']").count() == 0, "not acknowledged"
    assert owner.locator("article .badge.text-bg-success").count() == 1
    journey.step(owner, "owner-acknowledged")

    admin.goto(announcement_url)
    assert _agency_row(admin) == (1, 1, 1)
    assert _totals(admin) != before, before
    journey.step(admin, "hq-sees-acknowledgement", switch=False)
    mailbox.wait_for(lambda m: OWNER in str(m["To"]) and title in str(m["Subject"]))
    journey.finish()


# --- (c) a published quarter reaches every agency's owner once ---------------------------------


def test_a_published_quarter_reaches_every_owner_once(journey, mailbox):
    base = journey.base
    hq = journey.as_user("service@hq.demo", "en")
    hq.goto(f"{base}/evaluation/")
    draft = hq.locator("table tbody tr").filter(has_text="Draft")
    assert draft.count(), "no draft quarter to publish in the demo"
    label = draft.first.locator("a[href*='/evaluation/quarters/']").inner_text().strip()
    with hq.expect_navigation():
        draft.first.locator("a[href*='/evaluation/quarters/']").click()
    journey.step(hq, "hq-draft-quarter", switch=False)
    seen = len(mailbox.messages)
    _submit(hq, "form[action$='/publish'] button")  # the confirm() question is accepted
    assert "/jobs/" in hq.url, hq.url
    for _ in range(120):  # the publication job renders every agency's report
        status = hq.locator("[data-job-field=status]").inner_text()
        if status in ("Finished", "Failed"):
            break
        hq.wait_for_timeout(1000)
    assert status == "Finished", hq.content()
    journey.step(hq, "hq-quarter-published", switch=False)

    # Every owner's e-mail, once each: a real SMTP server counts them.
    published = mailbox.wait_all(
        lambda m: label in str(m["Subject"]) and "owner@" in str(m["To"]), after=seen)
    addresses = [parseaddr(str(m["To"]))[1] for m in published]
    assert len(addresses) == len(set(addresses)), f"an owner was told twice: {addresses}"
    assert {OWNER, "owner@gd-c01.demo"} <= set(addresses), addresses
    for email in (OWNER, "owner@gd-c01.demo"):
        owner = journey.as_user(email, "zh_CN")
        owner.goto(f"{base}/inbox/?kind=task&category=evaluation")
        assert _tasks(owner, label).count() == 1, owner.locator("main").inner_text()
    journey.step(journey.as_user(OWNER, "zh_CN"), "owner-quarter-task")
    journey.finish()
