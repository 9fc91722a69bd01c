"""The workplace at the network's size: a quarter published to every agency, the outbox
delivering over SMTP, the daily digest of 20,000 accounts, and the inbox pages.

``.venv/bin/python -m bench.workplace`` builds (or reuses) the synthetic networks of
bench/databases.py and writes bench/results/workplace.md and .json; ``make bench`` may call
:func:`measure` on the network it has built. Everything runs in this process, on the database
the server would use: the items and e-mails the measures need are committed (the outbox
delivers committed rows, the pages are other sessions) and removed at the end; the digest's
accounts are rolled back.

Settings (environment):
  BENCH_SIZES         agencies per network, comma-separated (default "2000")
  BENCH_ORDERS        work orders per agency (default 10: the workplace reads no orders; a
                      network built by ``make bench`` with 1000 is the same network otherwise)
  BENCH_ENGINEERS     engineers per agency (default 10)
  BENCH_QUARTERS      evaluated quarters of history (default 4)
  BENCH_MAILS         e-mails delivered at least (default 1000; the publication's are topped
                      up with copies on small networks)
  BENCH_DIGEST_USERS  accounts that digest their day (default 20000)
  BENCH_REQUESTS      timed requests per page (default 100)
  BENCH_REUSE=1       reuse networks a previous run built (same sizes and seed)
  BENCH_WORK_DIR      where databases live (default /tmp/portal-bench)
  DATABASE_URL        PostgreSQL as a role that may create databases (default: SQLite)
"""
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, timedelta
from email.utils import make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from flask import g
from sqlalchemy import JSON, String, delete, event, func, insert, literal, select

from bench import databases, inprocess, load, report
from bench.databases import Database
from evaluation.models import Quarter, Result
from inbox import registry
from inbox.models import (
    DIGEST,
    NOTICE,
    QUEUED,
    TASK,
    InboxItem,
    MailMessage,
    Preference,
)
from inbox.notify import raise_items
from inbox.outbox import compose, deliver_pending
from inbox.queries import open_task_count, waiting_for
from inbox.reminders import queue_digests
from inbox.settings import current as workplace_settings
from portal import clock, create_app
from portal.auth.models import User
from portal.auth.roles import Role
from portal.config import normalize_database_url
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import Agency

TARGETS = {"publish_seconds": 5, "mails_per_second": 50, "digest_seconds": 60,
           "page_p95_ms": 50}
DOMAIN = "workplace.bench"  # the digest's accounts (rolled back; removed if a run stopped)
REASON = "the benchmark measures the workplace of the whole network"
LABEL = "BENCH"  # the label of the items the pages' users get
# The events of the items an agency owner and HQ admin find in their inbox.
OWNER_ITEMS = ("evaluation.published", "complaint.recorded", "parts_request.decided",
               "parts_request.shipped", "complaint.closed", "evaluation.appeal_upheld",
               "part_return.inspected")
ADMIN_ITEMS = ("evaluation.appealed", "escalation.settlement_review_admin",
               "escalation.complaint_verdict_admin", "evaluation.finalized")
ITEMS_EACH = 50
COMPOSED = 200  # e-mails and digests composed without SMTP


def settings() -> dict:
    env = os.environ.get
    return {"sizes": [int(s) for s in env("BENCH_SIZES", "2000").split(",") if s],
            "orders_per_agency": int(env("BENCH_ORDERS", 10)),
            "engineers_per_agency": int(env("BENCH_ENGINEERS", 10)),
            "quarters": int(env("BENCH_QUARTERS", 4)), "mails": int(env("BENCH_MAILS", 1000)),
            "digest_users": int(env("BENCH_DIGEST_USERS", 20000)),
            "requests": int(env("BENCH_REQUESTS", 100)),
            "reuse": env("BENCH_REUSE") == "1", "seed": 2026,
            "work": Path(env("BENCH_WORK_DIR") or Path(tempfile.gettempdir()) / "portal-bench")}


# --- a local SMTP server ---------------------------------------------------------------------

class _Counter:
    """aiosmtpd handler: accepts every message and counts it."""
    def __init__(self):
        self.received = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.received += 1
        return "250 Message accepted for delivery"


