"""Concurrency and faults on PostgreSQL, through HTTP as two users would meet them.

Two signed-in clients send the same change on two threads and two connections. A barrier
inside the service (right after each request has read the row and passed its own checks)
makes both requests hold the same version at once, so only the database's protection (the
version column, the conditional UPDATE) can decide: exactly one wins, the other gets a clear
message, and money, stock and audit entries change once. Faults: the connection killed
mid-request (pg_terminate_backend from another connection) gives the translated 503 page and
no partial write; a PDF render failure during publication leaves the quarter a draft that a
retry publishes.
"""
import os
import re
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import create_engine, func, select, text

from portal import transitions
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.clock import last_ended_month, local_today
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import make_agency, make_product_line, make_region, make_user
from tests.hostile import _FormParser
from tests.realapp import Site, session_client

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="needs DATABASE_URL pointing at PostgreSQL (.ci/run sets it)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.conftest import answering_grades

    with answering_grades(None):  # grades come from the evaluation area: none here
        made = Site(tmp_path_factory.mktemp("race"), migrate=True, TENANCY_STRICT=False)
        yield made
        made.close()


def _audits(app, action: str, object_id) -> int:
    with app.app_context(), unscoped("count audit entries"):
        return db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action == action, AuditEntry.object_id == str(object_id)))


def _race(monkeypatch, module, name, *sends, parties=None):
    """Run each send() on its own thread; `module.name` waits for all of them once it ran.

    Returns the responses in order.
    """
    barrier = threading.Barrier(parties or len(sends), timeout=30)
    original = getattr(module, name)

    def held(*args, **kwargs):
        result = original(*args, **kwargs)
        barrier.wait()
        return result

    monkeypatch.setattr(module, name, held)
    responses = [None] * len(sends)

    def run(n, send):
        responses[n] = send()

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in enumerate(sends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    monkeypatch.setattr(module, name, original)
    return responses


def _fingerprint(app) -> str:
    """A hash of every row of every table, read as the owner in the 'all' scope."""
    import hashlib

    from sqlalchemy import inspect

    digest = hashlib.sha256()
    engine = create_engine(app.config["MIGRATION_DATABASE_URL"])
    with engine.connect() as conn:
        conn.execute(text("SELECT set_config('portal.scope', 'all', false)"))
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f'SELECT * FROM "{table}" ORDER BY 1')).all()  # noqa: S608
            digest.update(table.encode() + repr(rows).encode())
    engine.dispose()
    return digest.hexdigest()


def _alerts(response) -> list[str]:
    """The error and flash messages of a page, for assertion messages."""
    import re

    body = response.get_data(as_text=True)
    return [re.sub(r"<[^>]+>|\s+", " ", m).strip() for m in re.findall(
        r'class="[^"]*(?:alert|invalid-feedback)[^"]*"[^>]*>(.*?)</div>', body, re.S)]


def _one_winner(responses, winner_status=302):
    statuses = [r.status_code for r in responses]
    assert sorted(s == winner_status for s in statuses) == [False, True], statuses
    return next(r for r in responses if r.status_code == winner_status), \
        next(r for r in responses if r.status_code != winner_status)


# --- settlement: submit, adjust, approve ---------------------------------------------------------


@pytest.fixture(scope="module")
def claim(site):
    """An agency with two owners, two completed orders of last month, a rate card, two HQ
    reviewers and an HQ admin; a draft claim of last month."""
    from settlement import services
    from tests.settlement import factories as f

    with site.app.test_request_context(), unscoped("race fixtures"):
        g._audit_actor = None
        line = make_product_line()
        f.rate_card([line], effective=date(2000, 1, 1))
        agency = make_agency(make_region(), product_lines=[line])
        people = {"owner": make_user(Role.AGENCY_OWNER, agency=agency),
                  "owner2": make_user(Role.AGENCY_OWNER, agency=agency),
                  "reviewer": make_user(Role.HQ_SETTLEMENT),
                  "reviewer2": make_user(Role.HQ_SETTLEMENT),
                  "reviewer3": make_user(Role.HQ_SETTLEMENT),
                  "admin": make_user(Role.HQ_ADMIN)}
        last = date(*last_ended_month(), 1)
        code = f.repair_code(line, "1.00")
        for day in (3, 4):
            f.order(agency, line, day=last.replace(day=day), repairs=[code],
                    service_type="carry_in")
        settlement = services.open_settlement(agency, last.year, last.month,
                                              acting_user=people["owner"])
        db.session.commit()
        return {"id": settlement.id, "agency": agency.id, "line": line.id,
                "people": {k: u.id for k, u in people.items()}}


