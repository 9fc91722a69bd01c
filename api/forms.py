"""Input shapes of the API pages: tokens and service accounts (rules live in services)."""
from flask_babel import lazy_gettext as _l
from wtforms import EmailField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from api.models import MAX_TOKEN_DAYS
from portal.forms import PortalForm

DEFAULT_TOKEN_DAYS = 90


class TokenForm(PortalForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)],
                       description=_l("What the token is for, e.g. “call center”."))
    days = IntegerField(_l("Valid for (days)"), default=DEFAULT_TOKEN_DAYS,
                        validators=[InputRequired(), NumberRange(min=1, max=MAX_TOKEN_DAYS)],
                        description=_l("From 1 to %(days)s days.", days=MAX_TOKEN_DAYS))
    submit = SubmitField(_l("Create token"))


class ServiceAccountForm(PortalForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)],
                       description=_l("Which system uses it, e.g. “ERP”."))
    role = SelectField(_l("Role"))
    region_id = SelectField(_l("Region"), coerce=int, validators=[Optional()],
                            description=_l("For a regional manager's account only."))
    submit = SubmitField(_l("Create service account"))


class ActionForm(PortalForm):
    """A button's POST: the CSRF token only."""
