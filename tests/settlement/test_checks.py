"""The automatic checks through the database: every exception code, the dispositions HQ
configures, the network-wide duplicate check, and evidence files judged by their content."""
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.errors_domain import DomainError
from portal.extensions import db
from settlement import config, evidence, review, rules, services
from settlement.demo import demo_pdf, demo_png
from settlement.models import Decision, LineKind, Status

D = Decimal


def only_line(s):
    return next(ln for ln in s.lines if ln.kind == LineKind.ORDER)


def test_duplicate_serial_and_repair_code_is_found_across_the_network(stl):
    code = stl.code()
    stl.order(agency=stl.world.b, repairs=[code], serial="SN-SHARED-1",
              day=stl.day - timedelta(days=3))
    stl.open(agency=stl.world.b)  # agency B already claims it
    stl.order(repairs=[code], serial="SN-SHARED-1")
    s = stl.open()
    line = only_line(s)
    assert line.codes == [rules.DUPLICATE] and line.disposition == "review"
    assert rules.visible_codes(line.codes, is_hq=False) == []


def test_no_duplicate_outside_the_window_or_with_another_code(stl):
    code, other = stl.code(), stl.code()
    stl.order(agency=stl.world.b, repairs=[code], serial="SN-SHARED-2",
              day=stl.day - timedelta(days=31))
    stl.open(agency=stl.world.b, year=(stl.day - timedelta(days=31)).year,
             month=(stl.day - timedelta(days=31)).month)
    stl.order(repairs=[code], serial="SN-SHARED-2")
    stl.order(repairs=[other], serial="SN-SHARED-3")
    stl.order(agency=stl.world.b, repairs=[code], serial="SN-SHARED-3",
              day=stl.day - timedelta(days=1))  # same serial, other repair code; unclaimed
    s = stl.open()
    assert all(rules.DUPLICATE not in ln.codes for ln in s.lines)


def test_missing_evidence_clears_when_a_file_is_added(stl):
    stl.order(repairs=[stl.code("3.00")], distance="40.00")  # 50 + 240 + 45 = 335
    with stl.fixture():
        card = config.rate_card_in_force(stl.day)
    s = stl.open()
    assert only_line(s).claimed_amount == D("335.00") and only_line(s).codes == []
    with stl.hq():
        data = {n: getattr(config.current_settings(), n) for n in config.SETTING_NAMES}
        config.save_settings(config.settings_record(), {**data, "evidence_threshold": D("300.00")},
                             acting_user=stl.admin, seen_version=0)
    with stl.agency():
        services.refresh_settlement(s, acting_user=stl.owner, seen_version=s.version,
                                    today=stl.today)
        line = only_line(s)
        assert line.codes == [rules.MISSING_EVIDENCE]
        evidence.add_attachment(s, line, "invoice.pdf", demo_pdf("x"), acting_user=stl.owner,
                                today=stl.today)
        assert line.codes == []
    assert card is not None


def test_a_deny_disposition_denies_at_submission_and_evidence_undoes_it(stl):
    stl.order(repairs=[stl.code("8.00")], service_type="carry_in")  # 690.00 > 500, 8 h > 4
    with stl.hq():
        config.save_dispositions({rules.MISSING_EVIDENCE: "deny"},
                                 acting_user=stl.admin)
        assert config.current_dispositions()[rules.MISSING_EVIDENCE] == "deny"
        (entry,) = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "settlement.dispositions_changed")).all()
        # One entry about the whole table, with what changed.
        assert (entry.object_type, entry.object_id, entry.actor_id) == (
            "ExceptionDisposition", "all", stl.admin.id)
        assert entry.after == {rules.MISSING_EVIDENCE: "deny"}
        with pytest.raises(DomainError, match="pay, review or deny"):
            config.save_dispositions({rules.LATE: "maybe"},
                                     acting_user=stl.admin)
    s = stl.open()
    line = only_line(s)
    assert set(line.codes) == {rules.HOURS_OVER_STANDARD, rules.MISSING_EVIDENCE}
    assert line.disposition == "deny"
    stl.submit(s)
    assert (line.decision, line.reason_code) == (Decision.DENIED, "insufficient_evidence")
    stl.forward(s)
    with stl.hq():
        review.return_settlement(s, "Add the invoice, please.", acting_user=stl.reviewer,
                                 seen_version=s.version)
    with stl.agency():
        evidence.add_attachment(s, line, "invoice.pdf", demo_pdf("x"), acting_user=stl.owner,
                                today=stl.today)
    stl.submit(s)
    assert line.decision == Decision.PENDING and line.disposition == "review"


