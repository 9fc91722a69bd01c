"""How the audit log names settlement's records: settlements by number (ST202610-01), their
lines by settlement and order, rate cards by the day they take effect."""
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast, func, select

from portal.audit.subjects import Field, day, flag, money, ref, state, subject
from service.models import WorkOrder
from settlement.models import (
    Appeal,
    Attachment,
    Delegation,
    RateCard,
    Settlement,
    SettlementLine,
    SettlementSettings,
)


def _line_label():
    """"ST202610-01 · WO20261005-0003" (a deduction or bonus: its line id)."""
    return select(SettlementLine.id, Settlement.number + " · " + func.coalesce(
        WorkOrder.number, "#" + cast(SettlementLine.id, String)), SettlementLine.settlement_id
    ).join(Settlement, (Settlement.agency_id == SettlementLine.agency_id)
           & (Settlement.id == SettlementLine.settlement_id)
    ).outerjoin(WorkOrder, (WorkOrder.agency_id == SettlementLine.agency_id)
                & (WorkOrder.id == SettlementLine.work_order_id))


def _of_settlement(model, suffix):
    """A record of a settlement: its number and `suffix`, linking to the settlement."""
    return select(model.id, Settlement.number + " · " + suffix, model.settlement_id).join(
        Settlement, (Settlement.agency_id == model.agency_id)
        & (Settlement.id == model.settlement_id))


def register() -> None:
    line = ref("SettlementLine", _l("Line"))
    amounts = {
        "status": state("settlement.status", _l("Status")),
        "claimed_total": money(_l("Claimed total")),
        "approved_total": money(_l("Approved total")),
        "line_count": Field(_l("Lines")),
        "line_id": line,
        "line_decision": state("settlement.decision", _l("Decision")),
        "line_amount": money(_l("Line amount")),
        "reason_code": state("settlement.reason", _l("Reason code")),
        "work_order_id": ref("WorkOrder", _l("Work order")),
        "threshold": money(_l("Second approval above")),
        "on_behalf_of": ref("User", _l("On behalf of")),
        "payment_reference": Field(_l("Payment reference")),
        "paid_on": day(_l("Paid on")),
        "upheld": flag(_l("Appeal upheld")),
        "lines": ref("SettlementLine", _l("Lines")),
        "settlement_id": ref("Settlement", _l("Settlement")),
    }
    subject("Settlement", select(Settlement.id, Settlement.number), "settlement.settlement",
            "settlement_id", noun=_l("Settlement"), model=Settlement, fields=amounts)
    subject("SettlementLine", _line_label, "settlement.settlement", "settlement_id",
            noun=_l("Settlement line"), model=SettlementLine,
            fields={**amounts, "decision": state("settlement.decision", _l("Decision")),
                    "claimed_amount": money(_l("Claimed")),
                    "approved_amount": money(_l("Approved amount"))})
    subject("Appeal", lambda: _of_settlement(Appeal, "#" + cast(Appeal.line_id, String)),
            "settlement.settlement", "settlement_id", actions="settlement.",
            noun=_l("Settlement appeal"), model=Appeal,
            fields={**amounts, "status": state("settlement.appeal", _l("Status"))})
    subject("Attachment", lambda: _of_settlement(Attachment, Attachment.original_name),
            "settlement.settlement", "settlement_id", noun=_l("Evidence"), model=Attachment,
            fields={**amounts, "content_type": Field(_l("File type")),
                    "size_bytes": Field(_l("Size (bytes)")), "sha256": Field("SHA-256")})
    subject("RateCard", select(RateCard.id, cast(RateCard.effective_from, String)),
            "settlement.rate_card", "rate_card_id", noun=_l("Rate card"), model=RateCard,
            fields={"effective_from": day(_l("Effective from")), "note": Field(_l("Note")),
                    "tier_rates": Field(_l("Hourly rate")), "fees": Field(_l("Fees"))})
    subject("Delegation", None, "settlement.delegations", None, noun=_l("Delegation"),
            model=Delegation,
            fields={"delegator_id": ref("User", _l("Delegated by")),
                    "delegate_id": ref("User", _l("Colleague")),
                    "starts_on": day(_l("From")), "ends_on": day(_l("Until"))})
    settings = {
        "claim_window_days": Field(_l("Claim window (days after completion)")),
        "duplicate_window_days": Field(_l("Duplicate check window (days)")),
        "uncertified_share_pct": Field(
            _l("Labor share paid for uncertified engineers (percent)")),
        "complaint_deduction": money(_l("Deduction per substantiated complaint")),
        "evidence_threshold": money(_l("Evidence required above")),
        "max_order_hours": Field(_l("Standard hours per order at most")),
        "second_approval_threshold": money(_l("Second approval above")),
        "grade_a_pct": Field(_l("Grade A: percent of the quarter's labor fees")),
        "grade_b_pct": Field(_l("Grade B: percent of the quarter's labor fees")),
        "grade_c_pct": Field(_l("Grade C: percent of the quarter's labor fees")),
        "grade_d_pct": Field(_l("Grade D: percent of the quarter's labor fees")),
    }
    subject("SettlementSettings", None, "settlement.configuration", None,
            noun=_l("Settlement settings"), model=SettlementSettings, fields=settings)
    subject("ExceptionDisposition", None, "settlement.configuration", None,
            noun=_l("Exception dispositions"),
            fields={code: state("settlement.disposition", label)
                    for code, label in _exception_labels().items()})


def _exception_labels() -> dict:
    from settlement.rules import EXCEPTION_LABELS

    return dict(EXCEPTION_LABELS)
