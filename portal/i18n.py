"""Languages: locale choice, Babel formatting for templates, and the catalogs of each area."""
import re
import subprocess
import sys
from decimal import Decimal

import click
from babel.lists import format_list
from babel.numbers import format_currency
from flask import current_app, g, has_request_context, request, session
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_login import current_user
from markupsafe import Markup

from portal.config import PROJECT_ROOT

TRANSLATIONS = PROJECT_ROOT / "translations"

# One catalog per area, each extracted from its package and templates. Flask-Babel merges them.
CATALOGS = {
    "portal": ["portal", "templates/portal", "templates/errors", "templates/base.html",
               "templates/_macros.html"],
    "tenants": ["tenants", "templates/tenants"],
    "certification": ["certification", "templates/certification"],
    "service": ["service", "templates/service"],
    "dispatch": ["dispatch", "templates/dispatch"],
    "settlement": ["settlement", "templates/settlement"],
    "evaluation": ["evaluation", "templates/evaluation"],
    "inbox": ["inbox", "templates/inbox"],
    "api": ["api", "templates/api"],
}


def translation_directories() -> list[str]:
    return [str(TRANSLATIONS / name) for name in CATALOGS]


def select_locale() -> str:
    """The user's preference, then the session's choice, then Accept-Language."""
    supported = current_app.config["PORTAL_LOCALES"]
    if not has_request_context():
        return g.get("_cli_locale") or current_app.config["BABEL_DEFAULT_LOCALE"]
    from portal.auth.sessions import token_path

    if token_path(request.path) is not None:
        # A machine's call: the language it asks for, then its account's.
        asked = request.accept_languages.best_match(supported)
        if asked:
            return asked
    if current_user.is_authenticated and current_user.locale in supported:
        return current_user.locale
    if session.get("locale") in supported:
        return session["locale"]
    return request.accept_languages.best_match(supported) or current_app.config[
        "BABEL_DEFAULT_LOCALE"
    ]


def format_money(amount) -> str:
    """CNY for the reader's locale. Amounts are already exact fen: format, never round here."""
    if amount is None:
        return "—"
    value = Decimal(amount)
    return format_currency(value, "CNY", locale=str(get_locale()), decimal_quantization=False)


# Dates people read: the month in words in English ("Dec 5, 2026", never "12/5/26"), and the
# same day in every page of a language. "short" and "medium" (the filters' defaults) both give
# these; "long" and "full" and explicit patterns go to Babel as they are.
DATE_PATTERNS = {"en": "MMM d, y", "zh": "y年M月d日"}
DATETIME_PATTERNS = {"en": "MMM d, y, HH:mm", "zh": "y-MM-dd HH:mm"}
# A money amount is one word: nothing may wrap between a minus and the currency sign.
_WORD_JOINER = "\u2060"


def _pattern(patterns: dict, fmt: str) -> str:
    if fmt not in ("short", "medium"):
        return fmt
    return patterns.get(get_locale().language, fmt)


def date_filter(value, fmt: str = "medium") -> str:
    return format_date(value, _pattern(DATE_PATTERNS, fmt)) if value else "—"


def datetime_filter(value, fmt: str = "short") -> str:
    return format_datetime(value, _pattern(DATETIME_PATTERNS, fmt)) if value else "—"


def money_filter(amount) -> str:
    """format_money for pages: the amount never breaks across lines (a word joiner after
    the minus). Exports and PDFs that need the plain text call format_money."""
    text = format_money(amount)
    return text.replace("-", "-" + _WORD_JOINER, 1) if text.startswith("-") else text


def phone_link(number) -> Markup:
    """A phone number people can tap: a tel: link, never wrapped. A masked number (138****5678)
    is shown as text: there is nothing to call."""
    if not number:
        return Markup("—")
    dial = re.sub(r"[^0-9+]", "", str(number))
    if "*" in str(number) or not dial:
        return Markup('<span class="text-nowrap">{}</span>').format(number)
    return Markup('<a class="text-nowrap" href="tel:{}">{}</a>').format(dial, number)


def init_app(app) -> None:
    app.jinja_env.filters.update(
        date=date_filter,
        datetime=datetime_filter,
        number=lambda v: format_decimal(v) if v is not None else "—",
        money=money_filter,
        phone=phone_link,
        # ["状态", "金额"] → "状态和金额" / "Status and Amount": the reader's way of listing.
        wordlist=lambda items: format_list([str(i) for i in items], locale=str(get_locale())),
    )
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
    app.cli.add_command(translate)


@click.group()
def translate():
    """Extract, update and compile the message catalogs of every area."""


def _pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True,  # noqa: S603
                   cwd=PROJECT_ROOT)


@translate.command()
@click.argument("areas", nargs=-1)
def update(areas):
    """Extract messages into the zh_CN/en catalogs of AREAS (default: every area)."""
    unknown = set(areas) - CATALOGS.keys()
    if unknown:
        raise click.BadParameter(f"unknown areas: {', '.join(sorted(unknown))}")
    for name, sources in CATALOGS.items():
        if areas and name not in areas:
            continue
        sources = [s for s in sources if (PROJECT_ROOT / s).exists()]
        pot = TRANSLATIONS / name / "messages.pot"
        pot.parent.mkdir(parents=True, exist_ok=True)
        _pybabel("extract", "-F", "pyproject.toml", "-k", "_l", "--no-location",
                 "--sort-output", "-o", str(pot), *sources)
        for locale in current_app.config["PORTAL_LOCALES"]:
            po = TRANSLATIONS / name / locale / "LC_MESSAGES" / "messages.po"
            command = "update" if po.exists() else "init"
            extra = ["--no-fuzzy-matching", "--ignore-obsolete"] if command == "update" else []
            _pybabel(command, "-i", str(pot), "-d", str(TRANSLATIONS / name), "-l", locale,
                     *extra)
        pot.unlink()
        _fill_source_language(TRANSLATIONS / name / "en" / "LC_MESSAGES" / "messages.po")


def _fill_source_language(po_path) -> None:
    """The source strings are English: the en catalog repeats them, so none reads untranslated."""
    from babel.messages.pofile import read_po, write_po

    with open(po_path, "rb") as f:
        catalog = read_po(f, locale="en")
    for message in catalog:
        if message.pluralizable and not any(message.string):
            message.string = message.id  # (singular, plural)
        elif message.id and not message.string:
            message.string = message.id
        message.flags.discard("fuzzy")
    with open(po_path, "wb") as f:
        write_po(f, catalog, width=100, omit_header=False)


@translate.command()
def compile():  # noqa: A001 - the command's name
    """Compile every catalog to .mo (the install step runs this)."""
    compile_catalogs()


def compile_catalogs() -> None:
    for name in CATALOGS:
        for po in sorted((TRANSLATIONS / name).glob("*/LC_MESSAGES/messages.po")):
            locale = po.parent.parent.name
            # Babel resolves "zh_CN" to zh_Hans_CN, and gettext then looks for that directory
            # (or "zh"): the compiled catalog goes where it will be found.
            target = _COMPILED_DIR.get(locale, locale)
            mo = TRANSLATIONS / name / target / "LC_MESSAGES" / "messages.mo"
            mo.parent.mkdir(parents=True, exist_ok=True)
            _pybabel("compile", "-i", str(po), "-o", str(mo), "-l", locale)


_COMPILED_DIR = {"zh_CN": "zh_Hans_CN"}
