"""Leak hunting beyond the route matrix: canaries in every text column of every agency's rows.

The demo network (rows in every agency-owned table) is loaded into a database of its own.
Every free-text column of every agency-owned table — found from the SQLAlchemy metadata, so a
new table or column is covered without anyone remembering — gets the owning agency's canary
(`CANARY-<agency code>-<table number>`) appended. Then the agency users and the regional
managers of the demo crawl everything they can reach: pages, lists, searches, counts, CSV and
XLSX exports, PDFs (text extracted with pypdf) and JSON. No response may hold another agency's
canary or legal name (for a regional manager: another region's), and a search for another
agency's canary must answer exactly like a search for nonsense (no count, no hint).
"""
import io
import os
import re
import shutil
from collections import Counter
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
import time_machine
from sqlalchemy import CheckConstraint, String, Text, create_engine, func, inspect, select, text
from sqlalchemy.exc import DataError, IntegrityError

from portal import clock
from portal.extensions import db
from portal.tenancy import tenant_models, unscoped
from tests.realapp import Site, session_client

CANARY = re.compile(r"CANARY-([A-Z]{2}-[A-Z]\d{2})-(\d+)")
CODE_LIKE = re.compile(r"^[a-z0-9_:.,/+=@-]*$")  # statuses, kinds, hashes, phone numbers
NEVER = {"password_hash", "session_token", "code", "stored_name", "content_type", "sha256",
         "fingerprint", "email", "id_number", "verification_code", "locale", "kpi_code"}
MAX_PAGES = 260
MAX_DOWNLOADS = 40
USERS = ["owner@sh-c01.demo", "staff@sh-c01.demo", "engineer@sh-c01.demo",
         "owner@gd-c01.demo", "staff@gd-c01.demo", "engineer@gd-c01.demo",
         "east.manager@hq.demo", "south.manager@hq.demo"]


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """The demo network with canaries; returns (site, tables seeded, columns seeded)."""
    from portal.cli import load_demo

    folder = tmp_path_factory.mktemp("leaks")
    prebuilt = os.environ.get("PORTAL_LIVE_DEMO")  # see tests/browser/conftest.py
    if prebuilt and not os.environ.get("DATABASE_URL"):
        shutil.copy(Path(prebuilt) / "demo.sqlite3", folder / "portal.sqlite3")
    site = Site(folder, migrate=True, TENANCY_STRICT=False, JOBS_RUN_INLINE=True)
    try:
        if not (prebuilt and not os.environ.get("DATABASE_URL")):
            with site.app.app_context():
                load_demo()
                db.session.remove()
        seeded = _seed_canaries(site)
        yield site, seeded
    finally:
        site.close()


def _free_text_columns(table, engine) -> list:
    """String and Text columns that hold words rather than codes."""
    checked = " ".join(str(c.sqltext) for c in table.constraints
                       if isinstance(c, CheckConstraint))
    out = []
    with engine.connect() as conn:
        _all_scope(conn)
        for column in table.columns:
            if not isinstance(column.type, String | Text) or column.name in NEVER \
                    or column.name == "agency_id" or re.search(rf"\b{column.name}\b", checked):
                continue
            values = conn.execute(select(column).where(column.isnot(None)).limit(200)).scalars()
            values = [v for v in values if v]
            if values and not all(CODE_LIKE.match(v) for v in values):
                out.append(column)
        conn.rollback()
    return out


def _all_scope(conn) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('portal.scope', 'all', false)"))


