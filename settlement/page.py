"""A settlement's page: what the reader may do there and the forms for it."""
from flask import current_app, render_template
from flask_babel import get_locale
from flask_login import current_user

from portal import policy, transitions
from portal.auth.roles import AGENCY_ROLES
from portal.clock import local_today
from settlement import config, evidence, queries, review, rules, statement
from settlement.forms import (
    ActionForm,
    AddOrderForm,
    AppealForm,
    CommentForm,
    DecideLineForm,
    PayForm,
    RegionalReviewForm,
    ResolveAppealForm,
    UploadForm,
)
from settlement.models import AppealStatus, Settlement


def may(name: str, settlement: Settlement, user=None) -> bool:
    """Whether the transition `name` starts from the settlement's state and its policy lets
    `user` (the reader) perform it: the page offers only what the service accepts."""
    t = transitions.get(name)
    user = user if user is not None else current_user
    return ((t.source is None or t.state_of(settlement) in t.source)
            and policy.can(user, t.permission, settlement))


def reviews_lines(settlement: Settlement) -> bool:
    """HQ's reviewer decides the lines now: the page shows undecided exceptions first."""
    return settlement.in_hq_review and may("settlement.line_decided", settlement)


def offers(settlement: Settlement, adjusted_by: set[int]) -> dict:
    """Which actions the page offers the reader (the services check them again)."""
    in_review, today = settlement.in_hq_review, local_today()
    regional = (settlement.awaits_regional_review
                and may("settlement.regional_forwarded", settlement)
                and review.regional_power(current_user, settlement, today).allowed)
    approve = (in_review and may("settlement.approved", settlement)
               and review.approval_refusal(current_user, settlement, today,
                                           adjusted_by)[0] is None)
    return {
        "edit": may("settlement.order_added", settlement),
        "refresh": may("settlement.recalculated", settlement),
        "appeal": may("settlement.appealed", settlement),
        "regional": regional,
        "decide": reviews_lines(settlement),
        "approve": approve,
        "return": in_review and may("settlement.returned", settlement),
        "pay": may("settlement.paid", settlement),
    }


def _forms(settlement: Settlement, data: dict, offer: dict) -> dict:
    version = settlement.version
    forms = {"action": ActionForm(formdata=None, version=version)}
    if offer["edit"]:
        forms["add_order"] = AddOrderForm(formdata=None, version=version)
        upload = UploadForm(formdata=None)
        upload.line_id.choices = evidence_choices(data)
        forms["upload"] = upload
    if offer["regional"]:
        forms["regional"] = RegionalReviewForm(formdata=None, version=version)
    if offer["return"]:
        forms["return"] = CommentForm(formdata=None, version=version)
    if offer["pay"]:
        forms["pay"] = PayForm(formdata=None, version=version, paid_on=local_today())
    for line in data["lines"]:
        appeal = data["appeals"].get(line.id)
        if offer["decide"] and not (appeal and appeal.status == AppealStatus.OPEN):
            forms[f"decide-{line.id}"] = DecideLineForm(
                formdata=None, version=version, amount=str(line.claimed_amount),
                decision="adjusted" if line.decision == "pending" and line.disposition !=
                "pay" else "approved")
        if offer["appeal"] and line.is_adjustable and appeal is None:
            forms[f"appeal-{line.id}"] = AppealForm(formdata=None, version=version)
        if offer["decide"] and appeal and appeal.status == AppealStatus.OPEN:
            forms[f"resolve-{appeal.id}"] = ResolveAppealForm(
                formdata=None, version=version, amount=str(line.claimed_amount))
    return forms


def evidence_choices(data: dict) -> list[tuple[int, str]]:
    """The whole settlement and the lines of the page, by their numbers on the statement."""
    from flask_babel import gettext as _

    from settlement.statement import line_subject

    locale = str(get_locale())
    return [(0, _("The whole settlement"))] + [
        (line.id, _("Line %(n)s · %(subject)s", n=data["numbers"][line.id],
                    subject=line_subject(line, locale)))
        for line in data["lines"]]


def settlement_page(settlement: Settlement, failed: dict | None = None, status: int = 200):
    """The settlement's page with one page of its lines (a reviewer's undecided exceptions
    first); the statement and the exports hold every line."""
    is_hq = current_user.role not in AGENCY_ROLES
    adjusted_by = review.adjusters(settlement) if is_hq else set()
    offer = offers(settlement, adjusted_by)
    data = queries.lines_page(settlement, first_exceptions=offer["decide"])
    forms = _forms(settlement, data, offer)
    for key, form in (failed or {}).items():
        if key == "upload":
            form.line_id.choices = evidence_choices(data)
        forms[key] = form
    locale = str(get_locale())
    return render_template(
        "settlement/settlement.html", s=settlement, data=data, forms=forms,
        offers=offer, is_hq=is_hq, settings=config.current_settings(),
        dispositions=config.current_dispositions() if is_hq else {},
        visible_codes=lambda codes: rules.visible_codes(codes, is_hq),
        max_mb=evidence.max_bytes() // (1024 * 1024), locale=locale,
        # Forms of a line send the page back, so that a refusal shows the same page.
        page=data["page"], at_page=data["page"].page if data["page"].page > 1 else None,
        ordered_lines=[(data["numbers"][ln.id], ln) for ln in data["lines"]],
        explain=lambda line: statement.explanation(line, data["repairs"].get(
            line.work_order_id, [])),
        subject=lambda line: statement.line_subject(line, locale),
        adjusters=adjusted_by), status


def page_of_line(settlement: Settlement, line_id: int) -> int:
    """The page of the settlement's lines on which the reader finds a line."""
    position = queries.line_position(settlement, line_id,
                                     first_exceptions=reviews_lines(settlement))
    return (position - 1) // current_app.config["PAGE_SIZE"] + 1
