"""Sending deliveries: after the commit, signed, to allowed hosts only, never following a
redirect, 5 seconds at most, tried again with a growing delay for 24 hours.

- **After the commit**: the transaction that wrote a delivery asks for a run once it commits
  (:func:`wake_after_commit`); the run goes to the job runner's queue (RQ, with ``REDIS_URL``)
  or to a thread of this process (:class:`portal.background.Courier`, as for e-mail). The
  workplace tick wakes it too, so retries go out when they are due.
  ``WEBHOOK_DELIVERY = "manual"`` (tests) leaves it to :func:`deliver_pending`
  (``flask --app wsgi webhooks deliver``).
- **Claimed**: a sender marks a batch ``sending`` with its token first, so two workers never
  send one row twice; a sender that died leaves rows that go again after 15 minutes.
- **Signed**: ``X-Portal-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
- **No open SSRF**: the URL's host must be listed in ``PORTAL_WEBHOOK_ALLOWED_HOSTS``; its
  name is resolved and every address must be public, unless that address (or a network
  holding it) is listed too. Checked when an endpoint is saved and again before each try, and
  the connection goes to the address that was checked (no second look-up to rebind).
"""
import hashlib
import hmac
import http.client
import ipaddress
import os
import secrets
import socket
import ssl
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from api.webhooks.models import (
    DELIVERED,
    FAILED,
    GIVEN_UP,
    PENDING,
    SENDING,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal.background import Courier
from portal.clock import now
from portal.extensions import db
from portal.tenancy import unscoped

TIMEOUT_SECONDS = 5
RETRY_WINDOW = timedelta(hours=24)
FIRST_WAIT, LONGEST_WAIT = timedelta(minutes=1), timedelta(hours=1)
CLAIM_EXPIRES = timedelta(minutes=15)
BATCH = 100
MAX_URL = 500
USER_AGENT = "ServiceNetworkPortal-Webhooks/1"
REASON = "the webhook sender delivers every endpoint's events"

# --- where a delivery may go ------------------------------------------------------------------


class Refused(Exception):  # noqa: N818 - a refusal with its reason, not a crash
    """A URL the portal will not send to (the message says why, translated)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query
    address: str  # the checked address the connection goes to


def allowed_hosts() -> tuple[frozenset[str], tuple]:
    """(names, networks) from ``PORTAL_WEBHOOK_ALLOWED_HOSTS`` (config, else the environment):
    a comma list of host names, IP addresses and networks ("hooks.example.com, 10.1.2.0/24")."""
    raw = None
    if has_app_context():
        raw = current_app.config.get("PORTAL_WEBHOOK_ALLOWED_HOSTS")
    if raw is None:
        raw = os.environ.get("PORTAL_WEBHOOK_ALLOWED_HOSTS", "")
    entries = raw if isinstance(raw, (list, tuple, set, frozenset)) else str(raw).split(",")
    names, networks = set(), []
    for entry in (str(e).strip().lower().strip("[]") for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return frozenset(names), tuple(networks)


def _listed_address(address, networks) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as error:
        raise Refused(_("The host name %(host)s does not resolve.", host=host)) from error
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: str, *, resolve: bool = True) -> Target | None:
    """The target of `url`, or :class:`Refused` with the reason: http(s) only, no user name or
    password in it, a host on the allowed list, resolving to public addresses (or to listed
    ones). `resolve` False checks the form and the list only (returns None)."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL:
        raise Refused(_("Enter the URL (at most %(max)s characters).", max=MAX_URL))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(_("This is not a URL the portal can send to.")) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(_("The URL must start with https:// (or http://) and name a host."))
    if parts.username is not None or parts.password is not None:
        raise Refused(_("The URL must not hold a user name or password."))
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise Refused(_("This is not a URL the portal can send to."))
    host = parts.hostname.lower().rstrip(".")
    port = port or (443 if parts.scheme == "https" else 80)
    names, networks = allowed_hosts()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    listed = host in names or (literal is not None and _listed_address(literal, networks))
    if not listed:
        raise Refused(_("The host %(host)s is not on the list of allowed webhook hosts "
                        "(PORTAL_WEBHOOK_ALLOWED_HOSTS).", host=host))
    if not resolve:
        return None
    addresses = [host] if literal is not None else _resolve(host, port)
    chosen = None
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if getattr(address, "ipv4_mapped", None):
            address = address.ipv4_mapped
        if not address.is_global and not _listed_address(address, networks):
            raise Refused(_("The host %(host)s resolves to a private, loopback or link-local "
                            "address (%(address)s) that is not on the list of allowed "
                            "webhook hosts.", host=host, address=str(address)))
        chosen = chosen or str(address)
    if chosen is None:
        raise Refused(_("The host name %(host)s does not resolve.", host=host))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, chosen)


# --- one try ------------------------------------------------------------------------------------


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target):
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target):
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS,
                         context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


