"""The agency's 360 in a real browser, on the demo network (issue #16).

HQ admin opens an agency's profile: the charts of its grades, work orders and settlements are
drawn; it then tries a lifecycle change the evidence speaks against (terminating an agency with
open settlements and open orders; promoting an agency on probation whose latest, still draft,
evaluation is a D) and is warned, with a confirmation that names what the change does. Nothing
is confirmed here: the demo network stays as it is for the other journeys. The checks read the
page's structure, not its words, so they hold in both languages.
"""
import re

from portal.clock import last_ended_quarter

ADMIN = "admin@hq.demo"
OWNER = "owner@sh-c01.demo"


def _open_agency(page, base: str, code: str) -> None:
    page.goto(f"{base}/agencies/?q={code}")
    with page.expect_navigation():
        page.click(f"table.table-hover tbody a:text-is('{code}')")
    assert re.search(r"/agencies/\d+$", page.url), page.url


def _status_badge(page) -> str:
    """The agency's status as the header's badge names it (badge-status-<status>)."""
    classes = page.locator("h1 + div .badge").first.get_attribute("class")
    return re.search(r"badge-status-(\w+)", classes).group(1)


def _charts_drawn(page) -> int:
    charts = page.locator("figure.portal-chart img")
    for n in range(charts.count()):
        chart = charts.nth(n)
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        assert chart.evaluate("img => img.complete && img.naturalWidth > 0"), n
        assert chart.bounding_box()["width"] > 200, n
    return charts.count()


def _try_status(page, status: str) -> None:
    assert page.locator("select[name=to_status]").input_value() == ""  # nothing pre-selected
    page.select_option("select[name=to_status]", status)
    page.fill("textarea[name=reason]", "浏览器测试：核对证据")
    with page.expect_navigation():
        page.click("form[action*='/status'] button")


def test_hq_admin_reads_the_360_and_is_warned_before_a_contradicting_change(journey, shot):
    base = journey.base
    admin = journey.as_user(ADMIN, "en")
    _open_agency(admin, base, "JS-C01")
    before = _status_badge(admin)
    assert _charts_drawn(admin) >= 3  # grade trend, work orders, settlements
    assert admin.locator("section.card").count() >= 5
    shot(admin, "js-c01-360")
    journey.step(admin, "js-c01-360")

    _try_status(admin, "terminated")
    warning = admin.locator("#lifecycle .alert-danger")
    warning.scroll_into_view_if_needed()
    assert warning.is_visible() and warning.locator("li").count() >= 2  # settlements, orders
    assert "JS-C01" in warning.inner_text()
    box = admin.locator("#lifecycle input[name=confirm][type=checkbox]")
    assert box.is_visible() and not box.is_checked()
    assert "JS-C01" in admin.locator("#lifecycle label[for=confirm]").inner_text()
    assert admin.locator("input[name=confirmed_status]").input_value() == "terminated"
    assert _status_badge(admin) == before  # nothing changed without the confirmation
    shot(admin, "js-c01-terminate-warned")
    journey.step(admin, "js-c01-terminate-warned")

    _open_agency(admin, base, "ZJ-C01")  # on probation; its draft quarter is a D
    before = _status_badge(admin)
    hints = admin.locator("#lifecycle .alert-warning li")
    assert hints.count() >= 1 and "ZJ-C01" in hints.first.inner_text()
    shot(admin, "zj-c01-warnings-before-choosing")
    _try_status(admin, "active")
    assert admin.locator("#lifecycle input[name=confirm]").is_visible()
    assert admin.locator("#lifecycle .is-invalid, #lifecycle .invalid-feedback").count() >= 1
    assert _status_badge(admin) == before
    shot(admin, "zj-c01-promote-warned")
    journey.step(admin, "zj-c01-promote-warned")
    # The refused changes answer 422 (the form with its warning): the browser logs them.
    journey.errors[:] = [e for e in journey.errors if "status of 422" not in e]
    journey.finish()


def test_the_owner_reads_their_own_360_without_drafts(journey, shot):
    owner = journey.as_user(OWNER, "zh_CN")
    owner.goto(f"{journey.base}/my-agency")
    assert "SH-C01" in owner.content()
    assert _charts_drawn(owner) >= 3
    # The demo computes the last ended quarter without publishing it: a draft.
    assert last_ended_quarter().label not in owner.inner_text("main")
    assert owner.locator("select[name=to_status]").count() == 0
    shot(owner, "owner-360")
    journey.step(owner, "owner-360")
    journey.finish()
