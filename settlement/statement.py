"""The settlement statement as plain values: one source for the PDF, the CSV and the XLSX.

Amounts stay Decimals here (exact fen); the PDF formats them with Babel and writes the totals
in Chinese capitals too (portal.capitals), the exports write them as they are (typed cells in
the XLSX, portal.exports). Texts are built in the reader's language.
"""
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import clock
from portal.capitals import rmb_capitals
from portal.i18n import format_money
from settlement import kinds, rules
from settlement.models import Decision
from settlement.states import DECISION_LABELS, stage_label
from tenants.models import SERVICE_TYPE_LABELS

# The sign-offs a statement prints (settlement.queries.signoffs), in the order they happen.
SIGNOFF_LABELS = {
    "submitted": _l("Submitted by the agency"),
    "regional": _l("Regional review"),
    "first": _l("First approval"),
    "second": _l("Second approval"),
    "paid": _l("Marked paid"),
}


def local_stamp(moment: datetime) -> str:
    """An instant on the network's wall clock, with the zone, as documents print it:
    "2026-12-05 01:03 (Asia/Shanghai, UTC+08:00)"."""
    local = clock.to_local(moment)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} ({local.tzinfo.key}, UTC{offset[:3]}:{offset[3:]})"


def line_subject(line, locale: str) -> str:
    """What the line is about, as its kind (settlement.kinds) prints it."""
    return kinds.spec(line.kind).subject(line, locale) or "—"


def explanation(line, repairs) -> list[str]:
    """How the line's amount was worked out, step by step, in the reader's language."""
    explain = kinds.spec(line.kind).explanation
    if explain is not None:
        return explain(line)
    m = format_money
    if line.rate_card_id is None:
        return [str(rules.RULE_LABELS[rules.RULE_NO_RATE])]
    codes = ", ".join(f"{r.repair_code.code} {r.standard_hours} h" for r in repairs) or "—"
    steps = [
        _("Call-out fee: %(fee)s", fee=m(line.callout_fee)),
        _("Labor: %(hours)s h (%(codes)s) × %(rate)s (tier %(tier)s) × %(share)s %% = %(fee)s",
          hours=line.labor_hours, codes=codes, rate=m(line.hourly_rate), tier=line.tier,
          share=line.labor_share_pct, fee=m(line.labor_fee)),
    ]
    if line.distance_km is not None:
        steps.append(_("Distance: %(km)s km, cap %(cap)s km, free %(free)s km → %(paid)s km × "
                       "%(per)s = %(fee)s", km=line.distance_km, cap=line.max_km,
                       free=line.free_km, paid=line.paid_km, per=m(line.per_km),
                       fee=m(line.distance_fee)))
    steps.append(_("Parts handling: %(pct)s %% × %(value)s = %(fee)s",
                   pct=line.parts_handling_pct, value=m(line.parts_value),
                   fee=m(line.parts_handling_fee)))
    steps += [str(rules.RULE_LABELS[r]) for r in line.rules if r in rules.RULE_LABELS]
    return steps