def _settlement(app, settlement_id):
    from settlement.models import Settlement, SettlementLine

    with app.app_context(), unscoped("read the settlement back"):
        s = db.session.scalars(select(Settlement).where(Settlement.id == settlement_id)).one()
        lines = db.session.scalars(select(SettlementLine).where(
            SettlementLine.settlement_id == settlement_id).order_by(SettlementLine.id)).all()
        db.session.expunge_all()
        return s, lines


def test_settlement_submit_adjust_and_approve_races_change_money_once(site, claim, monkeypatch,
                                                                        capsys):

    app, sid, people = site.app, claim["id"], claim["people"]
    clients = {k: session_client(app, v) for k, v in people.items()}
    cases = 0

    # 1. two owners submit the same draft at once
    s, _lines = _settlement(app, sid)
    responses = _race(monkeypatch, transitions, "check_version",
                      lambda: clients["owner"].post(f"/settlements/{sid}/submit",
                                                    data={"version": s.version}),
                      lambda: clients["owner2"].post(f"/settlements/{sid}/submit",
                                                     data={"version": s.version}))
    cases += 2
    _won, lost = _one_winner(responses)
    assert lost.status_code == 400, _alerts(lost)
    assert b"Someone else changed this record meanwhile" in lost.data, _alerts(lost)
    s, lines = _settlement(app, sid)
    assert s.status == "submitted" and s.submission_count == 1
    assert _audits(app, "settlement.submitted", sid) == 1

    # 2. two reviewers adjust the same line to different amounts at once
    line = lines[0]
    amounts = [str((line.claimed_amount * Decimal(p)).quantize(Decimal("0.01")))
               for p in ("0.5", "0.8")]

    def adjust(who, amount):
        return lambda: clients[who].post(f"/settlements/lines/{line.id}/decide", data={
            "version": s.version, "decision": "adjusted", "amount": amount,
            "reason_code": "rate_mismatch", "reason_text": f"adjusted by {who}"})

    responses = _race(monkeypatch, transitions, "check_version",
                      adjust("reviewer", amounts[0]), adjust("reviewer2", amounts[1]))
    cases += 2
    _won, lost = _one_winner(responses)
    assert b"Someone else changed this record meanwhile" in lost.data, _alerts(lost)
    s, lines = _settlement(app, sid)
    assert str(lines[0].approved_amount) in amounts
    assert _audits(app, "settlement.line_decided", sid) == 1
    winner = "reviewer" if lines[0].reason_text == "adjusted by reviewer" else "reviewer2"
    other = "reviewer2" if winner == "reviewer" else "reviewer"
    # the other line approved by the same reviewer: the other one may approve (four eyes)
    response = clients[winner].post(f"/settlements/lines/{lines[1].id}/decide",
                                    data={"version": s.version, "decision": "approved"})
    assert response.status_code == 302, response.data[:300]
    s, lines = _settlement(app, sid)
    assert s.approved_total == sum(ln.approved_amount for ln in lines)

    # 3. two reviewers who changed no line approve the same version at once
    responses = _race(monkeypatch, transitions, "check_version",
                      lambda: clients[other].post(f"/settlements/{sid}/approve",
                                                  data={"version": s.version}),
                      lambda: clients["reviewer3"].post(f"/settlements/{sid}/approve",
                                                        data={"version": s.version}))
    cases += 2
    _won, lost = _one_winner(responses)
    assert b"Someone else changed this record meanwhile" in lost.data, _alerts(lost)
    approved, lines = _settlement(app, sid)
    assert approved.status == "approved"
    assert approved.approved_total == s.approved_total == sum(ln.approved_amount
                                                               for ln in lines)
    assert _audits(app, "settlement.approved", sid) == 1
    with capsys.disabled():
        print(f"\nsettlement races: {cases} racing requests in 3 races, one winner each")


# --- parts: two shipments of one request ----------------------------------------------------------


