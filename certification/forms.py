"""Input shapes of the certification pages; the rules live in services and exams."""
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from certification.models import EDUCATION_LABELS
from portal.forms import PortalForm, PortalSubForm
from portal.text import clean_or_none

REQUIRED = _l("This field is required.")
TEXT = {"filters": [clean_or_none]}
PHONE = Regexp(r"^[0-9+\- ()]{5,32}$", message=_l("Enter a valid phone number."))


def _range(low: int, high: int):
    return NumberRange(min=low, max=high,
                       message=_l("Enter a whole number from %(min)s to %(max)s."))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EngineerForm(PortalForm):
    name = StringField(_l("Full name"), **TEXT, validators=[DataRequired(REQUIRED), Length(max=64)])
    id_number = StringField(
        _l("ID number"), **TEXT, validators=[Optional(), Length(max=32)],
        description=_l("18 characters. Stored in full, shown masked. When editing, leave "
                       "empty to keep the stored number."))
    phone = StringField(_l("Phone"), **TEXT, validators=[Optional(), PHONE])
    education = SelectField(_l("Education"),
                            choices=[(k.value, v) for k, v in EDUCATION_LABELS.items()])
    hire_date = DateField(_l("Hire date"), validators=[InputRequired(REQUIRED)])
    product_line_ids = MultiCheckboxField(_l("Product lines"), coerce=int)
    user_id = SelectField(_l("Portal account"), coerce=int, validators=[Optional()],
                          description=_l("The engineer's own account, to see their "
                                         "certificates."))
    submit = SubmitField(_l("Save"))


class NewEngineerForm(EngineerForm):
    """A new engineer's form: the ID number is required (when editing, empty keeps it)."""

    id_number = StringField(
        _l("ID number"), **TEXT,
        validators=[DataRequired(_l("Enter the ID number.")), Length(max=32)],
        description=_l("18 characters. Stored in full, shown masked. When editing, leave "
                       "empty to keep the stored number."))


class LeaveForm(PortalForm):
    left_on = DateField(_l("Left on"), validators=[InputRequired(REQUIRED)])
    submit = SubmitField(_l("Record leaving"))


class ProgramForm(PortalForm):
    product_line_id = SelectField(_l("Product line"), coerce=int)
    level = SelectField(_l("Level"), coerce=int)
    validity_months = IntegerField(_l("Validity (months)"), default=24,
                                   validators=[InputRequired(REQUIRED), _range(1, 120)])
    theory_pass_mark = IntegerField(_l("Pass mark, theory"), default=60,
                                    validators=[InputRequired(REQUIRED), _range(0, 100)])
    practical_pass_mark = IntegerField(_l("Pass mark, practical"), default=60,
                                       validators=[InputRequired(REQUIRED), _range(0, 100)])
    retake_wait_days = IntegerField(_l("Waiting period before a retake (days)"), default=30,
                                    validators=[InputRequired(REQUIRED), _range(0, 365)])
    max_attempts = IntegerField(_l("Maximum attempts"), default=3,
                                validators=[InputRequired(REQUIRED), _range(1, 10)])
    min_education = SelectField(_l("Minimum education"),
                                choices=[(k.value, v) for k, v in EDUCATION_LABELS.items()])
    min_experience_years = IntegerField(_l("Minimum experience (years)"), default=1,
                                        validators=[InputRequired(REQUIRED), _range(0, 40)])
    is_active = BooleanField(_l("Open for nominations"), default=True)
    submit = SubmitField(_l("Save"))


class NominateForm(PortalForm):
    program_id = SelectField(_l("Program"), coerce=int)
    note = TextAreaField(_l("Note for the training department"), **TEXT,
                         validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Nominate"))


class SessionForm(PortalForm):
    program_id = SelectField(_l("Program"), coerce=int)
    exam_date = DateField(_l("Exam date"), validators=[InputRequired(REQUIRED)])
    place = StringField(_l("Place"), **TEXT,
                        validators=[DataRequired(REQUIRED), Length(max=200)])
    capacity = IntegerField(_l("Capacity (seats)"), default=30,
                            validators=[InputRequired(REQUIRED), _range(1, 500)])
    submit = SubmitField(_l("Save"))


class AdmitForm(PortalForm):
    nomination_ids = MultiCheckboxField(_l("Nominees"), coerce=int)
    submit = SubmitField(_l("Admit the ticked nominees"))


class ScoreRowForm(PortalSubForm):
    """One nominee's line of the score sheet (no CSRF of its own: the sheet carries it)."""

    seat_id = HiddenField()
    theory = IntegerField(_l("Theory"), validators=[Optional(), _range(0, 100)])
    practical = IntegerField(_l("Practical"), validators=[Optional(), _range(0, 100)])
    absent = BooleanField(_l("Absent"))


class ScoreSheetForm(PortalForm):
    """The whole session's sheet. A first submit only checks it and sums up what saving would
    issue; `confirm` (sent by the summary's confirmation button) carries the fingerprint of
    the sheet that summary was about, and only then is the sheet recorded."""

    rows = FieldList(FormField(ScoreRowForm))
    confirm = HiddenField()
    submit = SubmitField(_l("Check the scores"))


class RevokeForm(PortalForm):
    reason = TextAreaField(_l("Reason"), **TEXT, validators=[DataRequired(REQUIRED),
                                                     Length(min=3, max=2000)])
    revoked_on = DateField(_l("Effective from"), validators=[Optional()],
                           description=_l("Leave empty for today."))
    submit = SubmitField(_l("Revoke the certificate"))


class VerifyForm(PortalForm):
    number = StringField(_l("Certificate number"), **TEXT,
                         validators=[DataRequired(REQUIRED), Length(max=32)])
    code = StringField(_l("Verification code"), **TEXT,
                       validators=[DataRequired(REQUIRED), Length(max=32)])
    submit = SubmitField(_l("Check"))
