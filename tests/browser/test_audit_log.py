"""An auditor reads the audit log in a real browser, on the demo network, in both languages:
finds a settlement's entries by its number, narrows them to a local day, opens an entry's
changes, follows the link to the settlement and downloads the log as CSV (see
conftest.Journey: every page is photographed at desktop and phone width)."""
import csv
import io
import re
from pathlib import Path

AUDITOR = "auditor@hq.demo"


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _filter(page, **values) -> None:
    """Fill the filter form (selects by value, inputs by text) and apply it."""
    form = page.locator("form.filters")
    for name, value in values.items():
        field = form.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    with page.expect_navigation():
        form.locator("button.btn-primary").click()


def test_an_auditor_reads_filters_and_exports_the_audit_log(journey, shot):
    base = journey.base
    auditor = journey.as_user(AUDITOR, "zh_CN")
    auditor.goto(f"{base}/audit/")
    rows = auditor.locator("table.audit-log > tbody > tr")
    assert rows.count() > 0
    actions = [a.inner_text().strip() for a in auditor.locator("td.audit-action").all()]
    raw = [a for a in actions if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", a)]
    assert not raw, f"raw action codes on the page: {raw}"
    assert "登录" not in actions  # sign-ins have their own filter
    shot(auditor, "log-zh")
    journey.step(auditor, "audit-log")  # now in English

    # A settlement by its number and agency (numbers are unique across the network): every entry
    # found is about it, and links to it.
    cell = auditor.locator("td.audit-object:has(a[href*='/settlements/'])").first
    if not cell.count():
        _filter(auditor, object_type="Settlement")
        cell = auditor.locator("td.audit-object:has(a[href*='/settlements/'])").first
    link = cell.locator("a[href*='/settlements/']").first
    number, href = link.inner_text().strip(), link.get_attribute("href")
    agency = cell.locator("a[href*='/agencies/']").first.inner_text().strip()
    assert re.fullmatch(r"ST-[A-Za-z0-9_-]+-\d{6}-\d{2}", number), number
    _filter(auditor, object_type="Settlement", object=number, agency=agency)
    objects = auditor.locator("table.audit-log > tbody td.audit-object > a[href*='/settle']")
    assert objects.count() > 0
    assert {a.inner_text().strip() for a in objects.all()} == {number}
    assert {a.get_attribute("href") for a in objects.all()} == {href}
    journey.step(auditor, "filtered-by-settlement")  # now in Chinese

    # The local day of the newest of them: a one-day range keeps it.
    day = auditor.locator("table.audit-log time").first.get_attribute("datetime")[:10]
    _filter(auditor, **{"from": day, "to": day})
    assert auditor.locator("table.audit-log > tbody > tr").count() > 0
    assert all(t.get_attribute("datetime").startswith(day)
               for t in auditor.locator("table.audit-log time").all())
    assert number in auditor.locator("table.audit-log > tbody").inner_text()

    # One entry's changes: a table of fields, before and after, no JSON.
    summary = auditor.locator("details.audit-diff > summary").first
    summary.click()
    diff = auditor.locator("details.audit-diff[open] table").first
    diff.wait_for(state="visible")
    assert diff.locator("tbody tr").count() > 0 and "{" not in diff.inner_text()
    shot(auditor, "diff-open")
    journey.step(auditor, "diff-open")  # now in English

    # The settlement opens from the log.
    with auditor.expect_navigation():
        auditor.locator("table.audit-log td.audit-object a").first.click()
    assert auditor.url.endswith(href) and number in auditor.content()
    auditor.go_back()

    # The CSV: the same entries, readable and raw columns, local time named in the header.
    with auditor.expect_download() as download:
        auditor.click("a[href*='/audit/export.csv']")
    # The button keeps the pointer and the focus: its colours would be judged mid-transition.
    auditor.mouse.move(0, 0)
    auditor.evaluate("() => document.activeElement && document.activeElement.blur()")
    auditor.wait_for_timeout(400)
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert "at (Asia/Shanghai)" in header and "before" in header and "object_id" in header
    assert body and {r[-2] for r in body} == {number}  # the readable object column
    assert all(r[header.index("at (Asia/Shanghai)")].startswith(day) for r in body)
    journey.step(auditor, "after-export", switch=False)
    journey.finish()
