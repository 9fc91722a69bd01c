"""Response headers that every response carries."""
from flask import request

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def set_security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if not _is_static_asset():
        # Pages, downloads (CSV, PDF, evidence), JSON: all carry one user's or one agency's
        # data, so no browser or proxy keeps them, whatever the view (or send_file) said.
        headers["Cache-Control"] = "no-store"
    return response


def _is_static_asset() -> bool:
    """The public files under /static and Bootstrap's: the same for everyone."""
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")
