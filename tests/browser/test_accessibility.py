"""Accessibility and the phone: the main pages of four roles pass axe-core in both languages at
desktop and phone width (conftest.py runs axe-core on every page any browser test shows); lists
turn into cards on a phone, their filters fold behind one button, phone numbers can be tapped
and English dates name their month."""
import re

import pytest

from portal.demo import DEMO_PASSWORD

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
OWNER = "owner@sh-c01.demo"
CLERK = "settlement@hq.demo"
ADMIN = "admin@hq.demo"
AUDITOR = "auditor@hq.demo"
NUMERIC_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")


def _signed_in(browser, base, email, size="desktop", locale="zh_CN"):
    context = browser.new_context(viewport=SIZES[size],
                                  locale="zh-CN" if locale == "zh_CN" else "en-US")
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/auth/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form [type=submit]")
    assert page.url == f"{base}/", page.url
    _language(page, locale)
    return page, errors


def _language(page, locale):
    """Switch with the bar's button (in the collapsed menu on a phone)."""
    button = page.locator(f"button[name=locale][value={locale}]")
    if not button.count():
        return
    if not button.is_visible():
        page.click("button.navbar-toggler")
        button.wait_for(state="visible")
        page.wait_for_timeout(400)  # the collapse animation
    with page.expect_navigation():
        button.click()
    assert page.get_attribute("html", "lang") == ("zh-CN" if locale == "zh_CN" else "en")


def _menu_pages(page) -> list[str]:
    """Every page of the user's navigation bar (dropdown items included), home first."""
    hrefs = page.locator("#mainnav a[href^='/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    return list(dict.fromkeys(["/", *hrefs]))


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("email", [OWNER, CLERK, ADMIN, AUDITOR])
def test_main_pages_pass_axe_core_in_both_languages(browser, live_portal, email, size):
    """Every menu page and the first record of each list, in Chinese then English. axe-core
    runs on each as it loads (conftest.Accessibility); this test fails on any serious or
    critical violation, listed by page."""
    page, errors = _signed_in(browser, live_portal, email, size)
    visited = 0
    for locale in ("zh_CN", "en"):
        _language(page, locale)
        for href in _menu_pages(page):
            page.goto(live_portal + href)
            visited += 1
            assert "Traceback" not in page.content()
            if size == "phone":
                width = page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= SIZES[size]["width"], f"{href} is {width}px wide on a phone"
            record = page.locator("main table tbody a[href^='/']").first
            if record.count():
                target = record.get_attribute("href")
                if not re.search(r"\.(csv|pdf|xlsx)\b|/download|/export", target):
                    page.goto(live_portal + target)
                    visited += 1
    assert visited >= 10
    assert not errors, errors  # no CSP violations or script errors
    page.context.close()


def test_the_work_order_list_is_cards_on_a_phone_with_its_filters_folded(browser, live_portal,
                                                                          shot):
    page, errors = _signed_in(browser, live_portal, OWNER, "phone", "zh_CN")
    page.goto(f"{live_portal}/service/orders/")
    assert page.locator("main table tbody tr").count() > 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    layout = page.evaluate("""() => {
        const row = document.querySelector('main table tbody tr');
        const cell = row.querySelector('td');
        return {row: getComputedStyle(row).display, label: cell.getAttribute('data-label'),
                before: getComputedStyle(cell, '::before').content,
                head: document.querySelector('main table thead').getBoundingClientRect().height};
    }""")
    assert layout["row"] == "block", layout  # a card, not a table row
    assert layout["label"] and layout["label"] in layout["before"], layout
    assert layout["head"] <= 1, layout  # the headers are the cards' labels now
    # 服务类型 on one line in each card
    service_type = page.locator("main td[data-label='服务类型']").first
    box = service_type.bounding_box()
    assert box["height"] < 40, box
    # the filters: one button, the form folded behind it
    toggles = page.locator("main .filters-toggle")
    assert toggles.count() == 1 and toggles.is_visible()
    assert not page.locator("main form.filters").is_visible()
    shot(page, "orders-phone-folded")
    toggles.click()
    page.locator("main form.filters").wait_for(state="visible")
    assert page.get_attribute("main .filters-toggle", "aria-expanded") == "true"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "orders-phone-filters-open")
    page.set_viewport_size(SIZES["desktop"])  # from md up: open, and no button
    page.goto(f"{live_portal}/service/orders/")
    assert page.locator("main form.filters").is_visible()
    assert not page.locator("main .filters-toggle").is_visible()
    assert page.evaluate("() => getComputedStyle(document.querySelector("
                         "'main table tbody tr')).display") == "table-row"
    assert not errors, errors
    page.context.close()


def test_the_lists_work_without_script_as_scrolling_tables(browser, live_portal):
    context = browser.new_context(viewport=SIZES["phone"], java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_portal}/auth/sign-in")
    page.fill("input[name=email]", OWNER)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form [type=submit]")
    page.goto(f"{live_portal}/service/orders/")
    assert page.evaluate("() => getComputedStyle(document.querySelector("
                         "'main table tbody tr')).display") == "table-row"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # it scrolls
    context.close()


def test_phone_numbers_can_be_tapped(browser, live_portal):
    page, _ = _signed_in(browser, live_portal, OWNER, "phone", "en")
    page.goto(f"{live_portal}/certification/engineers/")
    links = page.locator("main a[href^='tel:']")
    assert links.count() > 0
    assert re.fullmatch(r"tel:\+?\d{5,}", links.first.get_attribute("href"))
    page.context.close()


def test_english_pages_name_the_month(browser, live_portal):
    page, _ = _signed_in(browser, live_portal, OWNER, "desktop", "en")
    for path in ("/service/orders/", "/certification/certificates/", "/settlements/",
                 "/inbox/"):
        page.goto(live_portal + path)
        text = page.inner_text("main")
        assert not NUMERIC_DATE.search(text), (path, NUMERIC_DATE.findall(text)[:5])
    assert re.search(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, 20\d\d",
                     page.inner_text("main"))
    page.context.close()
