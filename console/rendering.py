"""What every page's view does with a form and a service's refusal."""

from .errors import ServiceError


def apply_error(form, error: ServiceError) -> None:
    """Show a service's refusal on the form: on its field when the form has it."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)