def test_a_reviewers_denial_is_not_undone_by_resubmission(stl):
    stl.order(repairs=[stl.code("1.00")], service_type="carry_in")
    s = stl.open()
    stl.submit(s)
    stl.forward(s)
    with stl.hq():
        review.decide_line(s, only_line(s), "denied", acting_user=stl.reviewer,
                           seen_version=s.version, reason_code="duplicate")
        review.return_settlement(s, "Please explain line 1.", acting_user=stl.reviewer,
                                 seen_version=s.version)
    stl.submit(s)
    assert only_line(s).decision == Decision.DENIED


def test_uncertified_distance_and_hours_codes(stl):
    stl.order(repairs=[stl.code("4.50")], certified=False, distance="75.00")
    line = only_line(stl.open())
    assert line.codes == [rules.UNCERTIFIED, rules.DISTANCE_OVER_CAP, rules.HOURS_OVER_STANDARD]
    assert line.disposition == "review"


# --- evidence files ------------------------------------------------------------------------------


@pytest.fixture
def draft(stl):
    stl.order(repairs=[stl.code()])
    return stl.open()


@pytest.mark.parametrize("name, data, message", [
    ("empty.pdf", b"", "Choose a file"),
    ("script.pdf", b"#!/bin/sh\nrm -rf /\n", "judged by their content"),
    ("page.png", b"<html><script>alert(1)</script></html>", "judged by their content"),
    ("fake.jpg", b"GIF89a" + b"\x00" * 20, "judged by their content"),
])
def test_bad_files_are_refused_by_content(stl, draft, name, data, message):
    with stl.agency(), pytest.raises(DomainError, match=message):
        evidence.add_attachment(draft, None, name, data, acting_user=stl.owner)


def test_a_file_too_large_is_refused(stl, draft, monkeypatch):
    monkeypatch.setitem(current_app.config, "SETTLEMENT_MAX_ATTACHMENT_BYTES", 1024)
    with stl.agency(), pytest.raises(DomainError, match="larger than"):
        evidence.add_attachment(draft, None, "big.pdf", b"%PDF-" + b"0" * 2000,
                                acting_user=stl.owner)


def test_the_content_decides_the_type_and_the_name_is_generated(stl, draft):
    with stl.agency():
        a = evidence.add_attachment(draft, None, "../../etc/photo.pdf", demo_png(2),
                                    acting_user=stl.owner)
    assert a.content_type == "image/png" and a.original_name == "photo.pdf.png"
    path = evidence.file_path(a)
    assert path.read_bytes() == demo_png(2)
    assert path.name == a.stored_name and "photo" not in path.name
    root = Path(current_app.config["UPLOAD_ROOT"]).resolve()
    assert path.resolve().is_relative_to(root)
    static = Path(current_app.static_folder).resolve()
    assert not path.resolve().is_relative_to(static)


def test_evidence_only_while_the_agency_may_edit(stl, draft):
    stl.submit(draft)
    with stl.agency(), pytest.raises(DomainError, match="Not possible"):
        evidence.add_attachment(draft, None, "late.pdf", demo_pdf("x"), acting_user=stl.owner)
    assert draft.status == Status.SUBMITTED


def test_a_line_with_evidence_is_not_removed_until_the_file_is(stl, draft):
    line = only_line(draft)
    with stl.agency():
        a = evidence.add_attachment(draft, line, "photo.png", demo_png(1), acting_user=stl.owner)
        with pytest.raises(DomainError, match="evidence first"):
            services.remove_line(draft, line, acting_user=stl.owner, seen_version=draft.version)
        path = evidence.delete_attachment(draft, a, acting_user=stl.owner)
        services.remove_line(draft, line, acting_user=stl.owner, seen_version=draft.version)
    assert path.exists()  # the view removes the file once the deletion is committed


# --- each exception code, and the disposition HQ admin gives it ------------------------------


def _line_raising(stl, code):
    """A draft whose one order line raises `code` and nothing else."""
    if code == rules.OUT_OF_WARRANTY:
        stl.order(repairs=[stl.code()])
        out = stl.order(repairs=[stl.code()], in_warranty=False)
        s = stl.open()
        with stl.agency():
            services.remove_line(s, only_line(s), acting_user=stl.owner, seen_version=s.version,
                                 today=stl.today)
            services.add_order(s, out.number, acting_user=stl.owner, seen_version=s.version,
                               today=stl.today)
            db.session.expire(s, ["lines"])
            assert len(s.lines) == 1
        return s
    if code == rules.LATE:
        old = stl.today - timedelta(days=75)
        stl.order(day=old, repairs=[stl.code()])
        return stl.open(year=old.year, month=old.month)
    if code == rules.DUPLICATE:
        repair = stl.code()
        stl.order(agency=stl.world.b, repairs=[repair], serial="SN-DISPO-1")
        stl.open(agency=stl.world.b)
        stl.order(repairs=[repair], serial="SN-DISPO-1")
        return stl.open()
    if code == rules.NO_RATE_CARD:
        from tests.factories import make_product_line

        with stl.fixture():
            line = make_product_line()  # no fees in the rate card for it
        stl.order(repairs=[stl.code()], line=line)
        return stl.open()
    if code == rules.MISSING_EVIDENCE:
        with stl.hq():
            data = {n: getattr(config.current_settings(), n) for n in config.SETTING_NAMES}
            config.save_settings(config.settings_record(),
                                 {**data, "evidence_threshold": D("100.00")}, acting_user=stl.admin,
                                 seen_version=config.settings_version())
        stl.order(repairs=[stl.code()])  # 50 + 120 + 3 = 173.00 > 100.00, no file
        return stl.open()
    facts = {rules.UNCERTIFIED: {"certified": False},
             rules.DISTANCE_OVER_CAP: {"distance": "95.00"},
             rules.HOURS_OVER_STANDARD: {"repairs": [stl.code("4.50")]}}[code]
    stl.order(**{"repairs": [stl.code()], **facts})
    return stl.open()


