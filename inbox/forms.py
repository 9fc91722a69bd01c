"""The workplace's forms: preferences, settings, announcements, and the plain action forms."""
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from inbox.announcements import AUDIENCE_LABELS
from inbox.models import MAIL_MODES
from portal.forms import PortalForm


class ActionForm(PortalForm):
    """Mark read, acknowledge, resend: the CSRF token is all."""


class PreferencesForm(PortalForm):
    """One radio group per category is added by the view (the categories are a registry)."""


def mode_field(label) -> RadioField:
    from inbox.preferences import MODE_LABELS

    return RadioField(label, choices=[(m, MODE_LABELS[m]) for m in MAIL_MODES],
                      validators=[InputRequired()])


class SettingsForm(PortalForm):
    version = HiddenField()
    settlement_review_days = IntegerField(
        _l("A settlement in review escalates after (days)"),
        validators=[InputRequired(), NumberRange(1, 90)])
    complaint_verdict_days = IntegerField(
        _l("A complaint without verdict escalates after (days)"),
        validators=[InputRequired(), NumberRange(1, 90)])
    complaint_response_hours = IntegerField(
        _l("Agencies answer a complaint within (hours)"),
        validators=[InputRequired(), NumberRange(1, 720)])
    digest_hour = IntegerField(_l("The daily digest goes out from (hour, local time)"),
                               validators=[InputRequired(), NumberRange(0, 23)])





class AnnouncementForm(PortalForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=20000)],
                         description=_l("Plain text; **bold**, *italic*, lists with “- ” "
                                        "and links are shown formatted."))
    audience = SelectField(_l("Audience"), choices=list(AUDIENCE_LABELS.items()),
                           validators=[InputRequired()])
    region_id = SelectField(_l("Region"), coerce=int, validate_choice=False,
                            validators=[Optional()])
    product_line_id = SelectField(_l("Product line"), coerce=int, validate_choice=False,
                                  validators=[Optional()])
    staff_too = BooleanField(_l("Agency staff receive it too (else the owners only)"))
    requires_ack = BooleanField(_l("Recipients must acknowledge it"))
    ack_by = DateField(_l("Acknowledge by"), validators=[Optional()])
