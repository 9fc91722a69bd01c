"""Order entry on a phone (390×844) in a real browser, on the demo network: the agency owner
picks a product line and htmx narrows the model, fault code, repair code and part choices
(no reload, no eval, no inline style under the strict Content-Security-Policy), saves the
order, and requests parts from the order's page, which then lists the request."""
import re
import secrets

import pytest

from tests.browser.conftest import PASSWORD, PHONE

OWNER = "owner@sh-c01.demo"
# The demo catalog's repair codes of two lines (service/demo_catalog.py), in both languages.
RF_ONLY = ("更换温控器", "Replace thermostat")
WM_ONLY = ("更换排水泵", "Replace drain pump")


@pytest.fixture
def phone(browser, live_portal):
    """The owner, signed in on a phone-sized page; script errors and CSP refusals collected."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url} {m.location}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    page.goto(f"{live_portal}/auth/sign-in")
    page.fill("input[name=email]", OWNER)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form [type=submit]")
    assert page.url == f"{live_portal}/", page.url
    yield page, errors
    context.close()


def _fits(page) -> None:
    width, inner = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url} overflows at phone width: {width} > {inner}px"


def _line_value(page, code: str) -> str:
    return page.evaluate("""code => [...document.querySelectorAll(
        'select[name=product_line_id] option')].find(o => o.textContent.trim()
        .startsWith(code + ' ')).value""", code)


def _repairs(page) -> str:
    return page.inner_text("#order-repairs")


def _choose_line(page, code: str, expect: tuple[str, str]) -> None:
    """Pick a line; htmx asks for the line's fields and swaps them in (no navigation)."""
    url = page.url
    with page.expect_response(lambda r: "/service/orders/choices" in r.url) as answer:
        page.select_option("select[name=product_line_id]", _line_value(page, code))
    response = answer.value
    assert response.status == 200 and response.request.headers.get("hx-request") == "true"
    page.wait_for_function("""words => words.some(w =>
        document.querySelector('#order-repairs').textContent.includes(w))""", arg=list(expect))
    assert page.url == url  # the page stayed: what was typed is still there


def test_an_owner_enters_an_order_on_a_phone(phone, live_portal, shot):
    page, errors = phone
    page.goto(f"{live_portal}/service/orders/new")
    config = page.evaluate("""() => window.htmx && [htmx.version, htmx.config.allowEval,
        htmx.config.includeIndicatorStyles, htmx.config.attributesToSettle.includes('style'),
        document.querySelectorAll('style').length]""")
    assert config == ["2.0.11", False, False, False, 0], config
    assert page.locator("[data-nojs-only]").is_hidden()  # htmx updates; no button needed
    assert page.input_value("input[name=received_at]")  # received now, by default
    assert page.locator("label[for=customer_name] .text-danger").count() == 1
    assert page.get_attribute("input[name=customer_name]", "aria-required") == "true"
    _fits(page)
    shot(page, "01-new-order")

    page.fill("input[name=customer_name]", "浏览器测试客户")
    page.fill("input[name=customer_phone]", "13900001111")
    page.select_option("select[name=service_type]", "carry_in")
    _choose_line(page, "RF", RF_ONLY)
    text = _repairs(page)
    assert not any(w in text for w in WM_ONLY)
    assert page.input_value("input[name=customer_name]") == "浏览器测试客户"
    page.check("#order-repairs input[type=checkbox] >> nth=1")
    _fits(page)
    shot(page, "02-refrigerator-codes")

    # Another line: its codes replace the first line's, and the ticked code of the first goes.
    _choose_line(page, "WM", WM_ONLY)
    assert not any(w in _repairs(page) for w in RF_ONLY)
    assert page.locator("#order-repairs input:checked").count() == 0
    models = page.eval_on_selector_all("select[name=product_model_id] option",
                                       "os => os.map(o => o.value).filter(v => v !== '0')")
    assert models
    page.select_option("select[name=product_model_id]", models[0])
    serial = f"SNPHONE{secrets.randbelow(10**6):06d}"
    page.fill("input[name=serial_number]", serial)
    # The search box narrows the long list as one types.
    search = page.locator("input[data-filter-for]")
    search.fill("排水" if "更换排水泵" in _repairs(page) else "drain")
    visible = page.locator("#order-repairs [data-filter-item]:visible")
    assert visible.count() == 1
    visible.locator("input").check()
    search.fill("")
    fault = page.eval_on_selector_all("select[name=fault_code_id] option",
                                      "os => os.map(o => o.value).filter(v => v !== '0')")
    page.select_option("select[name=fault_code_id]", fault[0])
    _fits(page)
    shot(page, "03-washer-order-filled")

    with page.expect_navigation():
        page.click("form#order-form button.btn-primary")
    assert re.search(r"/service/orders/\d+$", page.url), page.inner_text("main")[:800]
    order_url = page.url
    assert serial in page.content()
    assert page.locator('a[href="tel:13900001111"]').count() == 1
    _fits(page)
    shot(page, "04-order-saved")

    # Parts for this order, from its page.
    with page.expect_navigation():
        page.click(f'a[href="{order_url.removeprefix(live_portal)}/parts-request"]')
    assert page.locator("#linked-order").count() == 1
    part = page.eval_on_selector_all("select[name=lines-0-part_id] option",
                                     "os => os.map(o => o.value).filter(v => v !== '0')")
    page.select_option("select[name=lines-0-part_id]", part[0])
    page.fill("input[name=lines-0-quantity]", "2")
    _fits(page)
    shot(page, "05-parts-for-the-order")
    with page.expect_navigation():
        page.click("form button.btn-primary")
    assert page.url.startswith(order_url) and page.url.endswith("#parts-requests")
    listed = page.inner_text("#parts-requests")
    assert re.search(r"PR\d{8}-\d+", listed) and "× 2" in listed, listed
    _fits(page)
    shot(page, "06-order-lists-its-request")
    assert not errors, errors  # no CSP refusal, no script error


def test_without_script_update_choices_narrows_the_form(browser, live_portal, shot):
    """The same form with script off: "Update choices" posts it back, narrowed, unsaved."""
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{live_portal}/auth/sign-in")
        page.fill("input[name=email]", OWNER)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form [type=submit]")
        page.goto(f"{live_portal}/service/orders/new")
        button = page.locator("button[name=refresh]")
        assert button.is_visible() and page.locator("input[data-filter-for]").is_hidden()
        page.fill("input[name=customer_name]", "无脚本客户")
        page.select_option("select[name=product_line_id]", _line_value(page, "RF"))
        _fits(page)
        with page.expect_navigation():
            button.click()
        text = _repairs(page)
        assert any(w in text for w in RF_ONLY) and not any(w in text for w in WM_ONLY)
        assert page.input_value("input[name=customer_name]") == "无脚本客户"
        assert page.locator(".is-invalid").count() == 0  # nothing judged yet
        assert page.url.endswith("/service/orders/new")  # nothing saved
        _fits(page)
        shot(page, "01-no-script-narrowed")
    finally:
        context.close()