@pytest.mark.parametrize("code", rules.EXCEPTION_CODES)
def test_each_exception_code_takes_the_disposition_hq_admin_configures(stl, code):
    s = _line_raising(stl, code)
    line = only_line(s)
    assert line.codes == [code]
    assert line.disposition == rules.DEFAULT_DISPOSITIONS[code]
    for disposition in ("pay", "review", "deny"):
        with stl.hq():
            config.save_dispositions({code: disposition},
                                     acting_user=stl.admin)
        with stl.agency():
            services.refresh_settlement(s, acting_user=stl.owner, seen_version=s.version,
                                        today=stl.today)
        assert (line.codes, line.disposition) == ([code], disposition), disposition
    stl.submit(s)  # deny: refused at submission, with the reason the agency reads
    assert (line.decision, line.approved_amount) == (Decision.DENIED, D("0.00"))
    assert (line.reason_code, line.reason_text) == (rules.AUTO_DENY_REASONS[code], code)
    assert line.reason_code in rules.REASON_LABELS


@pytest.mark.parametrize("disposition, bulk", [("pay", True), ("review", False)])
def test_pay_lines_are_approved_in_bulk_review_lines_are_not(stl, disposition, bulk):
    with stl.hq():
        config.save_dispositions({rules.UNCERTIFIED: disposition},
                                 acting_user=stl.admin)
    stl.order(repairs=[stl.code()], certified=False)
    s = stl.open()
    stl.submit(s)
    stl.forward(s)
    line = only_line(s)
    assert line.decision == Decision.PENDING
    with stl.hq():
        if bulk:
            assert review.approve_clean_lines(s, acting_user=stl.reviewer,
                                              seen_version=s.version) == 1
            assert line.decision == Decision.APPROVED
        else:
            with pytest.raises(DomainError, match="No pending line without exceptions"):
                review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
            assert line.decision == Decision.PENDING


# --- the claim window is judged on the day a line first went to HQ ------------------------------


def test_a_claim_returned_and_submitted_again_after_the_window_keeps_its_lines(stl):
    served = stl.today - timedelta(days=50)
    stl.order(day=served, repairs=[stl.code()])
    s = stl.open(year=served.year, month=served.month)
    stl.submit(s)  # day 50 of 60: on time
    line = only_line(s)
    assert line.first_submitted_on == stl.today and line.codes == []
    stl.forward(s)
    with stl.hq():
        review.return_settlement(s, "Add the invoice, please.", acting_user=stl.reviewer,
                                 seen_version=s.version)
    late = stl.order(day=served, repairs=[stl.code()], in_warranty=True)
    with stl.agency():  # an order added now is judged when the claim goes back to HQ
        added = services.add_order(s, late.number, acting_user=stl.owner, seen_version=s.version,
                                   today=stl.today + timedelta(days=20))
    stl.submit(s, today=stl.today + timedelta(days=20))  # day 70
    assert line.first_submitted_on == stl.today
    assert (line.codes, line.decision) == ([], Decision.PENDING)
    assert added.first_submitted_on == stl.today + timedelta(days=20)
    assert added.codes == [rules.LATE] and added.decision == Decision.DENIED


def test_evidence_jpeg_is_accepted_and_the_same_file_twice_is_refused(stl, draft):
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
    with stl.agency():
        a = evidence.add_attachment(draft, None, "photo.jpeg", jpeg, acting_user=stl.owner)
        assert (a.content_type, a.original_name) == ("image/jpeg", "photo.jpeg.jpg")
        with pytest.raises(DomainError, match="already attached"):
            evidence.add_attachment(draft, only_line(draft), "again.jpg", jpeg,
                                    acting_user=stl.owner)
    assert evidence.file_path(a).read_bytes() == jpeg