@contextmanager
def smtp_sink():
    """An SMTP server on a free loopback port, in a thread of this process (it shares the
    GIL with the sender: the figure is on the pessimistic side); yields (port, counter)."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    counter = _Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=load.free_port())
    controller.start()
    try:
        yield controller.port, counter
    finally:
        controller.stop()


def make_app(database: Database, smtp_port: int):
    """The portal on `database`, sending to the local server; delivery only when asked."""
    os.environ["PORTAL_INSTANCE_PATH"] = str(database.instance)
    return create_app({"SQLALCHEMY_DATABASE_URI": normalize_database_url(database.app_url),
                       "MIGRATION_DATABASE_URL": database.owner_url,
                       "SECRET_KEY": "bench-secret-key", "WTF_CSRF_ENABLED": False,
                       "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port,
                       "MAIL_TIMEOUT": 30, "MAIL_DELIVERY": "manual", "REDIS_URL": None})


@contextmanager
def mail_off(app):
    """Items alone, without their outbox rows (as on a portal without MAIL_SERVER)."""
    server = app.config["MAIL_SERVER"]
    app.config["MAIL_SERVER"] = None
    try:
        yield
    finally:
        app.config["MAIL_SERVER"] = server


# --- the measures ----------------------------------------------------------------------------

def measure(database: Database, *, mails: int = 1000, digest_users: int = 20000,
            requests: int = 100) -> dict:
    """Every figure of the workplace on `database`; leaves the database as it found it."""
    with smtp_sink() as (port, counter):
        app = make_app(database, port)
        marks = _marks(app)
        try:
            out = {"publish": publish(app)}
            print(f"    publication: {out['publish']['items']:,} items in "
                  f"{out['publish']['seconds']} s", flush=True)
            out["delivery"] = delivery(app, counter, mails, marks["mails"])
            print(f"    delivery: {out['delivery']['sent']:,} e-mails, "
                  f"{out['delivery']['per_second']}/s", flush=True)
            out["pages"] = pages(app, requests)
            for page in out["pages"]:
                print(f"    {page['name']:<22} p95 {page['p95_ms']} ms, "
                      f"{page['queries']} SQL", flush=True)
            out["digest"] = digest(app, digest_users)
            print(f"    digest: {out['digest']['queued']:,} digests queued in "
                  f"{out['digest']['seconds']} s", flush=True)
        finally:
            _clean(app, marks)
    return out


def _latest_quarter_with_results():
    return db.session.scalars(select(Quarter).where(Quarter.id.in_(select(Result.quarter_id)))
                              .order_by(Quarter.year.desc(), Quarter.quarter.desc())
                              .limit(1)).first()


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


def publish(app) -> dict:
    """The evaluation.published fan-out for the latest quarter with results: once for the
    items alone (rolled back), once with their e-mails (committed: the outbox delivers them)."""
    declared = registry.get("evaluation.published")
    with app.app_context(), unscoped(REASON):
        g._audit_actor = None
        quarter = _latest_quarter_with_results()
        if quarter is None:
            raise RuntimeError("the network has no evaluated quarter")
        results = db.session.scalar(select(func.count()).select_from(Result)
                                    .where(Result.quarter_id == quarter.id))
        ctx = registry.Context(quarter, None, None)
        with mail_off(app):
            seconds, items = _timed(raise_items, declared, ctx)
        db.session.rollback()
        mail_seconds, mail_items = _timed(raise_items, declared, ctx)
        label = quarter.label
        commit_seconds, _none = _timed(db.session.commit)
    return {"quarter": label, "results": results, "items": items,
            "seconds": round(seconds, 3), "with_mail_seconds": round(mail_seconds, 3),
            "with_mail_items": mail_items, "commit_seconds": round(commit_seconds, 3)}


def delivery(app, counter: _Counter, at_least: int, mark: int) -> dict:
    """deliver_pending() of the publication's e-mails (with copies, on a small network, up to
    `at_least`), over one SMTP connection per batch, in this process; then COMPOSED of them
    composed again without SMTP. `mark`: the highest outbox id before the run."""
    with app.app_context(), unscoped(REASON):
        queued = published = _queued()
        while 0 < queued < at_least:
            source = (select(MailMessage.recipient_id, MailMessage.agency_id, MailMessage.kind,
                             MailMessage.item_id, MailMessage.status, MailMessage.attempts,
                             MailMessage.next_attempt_at, MailMessage.created_at,
                             MailMessage.to_address)
                      .where(MailMessage.status == QUEUED).order_by(MailMessage.id)
                      .limit(at_least - queued))
            db.session.execute(insert(MailMessage).from_select(
                ["recipient_id", "agency_id", "kind", "item_id", "status", "attempts",
                 "next_attempt_at", "created_at", "to_address"], source))
            queued = _queued()
        db.session.commit()
    before = counter.received
    with app.app_context():
        seconds, counts = _timed(deliver_pending)
    received = counter.received - before
    with app.app_context(), unscoped(REASON):  # the composing alone: where the time goes
        sent = list(db.session.scalars(select(MailMessage).where(MailMessage.id > mark)
                                       .order_by(MailMessage.id).limit(COMPOSED)))
        compose_seconds, _sizes = _timed(_compose_all, sent)
        db.session.rollback()
    return {"queued": queued, "from_publication": published, **counts,
            "received_by_server": received, "seconds": round(seconds, 2),
            "per_second": round(counts["sent"] / seconds, 1) if seconds else None,
            "composed": len(sent), "composed_per_second":
            round(len(sent) / compose_seconds, 1) if compose_seconds else None}


def _compose_all(messages) -> list[int]:
    """Each message composed to its MIME bytes (no SMTP)."""
    return [len(compose(m).message().as_bytes()) for m in messages]


def _queued() -> int:
    return db.session.scalar(select(func.count()).select_from(MailMessage)
                             .where(MailMessage.status == QUEUED))


def digest(app, users: int) -> dict:
    """`users` accounts that digest the evaluation category, each with one item in the window
    of the digest due now: queue_digests() (one INSERT … SELECT), then COMPOSED digests
    composed. Rolled back."""
    with app.app_context(), unscoped(REASON):
        g._audit_actor = None
        agencies = list(db.session.scalars(select(Agency.id).order_by(Agency.id)))
        settings = workplace_settings()
        moment = _before_last_digest_hour(settings.digest_hour)
        started = time.perf_counter()
        db.session.execute(insert(User), [
            {"email": f"digest{n}@{DOMAIN}", "name": f"digest {n}", "password_hash": "!",
             "role": str(Role.AGENCY_STAFF), "agency_id": agencies[n % len(agencies)],
             "is_active_account": True, "session_token": secrets.token_urlsafe(24),
             "created_at": moment} for n in range(users)])
        ours = select(User.id, User.agency_id).where(User.email.like(f"%@{DOMAIN}")) \
            .subquery()
        db.session.execute(insert(Preference).from_select(
            ["recipient_id", "category", "mode"],
            select(ours.c.id, literal("evaluation"), literal(DIGEST)).select_from(ours)))
        db.session.execute(insert(InboxItem).from_select(
            ["recipient_id", "agency_id", "event", "category", "kind", "label", "params",
             "created_at"],
            select(ours.c.id, ours.c.agency_id, literal("agency.tier_changed"),
                   literal("evaluation"), literal(NOTICE), literal(LABEL, String),
                   literal({}, JSON), literal(moment, InboxItem.created_at.type))
            .select_from(ours)))
        setup_seconds = time.perf_counter() - started
        seconds, queued = _timed(queue_digests, settings)
        messages = list(db.session.scalars(select(MailMessage).where(
            MailMessage.kind == "digest", MailMessage.to_address.like(f"%@{DOMAIN}"))
            .order_by(MailMessage.id).limit(COMPOSED)))
        for message in messages:
            message.message_id = make_msgid(idstring=f"outbox.{message.id}", domain=DOMAIN)
        compose_seconds, _sizes = _timed(_compose_all, messages)
        db.session.rollback()
    return {"users": users, "setup_seconds": round(setup_seconds, 2), "queued": queued,
            "seconds": round(seconds, 2), "composed": len(messages),
            "compose_seconds": round(compose_seconds, 2),
            "composed_per_second": round(len(messages) / compose_seconds, 1)
            if compose_seconds else None}


def _before_last_digest_hour(hour: int):
    """An hour before the digest hour that passed last: inside the window of the digest the
    tick queues now, whichever day that is."""
    local = clock.local_now()
    last = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if last > local:
        last -= timedelta(days=1)
    return last.astimezone(UTC) - timedelta(hours=1)


def pages(app, requests: int) -> list[dict]:
    """GET /inbox/ and GET / (the navigation's count on both) for an agency owner and HQ
    admin with ~50 items each, timed with the Flask test client after a warm-up."""
    owner, admin = _give_items(app)
    urls = [("inbox, agency owner", owner, "/inbox/"), ("home, agency owner", owner, "/"),
            ("inbox, HQ admin", admin, "/inbox/"), ("home, HQ admin", admin, "/")]
    statements = []

    def count(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE",
                                                      "ROLLBACK", "COMMIT",
                                                      "SELECT SET_CONFIG")):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    clients, out = {}, []
    for name, (email, items), url in urls:
        client = clients.get(email)
        if client is None:
            client = clients[email] = app.test_client()
            response = client.post("/auth/sign-in", data={"email": email,
                                                          "password": inprocess.PASSWORD})
            assert response.status_code == 302, email
        for _warm in range(3):
            assert client.get(url).status_code == 200, (name, url)
        event.listen(engine, "before_cursor_execute", count)
        try:
            statements.clear()
            client.get(url)
            queries = len(statements)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        timings = [_timed(client.get, url)[0] * 1000 for _n in range(requests)]
        out.append({"name": name, "url": url, "user": email, "items": items,
                    "queries": queries, "p50_ms": round(statistics.median(timings), 1),
                    "p95_ms": _p95(timings), "max_ms": round(max(timings), 1),
                    "requests": requests})
        if url == "/":
            out[-1]["inbox_part_p95_ms"] = _inbox_part(app, email, requests)
    return out


def _p95(timings: list[float]) -> float:
    return round(statistics.quantiles(timings, n=20, method="inclusive")[18], 1)


def _inbox_part(app, email: str, requests: int) -> float:
    """p95 (ms) of the workplace's own work on the home page, the navigation's count and
    "waiting for me" (the rest is the dashboard of the user's role); in an unscoped block."""
    with app.app_context(), unscoped(REASON):
        user = db.session.scalars(select(User).where(User.email == email)).one()
        timings = []
        for _n in range(requests):
            g.pop("_inbox_open_count", None)  # the count is cached for one request
            timings.append(_timed(lambda: (open_task_count(user), waiting_for(user)))[0] * 1000)
        db.session.rollback()
    return _p95(timings)


def _give_items(app) -> tuple[tuple[str, int], tuple[str, int]]:
    """An agency owner the publication reached and HQ admin, with ITEMS_EACH items each (a
    fifth of them closed or read); returns ((email, items), (email, items))."""
    with app.app_context(), unscoped(REASON):
        owner = db.session.scalars(
            select(User).join(InboxItem, InboxItem.recipient_id == User.id)
            .join(Agency, Agency.id == User.agency_id)
            .where(User.role == str(Role.AGENCY_OWNER), Agency.status == "active",
                   InboxItem.event == "evaluation.published")
            .order_by(User.id).limit(1)).one()
        admin = db.session.scalars(select(User).where(User.role == str(Role.HQ_ADMIN),
                                                      User.is_active_account.is_(True))
                                   .order_by(User.id).limit(1)).one()
        moment, rows = clock.now(), []
        for user, names in ((owner, OWNER_ITEMS), (admin, ADMIN_ITEMS)):
            had = db.session.scalar(select(func.count()).select_from(InboxItem)
                                    .where(InboxItem.recipient_id == user.id))
            for n in range(max(ITEMS_EACH - had, 0)):
                declared = registry.get(names[n % len(names)])
                done = moment - timedelta(hours=1) if n % 5 == 4 else None
                rows.append({
                    "recipient_id": user.id, "agency_id": user.agency_id,
                    "event": declared.name, "category": declared.category,
                    "kind": declared.kind, "subject_type": "bench", "subject_id": n + 1,
                    "label": f"{LABEL}-{n + 1}", "params": {},
                    "due_at": moment + timedelta(hours=n) if declared.kind == TASK else None,
                    "created_at": moment - timedelta(minutes=n),
                    "closed_at": done if declared.kind == TASK else None,
                    "read_at": done})
        db.session.execute(insert(InboxItem), rows)
        db.session.commit()
        counts = dict(db.session.execute(
            select(InboxItem.recipient_id, func.count()).where(
                InboxItem.recipient_id.in_([owner.id, admin.id]))
            .group_by(InboxItem.recipient_id)).all())
        return (owner.email, counts[owner.id]), (admin.email, counts.get(admin.id, 0))


# --- leaving the database as it was ----------------------------------------------------------

def _marks(app) -> dict:
    """The highest ids before the run: what is above them, the run made."""
    with app.app_context(), unscoped(REASON):
        _clean_accounts(db)
        db.session.commit()
        return {"items": db.session.scalar(select(func.max(InboxItem.id))) or 0,
                "mails": db.session.scalar(select(func.max(MailMessage.id))) or 0}


def _clean(app, marks: dict) -> None:
    """Remove what the run committed: its items, its e-mails, its accounts."""
    with app.app_context(), unscoped(REASON):
        db.session.rollback()
        db.session.execute(delete(MailMessage).where(MailMessage.id > marks["mails"]))
        db.session.execute(delete(InboxItem).where(InboxItem.id > marks["items"]))
        _clean_accounts(db)
        db.session.commit()


def _clean_accounts(db) -> None:
    """The digest's accounts, should a run have stopped before its rollback."""
    ours = select(User.id).where(User.email.like(f"%@{DOMAIN}"))
    for model in (MailMessage, InboxItem, Preference):
        db.session.execute(delete(model).where(model.recipient_id.in_(ours)))
    db.session.execute(delete(User).where(User.email.like(f"%@{DOMAIN}")))


# --- standalone ------------------------------------------------------------------------------

def measure_size(agencies: int, cfg: dict) -> dict:
    network = databases.Network(agencies, agencies * cfg["orders_per_agency"],
                                agencies * cfg["engineers_per_agency"], cfg["quarters"],
                                cfg["seed"])
    database, built = databases.prepare(network, cfg["work"], cfg["reuse"])
    figures = measure(database, mails=cfg["mails"], digest_users=cfg["digest_users"],
                      requests=cfg["requests"])
    return {"network": {"agencies": agencies, "orders": network.orders,
                        "engineers": network.engineers, "quarters": network.quarters},
            "database": database.kind, "server": databases.server_version(database),
            "build": built, **figures}


def verdicts(largest: dict) -> list[dict]:
    p, d, dg = largest["publish"], largest["delivery"], largest["digest"]
    slow = [f"{x['name']} {x['p95_ms']} ms" + (
        f" (of which the inbox's count and list {x['inbox_part_p95_ms']} ms)"
        if "inbox_part_p95_ms" in x else "")
        for x in largest["pages"] if x["p95_ms"] >= TARGETS["page_p95_ms"]]
    return [
        {"target": f"a quarter published to every agency < {TARGETS['publish_seconds']} s",
         "met": p["with_mail_seconds"] < TARGETS["publish_seconds"],
         "detail": f"{p['items']:,} items in {p['seconds']} s, with their e-mails "
                   f"{p['with_mail_seconds']} s"},
        {"target": f"e-mail delivery ≥ {TARGETS['mails_per_second']}/s",
         "met": (d["per_second"] or 0) >= TARGETS["mails_per_second"],
         "detail": f"{d['sent']:,} sent in {d['seconds']} s ({d['per_second']}/s)"},
        {"target": f"daily digest of {dg['users']:,} accounts < {TARGETS['digest_seconds']} s",
         "met": dg["seconds"] < TARGETS["digest_seconds"],
         "detail": f"{dg['queued']:,} digests queued in {dg['seconds']} s"},
        {"target": f"inbox and home p95 < {TARGETS['page_p95_ms']} ms", "met": not slow,
         "detail": ", ".join(slow) or "all four"},
    ]


def markdown(data: dict) -> str:
    m, sizes = data["machine"], data["sizes"]
    largest = sizes[-1]
    head = "| measure | " + " | ".join(f"{s['network']['agencies']:,} ag." for s in sizes) + " |"
    rule = "|---|" + "--:|" * len(sizes)
    lines = [
        "# Workplace benchmark", "",
        f"{data['when']}, commit {data['commit']}, {largest['server']}; {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; load average at "
        f"the end {m['load_average'][0]}. In process (`python -m bench.workplace`); the SMTP "
        f"server is aiosmtpd in a thread of the same process. Networks of "
        f"{data['settings']['orders_per_agency']} work orders per agency (the workplace reads "
        f"none). Whole run {data['elapsed_seconds']} s.", "", head, rule]
    rows = [
        ("work orders", lambda s: f"{s['network']['orders']:,}"),
        ("synthetic network build (s; reused: of the run that built it)",
         lambda s: s["build"]["seconds"]),
        ("quarter published: items (agency owners)", lambda s: f"{s['publish']['items']:,}"),
        ("raise_items, items alone (s)", lambda s: s["publish"]["seconds"]),
        ("raise_items with the e-mails' outbox rows (s)",
         lambda s: s["publish"]["with_mail_seconds"]),
        ("commit of those (s)", lambda s: s["publish"]["commit_seconds"]),
        ("e-mails delivered by deliver_pending()", lambda s: f"{s['delivery']['sent']:,}"),
        ("…received by the SMTP server", lambda s: f"{s['delivery']['received_by_server']:,}"),
        ("delivery (s)", lambda s: s["delivery"]["seconds"]),
        ("e-mails per second", lambda s: s["delivery"]["per_second"]),
        ("…composing alone, without SMTP (e-mails/s)",
         lambda s: s["delivery"]["composed_per_second"]),
        ("digest accounts (one item each in the digest's window)",
         lambda s: f"{s['digest']['users']:,}"),
        ("queue_digests(): digests queued", lambda s: f"{s['digest']['queued']:,}"),
        ("queue_digests() (s)", lambda s: s["digest"]["seconds"]),
        ("digests composed", lambda s: s["digest"]["composed"]),
        ("composing them (s)", lambda s: s["digest"]["compose_seconds"]),
    ]
    for label, value in rows:
        lines.append(f"| {label} | " + " | ".join(str(value(s)) for s in sizes) + " |")
    for page in largest["pages"]:
        for key, unit in (("p95_ms", "p95 ms"), ("p50_ms", "p50 ms"), ("queries", "SQL")):
            lines.append(f"| {page['name']} ({page['url']}), {unit} | " + " | ".join(
                str(next(x[key] for x in s["pages"] if x["name"] == page["name"]))
                for s in sizes) + " |")
    for page in largest["pages"]:
        if "inbox_part_p95_ms" in page:
            lines.append(f"| {page['name']}: the count and \"waiting for me\" alone, p95 ms | "
                         + " | ".join(str(next(x.get("inbox_part_p95_ms") for x in s["pages"]
                                               if x["name"] == page["name"])) for s in sizes)
                         + " |")
    lines.append("| inbox items of the owner / HQ admin | " + " | ".join(
        f"{s['pages'][0]['items']} / {s['pages'][2]['items']}" for s in sizes) + " |")
    lines += ["", f"## Targets at {largest['network']['agencies']:,} agencies", ""]
    for v in data["verdicts"]:
        lines.append(f"- {'met' if v['met'] else '**not met**'}: {v['target']} — {v['detail']}")
    return "\n".join(lines)


def write(results: list[dict], cfg: dict, kind: str, elapsed: float) -> list[Path]:
    data = {"when": clock.now().isoformat(timespec="seconds"), "commit": report._commit(),
            "machine": report.machine(), "database": kind, "elapsed_seconds": elapsed,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()},
            "targets": TARGETS, "sizes": results, "verdicts": verdicts(results[-1])}
    report.RESULTS.mkdir(exist_ok=True)
    paths = []
    sizes = "-".join(str(n) for n in cfg["sizes"])  # a copy per database and sizes, too
    for stem in ("workplace", f"workplace-{kind}-{sizes}"):
        for suffix, body in ((".json", json.dumps(data, indent=1, ensure_ascii=False)),
                             (".md", markdown(data))):
            path = report.RESULTS / f"{stem}{suffix}"
            path.write_text(body + "\n")
            paths.append(path)
    return paths


def main() -> int:
    cfg = settings()
    cfg["work"].mkdir(parents=True, exist_ok=True)
    kind = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    print(f"Workplace benchmark on {kind}: sizes {cfg['sizes']} agencies, "
          f"{cfg['orders_per_agency']} orders per agency, {cfg['digest_users']:,} digest "
          f"accounts, at least {cfg['mails']:,} e-mails", flush=True)
    started, results = time.monotonic(), []
    for agencies in cfg["sizes"]:
        print(f"\n{agencies} agencies", flush=True)
        results.append(measure_size(agencies, cfg))
        elapsed = round(time.monotonic() - started, 1)
        paths = write(results, cfg, kind, elapsed)
    print(f"\nWritten {', '.join(str(p) for p in paths)} in {elapsed} s")
    for v in verdicts(results[-1]):
        print(f"  {'met' if v['met'] else 'NOT MET'}: {v['target']} — {v['detail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
