"""HQ's settlement configuration: settings, exception dispositions and rate cards.

Reading falls back to the defaults until HQ admin first saves; editing is a service like any
other (checked, flushed, one audit entry). A rate card used by a submitted settlement is never
changed: a new version with its own effective date is.
"""
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal import clock
from portal.audit.services import changes
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import note, signals, transition
from settlement import policy, rules
from settlement.kinds import RATE_TERM_NAMES
from settlement.models import (
    Disposition,
    ExceptionDisposition,
    RateCard,
    RateCardFee,
    RateCardTierRate,
    Settlement,
    SettlementLine,
    SettlementSettings,
    Status,
)
from tenants.models import ProductLine, ServiceType


@dataclass(frozen=True)
class Settings:
    claim_window_days: int = 60
    duplicate_window_days: int = 30
    uncertified_share_pct: Decimal = Decimal("0.00")
    complaint_deduction: Decimal = Decimal("200.00")
    evidence_threshold: Decimal = Decimal("500.00")
    max_order_hours: Decimal = Decimal("4.00")
    second_approval_threshold: Decimal = Decimal("20000.00")
    grade_a_pct: Decimal = rules.DEFAULT_GRADE_PCT["A"]
    grade_b_pct: Decimal = rules.DEFAULT_GRADE_PCT["B"]
    grade_c_pct: Decimal = rules.DEFAULT_GRADE_PCT["C"]
    grade_d_pct: Decimal = rules.DEFAULT_GRADE_PCT["D"]

    def grade_pct(self, grade: str) -> Decimal:
        return getattr(self, f"grade_{grade.lower()}_pct")


SETTING_NAMES = tuple(f.name for f in fields(Settings))


def _settings_row() -> SettlementSettings | None:
    return db.session.scalars(select(SettlementSettings).where(SettlementSettings.id == 1)
                              ).one_or_none()


def current_settings() -> Settings:
    row = _settings_row()
    if row is None:
        return Settings()
    return Settings(**{name: getattr(row, name) for name in SETTING_NAMES})


def settings_version() -> int:
    row = _settings_row()
    return row.version if row is not None else 0


def _check_settings(data: dict) -> None:
    ranges = {"claim_window_days": (1, 3650), "duplicate_window_days": (0, 365)}
    for name, (low, high) in ranges.items():
        value = data[name]
        if not isinstance(value, int) or not low <= value <= high:
            raise DomainError(_("Enter a whole number from %(low)s to %(high)s.", low=low,
                                high=high), field=name)
    for name in SETTING_NAMES:
        value = data[name]
        if name in ranges:
            continue
        if not rules.is_fen(value):
            raise DomainError(_("Enter an amount with at most two decimals."), field=name)
        signed = name in ("grade_c_pct", "grade_d_pct", "grade_a_pct", "grade_b_pct")
        if not signed and value < 0:
            raise DomainError(_("This value cannot be negative."), field=name)
        if name.endswith("_pct") and not Decimal(-100) <= value <= Decimal(100):
            raise DomainError(_("Enter a percentage from -100 to 100."), field=name)
        if value > Decimal("100000000"):
            raise DomainError(_("This value is too large."), field=name)


def settings_record() -> SettlementSettings:
    """The settings row to change: the stored one, or the defaults (version 0) until HQ admin
    first saves."""
    row = _settings_row()
    if row is None:
        row = SettlementSettings(id=1, version=0, **{n: getattr(Settings(), n)
                                                     for n in SETTING_NAMES})
    return row


@transition("settlement.settings_changed", SettlementSettings, label=_l("Settings changed"),
            permission=policy.CHANGE_SETTINGS, versioned=True)
def save_settings(row: SettlementSettings, data: dict, *, acting_user) -> None:
    """Change the settings (`row` from :func:`settings_record`); raises DomainError for bad
    values."""
    _check_settings(data)
    before = {n: getattr(current_settings(), n) for n in SETTING_NAMES}
    if row not in db.session:
        db.session.add(row)
    for name in SETTING_NAMES:
        setattr(row, name, data[name])
    row.updated_by_id = acting_user.id if acting_user else None
    old, new = changes(before, {n: data[n] for n in SETTING_NAMES})
    note(before=old, after=new)


# --- the review limit (the workplace's setting) ----------------------------------------------

