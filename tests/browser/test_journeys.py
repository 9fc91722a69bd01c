"""The users' journeys in a real browser, on the demo network, in both languages.

(a) an agency owner claims a month, attaches an invoice PDF, submits; the regional manager
passes it on; HQ settlement adjusts a line and returns it; the owner sees the adjustment,
adds evidence and submits again. (b) the HQ certifier admits nominees to today's exam session
and records their scores; the agency owner finds the new certificate and downloads its PDF.
(c) an auditor finds an agency's published evaluation, downloads its PDF and verifies its
hash. Every page is photographed at desktop and phone width and switched to the other
language (see conftest.Journey).
"""
import hashlib
import io
import re
from datetime import date
from pathlib import Path

from pypdf import PdfReader

from portal.clock import local_today

OWNER = "owner@sh-c01.demo"
MANAGER = "east.manager@hq.demo"
REVIEWER = "settlement@hq.demo"
CERTIFIER = "certifier@hq.demo"
AUDITOR = "auditor@hq.demo"
ADJUSTMENT = "远程费按实际导航里程核减(浏览器测试)"


def _months_back(today: date, n: int) -> str:
    index = today.year * 12 + today.month - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _money(text: str) -> float:
    return float(re.search(r"(\d[\d,]*\.\d\d)", text).group(1).replace(",", ""))


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-"), data[:20]
    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)


def _invoice_pdf(title: str) -> bytes:
    from settlement.demo import demo_pdf

    return demo_pdf(title)


def _photo_png() -> bytes:
    from settlement.demo import demo_png

    return demo_png(3)


def test_a_settlement_is_claimed_returned_with_an_adjustment_and_resubmitted(journey):
    base = journey.base
    owner = journey.as_user(OWNER, "zh_CN")
    owner.goto(f"{base}/settlements/")
    journey.step(owner, "owner-settlements")
    owner.goto(f"{base}/settlements/new")
    journey.step(owner, "owner-claim-form")
    for back in (0, 8, 9, 10, 11, 12):  # the first month with something left to claim
        owner.fill("input[name=period]", _months_back(local_today(), back))
        _submit(owner, "form [type=submit][name=submit]")
        if re.search(r"/settlements/\d+$", owner.url):
            break
    assert re.search(r"/settlements/\d+$", owner.url), "no month had anything to claim"
    settlement_url = owner.url
    journey.step(owner, "owner-draft")

    owner.set_input_files("input[name=file]", files=[{
        "name": "发票-invoice.pdf", "mimeType": "application/pdf",
        "buffer": _invoice_pdf("browser journey")}])
    _submit(owner, "form[action$='/evidence'] [type=submit]")
    assert "发票-invoice.pdf" in owner.content()
    journey.step(owner, "owner-invoice-attached")
    _submit(owner, "form[action$='/submit'] button")
    assert "/submit" not in owner.url and owner.locator(
        "form[action$='/submit']").count() == 0, "the claim was not submitted"
    journey.step(owner, "owner-submitted")

    manager = journey.as_user(MANAGER, "en")
    manager.goto(settlement_url)
    journey.step(manager, "manager-review")
    manager.check("input[name=outcome][value=forward]")
    manager.fill("textarea[name=comment]", "已核对,同意提交总部。")
    _submit(manager, "form[action$='/regional-review'] [type=submit]")
    assert manager.locator("form[action$='/regional-review']").count() == 0
    journey.step(manager, "manager-forwarded")

    reviewer = journey.as_user(REVIEWER, "zh_CN")
    reviewer.goto(settlement_url + "?lines=all")
    journey.step(reviewer, "hq-review")
    line_row = reviewer.locator("tbody[id^=line-]").filter(
        has=reviewer.locator("select[name=decision]")).first
    line_id = line_row.get_attribute("id")
    claimed = _money(line_row.locator("td.rv-claimed").inner_text())
    adjusted = f"{claimed * 0.8:.2f}" if claimed > 0.05 else "0.00"
    line_row.locator("details").evaluate_all("all => all.forEach(d => { d.open = true; })")
    decide = line_row.locator("form").filter(has=reviewer.locator("select[name=decision]"))
    decide.locator("select[name=decision]").select_option("adjusted")
    decide.locator("input[name=amount]").fill(adjusted)
    decide.locator("select[name=reason_code]").select_option("rate_mismatch")
    decide.locator("textarea[name=reason_text]").fill(ADJUSTMENT)
    with reviewer.expect_navigation():
        decide.locator("[type=submit]").click()
    assert ADJUSTMENT in reviewer.content()
    journey.step(reviewer, "hq-line-adjusted")
    reviewer.locator("form[action$='/return']").evaluate(
        "f => f.closest('details').open = true")
    reviewer.fill("form[action$='/return'] textarea[name=comment]",
                  "第 1 行远程费已核减,请补充现场照片后重新提交。")
    _submit(reviewer, "form[action$='/return'] [type=submit]")
    journey.step(reviewer, "hq-returned")

    owner.goto(settlement_url)
    page = owner.content()
    assert ADJUSTMENT in page and "请补充现场照片" in page  # the agency sees both
    assert owner.locator(f"#{line_id} .badge.text-bg-warning").count() == 1
    journey.step(owner, "owner-sees-adjustment")
    owner.set_input_files("input[name=file]", files=[{
        "name": "现场照片.png", "mimeType": "image/png", "buffer": _photo_png()}])
    owner.select_option("select[name=line_id]", line_id.split("-")[1])
    _submit(owner, "form[action$='/evidence'] [type=submit]")
    assert "现场照片.png" in owner.content()
    journey.step(owner, "owner-corrected")
    _submit(owner, "form[action$='/submit'] button")
    assert owner.locator("form[action$='/submit']").count() == 0, "not resubmitted"
    journey.step(owner, "owner-resubmitted", switch=False)
    statement = owner.request.get(settlement_url + "/statement.pdf")
    assert statement.ok and ADJUSTMENT[:8] in _pdf_text(statement.body()).replace("\n", "")
    journey.finish()


