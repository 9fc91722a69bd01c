"""A settlement's page: what the reader may do there and the forms for it."""
from flask import current_app, render_template
from flask_babel import get_locale
from flask_login import current_user

from portal.auth.roles import AGENCY_ROLES, Role
from portal.clock import local_today
from settlement import building, config, delegation, evidence, queries, rules, statement
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
from settlement.models import AppealStatus, Settlement, Status


def in_hq_review(settlement: Settlement) -> bool:
    return settlement.status == Status.SUBMITTED and not settlement.awaits_regional_review


def reviews_lines(settlement: Settlement) -> bool:
    """HQ's reviewer decides the lines now: the page shows undecided exceptions first."""
    return in_hq_review(settlement) and current_user.role == Role.HQ_SETTLEMENT


def permissions(settlement: Settlement) -> dict:
    """Which actions the page offers (the services check them again)."""
    role, today = current_user.role, local_today()
    owner = role == Role.AGENCY_OWNER
    in_review = in_hq_review(settlement)
    regional = False
    if settlement.awaits_regional_review and role in (Role.REGIONAL_MANAGER,
                                                      Role.HQ_SETTLEMENT, Role.HQ_ADMIN):
        region_id = building.agency_of(settlement).region_id
        regional = delegation.regional_review_power(current_user, region_id, today).allowed
    approve = False
    if in_review and role in (Role.HQ_SETTLEMENT, Role.HQ_ADMIN):
        power = (delegation.second_approval_power if settlement.first_approved_at
                 else delegation.first_approval_power)(current_user, today)
        approve = power.allowed
    return {
        "edit": owner and settlement.is_editable,
        "refresh": owner and settlement.status == Status.DRAFT,
        "appeal": owner and settlement.status in (Status.SUBMITTED, Status.APPROVED,
                                                  Status.RETURNED),
        "regional": regional,
        "decide": reviews_lines(settlement),
        "approve": approve,
        "return": in_review and role in (Role.HQ_SETTLEMENT, Role.HQ_ADMIN),
        "pay": settlement.status == Status.APPROVED and role == Role.HQ_SETTLEMENT,
    }


def _forms(settlement: Settlement, data: dict, can: dict) -> dict:
    version = settlement.version
    forms = {"action": ActionForm(formdata=None, version=version)}
    if can["edit"]:
        forms["add_order"] = AddOrderForm(formdata=None, version=version)
        upload = UploadForm(formdata=None)
        upload.line_id.choices = evidence_choices(data)
        forms["upload"] = upload
    if can["regional"]:
        forms["regional"] = RegionalReviewForm(formdata=None, version=version)
    if can["return"]:
        forms["return"] = CommentForm(formdata=None, version=version)
    if can["pay"]:
        forms["pay"] = PayForm(formdata=None, version=version, paid_on=local_today())
    for line in data["lines"]:
        appeal = data["appeals"].get(line.id)
        if can["decide"] and not (appeal and appeal.status == AppealStatus.OPEN):
            forms[f"decide-{line.id}"] = DecideLineForm(
                formdata=None, version=version, amount=str(line.claimed_amount),
                decision="adjusted" if line.decision == "pending" and line.disposition !=
                "pay" else "approved")
        if can["appeal"] and line.is_adjustable and appeal is None:
            forms[f"appeal-{line.id}"] = AppealForm(formdata=None, version=version)
        if can["decide"] and appeal and appeal.status == AppealStatus.OPEN:
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
    can = permissions(settlement)
    data = queries.lines_page(settlement, first_exceptions=can["decide"])
    forms = _forms(settlement, data, can)
    for key, form in (failed or {}).items():
        if key == "upload":
            form.line_id.choices = evidence_choices(data)
        forms[key] = form
    is_hq = current_user.role not in AGENCY_ROLES
    locale = str(get_locale())
    return render_template(
        "settlement/settlement.html", s=settlement, data=data, forms=forms, can=can,
        is_hq=is_hq, settings=config.current_settings(),
        dispositions=config.current_dispositions() if is_hq else {},
        visible_codes=lambda codes: rules.visible_codes(codes, is_hq),
        max_mb=evidence.max_bytes() // (1024 * 1024), locale=locale,
        # Forms of a line send the page back, so that a refusal shows the same page.
        page=data["page"], at_page=data["page"].page if data["page"].page > 1 else None,
        ordered_lines=[(data["numbers"][ln.id], ln) for ln in data["lines"]],
        explain=lambda line: statement.explanation(line, data["repairs"].get(
            line.work_order_id, [])),
        subject=lambda line: statement.line_subject(line, locale),
        adjusters=_adjusters(settlement) if is_hq else set()), status


def page_of_line(settlement: Settlement, line_id: int) -> int:
    """The page of the settlement's lines on which the reader finds a line."""
    position = queries.line_position(settlement, line_id,
                                     first_exceptions=reviews_lines(settlement))
    return (position - 1) // current_app.config["PAGE_SIZE"] + 1


def _adjusters(settlement: Settlement) -> set[int]:
    from settlement.review import adjusters

    return adjusters(settlement)