def send_once(url: str, secret: str, body: str, *, event: str, event_id: str,
              delivery_id: int) -> Outcome:
    """One signed POST of `body`; a 2xx is delivered, anything else (a redirect included:
    it is never followed) a failed try."""
    try:
        target = check_url(url)
    except Refused as refused:
        return Outcome(False, None, str(refused))
    data = body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Portal-Event": event, "X-Portal-Event-Id": event_id,
               "X-Portal-Delivery": str(delivery_id),
               "X-Portal-Signature": sign(secret, int(now().timestamp()), data)}
    connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target)
    try:
        connection.request("POST", target.path, body=data, headers=headers)
        response = connection.getresponse()
        response.read(4096)
        code = response.status
    except (OSError, http.client.HTTPException, ssl.SSLError) as error:
        return Outcome(False, None, f"{type(error).__name__}: {error}"[:500])
    finally:
        connection.close()
    if 200 <= code < 300:
        return Outcome(True, code)
    if 300 <= code < 400:
        return Outcome(False, code, f"HTTP {code}: a redirect, not followed")
    return Outcome(False, code, f"HTTP {code}")


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 1, 2, 4 … minutes, at most an hour."""
    return min(FIRST_WAIT * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


# --- after the commit -------------------------------------------------------------------------


def mode(app) -> str:
    """"background" (RQ or a thread after each commit) or "manual"; unset: manual under
    tests (the test sends), else background."""
    configured = app.config.get("WEBHOOK_DELIVERY") or os.environ.get("PORTAL_WEBHOOK_DELIVERY")
    return configured or ("manual" if app.testing else "background")


courier = Courier("webhooks", lambda: deliver_pending(),
                  manual=lambda app: mode(app) == "manual",
                  worker="api.webhooks.delivery.deliver_in_worker", job_timeout=900)
wake_after_commit = courier.after_commit


def deliver_in_worker() -> None:
    courier.run_in_worker()


# --- the sender ---------------------------------------------------------------------------------


def deliver_pending(limit: int | None = None) -> dict:
    """Send every delivery that is due; returns counts. Safe to run in several workers."""
    counts = {"delivered": 0, "retry": 0, "given_up": 0}
    while limit is None or sum(counts.values()) < limit:
        size = BATCH if limit is None else min(BATCH, limit - sum(counts.values()))
        claimed = _claim(size)
        if not claimed:
            break
        _send_batch(claimed, counts)
    return counts


def _claim(size: int) -> list[int]:
    token = secrets.token_hex(8)
    moment = now()
    due = or_(WebhookDelivery.status.in_([PENDING, FAILED])
              & (WebhookDelivery.next_attempt_at <= moment),
              (WebhookDelivery.status == SENDING)
              & (WebhookDelivery.claimed_at < moment - CLAIM_EXPIRES))
    with unscoped(REASON):
        ids = list(db.session.scalars(select(WebhookDelivery.id).where(due)
                                      .order_by(WebhookDelivery.id).limit(size)))
        if not ids:
            db.session.commit()
            return []
        db.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), due)
            .values(status=SENDING, claimed_at=moment, claim=token)
            .execution_options(synchronize_session=False))
        mine = list(db.session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.id.in_(ids), WebhookDelivery.status == SENDING,
            WebhookDelivery.claim == token)))
        db.session.commit()
    return mine


def _send_batch(ids: list[int], counts: dict) -> None:
    with unscoped(REASON):
        rows = db.session.execute(
            select(WebhookDelivery.id, WebhookDelivery.event, WebhookDelivery.event_id,
                   WebhookDelivery.body, WebhookEndpoint.url, WebhookEndpoint.secret,
                   WebhookEndpoint.active)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id)).all()
        db.session.commit()  # no transaction stays open while the network answers
    outcomes = {}
    for row in rows:
        if not row.active:
            outcomes[row.id] = None  # the endpoint was switched off: nothing is sent
            continue
        outcomes[row.id] = send_once(row.url, row.secret, row.body, event=row.event,
                                     event_id=row.event_id, delivery_id=row.id)
    with unscoped(REASON):
        moment = now()
        # populate_existing: the claim's UPDATE bypassed rows this session may hold.
        for delivery in db.session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.id.in_(list(outcomes)))
                .execution_options(populate_existing=True)):
            _record(delivery, outcomes[delivery.id], moment, counts)
        db.session.commit()


def _record(delivery: WebhookDelivery, outcome: Outcome | None, moment, counts: dict) -> None:
    delivery.claim, delivery.claimed_at = None, None
    if outcome is None:
        delivery.status, delivery.next_attempt_at = GIVEN_UP, None
        delivery.last_error = "endpoint inactive: not sent"
        counts["given_up"] += 1
        return
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code = moment, outcome.status_code
    if outcome.ok:
        delivery.status, delivery.delivered_at = DELIVERED, moment
        delivery.last_error, delivery.next_attempt_at = None, None
        counts["delivered"] += 1
        return
    delivery.last_error = outcome.error
    following = moment + backoff(delivery.attempts)
    if following > delivery.created_at + RETRY_WINDOW:
        delivery.status, delivery.next_attempt_at = GIVEN_UP, None
        counts["given_up"] += 1
    else:
        delivery.status, delivery.next_attempt_at = FAILED, following
        counts["retry"] += 1
