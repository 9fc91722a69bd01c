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


# --- the navigation bar --------------------------------------------------------------------------

ROW = """() => {
    const bar = document.querySelector('nav.navbar');
    const parts = [...bar.querySelectorAll('.navbar-brand, #mainnav > *, #mainnav > ul > li')];
    const middles = parts.map(p => {
        const r = p.getBoundingClientRect(); return r.top + r.height / 2; });
    return {height: bar.getBoundingClientRect().height,
            spread: Math.max(...middles) - Math.min(...middles),
            right: Math.max(...parts.map(p => p.getBoundingClientRect().right)),
            page: document.documentElement.scrollWidth};
}"""


@pytest.mark.parametrize("email", ["admin@hq.demo", "owner@sh-c01.demo"])
def test_the_bar_is_one_row_at_1366_pixels_in_both_languages(browser, live_portal, shot, email):
    """HQ admin has the most menu items: grouped, they fit one row with the search box, the
    language switch and the account menu, in Chinese and in English."""
    context = browser.new_context(viewport=SIZES["desktop"], locale="zh-CN")
    page = context.new_page()
    _sign_in(page, live_portal, email)
    for locale in ("zh_CN", "en"):
        _switch(page, locale)
        page.goto(f"{live_portal}/service/orders/")
        row = page.evaluate(ROW)
        shot(page, f"bar-{email.split('@')[0]}-{locale}")
        assert row["spread"] < 12, row  # every entry on one line
        assert row["height"] < 70, row
        assert row["right"] <= 1366 and row["page"] <= 1366, row
        assert page.locator("nav .nav-link.active").count() == 1  # the section shown
    context.close()


def test_the_menus_open_and_move_by_keyboard(browser, live_portal):
    context = browser.new_context(viewport=SIZES["desktop"], locale="en-US")
    page = context.new_page()
    _sign_in(page, live_portal, "admin@hq.demo")
    _switch(page, "en")
    toggle = page.locator("#nav-work")
    toggle.focus()
    page.keyboard.press("Enter")
    menu = page.locator("[aria-labelledby=nav-work]")
    menu.wait_for(state="visible")
    assert toggle.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Work orders"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Parts"
    page.keyboard.press("Escape")
    menu.wait_for(state="hidden")
    toggle.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/service/orders/")
    assert "active" in (toggle.get_attribute("class") or "")
    context.close()


def test_the_search_box_finds_an_agency_and_a_work_order(browser, live_portal):
    context = browser.new_context(viewport=SIZES["desktop"], locale="en-US")
    page = context.new_page()
    _sign_in(page, live_portal, "admin@hq.demo")
    page.fill("nav input[name=q]", "SH-C01")
    with page.expect_navigation():
        page.press("nav input[name=q]", "Enter")
    assert "/agencies/?q=SH-C01" in page.url
    assert "SH-C01" in page.inner_text("main table.table-hover")
    context.close()
    context = browser.new_context(viewport=SIZES["desktop"], locale="en-US")
    page = context.new_page()
    _sign_in(page, live_portal, "owner@sh-c01.demo")
    page.goto(f"{live_portal}/service/orders/")
    number = page.locator("main table tbody tr:first-child td a").first.inner_text().strip()
    page.goto(f"{live_portal}/")
    page.fill("nav input[name=q]", number)
    with page.expect_navigation():
        page.click("nav form[role=search] button")
    assert "/service/orders/?q=" in page.url
    assert number in page.inner_text("main table.table-hover")
    context.close()
