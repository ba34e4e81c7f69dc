import secrets
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.utils import timezone

from console.forms import ConsoleForm, CursorField, DateRangeForm, PageField, QueryForm

from . import ipranges
from .models import NAME_MAX

PRESET_DAYS = (7, 30, 60, 90)
CUSTOM = "custom"
NEVER = "never"


def today_utc():
    return timezone.now().astimezone(UTC).date()


def tomorrow_utc():
    return today_utc() + timedelta(days=1)


class TokenCreateForm(ConsoleForm):
    """Name, expiration and allowed IP ranges. With a workspace's maximum lifetime, only
    expirations within it are offered (the service refuses longer ones whatever is posted)."""

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
    allowed_ips = forms.CharField(
        label="Allowed IP ranges (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. 203.0.113.0/24, 2001:db8::/48",
                                     "spellcheck": "false", "autocomplete": "off"}),
        help_text="Addresses or CIDR ranges, IPv4 or IPv6, separated by commas or new lines, "
                  "at most 20. Empty: the token works from anywhere.",
        error_messages={"max_length": "That is too long for 20 ranges."},
    )
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args, max_days: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        today = today_utc()
        self.max_days = max_days
        presets = [d for d in PRESET_DAYS if max_days is None or d <= max_days]
        choices = [(str(d), f"{d} days ({(today + timedelta(days=d)):%b %-d, %Y})") for d in presets]
        choices.append((CUSTOM, "Custom…"))
        if max_days is None:
            choices.append((NEVER, "No expiration"))
        self.fields["expiration"].choices = choices
        if "30" not in dict(choices):
            self.fields["expiration"].initial = str(presets[-1]) if presets else CUSTOM
        date_attrs = self.fields["custom_date"].widget.attrs
        date_attrs["min"] = tomorrow_utc().isoformat()
        if max_days is not None:
            date_attrs["max"] = self.latest_day.isoformat()
            self.fields["expiration"].help_text = (
                f"This workspace's tokens expire within {max_days} days.")
        if not self.is_bound:
            self.initial.setdefault("request_key", secrets.token_urlsafe(24))
            default = tomorrow_utc() + timedelta(days=29)
            if max_days is not None:
                default = min(default, self.latest_day)
            self.initial.setdefault("custom_date", default)

    @property
    def latest_day(self):
        return today_utc() + timedelta(days=self.max_days)

    def clean_allowed_ips(self):
        try:
            return ipranges.to_text(ipranges.parse(self.cleaned_data["allowed_ips"]))
        except ipranges.RangeError as error:
            raise forms.ValidationError(str(error)) from None

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
            elif self.max_days is not None and day > self.latest_day:
                self.add_error("custom_date", f"Choose a day on or before {self.latest_day:%b %-d, %Y}"
                                              f" (tokens here live at most {self.max_days} days).")
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


# The keys are services.OVERLAPS's.
OVERLAP_CHOICES = [
    ("0", "Stop the old token right away"),
    ("1h", "Keep the old token working for 1 hour"),
    ("24h", "Keep the old token working for 24 hours"),
    ("7d", "Keep the old token working for 7 days"),
]