def _seed_canaries(site: Site) -> dict:
    """Append each row's agency canary to every free-text column of every agency table."""
    url = site.app.config.get("MIGRATION_DATABASE_URL") \
        or site.app.config["SQLALCHEMY_DATABASE_URI"]
    engine = create_engine(url)
    seeded: dict[str, list[str]] = {}
    try:
        for number, model in enumerate(sorted(tenant_models(), key=lambda m: m.__tablename__)):
            table = model.__table__
            owner = "id" if table.name == "agencies" else "agency_id"
            for column in _free_text_columns(table, engine):
                suffix = f"'-{number}'"
                canary = (f"' CANARY-' || (SELECT a.code FROM agencies a "  # noqa: S608
                          f"WHERE a.id = {table.name}.{owner}) || {suffix}")
                keep = (column.type.length or 4000) - 20
                if keep < 4:
                    continue  # a one-letter grade or the like: no room for a canary
                try:
                    with engine.begin() as conn:
                        _all_scope(conn)
                        update = (f'UPDATE {table.name} SET "{column.name}" = '  # noqa: S608
                                  f'substr("{column.name}", 1, {keep}) || {canary} '
                                  f'WHERE "{column.name}" IS NOT NULL '
                                  f"AND \"{column.name}\" <> '' AND {owner} IS NOT NULL")
                        conn.execute(text(update))
                except (IntegrityError, DataError):  # cut values that clash or do not fit
                    continue
                seeded.setdefault(table.name, []).append(column.name)
    finally:
        engine.dispose()
    return seeded


def test_every_agency_table_gets_canaries(network, capsys):
    site, seeded = network
    tables = sorted(m.__tablename__ for m in tenant_models())
    with site.app.app_context(), unscoped("count the canaries per table"):
        rows = {}
        for table in seeded:
            column = seeded[table][0]
            rows[table] = db.session.execute(text(
                f'SELECT count(*) FROM {table} WHERE "{column}" '  # noqa: S608 - metadata
                f"LIKE '%CANARY-%'")).scalar()
        db.session.commit()
    with capsys.disabled():
        print(f"\ncanaries: {sum(len(c) for c in seeded.values())} text columns in "
              f"{len(seeded)} of {len(tables)} agency tables, {sum(rows.values())} rows; "
              f"tables without free text: {sorted(set(tables) - set(seeded))}")
    assert len(seeded) >= 20 and all(rows.values()), rows


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.searches: list[tuple[str, str, dict]] = []
        self._get_form = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form" and (a.get("method") or "get").lower() == "get":
            self._get_form = (a.get("action") or "", {})
        elif tag in ("input", "select") and self._get_form is not None and a.get("name"):
            self._get_form[1][a["name"]] = (a.get("type") or "text", a.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "form" and self._get_form is not None:
            action, fields = self._get_form
            for name, (kind, _value) in fields.items():
                if kind in ("text", "search"):
                    others = {k: v for k, (t, v) in fields.items() if k != name}
                    self.searches.append((action, name, others))
            self._get_form = None


def _text_of(response) -> str:
    """What a reader sees in a response: HTML/CSV/JSON text, XLSX cells, PDF text."""
    data, kind = response.get_data(), response.mimetype or ""
    if kind == "application/pdf":
        from pypdf import PdfReader

        return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)
    if "spreadsheetml" in kind:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True)
        cells = [str(c) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                 for c in row if c is not None]
        book.close()
        return "\n".join(cells)
    return data.decode("utf-8", "replace")


def _identity(site, email):
    from portal.auth.models import User
    from tenants.models import Agency

    with site.app.app_context(), unscoped("who the crawler is"):
        user = db.session.scalars(select(User).where(User.email == email)).one()
        agencies = db.session.execute(select(Agency.code, Agency.region_id, Agency.legal_name)
                                      ).all()
        allowed = {code for code, region, _name in agencies
                   if (user.agency_id and code == user.agency.code)
                   or (not user.agency_id and region == user.region_id)}
        names = {re.sub(r" CANARY-.*", "", name): code for code, _r, name in agencies}
        db.session.commit()
        return user.id, allowed, names


def _forbidden(body: str, allowed: set, names: dict) -> list[str]:
    flat = re.sub(r"\s+", "", body)
    found = {m.group(1) for m in CANARY.finditer(body)} | {
        m.group(1) for m in CANARY.finditer(flat)}
    found = {code for code in found if code not in allowed}
    found |= {f"name of {code}" for name, code in names.items()
              if code not in allowed and len(name) >= 6 and name in body}
    return sorted(found)


