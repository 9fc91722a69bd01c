"""Input shapes of the settlement pages; the rules live in the services.

Every form that changes a settlement carries the version of the page it was shown on, so a
second click or a stale tab is refused instead of changing money twice.
"""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    MonthField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.forms import PortalForm
from settlement import rules
from settlement.kinds import RATE_TERMS

DECISIONS = [("approved", _l("Approve as claimed")), ("adjusted", _l("Adjust the amount")),
             ("denied", _l("Deny"))]
REASONS = [("", "—")] + [(k, v) for k, v in rules.REASON_LABELS.items()]
AMOUNT = [InputRequired(), NumberRange(min=0, max=1000000)]


class VersionedForm(PortalForm):
    version = HiddenField()


class OpenForm(PortalForm):
    period = MonthField(_l("Month"), validators=[DataRequired()])
    submit = SubmitField(_l("Open the claim"))


class ActionForm(VersionedForm):
    """Submit, recalculate, withdraw, approve clean lines, approve: the version is all."""


class AddOrderForm(VersionedForm):
    number = StringField(_l("Order number"), validators=[DataRequired(), Length(max=32)])
    submit = SubmitField(_l("Add"))


class UploadForm(PortalForm):
    file = FileField(_l("File (PDF, JPEG or PNG)"), validators=[FileRequired()])
    line_id = SelectField(_l("Evidence for"), coerce=int, default=0)
    submit = SubmitField(_l("Upload"))


