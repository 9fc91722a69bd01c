"""The settlement pages through the client: an agency's claim from opening to payment, HQ's
review, outputs, permissions, and bad input on every form (a message, never a 500 or a write)."""
import html
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from settlement.demo import demo_pdf, demo_png
from settlement.models import Appeal, Attachment, Decision, Settlement, SettlementLine, Status
from tests.factories import sign_in
from tests.settlement import factories as f


def read(app, fn):
    with app.app_context(), unscoped("the test reads the result"):
        return fn()


def settlement_of(app, sid) -> Settlement:
    return read(app, lambda: db.session.scalars(select(Settlement).where(
        Settlement.id == sid)).one())


def lines_of(app, sid) -> list[SettlementLine]:
    return read(app, lambda: list(db.session.scalars(select(SettlementLine).where(
        SettlementLine.settlement_id == sid).order_by(SettlementLine.id))))


def as_user(app, user):
    client = app.test_client()
    sign_in(client, user)
    return client


def open_claim(env) -> int:
    client = as_user(env.app, env.owner)
    response = client.post("/settlements/new", data={"period": f"{env.year}-{env.month:02d}"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(re.search(r"/settlements/(\d+)", response.headers["Location"]).group(1))


def post(client, url, sid, app, **data):
    data.setdefault("version", settlement_of(app, sid).version)
    return client.post(url, data=data)


def submitted_and_forwarded(env) -> int:
    sid = open_claim(env)
    owner = as_user(env.app, env.owner)
    assert post(owner, f"/settlements/{sid}/submit", sid, env.app).status_code == 302
    manager = as_user(env.app, env.manager)
    assert post(manager, f"/settlements/{sid}/regional-review", sid, env.app,
                outcome="forward", comment="").status_code == 302
    return sid


# --- the agency's journey ----------------------------------------------------------------------


def test_the_owner_opens_checks_attaches_and_submits_a_month(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    page = owner.get(f"/settlements/{sid}").get_data(as_text=True)
    for text in ("Call-out fee: CN¥50.00", "Labor: 5.00 h", "× CN¥80.00 (tier 3)",
                 "= CN¥400.00", "Hours over the standard", "CN¥580.00"):
        assert text in page, text
    line = lines_of(app, sid)[1]
    response = owner.post(f"/settlements/{sid}/evidence", data={
        "file": (io.BytesIO(demo_png(3)), "photo.png"), "line_id": str(line.id)},
        content_type="multipart/form-data")
    assert response.status_code == 302
    response = owner.post(f"/settlements/{sid}/evidence", data={
        "file": (io.BytesIO(demo_pdf("10")), "发票.pdf"), "line_id": "0"},
        content_type="multipart/form-data")
    assert response.status_code == 302
    page = owner.get(f"/settlements/{sid}").get_data(as_text=True)
    assert "photo.png" in page and "发票.pdf" in page
    version = settlement_of(app, sid).version
    assert owner.post(f"/settlements/{sid}/submit", data={"version": version}).status_code == 302
    s = settlement_of(app, sid)
    assert s.status == Status.SUBMITTED and s.claimed_total == s.claimed_total.__class__("580")
    # the second click of the same page changes nothing and says why
    response = owner.post(f"/settlements/{sid}/submit", data={"version": version})
    assert response.status_code == 400 and "out of date" in response.get_data(as_text=True)
    assert settlement_of(app, sid).submission_count == 1


def test_hq_reviews_adjusts_returns_approves_and_pays(web):
    app, sid = web.app, submitted_and_forwarded(web)
    reviewer, colleague = as_user(app, web.reviewer), as_user(app, web.second_reviewer)
    page = reviewer.get(f"/settlements/{sid}").get_data(as_text=True)
    assert "HQ review" in page and "Decide this line" in page
    assert post(reviewer, f"/settlements/{sid}/approve-clean", sid, app).status_code == 302
    flagged = next(ln for ln in lines_of(app, sid) if ln.decision == Decision.PENDING)
    response = post(reviewer, f"/settlements/lines/{flagged.id}/decide", sid, app,
                    decision="adjusted", amount="330.00", reason_code="rate_mismatch",
                    reason_text="Five hours is above the standard for this code.")
    assert response.status_code == 302
    assert post(reviewer, f"/settlements/{sid}/return", sid, app,
                comment="Add the photo of line 2.").status_code == 302
    assert settlement_of(app, sid).status == Status.RETURNED
    owner_page = as_user(app, web.owner).get(f"/settlements/{sid}").get_data(as_text=True)
    assert "Rate mismatch" in owner_page and "Add the photo of line 2." in owner_page
    owner = as_user(app, web.owner)
    assert post(owner, f"/settlements/{sid}/submit", sid, app).status_code == 302
    assert post(as_user(app, web.manager), f"/settlements/{sid}/regional-review", sid, app,
                outcome="forward", comment="ok").status_code == 302
    # four eyes: the adjuster's approval is refused with the reason
    response = post(reviewer, f"/settlements/{sid}/approve", sid, app)
    assert response.status_code == 400 and "four eyes" in response.get_data(as_text=True)
    assert settlement_of(app, sid).status == Status.SUBMITTED
    assert post(colleague, f"/settlements/{sid}/approve", sid, app).status_code == 302
    s = settlement_of(app, sid)
    assert s.status == Status.APPROVED and str(s.approved_total) == "460.00"
    assert post(reviewer, f"/settlements/{sid}/pay", sid, app, payment_reference="CMB-77",
                paid_on=web.today.isoformat()).status_code == 302
    assert settlement_of(app, sid).status == Status.PAID


def test_the_agency_appeals_a_denied_line_once(web):
    app, sid = web.app, submitted_and_forwarded(web)
    reviewer = as_user(app, web.reviewer)
    post(reviewer, f"/settlements/{sid}/approve-clean", sid, app)
    flagged = next(ln for ln in lines_of(app, sid) if ln.decision == Decision.PENDING)
    post(reviewer, f"/settlements/lines/{flagged.id}/decide", sid, app, decision="denied",
         reason_code="insufficient_evidence", reason_text="")
    owner = as_user(app, web.owner)
    url = f"/settlements/lines/{flagged.id}/appeal"
    assert post(owner, url, sid, app, reason="short").status_code == 400
    assert post(owner, url, sid, app, reason="The photos show the work.").status_code == 302
    assert post(owner, url, sid, app, reason="Once more, please.").status_code == 400
    appeal = read(app, lambda: db.session.scalars(select(Appeal)).one())
    response = post(reviewer, f"/settlements/appeals/{appeal.id}/resolve", sid, app,
                    outcome="upheld", amount="450.00", note="Verified.")
    assert response.status_code == 302
    assert settlement_of(app, sid).approved_total == settlement_of(app, sid).claimed_total


# --- bad input on every form -------------------------------------------------------------------


def _unchanged(app, sid):
    s = settlement_of(app, sid)
    return (s.status, s.version, s.claimed_total, s.approved_total)


@pytest.mark.parametrize("period, message", [("", "This field is required"),
                                             ("2026-13", "invalid-feedback"),
                                             ("2099-01", "month that has ended"),
                                             ("2999-01", "Choose a month"),
                                             ("2020-02", "Nothing to claim")])
def test_opening_with_a_bad_month(web, period, message):
    client = as_user(web.app, web.owner)
    response = client.post("/settlements/new", data={"period": period})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and message in body and "is-invalid" in body
    assert read(web.app, lambda: db.session.scalar(select(func.count(Settlement.id)))) == 0


def test_the_claim_form_offers_the_last_ended_month_and_refuses_the_current_one(web):
    """On 5 December (local) the form proposes November; December is refused on the month
    field with the reason, and nothing is written; November opens."""
    with web.app.app_context(), unscoped("orders of November and December"):
        code = f.repair_code(web.world.line, "1.00")
        for day in (date(2026, 11, 20), date(2026, 12, 2)):
            f.order(web.world.a, web.world.line, day=day, repairs=[code])
        db.session.commit()
    before = read(web.app, lambda: db.session.scalar(select(func.count(Settlement.id))))
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC), tick=False):  # 10:00 local
        owner = as_user(web.app, web.owner)
        form = owner.get("/settlements/new").get_data(as_text=True)
        (month_input,) = re.findall(r'<input[^>]*name="period"[^>]*>', form)
        assert 'value="2026-11"' in month_input and 'max="2026-11"' in month_input
        response = owner.post("/settlements/new", data={"period": "2026-12"})
        body = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 200 and "is-invalid" in body
        assert ("A settlement covers a month that has ended: 2026-12 can be claimed from "
                "January 1, 2027.") in body
        assert read(web.app, lambda: db.session.scalar(select(func.count(Settlement.id)))
                    ) == before
        response = owner.post("/settlements/new", data={"period": "2026-11"})
        assert response.status_code == 302
    sid = int(re.search(r"/settlements/(\d+)", response.headers["Location"]).group(1))
    assert settlement_of(web.app, sid).number == "ST-A-OWN-202611-01"


def test_bad_input_on_the_agency_forms(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    before = _unchanged(app, sid)
    cases = [
        (f"/settlements/{sid}/orders", {"number": "NOPE-1"}, "has no order"),
        (f"/settlements/{sid}/orders", {"number": ""}, "This field is required"),
        (f"/settlements/{sid}/orders", {"number": "x" * 40}, "Field cannot be longer"),
    ]
    for url, data, message in cases:
        response = post(owner, url, sid, app, **data)
        assert response.status_code == 400 and message in response.get_data(as_text=True), url
    for name, data, message in (("a.pdf", b"MZ\x90\x00", "judged by their content"),
                                ("a.png", b"", "Choose a file")):
        response = owner.post(f"/settlements/{sid}/evidence", data={
            "file": (io.BytesIO(data), name), "line_id": "0"},
            content_type="multipart/form-data")
        assert response.status_code == 400
        assert message in response.get_data(as_text=True) or "required" in response.get_data(
            as_text=True)
    response = owner.post(f"/settlements/{sid}/evidence", data={
        "file": (io.BytesIO(demo_png(1)), "a.png"), "line_id": "987654"},
        content_type="multipart/form-data")
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(
        as_text=True)
    for url in (f"/settlements/{sid}/submit", f"/settlements/{sid}/refresh",
                f"/settlements/{sid}/withdraw"):
        response = owner.post(url, data={"version": "junk"})
        assert response.status_code == 400 and "out of date" in response.get_data(as_text=True)
    assert _unchanged(app, sid) == before
    assert read(app, lambda: db.session.scalar(select(func.count(Attachment.id)))) == 0


def test_bad_input_on_the_review_forms(web):
    app, sid = web.app, open_claim(web)
    owner, manager = as_user(app, web.owner), as_user(app, web.manager)
    post(owner, f"/settlements/{sid}/submit", sid, app)
    response = post(manager, f"/settlements/{sid}/regional-review", sid, app, outcome="return",
                    comment="")
    assert response.status_code == 400 and "Write between" in response.get_data(as_text=True)
    response = post(manager, f"/settlements/{sid}/regional-review", sid, app, outcome="maybe")
    assert response.status_code == 400
    post(manager, f"/settlements/{sid}/regional-review", sid, app, outcome="forward")
    reviewer = as_user(app, web.reviewer)
    before = _unchanged(app, sid)
    line = lines_of(app, sid)[1]
    for data, message in (
            ({"decision": "adjusted", "amount": "-5", "reason_code": "other",
              "reason_text": "Too much"}, "Enter an amount between"),
            ({"decision": "adjusted", "amount": "1e9", "reason_code": "other",
              "reason_text": "Too much"}, "Enter an amount between"),
            ({"decision": "denied", "reason_code": "bogus"}, "Not a valid choice"),
            ({"decision": "denied", "reason_code": ""}, "Choose a reason code"),
            ({"decision": "denied", "reason_code": "other", "reason_text": ""},
             "Write between")):
        response = post(reviewer, f"/settlements/lines/{line.id}/decide", sid, app, **data)
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), (data, message)
    response = post(reviewer, f"/settlements/{sid}/return", sid, app, comment="")
    assert response.status_code == 400
    assert _unchanged(app, sid) == before


def test_bad_payment_input(web):
    app, sid = web.app, submitted_and_forwarded(web)
    reviewer = as_user(app, web.reviewer)
    post(reviewer, f"/settlements/{sid}/approve-clean", sid, app)
    flagged = next(ln for ln in lines_of(app, sid) if ln.decision == Decision.PENDING)
    post(reviewer, f"/settlements/lines/{flagged.id}/decide", sid, app, decision="approved")
    post(reviewer, f"/settlements/{sid}/approve", sid, app)
    assert settlement_of(app, sid).status == Status.APPROVED
    for data in ({"payment_reference": ""}, {"payment_reference": "ab"},
                 {"payment_reference": "CMB-1", "paid_on": "not a date"},
                 {"payment_reference": "CMB-1",
                  "paid_on": (web.today + timedelta(days=3)).isoformat()}):
        assert post(reviewer, f"/settlements/{sid}/pay", sid, app, **data).status_code == 400
    assert settlement_of(app, sid).status == Status.APPROVED


# --- permissions and what each side sees ----------------------------------------------------------


def test_staff_read_but_do_not_submit_and_auditors_never_write(web):
    app, sid = web.app, open_claim(web)
    staff = as_user(app, web.staff)
    assert staff.get(f"/settlements/{sid}").status_code == 200
    assert "Submit to HQ" not in staff.get(f"/settlements/{sid}").get_data(as_text=True)
    assert post(staff, f"/settlements/{sid}/submit", sid, app).status_code == 403
    auditor = as_user(app, web.world.user(Role.AUDITOR))
    assert auditor.get(f"/settlements/{sid}").status_code == 200
    assert auditor.get(f"/settlements/{sid}/statement.pdf").status_code == 200
    for url in (f"/settlements/{sid}/submit", f"/settlements/{sid}/approve",
                "/settlements/configuration/settings"):
        assert post(auditor, url, sid, app).status_code == 403
    engineer = as_user(app, web.world.user(Role.ENGINEER))
    assert engineer.get("/settlements/").status_code == 403
    assert settlement_of(app, sid).status == Status.DRAFT


def test_duplicates_are_shown_to_hq_only(web):
    app, world = web.app, web.world
    with app.app_context(), unscoped("fixture"):
        code = f.repair_code(world.line, "1.00")
        f.order(world.b, world.line, day=web.day, repairs=[code], serial="SN-DUP-9")
        from settlement import services

        services.open_settlement(world.b, web.year, web.month, acting_user=None, today=web.today)
        f.order(world.a, world.line, day=web.day, repairs=[code], serial="SN-DUP-9")
        db.session.commit()
    sid = open_claim(web)
    label = "Possible duplicate"
    assert label in as_user(app, web.reviewer).get(f"/settlements/{sid}").get_data(
        as_text=True)
    owner_view = as_user(app, web.owner)
    for url in (f"/settlements/{sid}", f"/settlements/{sid}/lines.csv"):
        body = owner_view.get(url).get_data(as_text=True)
        assert label not in body and "CANARY-B" not in body and "B-FOR" not in body


def test_evidence_downloads_are_checked_through_the_settlement(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    owner.post(f"/settlements/{sid}/evidence", data={
        "file": (io.BytesIO(demo_pdf("9")), "invoice.pdf"), "line_id": "0"},
        content_type="multipart/form-data")
    attachment = read(app, lambda: db.session.scalars(select(Attachment)).one())
    response = owner.get(f"/settlements/evidence/{attachment.id}")
    assert response.status_code == 200 and response.data == demo_pdf("9")
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    foreign = as_user(app, web.world.b_users[Role.AGENCY_OWNER])
    assert foreign.get(f"/settlements/evidence/{attachment.id}").status_code == 404
    assert foreign.get(f"/settlements/{sid}").status_code == 404
    assert post(owner, f"/settlements/evidence/{attachment.id}/delete", sid,
                app).status_code == 302
    assert read(app, lambda: db.session.scalar(select(func.count(Attachment.id)))) == 0


def test_settlement_forms_carry_the_csrf_token(web, monkeypatch):
    app, sid = web.app, open_claim(web)
    client = as_user(app, web.owner)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    version = settlement_of(app, sid).version
    url = f"/settlements/{sid}/submit"
    assert client.post(url, data={"version": version}).status_code == 400
    page = client.get(f"/settlements/{sid}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post(url, data={"version": version, "csrf_token": token}).status_code == 302
    assert settlement_of(app, sid).status == Status.SUBMITTED


# --- outputs -------------------------------------------------------------------------------------


def test_csv_and_xlsx_exports_of_the_lines(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    csv = owner.get(f"/settlements/{sid}/lines.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    text = csv.get_data(as_text=True)
    assert "Labor fee" in text and "400.00" in text and "80.00" in text
    xlsx = owner.get(f"/settlements/{sid}/lines.csv?format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "No." and len(rows) == 3
    assert sum(float(r[16]) for r in rows[1:]) == 580.0


@pytest.mark.parametrize("locale, words", [("en", ["Settlement statement", "Call-out fee"]),
                                           ("zh_CN", ["结算单", "上门费"])])
def test_the_statement_pdf_in_both_languages(web, locale, words):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    owner.post("/locale", data={"locale": locale})
    response = owner.get(f"/settlements/{sid}/statement.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    number = settlement_of(app, sid).number
    assert number in text
    for word in words:
        assert word in text.replace(" ", "").replace("\n", "") or word in text, word


# --- configuration pages -----------------------------------------------------------------------


def test_hq_admin_creates_a_rate_card_version_and_bad_input_is_refused(web):
    app = web.app
    admin = as_user(app, web.admin)
    page = admin.get("/settlements/rate-cards/new")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    data = {}
    for tag in re.findall(r"<input[^>]+>", body):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and name.group(1).startswith(("fees-", "tier_rates-")):
            data[name.group(1)] = value.group(1) if value else ""
    assert len(data) == 5 + 3 * 7 and data["tier_rates-2"] == "80.00"
    data.update({"effective_from": (web.today + timedelta(days=30)).isoformat(), "note": "2027",
                 "version": ""})
    bad = {**data, "tier_rates-0": "-1"}
    assert admin.post("/settlements/rate-cards/new", data=bad).status_code == 200
    bad = {**data, "fees-0-max_km": "1.00", "fees-0-free_km": "5.00"}
    response = admin.post("/settlements/rate-cards/new", data=bad)
    assert "cap cannot be below" in response.get_data(as_text=True)
    bad = {**data, "fees-1-product_line_id": "987654"}
    response = admin.post("/settlements/rate-cards/new", data=bad)
    assert "every product line" in response.get_data(as_text=True)
    response = admin.post("/settlements/rate-cards/new", data=data)
    assert response.status_code == 302
    card_url = response.headers["Location"]
    assert admin.get(card_url).status_code == 200
    edit = admin.get(card_url + "/edit")
    assert edit.status_code == 200
    same_day = {**data, "effective_from": "2020-01-01"}
    assert "already takes effect" in admin.post(card_url + "/edit", data={
        **same_day, "version": re.search(r'name="version"[^>]*value="(\d+)"',
                                         edit.get_data(as_text=True)).group(1)}
    ).get_data(as_text=True)
    assert as_user(app, web.reviewer).get("/settlements/rate-cards/new").status_code == 403


def test_settings_and_dispositions_forms(web):
    app = web.app
    admin = as_user(app, web.admin)
    assert admin.get("/settlements/configuration").status_code == 200
    good = {"version": "0", "claim_window_days": "45", "duplicate_window_days": "30",
            "uncertified_share_pct": "0", "complaint_deduction": "200.00",
            "evidence_threshold": "500.00", "max_order_hours": "4.00",
            "second_approval_threshold": "20000.00", "grade_a_pct": "5", "grade_b_pct": "0",
            "grade_c_pct": "-3", "grade_d_pct": "-8"}
    for name, value in (("claim_window_days", "0"), ("grade_a_pct", "200"),
                        ("complaint_deduction", "-1"), ("evidence_threshold", "abc"),
                        ("max_order_hours", "1.234")):
        response = admin.post("/settlements/configuration/settings", data={**good, name: value})
        assert response.status_code == 400, name
    assert admin.post("/settlements/configuration/settings", data=good).status_code == 302
    stale = admin.post("/settlements/configuration/settings", data=good)
    assert stale.status_code == 400 and "out of date" in stale.get_data(as_text=True)
    response = admin.post("/settlements/configuration/dispositions",
                          data={"late": "maybe"})
    assert response.status_code == 400
    choices = {code: "review" for code in ("out_of_warranty", "late", "duplicate",
                                           "uncertified_engineer", "distance_over_cap",
                                           "hours_over_standard", "missing_evidence",
                                           "no_rate_card")}
    assert admin.post("/settlements/configuration/dispositions",
                      data=choices).status_code == 302
    reviewer = as_user(app, web.reviewer)
    assert reviewer.get("/settlements/configuration").status_code == 200
    assert reviewer.post("/settlements/configuration/settings", data=good).status_code == 403


def test_delegation_form(web):
    app = web.app
    manager = as_user(app, web.manager)
    assert manager.get("/settlements/delegations").status_code == 200
    response = manager.post("/settlements/delegations", data={
        "delegate_id": str(web.owner.id), "starts_on": web.today.isoformat(),
        "ends_on": web.today.isoformat()})
    assert response.status_code == 400
    response = manager.post("/settlements/delegations", data={
        "delegate_id": str(web.reviewer.id), "starts_on": web.today.isoformat(),
        "ends_on": (web.today - timedelta(days=2)).isoformat()})
    assert response.status_code == 400 and "before the start" in response.get_data(
        as_text=True)
    response = manager.post("/settlements/delegations", data={
        "delegate_id": str(web.reviewer.id), "starts_on": web.today.isoformat(),
        "ends_on": web.today.isoformat(), "note": "holiday"})
    assert response.status_code == 302
    page = as_user(app, web.reviewer).get("/settlements/delegations")
    assert page.status_code == 200 and "active today" in page.get_data(as_text=True)


# --- lists ----------------------------------------------------------------------------------------


def test_lists_and_totals_per_state_region_and_month(web):
    app = web.app
    sid = open_claim(web)
    hq = as_user(app, web.reviewer)
    body = hq.get("/settlements/").get_data(as_text=True)
    assert "Totals per state" in body and "Totals per region" in body
    assert settlement_of(app, sid).number in body
    assert hq.get("/settlements/?status=paid").get_data(as_text=True).count(
        settlement_of(app, sid).number) == 0
    for junk in ("?region=abc", "?period=2026-99", "?sort=-bogus", "?page=-3", "?q=%25"):
        assert hq.get("/settlements/" + junk).status_code == 200
    foreign = as_user(app, web.world.b_users[Role.AGENCY_OWNER])
    assert settlement_of(app, sid).number not in foreign.get("/settlements/").get_data(
        as_text=True)


def test_list_and_page_query_counts_do_not_grow(web, query_counter):
    app, world = web.app, web.world
    sid = open_claim(web)
    hq = as_user(app, web.reviewer)
    with query_counter as few:
        hq.get("/settlements/")
        hq.get(f"/settlements/{sid}")
    with app.app_context(), unscoped("fixture"):
        code = f.repair_code(world.line, "1.00")
        for n in range(6):
            f.order(world.a, world.line, day=web.day - timedelta(days=n + 1), repairs=[code])
            f.order(world.a2, world.line, day=web.day, repairs=[code])
        db.session.commit()
    assert post(as_user(app, web.owner), f"/settlements/{sid}/refresh", sid,
                app).status_code == 302
    as_user(app, web.world.a2_users[Role.AGENCY_OWNER]).post(
        "/settlements/new", data={"period": f"{web.year}-{web.month:02d}"})
    with query_counter as many:
        hq.get("/settlements/")
        hq.get(f"/settlements/{sid}")
    assert len(lines_of(app, sid)) == 8
    assert many.count == few.count