@pytest.mark.parametrize("email", USERS)
def test_no_canary_of_another_agency_reaches_a_reader(network, email, capsys):
    site, _seeded = network
    user_id, allowed, names = _identity(site, email)
    client = session_client(site.app, user_id)
    queue, seen, tally, problems = ["/"], set(), Counter(), []
    own = Counter()
    searches: dict[tuple, tuple] = {}
    while queue and tally["pages"] < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        is_download = re.search(r"\.(pdf|csv|xlsx|svg|json)$|/pdf$",
                                urlsplit(path).path) or "format=xlsx" in path
        if is_download and tally["downloads"] >= MAX_DOWNLOADS:
            continue
        response = client.get(path)
        tally["downloads" if is_download else "pages"] += 1
        if response.status_code >= 500:
            problems.append(f"{path}: {response.status_code}")
            continue
        if response.status_code != 200:
            continue
        body = _text_of(response)
        tally[response.mimetype] += 1
        leaked = _forbidden(body, allowed, names)
        if leaked:
            problems.append(f"{path} ({response.mimetype}) shows {leaked}")
        own.update(m.group(2) for m in CANARY.finditer(body) if m.group(1) in allowed)
        if response.mimetype != "text/html":
            continue
        parser = _Links()
        parser.feed(body)
        for action, name, others in parser.searches:
            target = urlsplit(urljoin(path, action)).path
            searches.setdefault((target, name), others)
        for link in parser.links:
            parts = urlsplit(urljoin(path, link))
            if parts.netloc not in ("", "portal.test", "localhost") \
                    or not parts.path.startswith("/") or parts.path.startswith("/static"):
                continue
            query = dict(parse_qsl(parts.query))
            if query.get("page", "1") != "1":
                continue  # further pages hold the same kind of rows
            target = parts.path + (f"?{urlencode(query)}" if query else "")
            if target not in seen:
                queue.append(target)
    tally["searches"] = _search_for_foreign_canaries(client, searches, allowed, names, problems)
    with capsys.disabled():
        print(f"\nleak hunt as {email}: {tally['pages']} pages, {tally['downloads']} "
              f"downloads ({tally['application/pdf']} PDF, {tally['text/csv']} CSV, "
              f"{tally[next((k for k in tally if 'spreadsheet' in k), 'xlsx')]} XLSX), "
              f"{tally['searches']} searches; own canaries seen from {len(own)} tables; "
              f"{len(problems)} leaks")
    assert own, "the crawler never saw its own agency's canaries: the scan is blind"
    assert not problems, "\n".join(problems[:40])


def _search_for_foreign_canaries(client, searches, allowed, names, problems) -> int:
    """Each search box, sent another agency's canary and nonsense: identical answers."""
    foreign = sorted({code for code in names.values() if code not in allowed})[:3]
    tried = 0
    for (target, name), others in sorted(searches.items()):
        base = {k: v for k, v in others.items() if v}
        # One frozen instant per search: pages that show the time ("updated 09:41", "due in
        # 12 min") must not differ only because a minute turned between two requests.
        with time_machine.travel(clock.now(), tick=False):
            tried += _probe(client, target, name, base, foreign, allowed, names, problems)
    return tried


def _probe(client, target, name, base, foreign, allowed, names, problems) -> int:
    nonsense = client.get(target, query_string={**base, name: "QQ-Z99-0"})
    if nonsense.status_code != 200:
        return 0
    for code in foreign:
        probe = f"{code}-"  # the tail of its canaries: a hit would show the whole canary
        response = client.get(target, query_string={**base, name: probe})
        body = response.get_data(as_text=True)
        leaked = _forbidden(body, allowed, names)
        if leaked:
            problems.append(f"search {target}?{name}={probe} shows {leaked}")
        if _without(body, probe) != _without(nonsense.get_data(as_text=True), "QQ-Z99-0"):
            problems.append(f"search {target}?{name}={probe} answers unlike a search "
                            f"for nonsense (a count or hint of another agency's rows)")
    return len(foreign)


