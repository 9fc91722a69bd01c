"""A settlement's page: what the reader may do there and the forms for it.

The agency reads its lines as cards; HQ reads them in a dense table (filtered, sorted and paged
in SQL, a reviewer's exceptions first) whose rows open inline, with a decision on many lines at
once and, for the approvers, what changed from claimed to approved.
"""
from flask import current_app, render_template, request
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from portal import policy, transitions
from portal.auth.roles import AGENCY_ROLES
from portal.clock import local_today
from settlement import config, delegation, evidence, queries, review, rules, statement
from settlement import policy as settlement_policy
from settlement.forms import (
    ActionForm,
    AddOrderForm,
    AppealForm,
    BulkDecideForm,
    CommentForm,
    DecideLineForm,
    PayForm,
    RegionalReviewForm,
    ResolveAppealForm,
    UploadForm,
)
from settlement.models import AppealStatus, Settlement, Status

# Events whose words the states module does not carry yet (see the helper's report).
SUMMARY_STATES = (Status.SUBMITTED, Status.APPROVED, Status.PAID)


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


def is_hq_reader() -> bool:
    return current_user.role not in AGENCY_ROLES


def review_page_size() -> int:
    """Lines per page of HQ's table (the agency's cards page by PAGE_SIZE)."""
    return int(current_app.config.get("SETTLEMENT_REVIEW_PAGE_SIZE", 100))


def current_view(settlement: Settlement) -> queries.LineView:
    """The table's view the request asks for (a reviewer starts with the exceptions)."""
    return queries.line_view(request.args, reviewer=reviews_lines(settlement))


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
        "decide_many": reviews_lines(settlement) and may("settlement.lines_decided", settlement),
        "approve": approve,
        "return": in_review and may("settlement.returned", settlement),
        "pay": may("settlement.paid", settlement),
    }


def approval_waits(settlement: Settlement, offer: dict, counts: dict,
                   adjusted_by: set[int]) -> str | None:
    """Why an approver cannot approve the claim now (the page then offers no approval), or
    None; for everyone else, None. Leaves offer["approve"] false whenever it answers."""
    if not (settlement.in_hq_review
            and policy.can(current_user, settlement_policy.APPROVE, settlement)):
        return None
    pending = counts.get("decision:pending", 0)
    if pending:
        why = ngettext("%(num)s line still waits for a decision.",
                       "%(num)s lines still wait for a decision.", pending)
    elif review.open_appeal_count(settlement):
        why = _("Decide the open appeals first.")
    elif not offer["approve"]:
        why = review.approval_refusal(current_user, settlement, local_today(), adjusted_by)[0]
    else:
        return None
    offer["approve"] = False
    return why


def _unique_ids(form, suffix) -> None:
    """Field ids of a form repeated per line, made unique (a label must name its field)."""
    for field in form:
        field.id = f"{field.id}-{suffix}"
        field.label.field_id = field.id


def _line_forms(settlement: Settlement, data: dict, offer: dict, forms: dict) -> None:
    version = settlement.version
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
    if offer["decide_many"]:
        forms["bulk"] = BulkDecideForm(formdata=None, version=version)
    _line_forms(settlement, data, offer, forms)
    return forms


def evidence_choices(data: dict) -> list[tuple[int, str]]:
    """The whole settlement and the lines of the page, by their numbers on the statement."""
    from settlement.statement import line_subject

    locale = str(get_locale())
    return [(0, _("The whole settlement"))] + [
        (line.id, _("Line %(n)s · %(subject)s", n=data["numbers"][line.id],
                    subject=line_subject(line, locale)))
        for line in data["lines"]]


def _lines(settlement: Settlement, is_hq: bool) -> dict:
    if is_hq:
        return queries.review_page(settlement, current_view(settlement), review_page_size())
    return queries.lines_page(settlement, first_exceptions=False)


def _here(data: dict, is_hq: bool) -> dict:
    """The query arguments that bring a form's answer back to the lines being read."""
    page = data["page"].page if data["page"].page > 1 else None
    args = data["view"].args() if is_hq else {}
    return {**args, **({"page": page} if page else {})}


def settlement_page(settlement: Settlement, failed: dict | None = None, status: int = 200):
    """The settlement's page with one page of its lines (HQ: the table's view); the statement
    and the exports hold every line."""
    is_hq = is_hq_reader()
    # The powers a page may show read the reader's delegations once (settlement.delegation):
    # read them first, so the count of queries does not depend on which powers are asked.
    delegation.delegations_to(current_user, local_today())
    adjusted_by = review.adjusters(settlement) if is_hq else set()
    offer = offers(settlement, adjusted_by)
    data = _lines(settlement, is_hq)
    approval_note = approval_waits(settlement, offer, data["counts"], adjusted_by)
    forms = _forms(settlement, data, offer)
    for key, form in (failed or {}).items():
        if key == "upload":
            form.line_id.choices = evidence_choices(data)
        forms[key] = form
    for key, form in forms.items():
        if key.startswith(("decide-", "appeal-", "resolve-")):
            _unique_ids(form, key.split("-", 1)[1])
    locale = str(get_locale())
    # Read for every HQ reader whatever the state (a few aggregates, none over a draft), so
    # the page's query count does not depend on the state; shown from submission on.
    summary = queries.change_summary(settlement) if is_hq else None
    if settlement.status not in SUMMARY_STATES:
        summary = None
    return render_template(
        "settlement/settlement.html", s=settlement, data=data, forms=forms,
        offers=offer, is_hq=is_hq, settings=config.current_settings(),
        dispositions=config.current_dispositions() if is_hq else {},
        visible_codes=lambda codes: rules.visible_codes(codes, is_hq),
        max_mb=evidence.max_bytes() // (1024 * 1024), locale=locale,
        # Forms of a line send the page back, so that a refusal shows the same page.
        page=data["page"], here_args=_here(data, is_hq),
        at_page=data["page"].page if data["page"].page > 1 else None,
        ordered_lines=[(data["numbers"][ln.id], ln) for ln in data["lines"]],
        explain=lambda line: statement.explanation(line, data["repairs"].get(
            line.work_order_id, [])),
        subject=lambda line: statement.line_subject(line, locale),
        adjusters=adjusted_by, approval_note=approval_note, summary=summary,
        short_codes=rules.EXCEPTION_SHORT_LABELS), status


def page_of_line(settlement: Settlement, line_id: int) -> int | None:
    """The page of the settlement's lines on which the reader finds a line (HQ: in the table's
    view, None when the view does not show it)."""
    if is_hq_reader():
        position = queries.view_position(settlement, line_id, current_view(settlement))
        size = review_page_size()
    else:
        position = queries.line_position(settlement, line_id, first_exceptions=False)
        size = current_app.config["PAGE_SIZE"]
    return None if position is None else (position - 1) // size + 1
