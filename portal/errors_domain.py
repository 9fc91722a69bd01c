"""The error services raise when a business rule refuses a change."""


class DomainError(Exception):
    """A translated message for the user; `field` names the form field it belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def attach_to_form(form, error: DomainError) -> None:
    """Show a DomainError on its field, or above the form when it names none."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)