def _without(body: str, query: str) -> str:
    """The page without the echo of the query and the per-request parts."""
    body = body.replace(query, "§").replace(query.replace("-", "%2D"), "§")
    body = re.sub(r'name="csrf_token"[^>]*>', "", body)
    return re.sub(r"\s+", " ", body)


_ = inspect


def _refill_inbox(site) -> int:
    """Items and e-mails made after the canaries are in: the tick's reminders and escalations
    copy each subject's (canaried) name into the item, so an item addressed to the wrong agency
    or region would carry that agency's canary. E-mail is queued (MAIL_SERVER set, nothing
    sent), one account digests a category."""
    from inbox.models import InboxItem, MailMessage, Preference
    from inbox.reminders import queue_digests, tick
    from inbox.settings import current
    from portal.auth.models import User
    from portal.clock import local_now, now

    site.app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=9, MAIL_DELIVERY="manual")
    with site.app.app_context(), unscoped("the leak hunt refills every inbox"):
        db.session.execute(MailMessage.__table__.delete())
        db.session.execute(InboxItem.__table__.delete())
        owner = db.session.scalars(select(User).where(User.email == USERS[0])).one()
        db.session.add(Preference(recipient_id=owner.id, category="certification",
                                  mode="digest"))
        db.session.flush()
        tick()
        # Made a day ago: in the digest that goes out at this hour today.
        db.session.execute(InboxItem.__table__.update().values(
            created_at=now() - timedelta(days=1)))
        settings = current()
        settings.digest_hour = local_now().hour
        queue_digests(settings)
        made = db.session.scalar(select(func.count()).select_from(InboxItem))
        db.session.commit()
    return made


def test_inbox_items_and_emails_carry_no_other_agencys_canary(network, capsys):
    """Every crawled account's inbox pages and e-mails (each message and digest, composed as
    it would be sent) hold its own agency's (or region's) data only."""
    from inbox.models import MailMessage
    from inbox.outbox import compose

    site, _seeded = network
    made = _refill_inbox(site)
    checked, mails, own, problems = 0, 0, Counter(), []
    for email in USERS:
        user_id, allowed, names = _identity(site, email)
        client = session_client(site.app, user_id)
        for path in ("/", "/inbox/?state=all", "/inbox/?state=all&page=2", "/inbox/?kind=task"):
            body = client.get(path).get_data(as_text=True)
            checked += 1
            problems += [f"{email} {path} shows {c}" for c in _forbidden(body, allowed, names)]
            own.update(m.group(1) for m in CANARY.finditer(body) if m.group(1) in allowed)
        with site.app.app_context(), unscoped("the leak hunt reads the account's e-mails"):
            for message in db.session.scalars(select(MailMessage).where(
                    MailMessage.recipient_id == user_id)):
                composed = compose(message)
                text = "\n".join([composed.subject, composed.body,
                                  *(content for content, _kind in composed.alternatives)])
                mails += 1
                problems += [f"{email} e-mail {message.kind} {message.id} shows {c}"
                             for c in _forbidden(text, allowed, names)]
                own.update(m.group(1) for m in CANARY.finditer(text) if m.group(1) in allowed)
            db.session.commit()
    with capsys.disabled():
        print(f"\ninbox leak hunt: {made} items made after the canaries, {checked} inbox "
              f"pages, {mails} e-mails and digests of {len(USERS)} accounts; own canaries "
              f"seen of {len(own)} agencies; {len(problems)} leaks")
    assert mails and own, "no e-mail or no own canary: the hunt is blind"
    assert not problems, "\n".join(problems[:40])