def test_two_shipments_of_one_parts_request_ship_once(site, monkeypatch):
    from service import supply
    from tests.service.factories import make_request

    app = site.app
    with app.test_request_context(), unscoped("race fixtures"):
        g._audit_actor = None
        line = make_product_line()
        agency = make_agency(make_region(), product_lines=[line])
        request_id = make_request(agency, line, quantity=4, state="approved").id
        desks = [make_user(Role.HQ_PARTS).id, make_user(Role.HQ_PARTS).id]
        db.session.commit()
    first, second = (session_client(app, d) for d in desks)
    responses = _race(monkeypatch, supply, "_shipment",
                      lambda: first.post(f"/service/parts-requests/{request_id}/ship",
                                         data={"carrier": "顺丰", "tracking_number": "SF-ONE"}),
                      lambda: second.post(f"/service/parts-requests/{request_id}/ship",
                                          data={"carrier": "EMS", "tracking_number": "EMS-TWO"}))
    _won, lost = _one_winner(responses)
    assert lost.status_code == 422
    assert b"Someone else changed this record meanwhile" in lost.data \
        or b"already shipped" in lost.data
    from service.models import PartsRequest

    with app.app_context(), unscoped("read back"):
        shipped = db.session.scalars(select(PartsRequest).where(
            PartsRequest.id == request_id)).one()
        assert shipped.status == "shipped" and shipped.tracking_number in ("SF-ONE", "EMS-TWO")
    assert _audits(app, "parts_request.shipped", request_id) == 1


# --- certification: two score sheets for one exam -------------------------------------------------


def test_two_score_sheets_for_one_exam_issue_certificates_once(site, monkeypatch):
    from certification import exams
    from certification.models import Certificate
    from tests.certification import factories as cf

    app = site.app
    with app.test_request_context(), unscoped("race fixtures"):
        g._audit_actor = None
        line = make_product_line()
        agency = make_agency(make_region(), product_lines=[line])
        program = cf.get_program(line, 1)
        session = cf.make_session(program, exam_date=local_today() - timedelta(days=1))
        for _n in range(3):
            cf.make_seat(session, cf.make_engineer(agency, lines=[line]))
        session_id, program_id = session.id, program.id
        certifiers = [make_user(Role.HQ_CERTIFIER).id, make_user(Role.HQ_CERTIFIER).id]
        db.session.commit()
    clients = [session_client(app, c) for c in certifiers]
    sheet = clients[0].get(f"/certification/sessions/{session_id}/scores")
    parser = _FormParser(f"/certification/sessions/{session_id}/scores")
    parser.feed(sheet.get_data(as_text=True))
    form = next(f for f in parser.forms if any(k.endswith("theory") for k in f.fields))
    data = {k: ("90" if k.endswith(("theory", "practical")) else v)
            for k, v in form.fields.items()}
    data = {k: v for k, v in data.items() if not k.endswith("absent")}

    # Both certifiers confirm the same checked sheet (the first submit only summarises it).
    summary = clients[0].post(f"/certification/sessions/{session_id}/scores", data=data)
    data["confirm"] = re.search(r'name="confirm" value="([0-9a-f]+)"',
                                summary.get_data(as_text=True)).group(1)

    def send(client):
        return lambda: client.post(f"/certification/sessions/{session_id}/scores", data=data)

    responses = _race(monkeypatch, exams, "check_score_rows", *(send(c) for c in clients))
    won, lost = _one_winner(responses)
    assert b"already recorded" in lost.data, lost.data[:2000]
    with app.app_context(), unscoped("read back"):
        issued = db.session.scalar(select(func.count(Certificate.id)).where(
            Certificate.program_id == program_id))
    assert issued == 3
    assert _audits(app, "exam_session.scored", session_id) == 1


# --- faults ---------------------------------------------------------------------------------------