# Sent with no arguments; a receiver (the workplace, which escalates a settlement left in review
# too long) returns its limit in days. The settlement area keeps no second setting: without an
# answer no settlement is flagged.
review_limit_wanted = signals.signal("settlement.review_limit_wanted")


def review_limit_days() -> int | None:
    """Days a submitted settlement may wait in review before it is overdue, or None."""
    for _receiver, days in review_limit_wanted.send(None):
        if isinstance(days, int) and days > 0:
            return days
    return None


# --- dispositions ----------------------------------------------------------------------------


def current_dispositions() -> dict[str, str]:
    stored = dict(db.session.execute(select(ExceptionDisposition.code,
                                            ExceptionDisposition.disposition)).all())
    return {code: stored.get(code, rules.DEFAULT_DISPOSITIONS[code])
            for code in rules.EXCEPTION_CODES}


@transition("settlement.dispositions_changed", ExceptionDisposition,
            label=_l("Dispositions changed"), permission=policy.CHANGE_DISPOSITIONS)
def save_dispositions(wanted: dict[str, str], *, acting_user) -> None:
    """Set the disposition of each exception code (code → pay/review/deny); raises DomainError
    for unknown values. Audited as one change of the whole table (ExceptionDisposition "all")."""
    valid = {d.value for d in Disposition}
    for code, disposition in wanted.items():
        if code not in rules.EXCEPTION_CODES or disposition not in valid:
            raise DomainError(_("Choose pay, review or deny for each exception code."),
                              field=code if code in rules.EXCEPTION_CODES else None)
    before = current_dispositions()
    rows = {r.code: r for r in db.session.scalars(select(ExceptionDisposition))}
    for code, disposition in wanted.items():
        row = rows.get(code) or ExceptionDisposition(code=code)
        row.disposition = disposition
        row.updated_by_id = acting_user.id if acting_user else None
        db.session.add(row)
    old, new = changes(before, {**before, **wanted})
    note(before=old, after=new, object_type="ExceptionDisposition", object_id="all")


# --- rate cards ------------------------------------------------------------------------------


def rate_card_in_force(day: date) -> RateCard | None:
    """The version with the latest effective date on or before `day`."""
    return db.session.scalars(
        select(RateCard).where(RateCard.effective_from <= day)
        .options(selectinload(RateCard.fees), selectinload(RateCard.tier_rates))
        .order_by(RateCard.effective_from.desc()).limit(1)).first()


class RateBook:
    """Every rate card version, loaded once, for the lines of one settlement."""

    def __init__(self):
        self.cards = list(db.session.scalars(
            select(RateCard).options(selectinload(RateCard.fees),
                                     selectinload(RateCard.tier_rates))
            .order_by(RateCard.effective_from.desc())))

    def card_for(self, day: date) -> RateCard | None:
        return next((c for c in self.cards if c.effective_from <= day), None)

    def terms(self, day: date, product_line_id: int, service_type: str,
              tier: int) -> rules.Terms | None:
        card = self.card_for(day)
        if card is None:
            return None
        fee = next((f for f in card.fees if f.product_line_id == product_line_id
                    and f.service_type == service_type), None)
        rate = next((r for r in card.tier_rates if r.tier == tier), None)
        if fee is None or rate is None:
            return None
        return rules.Terms(rate_card_id=card.id, callout_fee=fee.callout_fee,
                           hourly_rate=rate.hourly_rate, free_km=fee.free_km,
                           per_km=fee.per_km, max_km=fee.max_km,
                           parts_handling_pct=fee.parts_handling_pct)


def rate_card_is_used(card: RateCard) -> bool:
    """Used by a line of a settlement that left the draft: its rates are history then."""
    return bool(db.session.scalar(
        select(func.count(SettlementLine.id)).join(
            Settlement, (Settlement.id == SettlementLine.settlement_id)
            & (Settlement.agency_id == SettlementLine.agency_id))
        .where(SettlementLine.rate_card_id == card.id,
               Settlement.status.notin_([Status.DRAFT, Status.WITHDRAWN]))))


