"""Input shapes for the network pages; rules live in services."""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.auth.forms import PASSWORD_MIN
from portal.forms import PortalForm
from tenants.models import AGENCY_TYPE_LABELS, SERVICE_TYPE_LABELS, STATUS_LABELS

CODE = Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
              message=_l("Use letters, digits, '-' and '_' only."))
PHONE = Regexp(r"^[0-9+\- ()]{5,32}$", message=_l("Enter a valid phone number."))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AgencyForm(PortalForm):
    code = StringField(_l("Agency code"), validators=[DataRequired(), Length(max=16), CODE])
    legal_name = StringField(_l("Legal name"), validators=[DataRequired(), Length(max=200)])
    agency_type = SelectField(_l("Type"),
                              choices=[(k.value, v) for k, v in AGENCY_TYPE_LABELS.items()])
    region_id = SelectField(_l("Region"), coerce=int, validators=[DataRequired()])
    province_id = SelectField(_l("Province"), coerce=int, validators=[Optional()])
    city = StringField(_l("City"), validators=[Length(max=64)])
    address = StringField(_l("Address"), validators=[Length(max=300)])
    contact_name = StringField(_l("Contact person"), validators=[Length(max=64)])
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), PHONE])
    tier = IntegerField(_l("Tier (stars)"), default=1,
                        validators=[InputRequired(), NumberRange(min=1, max=5)])
    service_types = MultiCheckboxField(
        _l("Authorized service types"),
        choices=[(k.value, v) for k, v in SERVICE_TYPE_LABELS.items()])
    product_line_ids = MultiCheckboxField(_l("Authorized product lines"), coerce=int)
    auth_valid_from = DateField(_l("Authorized from"), validators=[Optional()])
    auth_valid_to = DateField(_l("Authorized until"), validators=[Optional()])
    bank_name = StringField(_l("Bank"), validators=[Length(max=120)])
    bank_account = StringField(
        _l("Bank account"),
        validators=[Optional(), Regexp(r"^[0-9 ]{8,40}$",
                                       message=_l("Enter the account number in digits."))],
        description=_l("Leave empty to keep the stored account."))
    required_l2_engineers = IntegerField(
        _l("Required L2 engineers per product line"), default=1,
        validators=[InputRequired(), NumberRange(min=0, max=50)])
    email_domains = StringField(
        _l("Account e-mail domains"), validators=[Length(max=1000)],
        description=_l("The agency owner creates accounts only with addresses in these "
                       "domains, e.g. sh-c01.com. Separate several with commas."))
    submit = SubmitField(_l("Save"))

    def validate_auth_valid_to(self, field):
        if field.data and self.auth_valid_from.data and field.data < self.auth_valid_from.data:
            raise ValidationError(_l("The end date is before the start date."))


# The drop-down's first entry: no status is chosen for the user (terminating is never a default).
CHOOSE_STATUS = ("", _l("Choose the new status…"))


class StatusChangeForm(PortalForm):
    """A lifecycle change. The view narrows the choices to the moves the lifecycle allows (the
    service refuses the others); a change the evidence speaks against, and any termination,
    also needs `confirm`, given for the very status it names (`confirmed_status`)."""

    to_status = SelectField(_l("New status"),
                            choices=[CHOOSE_STATUS,
                                     *((k.value, v) for k, v in STATUS_LABELS.items())],
                            validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(min=3, max=2000)])
    confirm = BooleanField(_l("I confirm this change."))
    confirmed_status = HiddenField()
    submit = SubmitField(_l("Change status"))

    @property
    def is_confirmed(self) -> bool:
        """Ticked, for the status chosen now (not for one shown on an earlier answer)."""
        return bool(self.confirm.data) and self.confirmed_status.data == self.to_status.data


class RegionForm(PortalForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=16), CODE])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=64)])
    name_en = StringField(_l("Name (English)"), validators=[DataRequired(), Length(max=64)])
    submit = SubmitField(_l("Save"))


class ProvinceForm(RegionForm):
    pass


class ProductLineForm(RegionForm):
    pass


class ProductModelForm(PortalForm):
    code = StringField(_l("Model code"), validators=[DataRequired(), Length(max=32), CODE])
    name = StringField(_l("Model name"), validators=[DataRequired(), Length(max=120)])
    warranty_months = IntegerField(_l("Warranty (months)"), default=12,
                                   validators=[InputRequired(), NumberRange(min=0, max=120)])
    submit = SubmitField(_l("Save"))


class UserForm(PortalForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=120)])
    role = SelectField(_l("Role"))
    agency_id = SelectField(_l("Agency"), coerce=int, validators=[Optional()])
    region_id = SelectField(_l("Region"), coerce=int, validators=[Optional()])
    password = PasswordField(
        _l("Password"), validators=[Optional(), Length(min=PASSWORD_MIN, max=200)],
        description=_l("At least 10 characters. When editing, leave empty to keep it."))
    submit = SubmitField(_l("Save"))


class IssuerForm(PortalForm):
    """The issuer of documents: names and addresses in both languages, logo and seal."""

    name_zh = StringField(_l("Legal name (Chinese)"), validators=[Length(max=200)])
    name_en = StringField(_l("Legal name (English)"), validators=[Length(max=200)])
    address_zh = StringField(_l("Address (Chinese)"), validators=[Length(max=300)])
    address_en = StringField(_l("Address (English)"), validators=[Length(max=300)])
    logo = FileField(_l("Logo (PNG or SVG)"))
    remove_logo = BooleanField(_l("Remove the logo"))
    seal = FileField(_l("Seal (PNG or SVG, optional)"))
    remove_seal = BooleanField(_l("Remove the seal"))
    version = HiddenField()
    submit = SubmitField(_l("Save"))