class RegionalReviewForm(VersionedForm):
    outcome = RadioField(_l("Outcome"), choices=[("forward", _l("Pass to HQ")),
                                                  ("return", _l("Return to the agency"))],
                         default="forward", validators=[DataRequired()])
    comment = TextAreaField(_l("Review comment"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Record the review"))


class DecideLineForm(VersionedForm):
    decision = SelectField(_l("Decision"), choices=DECISIONS)
    amount = StringField(_l("Approved amount"), validators=[Length(max=20)])
    reason_code = SelectField(_l("Reason code"), choices=REASONS, default="")
    reason_text = TextAreaField(_l("Explanation for the agency"),
                                validators=[Length(max=2000)])
    submit = SubmitField(_l("Decide"))


BULK_ACTIONS = [("approve", _l("Approve as claimed")), ("deny", _l("Deny")),
                ("adjust", _l("Adjust by a rule"))]


class BulkDecideForm(VersionedForm):
    """A decision on the lines ticked in the review table (or on every line its filter
    shows), with one reason."""

    line_ids = SelectMultipleField(_l("Lines"), coerce=int, validate_choice=False)
    all_matching = BooleanField(_l("Every line that matches the filter, on every page"))
    action = SelectField(_l("Decision"), choices=BULK_ACTIONS)
    rule = SelectField(_l("Rule"), choices=[("", "—"), *rules.BULK_RULE_LABELS.items()],
                       default="")
    percent = StringField(_l("Percent of the claim paid"), validators=[Length(max=10)])
    reason_code = SelectField(_l("Reason code"), choices=REASONS, default="")
    reason_text = TextAreaField(_l("Reason"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Apply to the selection"))


class CommentForm(VersionedForm):
    comment = TextAreaField(_l("Comment for the agency"),
                            validators=[DataRequired(), Length(max=2000)])
    submit = SubmitField(_l("Return to the agency"))


class PayForm(VersionedForm):
    payment_reference = StringField(_l("Payment reference"),
                                    validators=[DataRequired(), Length(max=64)])
    paid_on = DateField(_l("Paid on"), validators=[Optional()])
    submit = SubmitField(_l("Mark paid"))


class AppealForm(VersionedForm):
    reason = TextAreaField(_l("Why the line should be paid"),
                           validators=[DataRequired(), Length(max=2000)])
    submit = SubmitField(_l("Appeal"))


class ResolveAppealForm(VersionedForm):
    outcome = RadioField(_l("Outcome"), choices=[("upheld", _l("Uphold: pay the new amount")),
                                                  ("rejected", _l("Reject"))],
                         default="rejected", validators=[DataRequired()])
    amount = StringField(_l("New amount of the line"), validators=[Length(max=20)])
    note = TextAreaField(_l("Decision note"), validators=[DataRequired(), Length(max=2000)])
    submit = SubmitField(_l("Decide the appeal"))


# --- HQ configuration ------------------------------------------------------------------------


class FeeRowForm(PortalForm):
    class Meta:
        csrf = False  # part of the rate card form, which carries the token

    product_line_id = HiddenField()
    service_type = HiddenField()


for _term in RATE_TERMS:  # one field per term of a rate card
    setattr(FeeRowForm, _term.name, DecimalField(
        _term.field_label, places=2, validators=[InputRequired(),
                                                 NumberRange(min=0, max=_term.high)]))


class RateCardForm(VersionedForm):
    effective_from = DateField(_l("Effective from"), validators=[DataRequired()])
    note = TextAreaField(_l("Note"), validators=[Length(max=2000)])
    tier_rates = FieldList(DecimalField(_l("Hourly rate"), places=2, validators=AMOUNT),
                           min_entries=5, max_entries=5)
    fees = FieldList(FormField(FeeRowForm), min_entries=0, max_entries=400)
    submit = SubmitField(_l("Save the rate card"))


class SettingsForm(VersionedForm):
    claim_window_days = IntegerField(_l("Claim window (days after completion)"),
                                     validators=[InputRequired(), NumberRange(1, 3650)])
    duplicate_window_days = IntegerField(_l("Duplicate check window (days)"),
                                         validators=[InputRequired(), NumberRange(0, 365)])
    uncertified_share_pct = DecimalField(_l("Labor share paid for uncertified engineers (percent)"),
                                         places=2, validators=[InputRequired(),
                                                               NumberRange(0, 100)])
    complaint_deduction = DecimalField(_l("Deduction per substantiated complaint"), places=2,
                                       validators=AMOUNT)
    evidence_threshold = DecimalField(_l("Evidence required above"), places=2,
                                      validators=AMOUNT)
    max_order_hours = DecimalField(_l("Standard hours per order at most"), places=2,
                                   validators=[InputRequired(), NumberRange(0, 1000)])
    second_approval_threshold = DecimalField(_l("Second approval above"), places=2,
                                             validators=[InputRequired(),
                                                         NumberRange(0, 100000000)])
    grade_a_pct = DecimalField(_l("Grade A: percent of the quarter's labor fees"), places=2,
                               validators=[InputRequired(), NumberRange(-100, 100)])
    grade_b_pct = DecimalField(_l("Grade B: percent of the quarter's labor fees"), places=2,
                               validators=[InputRequired(), NumberRange(-100, 100)])
    grade_c_pct = DecimalField(_l("Grade C: percent of the quarter's labor fees"), places=2,
                               validators=[InputRequired(), NumberRange(-100, 100)])
    grade_d_pct = DecimalField(_l("Grade D: percent of the quarter's labor fees"), places=2,
                               validators=[InputRequired(), NumberRange(-100, 100)])
    submit = SubmitField(_l("Save the settings"))


class DispositionsForm(PortalForm):
    submit = SubmitField(_l("Save the dispositions"))


for _code in rules.EXCEPTION_CODES:
    setattr(DispositionsForm, _code, RadioField(
        rules.EXCEPTION_LABELS[_code], choices=list(rules.DISPOSITION_LABELS.items()),
        validators=[DataRequired()]))


class DelegationForm(PortalForm):
    delegate_id = SelectField(_l("Colleague"), coerce=int, validators=[DataRequired()])
    starts_on = DateField(_l("From"), validators=[DataRequired()])
    ends_on = DateField(_l("Until"), validators=[DataRequired()])
    note = StringField(_l("Note"), validators=[Length(max=200)])
    submit = SubmitField(_l("Delegate"))
