"""HQ's settlement configuration: rate card versions, settings and dispositions, and the
approvers' out-of-office delegations."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import allow, performs
from portal.clock import local_today
from portal.commit import done, perform
from portal.extensions import db
from portal.navigation import add_nav
from settlement import config, delegation
from settlement.forms import DelegationForm, DispositionsForm, RateCardForm, SettingsForm
from settlement.kinds import RATE_TERM_NAMES, RATE_TERMS
from settlement.models import Delegation, RateCard
from settlement.policy import DELEGATORS, HQ_READERS
from settlement.views import bp, locale
from tenants.models import SERVICE_TYPE_LABELS, ProductLine, ServiceType

add_nav("settlement.rate_cards", _l("Rate cards"), HQ_READERS, order=41, group="money")
add_nav("settlement.delegations", _l("Delegations"), DELEGATORS, order=42, group="money")


# --- rate cards ------------------------------------------------------------------------------


@bp.route("/rate-cards/")
@allow(*HQ_READERS)
def rate_cards():
    cards = list(db.session.scalars(select(RateCard).order_by(RateCard.effective_from.desc())))
    in_force = config.rate_card_in_force(local_today())
    return render_template("settlement/rate_cards.html", cards=cards, in_force=in_force,
                           settings=config.current_settings())


def _lines() -> list[ProductLine]:
    return list(db.session.scalars(select(ProductLine).order_by(ProductLine.code)))


@bp.route("/rate-cards/<int:rate_card_id>")
@allow(*HQ_READERS)
def rate_card(rate_card_id):
    card = db.first_or_404(select(RateCard).where(RateCard.id == rate_card_id))
    return render_template("settlement/rate_card.html", card=card, used=config.rate_card_is_used(
        card), lines={p.id: p for p in _lines()}, types=SERVICE_TYPE_LABELS, locale=locale(),
        terms=RATE_TERMS)


def _fill(form: RateCardForm, card: RateCard | None) -> list[tuple]:
    """One fee row per product line × service type, from `card` (or empty) on first show."""
    lines = _lines()
    keys = [(p, t) for p in lines for t in ServiceType]
    if not form.is_submitted():
        fees = {(f.product_line_id, f.service_type): f for f in (card.fees if card else [])}
        rates = {r.tier: r.hourly_rate for r in (card.tier_rates if card else [])}
        while len(form.tier_rates) < 5:
            form.tier_rates.append_entry()
        for n, entry in enumerate(form.tier_rates, start=1):
            entry.data = rates.get(n)
        while form.fees.entries:
            form.fees.pop_entry()
        for line, kind in keys:
            fee = fees.get((line.id, kind.value))
            form.fees.append_entry({
                "product_line_id": line.id, "service_type": kind.value,
                **({name: getattr(fee, name) for name in RATE_TERM_NAMES} if fee else {})})
    labels = {(str(p.id), t.value): (p.name(locale()), SERVICE_TYPE_LABELS[t]) for p, t in keys}
    return [(entry, labels.get((str(entry.product_line_id.data), entry.service_type.data)))
            for entry in form.fees]


def _card_data(form: RateCardForm) -> dict:
    fees = []
    for entry in form.fees:
        try:
            line_id = int(entry.product_line_id.data)
        except (TypeError, ValueError):
            line_id = None  # refused by the service as an unknown product line
        fees.append({"product_line_id": line_id, "service_type": entry.service_type.data,
                     **{n: getattr(entry, n).data for n in RATE_TERM_NAMES}})
    return {"effective_from": form.effective_from.data, "note": form.note.data,
            "tier_rates": {n: e.data for n, e in enumerate(form.tier_rates, start=1)},
            "fees": fees}


def _rate_card_form(card: RateCard | None, copy_from: RateCard | None, title: str):
    form = RateCardForm(obj=card) if card else RateCardForm()
    if card is not None and not form.is_submitted():
        form.version.data = card.version
    rows = _fill(form, card or copy_from)
    if form.validate_on_submit():
        if card is None:
            ok, saved = perform(config.create_rate_card, _card_data(form), form=form)
        else:
            ok, saved = perform(config.change_rate_card, card, _card_data(form), form=form,
                                seen_version=form.version.data)
        if ok:
            flash(_("Rate card in force from %(date)s saved.", date=saved.effective_from),
                  "success")
            return redirect(url_for("settlement.rate_card", rate_card_id=saved.id))
    valid_ids = {str(p.id) for p in _lines()}
    rows = [(entry, label) for entry, label in rows
            if label and str(entry.product_line_id.data) in valid_ids]
    return render_template("settlement/rate_card_form.html", form=form, rows=rows, title=title,
                           card=card, terms=RATE_TERMS)


@bp.route("/rate-cards/new", methods=["GET", "POST"])
@performs("settlement.rate_card_created")
def rate_card_new():
    return _rate_card_form(None, config.rate_card_in_force(local_today()),
                           _("New rate card version"))


@bp.route("/rate-cards/<int:rate_card_id>/edit", methods=["GET", "POST"])
@performs("settlement.rate_card_changed")
def rate_card_edit(rate_card_id):
    card = db.first_or_404(select(RateCard).where(RateCard.id == rate_card_id))
    if config.rate_card_is_used(card):
        flash(_("Submitted settlements used this version: its rates are history. Create a new "
                "version with its own effective date."), "warning")
        return redirect(url_for("settlement.rate_card", rate_card_id=card.id))
    return _rate_card_form(card, None, _("Edit the rate card from %(date)s",
                                         date=card.effective_from))


# --- settings and dispositions ----------------------------------------------------------------


def _settings_page(settings_form=None, dispositions_form=None, status=200):
    current = config.current_settings()
    if settings_form is None:
        settings_form = SettingsForm(formdata=None, obj=current,
                                     version=config.settings_record().version)
    if dispositions_form is None:
        dispositions_form = DispositionsForm(formdata=None, data=config.current_dispositions())
    return render_template("settlement/configuration.html", settings_form=settings_form,
                           dispositions_form=dispositions_form), status


@bp.route("/configuration")
@allow(*HQ_READERS)
def configuration():
    return _settings_page()


@bp.route("/configuration/settings", methods=["POST"])
@performs("settlement.settings_changed")
def save_settings():
    form = SettingsForm()
    if form.validate_on_submit():
        data = {name: getattr(form, name).data for name in config.SETTING_NAMES}
        if perform(config.save_settings, config.settings_record(), data, form=form,
                   seen_version=form.version.data or 0):
            return done(_("Settings saved. They apply to claims checked from now on."),
                        "settlement.configuration")
    return _settings_page(settings_form=form, status=400)


@bp.route("/configuration/dispositions", methods=["POST"])
@performs("settlement.dispositions_changed")
def save_dispositions():
    from settlement import rules

    form = DispositionsForm()
    if form.validate_on_submit():
        wanted = {code: getattr(form, code).data for code in rules.EXCEPTION_CODES}
        if perform(config.save_dispositions, wanted, form=form):
            return done(_("Dispositions saved."), "settlement.configuration")
    return _settings_page(dispositions_form=form, status=400)


# --- delegations ------------------------------------------------------------------------------


def _delegations_page(form: DelegationForm, status: int = 200):
    given, held = delegation.my_delegations(current_user)
    return render_template("settlement/delegations.html", form=form, given=given, held=held,
                           today=local_today()), status


def _delegation_form() -> DelegationForm:
    form = DelegationForm()
    form.delegate_id.choices = [(0, "—")] + delegation.delegate_choices(current_user)
    return form


@bp.route("/delegations", methods=["GET", "POST"])
@performs("settlement.delegation_created")
def delegations():
    form = _delegation_form()
    if form.validate_on_submit():
        if perform(delegation.create_delegation, current_user._get_current_object(),
                   form.delegate_id.data, form.starts_on.data, form.ends_on.data,
                   form.note.data, local_today(), form=form):
            return done(_("Delegation saved."), "settlement.delegations")
    elif not form.is_submitted():
        form.starts_on.data = form.ends_on.data = local_today()
    return _delegations_page(form, 400 if form.errors or form.form_errors else 200)


@bp.route("/delegations/<int:delegation_id>/end", methods=["POST"])
@performs("settlement.delegation_ended")
def end_delegation(delegation_id):
    record = db.first_or_404(select(Delegation).where(Delegation.id == delegation_id))
    form = _delegation_form()
    if not perform(delegation.end_delegation, record, form=form):
        return _delegations_page(form, 400)
    return done(_("Delegation ended."), "settlement.delegations")
