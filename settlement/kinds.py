"""The settlement's lists that grow, each declared once.

- :data:`LINE_KINDS`: what a settlement line can be (a work order, an overdue return, a
  complaint, a quarter's grade). The enum :class:`LineKind`, the reading order, the labels, the
  claim's subject column, the database CHECKs, the statement's subject and explanation all read
  one :class:`LineKindSpec`. A new kind is one more entry here (and its subject column with a
  migration).
- :data:`FEES`: the components an order line's amount is the sum of; the computation's total,
  the CHECKs of the line and the statement read it.
- :data:`RATE_TERMS`: the terms a rate card gives per product line and service type; the form,
  the checks, the stored snapshot and both rate card pages read it.

Nothing here touches the database or the models (the models read this module).
"""
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.i18n import format_money
from portal.periods import Period

# --- line kinds ------------------------------------------------------------------------------


def _order_subject(line, locale: str) -> str | None:
    order = line.work_order
    if order is None:
        return None
    return f"{order.number} · {order.product_line.name(locale)} · {order.serial_number}"


def _return_subject(line, locale: str) -> str | None:
    ret = line.part_return
    if ret is None:
        return None
    return _("%(part)s × %(quantity)s, due %(due)s", part=ret.part.part_number,
             quantity=ret.quantity, due=ret.due_on.isoformat())


def _complaint_subject(line, locale: str) -> str | None:
    if line.complaint is None:
        return None
    return _("Complaint #%(id)s", id=line.complaint.id)


def _grade_subject(line, locale: str) -> str:
    period = Period.parse(line.grade_period)
    return _("%(period)s grade %(grade)s", period=period.label if period else line.grade_period,
             grade=line.grade)


def _return_explanation(line) -> list[str]:
    return [_("Part value %(value)s deducted: not returned by its due date.",
              value=format_money(line.basis_amount))]


def _complaint_explanation(line) -> list[str]:
    return [_("%(amount)s deducted per substantiated complaint.",
              amount=format_money(line.basis_amount))]


def _grade_explanation(line) -> list[str]:
    return [_("%(pct)s %% of the quarter's labor fees %(labor)s.", pct=line.rate_pct,
              labor=format_money(line.basis_amount))]


@dataclass(frozen=True)
class LineKindSpec:
    name: str  # the enum member: ORDER
    value: str  # stored in settlement_lines.kind: "order"
    label: object  # lazy: "Work order"
    claim_column: str  # the column of settlement_claims (and of the line) naming the subject
    line_column: str  # the line column set exactly for this kind (the CHECK "…_iff_kind")
    check_name: str  # that CHECK's name
    subject: Callable  # (line, locale) -> the subject as the statement prints it, or None
    explanation: Callable | None = None  # line -> the steps; None: the order's computation
    is_deduction: bool = False  # its amount is never positive (CHECK deductions_negative)
    removable: bool = False  # the agency may take it off its claim (HQ's rules made the rest)
    subject_table: str | None = None  # the agency-owned table of the subject (its owner key)


LINE_KINDS: tuple[LineKindSpec, ...] = (
    LineKindSpec("ORDER", "order", _l("Work order"), "work_order_id", "work_order_id",
                 "order_iff_kind", _order_subject, subject_table="work_orders", removable=True),
    LineKindSpec("PART_RETURN", "part_return", _l("Overdue defective-part return"),
                 "part_return_id", "part_return_id", "return_iff_kind", _return_subject,
                 _return_explanation, is_deduction=True, subject_table="part_returns"),
    LineKindSpec("COMPLAINT", "complaint", _l("Substantiated complaint"), "complaint_id",
                 "complaint_id", "complaint_iff_kind", _complaint_subject,
                 _complaint_explanation, is_deduction=True, subject_table="complaints"),
    LineKindSpec("GRADE", "grade", _l("Quarterly evaluation"), "grade_period", "grade",
                 "grade_iff_kind", _grade_subject, _grade_explanation),
)

LineKind = StrEnum("LineKind", [(k.name, k.value) for k in LINE_KINDS])
LineKind.__doc__ = "What a settlement line is (declared in settlement.kinds.LINE_KINDS)."
LineKind.__module__ = __name__

_BY_VALUE = {k.value: k for k in LINE_KINDS}
KIND_ORDER = {LineKind(k.value): n for n, k in enumerate(LINE_KINDS)}
KIND_LABELS = {LineKind(k.value): k.label for k in LINE_KINDS}
# The columns of settlement_claims that name what a claim holds, one per kind.
SUBJECTS = tuple(k.claim_column for k in LINE_KINDS)


def spec(kind) -> LineKindSpec:
    return _BY_VALUE[str(kind)]


def kind_checks() -> list[tuple[str, str]]:
    """(name, SQL) of the line's CHECKs that follow from the kinds."""
    checks = [(k.check_name, f"(kind = '{k.value}') = ({k.line_column} IS NOT NULL)")
              for k in LINE_KINDS]
    deductions = ", ".join(f"'{k.value}'" for k in LINE_KINDS if k.is_deduction)
    checks.append(("deductions_negative", f"kind NOT IN ({deductions}) OR claimed_amount <= 0"))
    return checks


def one_subject_check() -> str:
    """A claim holds exactly one subject."""
    return " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in SUBJECTS) + " = 1"


# --- the components of an order line's amount --------------------------------------------------


@dataclass(frozen=True)
class Fee:
    name: str  # the line's column and the computation's attribute
    label: object


FEES: tuple[Fee, ...] = (
    Fee("callout_fee", _l("Call-out fee")),
    Fee("labor_fee", _l("Labor fee")),
    Fee("distance_fee", _l("Distance allowance")),
    Fee("parts_handling_fee", _l("Parts handling fee")),
)
FEE_NAMES = tuple(f.name for f in FEES)


def fee_checks() -> list[tuple[str, str]]:
    """(name, SQL) of the line's CHECKs on its fees: an order's amount is their sum."""
    total = " + ".join(FEE_NAMES)
    nonnegative = " AND ".join(f"{n} >= 0" for n in (*FEE_NAMES, "labor_hours", "paid_km"))
    return [("order_sum", f"kind <> 'order' OR claimed_amount = {total}"),
            ("components_nonnegative", nonnegative)]


def total_of_fees(obj) -> Decimal:
    return sum((getattr(obj, n) for n in FEE_NAMES), Decimal("0.00"))


# --- the terms of a rate card ------------------------------------------------------------------


@dataclass(frozen=True)
class RateTerm:
    name: str  # the column of settlement_rate_card_fees and the form field
    label: object  # the rate card's column heading
    field_label: object  # the form field's label
    is_money: bool  # printed as money (else as a number)
    high: int = 1000000  # the largest value the form accepts


RATE_TERMS: tuple[RateTerm, ...] = (
    RateTerm("callout_fee", _l("Call-out fee"), _l("Call-out fee"), True),
    RateTerm("free_km", _l("Free km"), _l("Free km"), False),
    RateTerm("per_km", _l("Per km"), _l("Per km"), True),
    RateTerm("max_km", _l("Km cap"), _l("Km cap"), False),
    RateTerm("parts_handling_pct", _l("Parts handling rate"),
             _l("Parts handling rate (percent)"), False, high=100),
)
RATE_TERM_NAMES = tuple(t.name for t in RATE_TERMS)
