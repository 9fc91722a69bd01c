"""Abuse limits that strangers cannot turn against users.

Every limit that refuses an attempt counts failures from the requesting address only: per
address, and per (account or certificate, address). Failures an account gathers from
anywhere earn it a growing delay, but the delay binds only the addresses that have themselves
failed for that account: its owner, at an address with no failures, always gets through.
Counters live in Flask-Limiter's storage (Redis when configured), shared between workers.
"""
import ipaddress
import math
import time

from flask import current_app, g, request

from portal.client import client_address
from portal.extensions import limiter


def address_key() -> str:
    """The client address as throttling sees it: an IPv6 client is its /64 network (one
    subscriber holds the whole network, so counting single addresses would count nothing)."""
    raw = client_address()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _account(email: str | None) -> str:
    """The account an attempt names, spelt as sign-in looks it up."""
    return (email or "").strip().lower()[:254]


def account_address_key() -> str:
    """Failed sign-ins to one account from one address."""
    return f"sign-in:{_account(request.form.get('email'))}|{address_key()}"


def failed_sign_in(response) -> bool:
    """Only wrong credentials count against the limits; a refusal for waiting does not."""
    return bool(g.get("_sign_in_failed"))


# --- the growing delay per account ------------------------------------------------------------


def _setting(name: str) -> int:
    return int(current_app.config[name])


def _keys(account: str) -> tuple[str, str, str]:
    prefix = f"{current_app.config.get('RATELIMIT_KEY_PREFIX', '')}sign-in-delay/"
    return (prefix + "failures/" + account, prefix + "wait/" + account,
            prefix + "failed-here/" + account + "|" + address_key())


def delay_for(failures: int) -> int:
    """Seconds an account waits after `failures` failed sign-ins: none up to the threshold,
    then 1, 2, 4, … up to the cap."""
    beyond = failures - _setting("SIGN_IN_DELAY_AFTER_FAILURES")
    if beyond < 0:
        return 0
    return min(2 ** min(beyond, 30), _setting("SIGN_IN_DELAY_MAX_SECONDS"))


def sign_in_wait(email: str) -> int:
    """Seconds this address must still wait before trying `email` again; 0 to go ahead.

    An address that has not failed for this account never waits, whatever others did."""
    if not limiter.enabled:  # RATELIMIT_ENABLED=False switches every limit off
        return 0
    _failures, wait, failed_here = _keys(_account(email))
    storage = limiter.storage
    if not storage.get(failed_here) or not storage.get(wait):
        return 0
    return max(math.ceil(storage.get_expiry(wait) - time.time()), 1)


def note_failed_sign_in(email: str) -> None:
    """Count a failed sign-in to `email` from this address and start the account's delay."""
    g._sign_in_failed = True
    if not limiter.enabled:
        return
    failures, wait, failed_here = _keys(_account(email))
    window = _setting("SIGN_IN_FAILURE_WINDOW_SECONDS")
    storage = limiter.storage
    storage.incr(failed_here, window)
    delay = delay_for(storage.incr(failures, window))
    if delay:
        storage.clear(wait)
        storage.incr(wait, delay)
