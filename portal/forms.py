"""Base forms: WTForms' own messages ("Not a valid integer value.") in the reader's language.

Flask-WTF reads them from WTForms' catalog, where some are fuzzy (hence English on a Chinese
page) and plain sub-forms get none at all. Every form of the portal derives from `PortalForm`
(or `PortalSubForm` inside a FieldList / FormField), which reads them from the portal's own
catalog instead; `_wtforms_messages` lists them there for extraction.
"""
from flask_babel import get_translations, gettext, ngettext
from flask_wtf import FlaskForm
from wtforms import Form


class _PortalTranslations:
    def gettext(self, string: str) -> str:
        return get_translations().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return get_translations().ungettext(singular, plural, n)


_TRANSLATIONS = _PortalTranslations()


class PortalForm(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return _TRANSLATIONS


class PortalSubForm(Form):
    """A row of a FieldList or a FormField (no CSRF field of its own)."""

    class Meta:
        def get_translations(self, form):
            return _TRANSLATIONS


def _wtforms_messages() -> None:  # pragma: no cover - never called: marks messages only
    """The messages WTForms' fields and validators produce, for `flask translate update`."""
    gettext("This field is required.")
    gettext("Invalid input.")
    gettext("Invalid email address.")
    gettext("Invalid URL.")
    gettext("Not a valid choice.")
    gettext("Invalid Choice: could not coerce.")
    gettext("Invalid choice(s): one or more data inputs could not be coerced.")
    ngettext("'%(value)s' is not a valid choice for this field.",
             "'%(value)s' are not valid choices for this field.", 1)
    gettext("Not a valid integer value.")
    gettext("Not a valid decimal value.")
    gettext("Not a valid float value.")
    gettext("Not a valid date value.")
    gettext("Not a valid datetime value.")
    gettext("Not a valid time value.")
    gettext("Number must be at least %(min)s.")
    gettext("Number must be at most %(max)s.")
    gettext("Number must be between %(min)s and %(max)s.")
    ngettext("Field must be at least %(min)d character long.",
             "Field must be at least %(min)d characters long.", 1)
    ngettext("Field cannot be longer than %(max)d character.",
             "Field cannot be longer than %(max)d characters.", 1)
    ngettext("Field must be exactly %(max)d character long.",
             "Field must be exactly %(max)d characters long.", 1)
    gettext("Field must be between %(min)d and %(max)d characters long.")
    gettext("Field must be equal to %(other_name)s.")
    gettext("Invalid value, must be one of: %(values)s.")
    gettext("Invalid value, can't be any of: %(values)s.")
    gettext("This field cannot be edited.")
    gettext("This field is disabled and cannot have a value.")