def test_exam_scores_issue_a_certificate_the_owner_downloads(journey):
    base = journey.base
    certifier = journey.as_user(CERTIFIER, "en")
    certifier.goto(f"{base}/certification/sessions/")
    journey.step(certifier, "certifier-sessions")
    today = local_today().isoformat()
    open_session = None
    for link in certifier.locator("a[href*='/certification/sessions/']").all():
        href = link.get_attribute("href")
        if re.search(r"/sessions/\d+$", href or ""):
            certifier.goto(base + href if href.startswith("/") else href)
            if certifier.locator("input[name=nomination_ids]").count():
                open_session = certifier.url
                break
            certifier.go_back()
    assert open_session, f"no open session with waiting nominees ({today})"
    journey.step(certifier, "certifier-session")
    for row in certifier.locator("form[action$='/admit'] tbody tr").all():
        if "SH-C01" in row.inner_text():
            row.locator("input[name=nomination_ids]").check()
    _submit(certifier, "form[action$='/admit'] button[type=submit]")
    assert "SH-C01" in certifier.content()
    journey.step(certifier, "certifier-admitted")
    certifier.goto(open_session + "/scores")
    journey.step(certifier, "certifier-score-sheet")
    for field in certifier.locator("input[name$=theory], input[name$=practical]").all():
        field.fill("88")
    # Checking the sheet records nothing: the summary says how many certificates saving issues.
    _submit(certifier, "form [type=submit].btn-primary")
    assert certifier.locator("form [type=submit].btn-success[name=confirm]").count() == 1
    journey.step(certifier, "certifier-score-summary", switch=False)  # the summary is a POST
    _submit(certifier, "form [type=submit].btn-success")
    assert certifier.url.rstrip("/") == open_session
    journey.step(certifier, "certifier-scored")

    owner = journey.as_user(OWNER, "zh_CN")
    owner.goto(f"{base}/certification/certificates/")
    journey.step(owner, "owner-certificates")
    year = local_today().year
    newest = owner.locator(f"a[href*='/certification/certificates/']:text-matches('-{year}-')")
    assert newest.count(), "the owner sees no certificate issued this year"
    number = newest.first.inner_text().strip()
    _submit(owner, f"a:text-is('{number}')")
    journey.step(owner, "owner-certificate")
    with owner.expect_download() as download:
        owner.click("a[href$='/pdf?lang=zh_CN']")
    data = Path(download.value.path()).read_bytes()
    text = _pdf_text(data)
    assert number in text.replace(" ", "").replace("\n", "") or number in text
    journey.finish()


def test_an_auditor_verifies_a_published_evaluation_report(journey):
    base = journey.base
    auditor = journey.as_user(AUDITOR, "zh_CN")
    auditor.goto(f"{base}/evaluation/")
    journey.step(auditor, "auditor-evaluation")
    quarters = [a.get_attribute("href") for a in
                auditor.locator("a[href*='/evaluation/quarters/']").all()]
    found = False
    for n, href in enumerate(dict.fromkeys(quarters)):  # the newest quarter with reports
        auditor.goto(base + href if href.startswith("/") else href)
        if n == 0:
            journey.step(auditor, "auditor-quarter")
        result = auditor.locator("a[href*='/evaluation/results/']:text-is('SH-C01')")
        if not result.count():
            continue
        with auditor.expect_navigation():
            result.first.click()
        if auditor.locator("a[href*='/evaluation/reports/']").count():
            found = True
            break
    assert found, "no published quarter with a report of SH-C01"
    journey.step(auditor, "auditor-result")
    row = auditor.locator("tr").filter(has=auditor.locator("a[href*='/evaluation/reports/']"))
    recorded = row.first.locator("td.mono.text-break").inner_text().strip()
    with auditor.expect_download() as download:
        row.first.locator("a[href*='/evaluation/reports/']").click()
    data = Path(download.value.path()).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == recorded, "the downloaded bytes are not the stored report"
    assert "SH-C01" in _pdf_text(data)
    auditor.goto(f"{base}/evaluation/verify")
    journey.step(auditor, "auditor-verify-form")
    auditor.set_input_files("input[type=file]", files=[{
        "name": "report.pdf", "mimeType": "application/pdf", "buffer": data}])
    _submit(auditor, "form[enctype='multipart/form-data'] [type=submit]")
    assert digest in auditor.content()
    assert auditor.locator(".alert-success").count() == 1
    journey.step(auditor, "auditor-verified")
    tampered = data.replace(b"%%EOF", b"%%EOF\n% changed")
    auditor.goto(f"{base}/evaluation/verify")
    auditor.set_input_files("input[type=file]", files=[{
        "name": "changed.pdf", "mimeType": "application/pdf", "buffer": tampered}])
    _submit(auditor, "form[enctype='multipart/form-data'] [type=submit]")
    assert auditor.locator(".alert-danger").count() == 1
    journey.step(auditor, "auditor-tampered-refused", switch=False)
    journey.finish()
