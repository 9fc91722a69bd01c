"""The core pages in a real browser, at desktop and phone width, in both languages."""
import pytest

from portal.demo import DEMO_PASSWORD

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def _sign_in(page, base, email):
    page.goto(f"{base}/auth/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"{base}/")


def _switch(page, locale):
    """Use the language switch in the navigation bar (collapsed on a phone)."""
    button = page.locator(f"button[name=locale][value={locale}]")
    if button.count() == 0:
        return  # already in that language
    if not button.is_visible():
        page.click("button.navbar-toggler")
        button.wait_for(state="visible")
        page.wait_for_timeout(400)  # the menu's collapse animation: click once it has opened
    with page.expect_navigation():
        button.click()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_hq_admin_walks_the_network_in_both_languages(browser, live_portal, shot, size):
    context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _sign_in(page, live_portal, "admin@hq.demo")
    _switch(page, "zh_CN")
    assert "欢迎" in page.content()
    shot(page, f"{size}-home-zh")
    page.goto(f"{live_portal}/agencies/")
    assert "服务网络" in page.inner_text("h1")
    shot(page, f"{size}-agencies-zh")
    _switch(page, "en")
    assert "Service network" in page.inner_text("h1")
    shot(page, f"{size}-agencies-en")
    with page.expect_navigation():
        page.click("table.table-hover tbody tr:first-child a")
    assert "Lifecycle" in page.content()
    shot(page, f"{size}-agency-en")
    assert not errors, errors  # no CSP violations or script errors
    context.close()


def test_agency_owner_sees_only_their_agency(browser, live_portal, shot):
    context = browser.new_context(viewport=SIZES["desktop"], locale="en-US")
    page = context.new_page()
    _sign_in(page, live_portal, "owner@sh-c01.demo")
    page.goto(f"{live_portal}/agencies/")
    assert "403" in page.inner_text("h1")
    page.goto(f"{live_portal}/my-agency")
    assert "SH-C01" in page.content() and "GD-C01" not in page.content()
    shot(page, "owner-my-agency")
    context.close()
