"""Every form the roles can reach, sent hostile values: never a 500, never a write on refusal.

The forms are discovered by crawling the app as each role (tests/hostile.py), so a form added
later is covered without anyone remembering. Values come from a fixed list of classic
attacks and mistakes and from Hypothesis.
"""
import hashlib
import html
import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import sign_in
from tests.hostile import HOSTILE_CHOICES, HOSTILE_TEXT, crawl

PER_FIELD = 6
ROLES = [Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.HQ_CERTIFIER,
         Role.HQ_SETTLEMENT, Role.HQ_PARTS, Role.HQ_SERVICE, Role.REGIONAL_MANAGER]
START = ["/", "/agencies/", "/users/", "/network/reference", "/my-agency"]


def _fingerprint(app) -> str:
    digest = hashlib.sha256()
    with app.app_context(), unscoped("compare the whole database before and after"):
        for table in sorted(inspect(db.engine).get_table_names()):
            if table == "audit_entries":
                continue  # sign-in entries; any real write also changes its own table
            query = text(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608 - schema names
            digest.update(table.encode() + repr(db.session.execute(query).all()).encode())
        db.session.commit()
    return digest.hexdigest()


class Tally:
    def __init__(self):
        self.forms = self.fields = self.cases = self.errors_shown = 0
        self.failures: list[str] = []


CJK = re.compile(r"[\u4e00-\u9fff]")
ERROR_BLOCKS = re.compile(
    r'class="[^"]*(?:invalid-feedback|alert-danger|text-danger)[^"]*"[^>]*>(.*?)</', re.S)


def untranslated_errors(body: str) -> list[str]:
    """Error messages of a page (read in Chinese) that carry English words and no Chinese."""
    found = []
    for raw in ERROR_BLOCKS.findall(body):
        message = html.unescape(re.sub(r"<[^>]+>", " ", raw)).strip()
        if message and re.search(r"[A-Za-z]{3,}", message) and not CJK.search(message):
            found.append(message[:120])
    return found


def chinese_client(app):
    """A test client whose browser asks for Chinese: every error must come in Chinese."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9"
    return client


def _submit(app, client, form, data, tally, label, before, **kwargs):
    """Send one case; a refused request must leave the database as `before` describes and
    explain itself in the reader's language."""
    response = client.post(form.action, data=data, follow_redirects=False, **kwargs)
    tally.cases += 1
    where = f"{form.action} [{label}]"
    # A change answers with a redirect, or 201 with what it made (a token, shown once).
    made = response.status_code in (201, 302)
    if response.status_code >= 500:
        tally.failures.append(f"{where}: {response.status_code}")
    elif not made and _fingerprint(app) != before:
        tally.failures.append(f"{where}: refused ({response.status_code}) but wrote")
    if not made and response.mimetype == "text/html":
        body = response.get_data(as_text=True)
        tally.errors_shown += len(ERROR_BLOCKS.findall(body))
        english = untranslated_errors(body)
        if english:
            tally.failures.append(f"{where}: error not translated: {english[:2]}")
    return response


def _cases_for(form, foreign_ids):
    """(label, data) pairs: empty, one hostile field at a time, foreign ids."""
    base = dict(form.fields)
    yield "empty", {}
    for n, name in enumerate(sorted(set(form.fields) | set(form.choices))):
        if name == "csrf_token":
            continue
        if name in form.choices:
            values = HOSTILE_CHOICES
        else:
            # Every field gets the worst three and a rotating share of the rest, so that the
            # whole list is spread over each form without sending all of it to every field.
            rest = HOSTILE_TEXT[3:]
            start = (n * PER_FIELD) % len(rest)
            values = HOSTILE_TEXT[:3] + (rest + rest)[start:start + PER_FIELD]
        for value in values:
            yield f"{name}={value[:12]!r}", {**base, name: value}
        for ident in foreign_ids:
            yield f"{name}=foreign {ident}", {**base, name: str(ident)}


def _attack(app, connection, client, user, form, foreign_ids, tally, label):
    sign_in(client, user)
    connection.exec_driver_sql("SAVEPOINT hostile_form")
    before = _fingerprint(app)
    for case, data in _cases_for(form, foreign_ids):
        response = _submit(app, client, form, data, tally, f"{label} {case}", before)
        if response.status_code in (201, 302):
            # accepted: undo it, and sign in again in case it touched the session
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_form")
            sign_in(client, user)
            connection.exec_driver_sql("RELEASE SAVEPOINT hostile_form")
            connection.exec_driver_sql("SAVEPOINT hostile_form")
            before = _fingerprint(app)
    connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_form")
    connection.exec_driver_sql("RELEASE SAVEPOINT hostile_form")


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_every_form_survives_hostile_input(app, _transaction, world, capsys, role):
    tally = Tally()
    foreign_ids = sorted({world.b.id, world.b_users[Role.AGENCY_STAFF].id, 987654321})
    client = chinese_client(app)
    user = world.user(role)
    sign_in(client, user)
    forms, _pages = crawl(client, START)
    for form in forms:
        tally.forms += 1
        tally.fields += len((set(form.fields) | set(form.choices)) - {"csrf_token"})
        _attack(app, _transaction, client, user, form, foreign_ids, tally, role.value)
    with capsys.disabled():
        print(f"\nhostile input as {role.value}: {tally.forms} forms, {tally.fields} fields, "
              f"{tally.cases} cases, {tally.errors_shown} errors shown (in Chinese), "
              f"{len(tally.failures)} failures")
    assert not tally.failures, "\n".join(tally.failures[:40])


text_values = st.one_of(st.text(max_size=300), st.sampled_from(HOSTILE_TEXT),
                        st.integers(min_value=-10**12, max_value=10**12).map(str),
                        st.dates().map(str))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_values_never_break_a_form(app, _transaction, world, data):
    client = chinese_client(app)
    role = data.draw(st.sampled_from(ROLES))
    sign_in(client, world.user(role))
    forms, _pages = crawl(client, START, max_pages=40)
    if not forms:
        return
    form = data.draw(st.sampled_from(forms))
    names = sorted(set(form.fields) | set(form.choices))
    values = {n: data.draw(text_values) for n in names if data.draw(st.booleans())}
    tally = Tally()
    _transaction.exec_driver_sql("SAVEPOINT hostile_case")
    _submit(app, client, form, {**form.fields, **values}, tally, "hypothesis",
            _fingerprint(app))
    _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_case")
    _transaction.exec_driver_sql("RELEASE SAVEPOINT hostile_case")
    assert not tally.failures, tally.failures


def _audit_count(app) -> int:
    from sqlalchemy import func, select

    from portal.audit.models import AuditEntry

    with app.app_context(), unscoped("count audit entries"):
        return db.session.scalar(select(func.count(AuditEntry.id)))


def test_an_accepted_form_writes_exactly_one_audit_entry(app, _transaction, world, capsys):
    """Forms sent as the page renders them (edit forms come filled in): when the portal
    accepts one, exactly one audit entry records the change."""
    accepted, problems = 0, []
    for role in ROLES:
        client = app.test_client()
        sign_in(client, world.user(role))
        forms, _pages = crawl(client, START)
        for form in forms:
            _transaction.exec_driver_sql("SAVEPOINT audit_case")
            sign_in(client, world.user(role))
            before = _audit_count(app)
            response = client.post(form.action, data=form.fields)
            if response.status_code == 302 and "/auth/" not in form.action:
                accepted += 1
                written = _audit_count(app) - before
                if written != 1:
                    problems.append(f"{role.value} {form.action}: {written} audit entries")
            _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT audit_case")
            _transaction.exec_driver_sql("RELEASE SAVEPOINT audit_case")
    with capsys.disabled():
        print(f"\naudit completeness: {accepted} accepted forms, {len(problems)} problems")
    assert not problems, "\n".join(problems)


# --- uploads -----------------------------------------------------------------------------------


def _pdf() -> bytes:
    from settlement.demo import demo_pdf

    return demo_pdf("hostile")


def _zip_bomb(*, lie: bool = False) -> bytes:
    """An "XLSX" whose worksheet unpacks to 100 MB from a few hundred KB; with `lie` its
    headers claim a tiny size."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            row = b"<row><c t='inlineStr'><is><t>x</t></is></c></row>" * 1000
            for _n in range(100 * 1024 * 1024 // len(row)):
                sheet.write(row)
    data = bytearray(out.getvalue())
    if lie:  # claim 1 KB in the local and central headers of the worksheet
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.find(signature, 40)
            if at > 0 and data[at + offset:at + offset + 4] == b"\xff\xff\xff\xff":
                continue  # zip64 keeps the real size elsewhere: leave it
            if at > 0:
                data[at + offset:at + offset + 4] = (1024).to_bytes(4, "little")
    return bytes(data)


def hostile_files():
    """(label, file name, bytes): types lying about themselves, bombs, path tricks."""
    pdf = _pdf()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    return [
        ("html renamed .pdf", "invoice.pdf", b"<html><script>alert(1)</script></html>"),
        ("exe renamed .png", "photo.png", b"MZ\x90\x00\x03" + b"\x00" * 200),
        ("pdf renamed .xlsx", "orders.xlsx", pdf),
        ("zip bomb as .xlsx", "orders.xlsx", _zip_bomb()),
        ("zip bomb with lying headers", "orders.xlsx", _zip_bomb(lie=True)),
        ("empty file", "empty.pdf", b""),
        ("path traversal name", "../../../../etc/passwd.pdf", pdf),
        ("windows traversal name", "..\\..\\windows\\win.ini.png", png),
        ("absolute name", "/etc/cron.d/portal.csv", b"number,customer\nWO1,x\n"),
        ("NUL in name", "in\x00voice.pdf", pdf),
        ("formula CSV", "orders.csv", b"=cmd|' /C calc'!A0,+1,-1,@SUM(1)\n=1+1,2,3,4\n"),
        ("GBK CSV", "orders.csv", "工单号,客户姓名\n<script>,张三\n".encode("gb18030")),
        ("NUL CSV", "orders.csv", b"number,customer\x00\nWO1,x\n"),
        ("broken quotes CSV", "orders.csv", b'number,"customer\nWO1,"x\n"",,\n'),
        ("binary junk", "junk.csv", bytes(range(256)) * 8),
    ]


@pytest.fixture
def draft_claim(app, _transaction, world):
    """A draft settlement of agency A, so that its evidence upload form is reachable."""
    from datetime import date, timedelta

    from flask import g

    from portal.clock import local_today
    from settlement import services
    from tests.conftest import answering_grades
    from tests.settlement import factories as f

    with app.test_request_context(), unscoped("a draft claim of agency A"), \
            answering_grades(None):
        g._audit_actor = None
        f.rate_card([world.line], effective=date(2000, 1, 1))
        last = local_today().replace(day=1) - timedelta(days=1)
        f.order(world.a, world.line, day=last.replace(day=5),
                repairs=[f.repair_code(world.line)], service_type="carry_in")
        settlement = services.open_settlement(
            world.a, last.year, last.month, acting_user=world.user(Role.AGENCY_OWNER))
        db.session.commit()
        settlement_id = settlement.id
    yield settlement_id


UPLOAD_ROLES = [Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.HQ_SERVICE, Role.HQ_PARTS,
                Role.AUDITOR]


@pytest.mark.parametrize("role", UPLOAD_ROLES, ids=[r.value for r in UPLOAD_ROLES])
def test_every_upload_survives_hostile_files(app, _transaction, world, draft_claim, capsys,
                                             role):
    """Each upload form gets files that lie about their type, bombs, path tricks and a body
    over the size limit (the translated 413 page); nothing is written outside UPLOAD_ROOT."""
    tally, client, user = Tally(), chinese_client(app), world.user(role)
    sign_in(client, user)
    forms, _pages = crawl(client, START + ["/evaluation/verify", f"/settlements/{draft_claim}",
                                           "/service/orders/import", "/service/catalog/import",
                                           "/service/revisits/import"])
    forms = [form for form in forms if form.files]
    for form in forms:
        tally.forms += 1
        tally.fields += len(form.files)
        sign_in(client, user)
        _transaction.exec_driver_sql("SAVEPOINT hostile_upload")
        before = _fingerprint(app)
        for field_name in sorted(form.files):
            for label, name, content in hostile_files():
                data = {**form.fields, field_name: (io.BytesIO(content), name)}
                response = _submit(app, client, form, data, tally, f"{field_name}: {label}",
                                   before, content_type="multipart/form-data")
                if response.status_code == 302:
                    _check_stored_names(app, tally, form, label)
                    _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_upload")
                    sign_in(client, user)
                    before = _fingerprint(app)
            limit = app.config["MAX_CONTENT_LENGTH"]
            app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
            try:
                big = {**form.fields, field_name: (io.BytesIO(b"%PDF-" + b"0" * 300_000),
                                                   "big.pdf")}
                response = _submit(app, client, form, big, tally, f"{field_name}: oversized",
                                   before, content_type="multipart/form-data")
            finally:
                app.config["MAX_CONTENT_LENGTH"] = limit
            body = response.get_data(as_text=True)
            if response.status_code != 413 or "文件太大" not in body:
                tally.failures.append(f"{form.action}: oversized upload answered "
                                      f"{response.status_code} without the Chinese 413 page")
        _transaction.exec_driver_sql("ROLLBACK TO SAVEPOINT hostile_upload")
        _transaction.exec_driver_sql("RELEASE SAVEPOINT hostile_upload")
    with capsys.disabled():
        print(f"\nhostile uploads as {role.value}: {tally.forms} upload forms, "
              f"{tally.cases} cases, {len(tally.failures)} failures")
    assert tally.forms or role == Role.HQ_PARTS, f"{role.value} reached no upload form"
    assert not tally.failures, "\n".join(tally.failures[:40])


def _check_stored_names(app, tally, form, label) -> None:
    """An accepted file is stored under a generated name inside UPLOAD_ROOT."""
    from pathlib import Path

    root = Path(app.config["UPLOAD_ROOT"]).resolve()
    for path in root.rglob("*") if root.exists() else []:
        if ".." in path.name or "passwd" in path.name or "win.ini" in path.name:
            tally.failures.append(f"{form.action} [{label}]: stored as {path}")
    for escaped in (Path("/etc/passwd.pdf"), root.parent / "passwd.pdf"):
        if escaped.exists():
            tally.failures.append(f"{form.action} [{label}]: wrote {escaped}")


# --- bodies that are not forms -----------------------------------------------------------------


BODIES = [
    ("json", "application/json", b'{"version": 1, "agency_id": 987654321, "__proto__": {}}'),
    ("json array", "application/json", b"[1, 2, 3]" * 10),
    ("broken json", "application/json", b'{"a": '),
    ("xml", "application/xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM "
     b"'file:///etc/passwd'>]><x>&e;</x>"),
    ("csv", "text/csv", b"number,customer\n=1+1,<script>\n"),
    ("binary", "application/octet-stream", bytes(range(256))),
    ("urlencoded junk", "application/x-www-form-urlencoded", b"%ZZ=%%&&==&a[]=1&a[x]=2"),
]


@pytest.mark.parametrize("role", [Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.HQ_SETTLEMENT],
                         ids=["hq_admin", "agency_owner", "hq_settlement"])
def test_non_form_bodies_never_break_a_state_changing_route(app, _transaction, world, capsys,
                                                            role):
    """Every POST route, sent JSON, XML (with an external entity), CSV and binary bodies:
    never a 500, never a write."""
    from flask import url_for

    with app.test_request_context():
        urls = sorted({url_for(r.endpoint, **{a: world.a.id for a in r.arguments})
                       for r in app.url_map.iter_rules()
                       if "POST" in r.methods and r.endpoint != "auth.sign_in"})
    client, tally = chinese_client(app), Tally()
    sign_in(client, world.user(role))
    before = _fingerprint(app)
    for url in urls:
        for label, kind, body in BODIES:
            response = client.post(url, data=body, content_type=kind)
            tally.cases += 1
            if response.status_code >= 500:
                tally.failures.append(f"{url} [{label}]: {response.status_code}")
            elif response.status_code == 302:
                tally.errors_shown -= 1  # counted below as accepted (an unchanged re-save)
            if "/sign-out" in url or "/locale" in url:
                sign_in(client, world.user(role))
                before = _fingerprint(app)
            elif _fingerprint(app) != before:
                tally.failures.append(f"{url} [{label}]: wrote")
                before = _fingerprint(app)
    with capsys.disabled():
        print(f"\nnon-form bodies as {role.value}: {len(urls)} routes, {tally.cases} cases, "
              f"{-tally.errors_shown} answered 302 without a change, "
              f"{len(tally.failures)} failures")
    assert not tally.failures, "\n".join(tally.failures[:40])
