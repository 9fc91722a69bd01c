"""Errors as ``application/problem+json`` (RFC 9457), in the caller's language.

Every error under ``/api/`` comes here (portal.errors hands them over): a refused rule, a
foreign or missing id (404, the same for both), bad fields (422, listed), a stale ETag (412),
a rate limit (429 with Retry-After), the database busy (503).
"""
import math
import time

from flask import json, make_response, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from portal.errors import MESSAGES

MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: _l("Bad request"),
    401: _l("Not signed in"),
    403: _l("Forbidden"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    406: _l("Not acceptable"),
    409: _l("Conflict"),
    412: _l("Precondition failed"),
    413: _l("Too large"),
    415: _l("Unsupported media type"),
    422: _l("Unprocessable content"),
    428: _l("Precondition required"),
    429: _l("Too many requests"),
    500: _l("Internal error"),
    503: _l("Service unavailable"),
}

DETAILS = {
    401: _l("Send a valid token: Authorization: Bearer <token>. A token that expired or was "
            "revoked, or whose account was deactivated, no longer works."),
    404: _l("This resource does not exist, or you have no access to it."),
    406: _l("This resource answers in JSON only."),
    412: _l("The resource changed since you read it (its ETag differs from If-Match). Read "
            "it again and retry."),
    415: _l("Send the body as JSON (Content-Type: application/json)."),
    422: _l("Some fields are not valid; see errors."),
    428: _l("Send If-Match with the ETag you read: changes to this resource are checked "
            "against the version you saw."),
    429: _l("Too many requests for this token. Wait for the time in Retry-After."),
}

# Marshmallow's and webargs' words for a bad field, in the caller's language.
FIELD_MESSAGES = {
    "Missing data for required field.": _l("This field is required."),
    "Unknown field.": _l("Unknown field."),
    "Not a valid string.": _l("Not a valid text."),
    "Not a valid integer.": _l("Not a valid whole number."),
    "Not a valid number.": _l("Not a valid number."),
    "Not a valid boolean.": _l("Not a valid true or false."),
    "Not a valid datetime.": _l("Not a valid date and time (ISO 8601)."),
    "Not a valid date.": _l("Not a valid date (YYYY-MM-DD)."),
    "Field may not be null.": _l("This field may not be empty."),
    "Invalid input type.": _l("Not the expected kind of value."),
    "Invalid value.": _l("Not a valid value."),
    "Not a valid list.": _l("Not a valid list."),
    "Invalid input.": _l("Not a valid value."),
}


def _field_message(text) -> str:
    if not isinstance(text, str):
        return str(text)
    known = FIELD_MESSAGES.get(text)
    if known is not None:
        return str(known)
    if text.startswith("Must be one of:"):
        return _("Not one of the allowed values: %(values)s",
                 values=text.partition(":")[2].strip().rstrip("."))
    if text.startswith(("Longer than maximum length", "Length must be")):
        return _("Too long or too short: %(rule)s", rule=text)
    if text.startswith(("Must be greater", "Must be less")):
        return _("Out of the allowed range: %(rule)s", rule=text)
    return text


def field_errors(messages) -> list[dict]:
    """webargs' nested messages ({location: {field: [text]}}) as a flat list."""
    found = []

    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, [*path, str(key)])
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            for text in value:
                found.append({"field": ".".join(path), "message": _field_message(text)})
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, [*path, str(index)])
        else:
            found.append({"field": ".".join(path), "message": _field_message(value)})

    walk(messages or {}, [])
    for item in found:  # the location (json, query, headers) is not part of a field's name
        head, _sep, tail = item["field"].partition(".")
        if head in ("json", "query", "headers", "form", "files", "path") and tail:
            item["field"] = tail
    return found


def problem(status: int, detail=None, *, errors=None, headers=None):
    """A problem document as a response."""
    body = {
        "type": "about:blank",
        "title": str(TITLES.get(status, _l("Error"))),
        "status": status,
        "detail": str(detail if detail is not None else
                      DETAILS.get(status) or (MESSAGES[status]() if status in MESSAGES else
                                              TITLES.get(status, _l("Error")))),
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    response = make_response(json.dumps(body, ensure_ascii=False), status)
    response.mimetype = MEDIA_TYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["Content-Language"] = str(get_locale()).replace("_", "-")
    return response


def retry_after() -> int:
    from portal.extensions import limiter

    limit = limiter.current_limit
    if limit is None:
        return 60
    return max(1, math.ceil(limit.reset_at - time.time()))


def render(code: int, message, error):
    """The renderer portal.errors calls for every error under the API's prefix."""
    headers = {}
    errors = None
    data = getattr(error, "data", None) if isinstance(error, HTTPException) else None
    if data:
        errors = field_errors(data.get("messages") or data.get("errors"))
        headers.update(data.get("headers") or {})
        message = data.get("message") or message
    if code == 429:
        headers["Retry-After"] = str(retry_after())
        message = None
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if code == 503:
        headers["Retry-After"] = "5"
    if code == 405 and isinstance(error, HTTPException):
        allowed = error.get_headers()
        headers.update({k: v for k, v in allowed if k == "Allow"})
    if code not in TITLES:
        code = 500 if code >= 500 else 400
    return problem(code, message, errors=errors, headers=headers), code