class TokenRotateForm(ConsoleForm):
    overlap = forms.ChoiceField(
        label="While your automation picks up the new token", choices=OVERLAP_CHOICES,
        initial="24h", widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose how long the old token keeps working.",
                        "required": "Choose how long the old token keeps working."},
    )
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    # Where the person rotated from: "detail" (the token's own page) lands on the new token's
    # page, where they watch for its first use; otherwise on the list.
    next = forms.ChoiceField(choices=[("", "the list"), ("detail", "the token's page")],
                             required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("request_key", secrets.token_urlsafe(24))


class GovernanceFilterForm(DateRangeForm):
    """The governance page's query string: its filters and where the runs' page starts."""

    field_order = ["member", "token", "start", "end"]
    member = forms.CharField(label="Member", required=False, max_length=254,
                             widget=forms.TextInput(attrs={"placeholder": "email or svc:name"}))
    token = forms.CharField(label="Token", required=False, max_length=NAME_MAX,
                            widget=forms.TextInput(attrs={"placeholder": "name"}))
    after = CursorField()


class RotateQueryForm(QueryForm):
    """The rotation page's query string: `?next=detail` when reached from the token's page."""

    next = forms.CharField(label="Back to", required=False, max_length=20)


class TokenListQueryForm(QueryForm):
    """The Access tokens page's query string: its filters (unknown statuses and sorts read as
    none), and the page."""

    status = forms.CharField(label="Status", required=False, max_length=20)
    creator = forms.CharField(label="Creator", required=False, max_length=254)
    q = forms.CharField(label="Search", required=False, max_length=NAME_MAX)
    sort = forms.CharField(label="Sort", required=False, max_length=20, widget=forms.HiddenInput)
    page = PageField()


class RevokeReturnForm(QueryForm):
    """Where a revocation leads back to, from the query string (the confirmation dialog posts to
    the button's link, whose query string says it); anything else: the list."""

    next = forms.ChoiceField(required=False, choices=[("", ""), ("detail", "detail"),
                                                      ("service-account", "service-account")])


# Federation rules ----------------------------------------------------------------------------

PRESETS = {
    # The platform's issuer, a subject to adapt (placeholders in <angle brackets> must be
    # replaced before the rule saves), the claims to require, and the claims its tokens carry.
    "github": {
        "label": "GitHub Actions",
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:<owner>/<repository>:ref:refs/heads/main",
        "claims": "repository_owner_id=<the owner's numeric id>",
        "carries": "repository, repository_id, repository_owner, repository_owner_id, workflow, "
                   "job_workflow_ref, ref, ref_type, environment, event_name, run_id, actor, "
                   "runner_environment",
    },
    "gitlab": {
        "label": "GitLab CI",
        "issuer": "https://gitlab.com",
        "subject": "project_path:<group>/<project>:ref_type:branch:ref:main",
        "claims": "namespace_id=<the group's numeric id>",
        "carries": "project_path, project_id, namespace_path, namespace_id, ref, ref_type, "
                   "ref_protected, environment, pipeline_id, pipeline_source, job_id, user_login",
    },
}


def parse_claims(text: str) -> dict[str, str]:
    """`name=value` lines (blank lines skipped) as {name: value}; ValidationError otherwise."""
    claims = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        name, equals, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name or not value:
            raise forms.ValidationError(f"Line {number}: write each claim as name=value.")
        if name in claims:
            raise forms.ValidationError(f"The claim {name} is given twice.")
        claims[name] = value
    return claims


def claims_text(claims: dict) -> str:
    return "\n".join(f"{name}={value}" for name, value in claims.items())


class FederationRuleForm(ConsoleForm):
    name = forms.CharField(label="Name", max_length=NAME_MAX,
                           widget=forms.TextInput(attrs={"placeholder": "e.g. release workflow",
                                                         "autocomplete": "off"}),
                           error_messages={"required": "Enter a name for the rule."})
    issuer = forms.CharField(
        label="Issuer", max_length=300,
        widget=forms.TextInput(attrs={"placeholder": "https://token.actions.githubusercontent.com",
                                      "spellcheck": "false", "autocomplete": "off"}),
        help_text="The OpenID Connect issuer's URL, exactly as its tokens' iss claim says it.",
        error_messages={"required": "Enter the issuer's URL."})
    audience = forms.CharField(
        label="Audience", max_length=300, required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="The aud the workload asks its platform for. Empty: this console's address.")
    subject = forms.CharField(
        label="Subject", max_length=300,
        widget=forms.TextInput(attrs={"placeholder": "repo:acme/release:ref:refs/heads/main",
                                      "spellcheck": "false", "autocomplete": "off"}),
        help_text="Exact, or ending in * as a prefix (repo:acme/release:*).",
        error_messages={"required": "Enter the subject the workload's token must carry."})
    claims = forms.CharField(
        label="Further claims (optional)", required=False, max_length=12000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off",
                                     "placeholder": "repository_owner_id=1001"}),
        help_text="One name=value a line, each matched exactly, at most 32.")
    principal = forms.TypedChoiceField(
        label="Acts as", coerce=int,
        help_text="The member or service account whose authority the tokens carry.",
        error_messages={"invalid_choice": "Choose a member of this workspace."})
    lifetime = forms.IntegerField(
        label="Token lifetime (seconds)", initial=900, min_value=60, max_value=3600,
        help_text="60 to 3,600. The tokens it issues expire this long after the exchange.",
        error_messages={"min_value": "The lifetime is 60 to 3,600 seconds.",
                        "max_value": "The lifetime is 60 to 3,600 seconds.",
                        "required": "Enter the tokens' lifetime in seconds."})
    allowed_ips = forms.CharField(
        label="Allowed IP ranges (optional)", required=False, max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off",
                                     "placeholder": "e.g. 203.0.113.0/24"}),
        help_text="The exchange must come from them, and the tokens it issues carry them. "
                  "Empty: anywhere.")
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    accept_warnings = forms.BooleanField(
        label="Keep the rule anyway: I have read the warning", required=False)

    def __init__(self, *args, principals=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["principal"].choices = list(principals)

    def clean_claims(self):
        return parse_claims(self.cleaned_data["claims"])


class FederationPresetQueryForm(QueryForm):
    """The new-rule page's query string: which preset fills the form (unknown: none)."""

    preset = forms.CharField(label="Preset", required=False, max_length=20)