def _check_rate_card(data: dict, card: RateCard | None) -> None:
    effective = data.get("effective_from")
    if not isinstance(effective, date):
        raise DomainError(_("Enter the date the rates take effect."), field="effective_from")
    taken = select(func.count(RateCard.id)).where(RateCard.effective_from == effective)
    if card is not None and card.id is not None:
        taken = taken.where(RateCard.id != card.id)
    if db.session.scalar(taken):
        raise DomainError(_("Another version already takes effect on this date."),
                          field="effective_from")
    tiers = data.get("tier_rates") or {}
    if sorted(tiers) != [1, 2, 3, 4, 5]:
        raise DomainError(_("Enter an hourly rate for each tier."), field="tier_rates")
    for amount in tiers.values():
        _amount(amount, "tier_rates")
    rows = data.get("fees") or []
    known = set(db.session.scalars(select(ProductLine.id)))
    if not rows or any(row.get("product_line_id") not in known for row in rows):
        raise DomainError(_("Enter the fees of every product line and service type."),
                          field="fees")
    for row in rows:
        for name in RATE_TERM_NAMES:
            _amount(row[name], "fees")
        if row["max_km"] < row["free_km"]:
            raise DomainError(_("The km cap cannot be below the free km."), field="fees")
        if row["parts_handling_pct"] > 100:
            raise DomainError(_("The parts handling fee is at most 100 percent."), field="fees")
        if row["service_type"] not in set(ServiceType):
            raise DomainError(_("Unknown service type."), field="fees")


def _amount(value, field: str) -> None:
    if not rules.is_fen(value) or not 0 <= value <= Decimal("1000000"):
        raise DomainError(_("Enter amounts from 0 to 1,000,000 with at most two decimals."),
                          field=field)


def _card_snapshot(card: RateCard) -> dict:
    return {"effective_from": card.effective_from, "note": card.note,
            "tier_rates": {str(r.tier): str(r.hourly_rate) for r in card.tier_rates},
            "fees": [[f.product_line_id, f.service_type,
                      *(str(getattr(f, name)) for name in RATE_TERM_NAMES)]
                     for f in card.fees]}


def _fill_card(card: RateCard, data: dict) -> None:
    card.effective_from, card.note = data["effective_from"], clean(data.get("note"),
                                                                   multiline=True)
    _set_children(card, data)


@transition("settlement.rate_card_created", RateCard, label=_l("Rate card created"),
            permission=policy.CREATE_RATE_CARD, creates=True, audit=_card_snapshot)
def create_rate_card(data: dict, *, acting_user) -> RateCard:
    """Create a rate card version.

    `data`: effective_from, note, tier_rates {tier: rate}, fees [{product_line_id,
    service_type, and each of kinds.RATE_TERMS}].
    Raises DomainError for bad values or a taken date.
    """
    _check_rate_card(data, None)
    card = RateCard(created_by_id=acting_user.id if acting_user else None)
    db.session.add(card)
    _fill_card(card, data)
    return card


@transition("settlement.rate_card_changed", RateCard, label=_l("Rate card changed"),
            permission=policy.CHANGE_RATE_CARD, versioned=True)
def change_rate_card(card: RateCard, data: dict, *, acting_user) -> RateCard:
    """Change a rate card version no submitted line has used (`data` as for
    :func:`create_rate_card`). Raises DomainError for bad values, a taken date or a used
    version."""
    _check_rate_card(data, card)
    if rate_card_is_used(card):
        raise DomainError(_("Submitted settlements used this version: its rates are "
                            "history. Create a new version with its own effective date."))
    before = _card_snapshot(card)
    _fill_card(card, data)
    db.session.flush()
    old, new = changes(before, _card_snapshot(card))
    note(before=old, after=new)
    return card


def _set_children(card: RateCard, data: dict) -> None:
    fees = {(f.product_line_id, f.service_type): f for f in card.fees}
    for row in data.get("fees") or []:
        key = (row["product_line_id"], row["service_type"])
        fee = fees.pop(key, None)
        if fee is None:
            fee = RateCardFee(product_line_id=key[0], service_type=key[1])
            card.fees.append(fee)
        for name in RATE_TERM_NAMES:
            setattr(fee, name, row[name])
    for fee in fees.values():
        card.fees.remove(fee)
    rates = {r.tier: r for r in card.tier_rates}
    for tier, amount in sorted(data["tier_rates"].items()):
        rate = rates.get(tier)
        if rate is None:
            rate = RateCardTierRate(tier=tier)
            card.tier_rates.append(rate)
        rate.hourly_rate = amount
    # A change of children alone must still bump the version (stale forms are refused).
    card.updated_at = clock.now()
