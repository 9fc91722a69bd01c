"""Sign-in throttling keys: per account and per client address (Flask-Limiter counts them)."""
from flask import request


def account_key() -> str:
    return "sign-in:" + (request.form.get("email") or "").strip().lower()[:254]


def failed_sign_in(response) -> bool:
    """Only failed attempts count against the limits (a success redirects)."""
    return response.status_code != 302
