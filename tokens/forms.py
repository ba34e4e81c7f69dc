import secrets
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.utils import timezone

from workspaces.forms import ConsoleForm, DateRangeForm

from .services import NAME_MAX

PRESET_DAYS = (7, 30, 60, 90)
CUSTOM = "custom"
NEVER = "never"


def tomorrow_utc():
    return timezone.now().astimezone(UTC).date() + timedelta(days=1)


class TokenCreateForm(ConsoleForm):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Nightly CI runner", "autocomplete": "off"}),
        help_text="What will use this token? It helps you recognise it later.",
        error_messages={
            "required": "Enter a name for the token.",
            "max_length": f"The name can be at most {NAME_MAX} characters.",
        },
    )
    expiration = forms.ChoiceField(
        label="Expiration",
        initial="30",
        error_messages={"invalid_choice": "Choose one of the expiration options."},
    )
    custom_date = forms.DateField(
        label="Expires at the end of (UTC)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.now().astimezone(UTC).date()
        self.fields["expiration"].choices = [
            *((str(d), f"{d} days ({(today + timedelta(days=d)):%b %-d, %Y})") for d in PRESET_DAYS),
            (CUSTOM, "Custom…"),
            (NEVER, "No expiration"),
        ]
        tomorrow = tomorrow_utc()
        self.fields["custom_date"].widget.attrs["min"] = tomorrow.isoformat()
        if not self.is_bound:
            self.initial.setdefault("request_key", secrets.token_urlsafe(24))
            self.initial.setdefault("custom_date", tomorrow + timedelta(days=29))

    def clean(self):
        data = super().clean()
        choice = data.get("expiration")
        if choice == CUSTOM:
            day = data.get("custom_date")
            if day is None:
                if "custom_date" not in self.errors:
                    self.add_error("custom_date", "Choose the day the token expires.")
            elif day < tomorrow_utc():
                self.add_error("custom_date", "Choose a day from tomorrow on.")
        return data

    @property
    def expires_at(self):
        """When the chosen expiration ends: None for no expiration, end of day UTC for Custom."""
        choice = self.cleaned_data["expiration"]
        if choice == NEVER:
            return None
        if choice == CUSTOM:
            return datetime.combine(self.cleaned_data["custom_date"], time.max, tzinfo=UTC)
        return timezone.now() + timedelta(days=int(choice))


class GovernanceFilterForm(DateRangeForm):
    field_order = ["member", "token", "start", "end"]
    member = forms.CharField(label="Member", required=False, max_length=254,
                             widget=forms.TextInput(attrs={"placeholder": "email"}))
    token = forms.CharField(label="Token", required=False, max_length=100,
                            widget=forms.TextInput(attrs={"placeholder": "name"}))