def test_a_connection_killed_mid_request_shows_the_503_page_and_writes_nothing(site, claim,
                                                                               monkeypatch):
    """The owner submits a fresh claim; after the service's first writes its connection is
    terminated from another connection. The page says so in Chinese; nothing was saved."""
    from settlement import services
    from settlement.models import Settlement

    app = site.app
    with app.test_request_context(), unscoped("a fresh draft"):
        g._audit_actor = None
        from tenants.models import Agency, ProductLine
        from tests.settlement import factories as f

        agency = db.session.scalars(select(Agency).where(Agency.id == claim["agency"])).one()
        line = db.session.scalars(select(ProductLine).where(
            ProductLine.id == claim["line"])).one()
        earlier = local_today().replace(day=1) - timedelta(days=70)
        f.order(agency, line, day=earlier.replace(day=5), repairs=[f.repair_code(line)],
                service_type="carry_in")
        from portal.auth.models import User

        owner = db.session.scalars(select(User).where(
            User.id == claim["people"]["owner"])).one()
        draft = services.open_settlement(agency, earlier.year, earlier.month,
                                         acting_user=owner)
        db.session.commit()
        sid, version = draft.id, draft.version
    audits_before = _audits(app, "settlement.submitted", sid)
    client = session_client(app, claim["people"]["owner"])
    client.post("/locale", data={"locale": "zh_CN"})
    before = _fingerprint(app)
    killer = create_engine(app.config["MIGRATION_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    original = services.auto_decide
    killed = []

    def decide_then_lose_the_connection(*args, **kwargs):
        original(*args, **kwargs)
        db.session.flush()  # the request has written: the kill must undo it all
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with killer.connect() as conn:
            killed.append(conn.execute(text("SELECT pg_terminate_backend(:pid)"),
                                       {"pid": pid}).scalar())

    monkeypatch.setattr(services, "auto_decide", decide_then_lose_the_connection)
    response = client.post(f"/settlements/{sid}/submit", data={"version": version})
    monkeypatch.setattr(services, "auto_decide", original)
    killer.dispose()
    assert killed == [True]
    assert response.status_code == 503
    assert "数据库暂时无法连接" in response.get_data(as_text=True)
    with app.app_context(), unscoped("read back"):
        s = db.session.scalars(select(Settlement).where(Settlement.id == sid)).one()
        assert s.status == "draft" and s.version == version and s.submission_count == 0
    assert _audits(app, "settlement.submitted", sid) == audits_before == 0
    assert _fingerprint(app) == before, "the killed request left a partial write"
    # and the portal goes on: the same request now succeeds on a fresh connection
    assert client.post(f"/settlements/{sid}/submit",
                       data={"version": version}).status_code == 302


def test_a_pdf_failure_during_publication_leaves_the_quarter_unpublished_and_retryable(
        tmp_path, monkeypatch):
    """HQ publishes through the page; the third report fails to render. The job page says it
    failed, the quarter is still a draft with no report, and Retry publishes it."""
    from evaluation import reports
    from evaluation.models import Quarter, Report, Result
    from tests.evaluation import factories as ef
    from tests.evaluation.test_compute import build_worked_example
    from tests.factories import build_world

    site = Site(tmp_path / "publish", migrate=True, TENANCY_STRICT=False)
    try:
        app = site.app
        with app.test_request_context(), unscoped("a computed quarter"):
            g._audit_actor = None
            world = build_world()
            with unscoped("the worked example"):
                build_worked_example(world)
                quarter = ef.computed()
                service_user = world.user(Role.HQ_SERVICE).id
                quarter_id, seen = quarter.id, quarter.version
            db.session.commit()
        calls, real = [], reports.render_report

        def flaky(figures, locale):
            calls.append(locale)
            if len(calls) == 3:
                raise RuntimeError("font missing")
            return real(figures, locale)

        monkeypatch.setattr(reports, "render_report", flaky)
        client = session_client(app, service_user)
        started = client.post(f"/evaluation/quarters/{quarter_id}/publish",
                              data={"seen_version": seen})
        assert started.status_code == 302 and "/jobs/" in started.headers["Location"]
        job_page = client.get(started.headers["Location"])
        assert job_page.status_code == 200 and b"font missing" in job_page.data

        def state():
            with app.app_context(), unscoped("read back"):
                return (db.session.scalar(select(Quarter.status).where(
                    Quarter.id == quarter_id)),
                    db.session.scalar(select(func.count(Report.id))),
                    set(db.session.scalars(select(Result.status).where(
                        Result.quarter_id == quarter_id))))

        assert state() == ("draft", 0, {"draft"})
        monkeypatch.setattr(reports, "render_report", real)
        retried = client.post(started.headers["Location"].rstrip("/") + "/retry")
        assert retried.status_code == 302
        status, count, results = state()
        assert status == "published" and count > 0 and results == {"published"}
    finally:
        site.close()
