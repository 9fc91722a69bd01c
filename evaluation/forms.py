"""Input shapes of the evaluation pages; the rules live in the services."""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from evaluation import kpis
from portal.forms import PortalForm

SCORE_CHOICES = [(n, str(n)) for n in (5, 4, 3, 2, 1)]


class ComputeForm(PortalForm):
    period = StringField(_l("Quarter"), validators=[DataRequired(), Length(max=10)],
                         description=_l("For example 2026Q3."))
    submit = SubmitField(_l("Compute drafts"))


class QuarterActionForm(PortalForm):
    """Publish or finalize: the quarter's version guards against a stale page."""

    seen_version = HiddenField(validators=[DataRequired()])


class InspectionForm(PortalForm):
    score = IntegerField(_l("Inspection score (0–100)"),
                         validators=[InputRequired(), NumberRange(min=0, max=100)])
    note = TextAreaField(_l("Findings"), validators=[Optional(), Length(max=4000)])
    submit = SubmitField(_l("Save the inspection score"))


class AcknowledgeForm(PortalForm):
    submit = SubmitField(_l("Acknowledge the result"))


def kpi_choices(blank_label) -> list:
    return [("", blank_label)] + [(k.code, k.label) for k in kpis.KPIS]


class AppealForm(PortalForm):
    kpi_code = SelectField(_l("KPI concerned"), validators=[Optional()])
    reason = TextAreaField(_l("Reason of the appeal"),
                           validators=[DataRequired(), Length(min=10, max=4000)],
                           description=_l("Name the records concerned: the KPI pages list "
                                          "them."))
    submit = SubmitField(_l("Lodge the appeal"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kpi_code.choices = kpi_choices(_l("The result as a whole"))


class ResolveForm(PortalForm):
    decision = RadioField(_l("Decision on the appeal"),
                          choices=[("upheld", _l("Uphold the appeal")),
                                   ("rejected", _l("Reject the appeal"))],
                          validators=[InputRequired()])
    resolution = SelectField(_l("Correction (when upheld)"), choices=[
        ("recompute", _l("Recompute the agency's KPIs from the data as it stands now")),
        ("correct", _l("Correct one KPI's counts"))], validators=[Optional()])
    kpi_code = SelectField(_l("KPI to correct"), validators=[Optional()])
    numerator = IntegerField(_l("Corrected count (numerator)"),
                             validators=[Optional(), NumberRange(min=0)])
    denominator = IntegerField(_l("Corrected total (denominator)"),
                               validators=[Optional(), NumberRange(min=0)])
    note = TextAreaField(_l("Reason of the decision (shown to the agency)"),
                         validators=[DataRequired(), Length(min=5, max=4000)])
    submit = SubmitField(_l("Decide the appeal"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kpi_code.choices = kpi_choices("—")


class ProposalForm(PortalForm):
    decision = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class RatingForm(PortalForm):
    parts = SelectField(_l("Spare parts supply"), coerce=int, choices=SCORE_CHOICES)
    settlement = SelectField(_l("Settlement"), coerce=int, choices=SCORE_CHOICES)
    support = SelectField(_l("Technical support"), coerce=int, choices=SCORE_CHOICES)
    training = SelectField(_l("Training"), coerce=int, choices=SCORE_CHOICES)
    comment = TextAreaField(_l("Comment on HQ’s service"),
                            validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Send the rating"))


class VerifyForm(PortalForm):
    file = FileField(_l("Report PDF"), validators=[FileRequired()])
    submit = SubmitField(_l("Verify"))


def scheme_form(data: dict | None = None):
    """The new-version form: SLA minutes, and per KPI a weight, a minimum and a curve."""

    class SchemeForm(PortalForm):
        period = StringField(_l("In force from quarter"), validators=[DataRequired(),
                                                                       Length(max=10)],
                             description=_l("A future quarter, for example 2027Q1."))
        sla_phone_minutes = IntegerField(_l("SLA phone response (minutes)"),
                                         validators=[InputRequired()])
        sla_onsite_minutes = IntegerField(_l("SLA on-site arrival (minutes)"),
                                          validators=[InputRequired()])
        sla_carry_in_minutes = IntegerField(_l("SLA carry-in diagnosis (minutes)"),
                                            validators=[InputRequired()])
        note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])

    for kpi in kpis.KPIS:
        setattr(SchemeForm, f"weight_{kpi.code}", IntegerField(
            _l("%(kpi)s: weight", kpi=kpi.label), validators=[InputRequired()]))
        setattr(SchemeForm, f"min_{kpi.code}", IntegerField(
            _l("%(kpi)s: minimum count", kpi=kpi.label), validators=[InputRequired()]))
        setattr(SchemeForm, f"curve_{kpi.code}", StringField(
            _l("%(kpi)s: points curve (raw:points, …)", kpi=kpi.label),
            validators=[DataRequired(), Length(max=200)]))
    SchemeForm.submit = SubmitField(_l("Create the version"))
    return SchemeForm(data=data)
