"""zh_CN and English: complete catalogs, no bare template text, Babel formatting."""
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from portal.auth.roles import Role
from portal.i18n import CATALOGS, TRANSLATIONS
from tests.factories import sign_in

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted(area: str, tmp_path) -> set:
    sources = [s for s in CATALOGS[area] if (ROOT / s).exists()]
    if not sources:
        return set()
    pot = tmp_path / f"{area}.pot"
    command = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
               "pyproject.toml", "-k", "_l", "--no-location", "-o", str(pot), *sources]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # noqa: S603
    with open(pot, "rb") as f:
        return {m.id for m in read_po(f) if m.id}


def _catalog(area: str, locale: str, tmp_path):
    path = TRANSLATIONS / area / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        if _extracted(area, tmp_path):
            pytest.fail(f"{path} is missing: run `flask --app wsgi translate update {area}`")
        return []
    with open(path, "rb") as f:
        return read_po(f, locale=locale)


@pytest.mark.parametrize("area", sorted(CATALOGS))
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_catalog_is_complete_and_placeholders_match(area, locale, tmp_path):
    catalog = _catalog(area, locale, tmp_path)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if "fuzzy" in message.flags or not all(strings):
            problems.append(f"untranslated or fuzzy: {ids[0]!r}")
            continue
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders differ: {ids[0]!r} -> {string!r}")
    assert not problems, f"{area}/{locale}:\n" + "\n".join(problems)


@pytest.mark.parametrize("area", sorted(CATALOGS))
def test_catalog_holds_every_message_of_its_sources(area, tmp_path):
    extracted = _extracted(area, tmp_path)
    known = {m.id for m in _catalog(area, "zh_CN", tmp_path) if m.id}
    missing = sorted(str(m) for m in extracted - known)
    assert not missing, (f"messages not in translations/{area}; run `flask --app wsgi "
                         f"translate update {area}` and translate them: {missing[:20]}")


# Text a template may show without translation: symbols, numbers, the language names.
ALLOWED_TEXT = re.compile(r"^[\s\d.,:;·•…—–\-+/%()★▲▼|×#→←&;*]*$")
ALLOWED_WORDS = {"English", "中文", "CSV", "XLSX", "PDF", "SHA-256", "ID", "km", "L1", "L2",
                 "L3"}
VISIBLE_ATTRIBUTES = re.compile(r'\b(placeholder|title|alt|aria-label)="([^"{]+)"')


JINJA = re.compile(r"\{%-?\s*trans\b.*?endtrans\s*-?%\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}",
                   re.DOTALL)


def _template_texts(source: str) -> list[str]:
    """Literal text of a Jinja template outside tags, expressions and HTML markup."""
    # Keys to press (<kbd>j</kbd>) are the same in every language.
    without_jinja = re.sub(r"<kbd>[^<]{1,12}</kbd>", " ", JINJA.sub(" ", source))
    without_tags = re.sub(r"<[^>]*>", "\n", without_jinja)
    without_entities = re.sub(r"&\w+;|&#\d+;", " ", without_tags)
    return [t.strip() for t in without_entities.splitlines() if t.strip()]


def test_templates_hold_no_text_outside_the_translation_functions():
    problems = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        source = path.read_text(encoding="utf-8")
        if "/pdf/" in str(path.relative_to(ROOT)) and "{# i18n: data only #}" in source:
            continue
        for text in _template_texts(source):
            if ALLOWED_TEXT.match(text) or text in ALLOWED_WORDS:
                continue
            problems.append(f"{path.relative_to(ROOT)}: {text!r}")
        for attr, value in VISIBLE_ATTRIBUTES.findall(source):
            if value.strip() and not ALLOWED_TEXT.match(value):
                problems.append(f"{path.relative_to(ROOT)}: {attr}={value!r}")
    assert not problems, "\n".join(problems[:40])


def test_the_checker_catches_bare_text():
    assert _template_texts("<p>Hello {{ _('World') }}</p>") == ["Hello"]
    assert _template_texts("<p>{{ _('World') }}</p>") == []


def test_pages_follow_the_language_switch(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    client.post("/locale", data={"locale": "zh_CN"})
    body = client.get("/agencies/").get_data(as_text=True)
    assert "服务网络" in body and "Service network" not in body
    client.post("/locale", data={"locale": "en"})
    body = client.get("/agencies/").get_data(as_text=True)
    assert "Service network" in body


def test_the_choice_is_remembered_as_the_users_preference(app, client, world):
    user = world.user(Role.HQ_PARTS)
    sign_in(client, user)
    client.post("/locale", data={"locale": "zh_CN"})
    fresh = app.test_client()
    sign_in(fresh, user)
    assert "服务网络门户" in fresh.get("/").get_data(as_text=True)


def test_accept_language_is_the_default(client):
    body = client.get("/auth/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录" in body.get_data(as_text=True)


def test_unknown_locale_is_refused(client):
    assert client.post("/locale", data={"locale": "xx"}).status_code == 400


def test_money_dates_and_numbers_follow_the_locale(app):
    from datetime import date

    from flask_babel import force_locale

    from portal.i18n import format_money

    with app.test_request_context():
        with force_locale("zh_CN"):
            assert format_money(Decimal("1234.50")) == "¥1,234.50"
            assert app.jinja_env.filters["date"](date(2026, 11, 22)) == "2026年11月22日"
        with force_locale("en"):
            assert format_money(Decimal("1234.50")) == "CN¥1,234.50"
            assert app.jinja_env.filters["date"](date(2026, 11, 22)) == "Nov 22, 2026"
            # formatting never rounds half-even: amounts are already exact fen
            assert format_money(Decimal("0.125")) == "CN¥0.125"


def test_no_message_is_translated_two_ways_across_catalogs():
    """Flask-Babel merges the area catalogs: a msgid translated differently in two of them
    would show one area's word in another's page."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for area in sorted(CATALOGS):
        path = TRANSLATIONS / area / "zh_CN" / "LC_MESSAGES" / "messages.po"
        if not path.exists():
            continue
        with open(path, "rb") as f:
            for message in read_po(f, locale="zh_CN"):
                if not message.id or isinstance(message.id, tuple):
                    continue
                if message.id in seen and seen[message.id][1] != message.string:
                    clashes.append(f"{message.id!r}: {seen[message.id][0]}={seen[message.id][1]!r}"
                                   f" vs {area}={message.string!r}")
                seen.setdefault(message.id, (area, message.string))
    assert not clashes, "\n".join(clashes)
