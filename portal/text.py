"""User text as the portal keeps it: one cleaner for every form, import and query string.

PostgreSQL refuses NUL in text, and invisible control characters pasted from spreadsheets
make two equal-looking values differ; both are dropped everywhere, by this module only.
"""
import re
import unicodedata

from flask_babel import gettext as _

from portal.errors_domain import DomainError

# C0 controls and DEL; tab and newline survive in multi-line text only.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROLS_ONE_LINE = re.compile(r"[\x00-\x1f\x7f]")


def clean(value, *, multiline: bool = False, limit: int | None = None) -> str:
    """`value` as text: a non-string is "", NUL and control characters dropped, NFC-normalised,
    stripped, cut at `limit` characters. Multi-line text keeps newlines (Windows line ends
    become \\n) and tabs; one-line text turns them into spaces."""
    if not isinstance(value, str):
        return ""
    if multiline:
        text = _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    else:
        text = _CONTROLS_ONE_LINE.sub("", re.sub(r"[\t\r\n]+", " ", value))
    text = unicodedata.normalize("NFC", text).strip()
    return text[:limit] if limit is not None else text


def clean_or_none(value):
    """For form filters (``filters=[clean_or_none]``): strings cleaned, anything else kept."""
    return clean(value, multiline="\n" in value) if isinstance(value, str) else value


def bounded(value, field: str, *, required: bool, low: int = 3, high: int = 2000) -> str:
    """Multi-line text of `low`..`high` characters; optional text may be empty or short."""
    text = clean(value, multiline=True)
    if not text and not required:
        return ""
    low = low if required else 1  # an optional note may be short ("ok")
    if not low <= len(text) <= high:
        raise DomainError(_("Write between %(low)s and %(high)s characters.", low=low,
                            high=high), field=field)
    return text


def query_text(name: str = "q", limit: int = 100) -> str:
    """A search box's text from the query string, cleaned and cut."""
    from flask import request

    return clean(request.args.get(name, ""), limit=limit)
