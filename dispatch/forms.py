"""Input shapes of the network calendar; the rules live in dispatch.network_calendar."""
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, StringField, SubmitField, TimeField
from wtforms.validators import DataRequired, Length, Optional

from dispatch.models import WEEKDAY_LABELS
from portal.forms import PortalForm


class HoursForm(PortalForm):
    """Opening and closing time of each weekday (both empty: closed)."""

    submit = SubmitField(_l("Save the working hours"))

    def pairs(self):
        return [(label, self[f"opens_{day}"], self[f"closes_{day}"])
                for day, label in enumerate(WEEKDAY_LABELS)]


for _day, _label in enumerate(WEEKDAY_LABELS):
    setattr(HoursForm, f"opens_{_day}", TimeField(_l("Opens"), validators=[Optional()]))
    setattr(HoursForm, f"closes_{_day}", TimeField(_l("Closes"), validators=[Optional()]))


class ExceptionForm(PortalForm):
    day = DateField(_l("Day"), validators=[DataRequired()])
    closed = BooleanField(_l("Closed all day"))
    opens = TimeField(_l("Opens"), validators=[Optional()])
    closes = TimeField(_l("Closes"), validators=[Optional()])
    note = StringField(_l("Why"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Set the exception"))


class ActionForm(PortalForm):
    """Remove an exception: the CSRF token is all."""
