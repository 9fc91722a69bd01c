"""The webhook pages' forms."""
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.forms import PortalForm


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(PortalForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)],
                       description=_l("What the endpoint is for: \"ERP\", \"Call center\"."))
    url = StringField(_l("URL"), validators=[DataRequired(), Length(max=500)],
                      description=_l("Where the events are posted (https://…). Its host must "
                                     "be on the list of allowed webhook hosts."))
    events = _Checkboxes(_l("Events"), choices=[])


class EditEndpointForm(EndpointForm):
    version = HiddenField()
    active = BooleanField(_l("Active: deliver events to this endpoint"))
    new_secret = BooleanField(_l("Make a new secret (the current one stops signing at once)"))


class ActionForm(PortalForm):
    """Switch off, deliver again: the CSRF token is all."""