def build(settlement, data: dict, locale: str, *, is_hq: bool,
          signoffs: dict | None = None) -> dict:
    """The statement of `settlement` from queries.detail() (and queries.signoffs() for the
    document; the exports list lines only), as plain values."""
    agency = settlement.agency
    lines = []
    for n, line in enumerate(data["lines"], start=1):
        codes = rules.visible_codes(line.codes, is_hq)
        reason = ""
        if line.reason_code:
            reason = str(rules.REASON_LABELS.get(line.reason_code, line.reason_code))
            if line.reason_text in rules.EXCEPTION_LABELS:
                if is_hq or line.reason_text not in rules.HQ_ONLY_CODES:
                    reason += " · " + str(rules.EXCEPTION_LABELS[line.reason_text])
            elif line.reason_text:
                reason += " · " + line.reason_text
        lines.append({
            "n": n, "id": line.id, "kind": str(kinds.KIND_LABELS[line.kind]),
            "subject": line_subject(line, locale),
            "service_date": line.work_order.service_date if line.work_order else None,
            "service_type": str(SERVICE_TYPE_LABELS[line.service_type])
            if line.service_type else "",
            "rate_card": line.rate_card.effective_from if line.rate_card else None,
            "steps": explanation(line, data["repairs"].get(line.work_order_id, [])),
            "codes": [str(rules.EXCEPTION_LABELS[c]) for c in codes],
            **{name: getattr(line, name) for name in kinds.FEE_NAMES},
            "labor_hours": line.labor_hours, "hourly_rate": line.hourly_rate,
            "labor_share_pct": line.labor_share_pct, "distance_km": line.distance_km,
            "paid_km": line.paid_km, "parts_value": line.parts_value,
            "claimed": line.claimed_amount, "approved": line.approved_amount,
            "decision": str(DECISION_LABELS[line.decision]), "reason": reason,
            "is_changed": line.decision in (Decision.ADJUSTED, Decision.DENIED),
            "evidence": [a.original_name for a in data["attachments"].get(line.id, [])],
        })
    return {
        "number": settlement.number, "former_number": settlement.former_number,
        "period": settlement.period, "stage": stage_label(settlement),
        "agency_code": agency.code, "agency_name": agency.legal_name, "bank": agency.bank_name,
        "bank_account": agency.masked_bank_account,
        "claimed_total": settlement.claimed_total, "approved_total": settlement.approved_total,
        "claimed_capitals": rmb_capitals(settlement.claimed_total),
        "approved_capitals": rmb_capitals(settlement.approved_total),
        "submitted_at": settlement.submitted_at, "approved_at": settlement.approved_at,
        "paid_on": settlement.paid_on, "payment_reference": settlement.payment_reference,
        "signoffs": signoff_rows(settlement, signoffs) if signoffs else [],
        "deciders": signoffs["deciders"] if signoffs else [],
        "lines": lines,
        "evidence": [a.original_name for a in data["attachments"].get(None, [])],
        "generated_at": local_stamp(clock.now()),
    }


def signoff_rows(settlement, signoffs: dict) -> list[dict]:
    """The sign-off table: each step with its label, and for a step not taken, why (a second
    approval the amount did not need, a regional review the region does without)."""
    rows = []
    for step in signoffs["steps"]:
        note = ""
        if step["at"] is None:
            if step["step"] == "second" and settlement.approved_at is not None:
                note = _("Not needed for this amount")
            elif step["step"] == "regional" and settlement.submitted_at is not None \
                    and not settlement.needs_regional_review:
                note = _("Not needed (no regional manager)")
        rows.append({**step, "label": str(SIGNOFF_LABELS[step["step"]]), "note": note})
    return rows


COLUMNS = ("n", "kind", "subject", "service_date", "service_type", "rate_card", "callout_fee",
           "labor_hours", "hourly_rate", "labor_share_pct", "labor_fee", "distance_km",
           "paid_km", "distance_fee", "parts_value", "parts_handling_fee", "claimed",
           "decision", "approved", "reason", "codes")


def header() -> list[str]:
    """The headings of COLUMNS (a fee's is its label in settlement.kinds.FEES)."""
    fees = {fee.name: fee.label for fee in kinds.FEES}
    names = {"n": _("No."), "kind": _("Kind"), "subject": _("Subject"),
             "service_date": _("Service date"), "service_type": _("Service type"),
             "rate_card": _("Rate card from"), "labor_hours": _("Labor hours"),
             "hourly_rate": _("Hourly rate"), "labor_share_pct": _("Labor share (percent)"),
             "distance_km": _("Distance (km)"), "paid_km": _("Paid km"),
             "parts_value": _("Parts value"), "claimed": _("Claimed"),
             "decision": _("Decision"), "approved": _("Approved"), "reason": _("Reason"),
             "codes": _("Exception codes")}
    return [str(fees.get(key) or names[key]) for key in COLUMNS]


def rows(statement: dict) -> list[list]:
    out = []
    for line in statement["lines"]:
        row = []
        for key in COLUMNS:
            value = line[key]
            row.append("; ".join(value) if isinstance(value, list) else value)
        out.append(row)
    return out
