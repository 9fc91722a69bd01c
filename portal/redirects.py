"""Redirect targets taken from the request stay on this site."""
from urllib.parse import urlsplit

from flask import url_for


def safe_next(target: str | None) -> str:
    """Only a path on this site; anything with a scheme or host goes home instead."""
    if not target:
        return url_for("web.home")
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return url_for("web.home")
    return target
