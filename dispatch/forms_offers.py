"""Input shapes of the offer and appointment pages; the rules live in dispatch.offers and
dispatch.appointments."""
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    SubmitField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.forms import PortalForm

# Ids the database can hold: anything else is refused before a query sees it.
MAX_ID = 2**31 - 1


class OfferForm(PortalForm):
    """The dispatcher offers the request to one agency of the suggestion (the request's
    version: a second click on a stale page changes nothing)."""

    version = HiddenField()
    agency_id = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=MAX_ID)])


class VersionForm(PortalForm):
    """A button on one row (accept, withdraw): the version the page showed."""

    version = HiddenField()


class RefuseForm(PortalForm):
    version = HiddenField()
    reason = SelectField(_l("Reason"), validators=[DataRequired()], validate_choice=True)
    note = TextAreaField(_l("Note"), validators=[Length(max=1000)],
                         description=_l("Required when the reason is “Other reason”."))
    submit = SubmitField(_l("Refuse the offer"))


class AppointmentForm(PortalForm):
    """Book or reschedule the order's visit: the engineer and the window, in local time.

    `version` is the current appointment's id (0 before the first): a second submit of the
    same page, or a page older than the last booking, changes nothing."""

    version = HiddenField()
    engineer_id = SelectField(_l("Engineer"), coerce=int, validate_choice=False, default=0)
    day = DateField(_l("Date"), validators=[InputRequired()])
    time_from = TimeField(_l("Window starts"), validators=[InputRequired()])
    time_to = TimeField(_l("Window ends"), validators=[InputRequired()])
    customer_later = BooleanField(_l("The customer asked for a later date"))
    reason = SelectField(_l("Why it moves"), validate_choice=False, default="")
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=1000)])
    submit = SubmitField(_l("Save the appointment"))
