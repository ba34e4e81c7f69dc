from django import forms
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
)

from console.forms import ConsoleForm, CursorField, DateRangeForm, PageField, QueryForm

from .models import CHOOSE_A_LIFETIME, TOKEN_LIFETIME_DAYS, CustomRole, Group, Membership, Role
from .permissions import GRANTS


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, with the `username` field asking for the email address."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account. Check both and try again.",
    }


LIFETIME_CHOICES = [("", "No limit"), *((str(d), f"{d} days") for d in TOKEN_LIFETIME_DAYS)]


class SettingsForm(ConsoleForm):
    """The Codex Local toggles and the maximum token lifetime. Each value travels with the one
    the page showed (`shown_<name>`), so a save changes only what this person changed: two
    people saving different settings from pages loaded at the same time both prevail."""

    FIELDS = ("allow_codex_local", "allow_access_tokens", "max_token_lifetime_days")

    allow_codex_local = forms.BooleanField(
        label="Allow members to use Codex Local", required=False
    )
    allow_access_tokens = forms.BooleanField(
        label="Allow members to use Codex access tokens", required=False
    )
    max_token_lifetime_days = forms.TypedChoiceField(
        label="Maximum token lifetime", choices=LIFETIME_CHOICES, required=False, coerce=int,
        empty_value=None,
        help_text="New tokens must expire within it; “No expiration” is no longer offered.",
        error_messages={"invalid_choice": CHOOSE_A_LIFETIME},
    )
    shown_allow_codex_local = forms.BooleanField(required=False, widget=forms.HiddenInput)
    shown_allow_access_tokens = forms.BooleanField(required=False, widget=forms.HiddenInput)
    shown_max_token_lifetime_days = forms.TypedChoiceField(
        choices=LIFETIME_CHOICES, required=False, coerce=int, empty_value=None,
        widget=forms.HiddenInput)

    @classmethod
    def for_workspace(cls, workspace):
        values = {name: getattr(workspace, name) for name in cls.FIELDS}
        return cls(initial={**values, **{f"shown_{k}": v for k, v in values.items()}})

    def changes(self) -> dict:
        """The settings this person changed from what the page showed them. A post without the
        shown values (a script) sets every one it sends."""
        data = self.cleaned_data
        return {
            name: data[name] for name in self.FIELDS
            if (f"shown_{name}" not in self.data and (name in self.data or name.startswith("allow_")))
            or (f"shown_{name}" in self.data and data[name] != data[f"shown_{name}"])
        }


class InviteForm(ConsoleForm):
    email = forms.EmailField(
        label="Email address", max_length=254,
        widget=forms.EmailInput(attrs={"placeholder": "name@company.com", "autocomplete": "off"}),
        error_messages={"required": "Enter the email address to invite.",
                        "invalid": "Enter a valid email address, such as name@company.com."},
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles
        self.fields["role"].error_messages["invalid_choice"] = "Only owners can invite an owner."


class MemberRoleForm(ConsoleForm):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class GroupForm(ConsoleForm):
    name = forms.CharField(
        label="Group name", max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Release engineering"}),
        error_messages={"required": "Enter a group name.",
                        "max_length": "The group name can be at most 100 characters."},
    )


class ServiceAccountForm(ConsoleForm):
    name = forms.CharField(
        label="Name", max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "e.g. release-ci", "autocomplete": "off"}),
        help_text="Letters, digits, dots, hyphens and underscores. Shown as svc:name.",
        error_messages={"required": "Enter a name for the service account.",
                        "max_length": "The name can be at most 64 characters."},
    )
    description = forms.CharField(
        label="Description", max_length=500, required=False,
        widget=forms.TextInput(attrs={"placeholder": "What runs as it, and who looks after it"}),
        error_messages={"max_length": "The description can be at most 500 characters."},
    )


class GroupMemberForm(ConsoleForm):
    member = forms.ModelChoiceField(
        label="Member", queryset=Membership.objects.none(), empty_label="Choose a member…",
        error_messages={"required": "Choose a member to add.",
                        "invalid_choice": "Choose a member of this workspace."},
    )

    def __init__(self, *args, group: Group, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["member"]
        field.queryset = (
            Membership.objects.filter(workspace_id=group.workspace_id)
            .exclude(groups=group)
            .select_related("user")
            .order_by("user__email")
        )
        field.label_from_instance = lambda m: m.user.handle


# "codex_local", "access_tokens", "codex_admin": what a custom role may grant.
PERMISSION_CHOICES = [(field.removeprefix("grants_"), label) for field, label in GRANTS]


class CustomRoleForm(ConsoleForm):
    name = forms.CharField(
        label="Name", max_length=100,
        error_messages={"required": "Enter a custom role name.",
                        "max_length": "The custom role name can be at most 100 characters."},
    )
    description = forms.CharField(
        label="Description", max_length=500, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"max_length": "The description can be at most 500 characters."},
    )
    permissions = forms.MultipleChoiceField(
        label="Permissions", choices=PERMISSION_CHOICES, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Codex access tokens count only together with Codex Local. Codex admin opens "
                  "Settings and Permissions and Governance, and nothing else.",
    )
    groups = forms.ModelMultipleChoiceField(
        label="Groups that hold this role", queryset=Group.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = Group.objects.filter(workspace=workspace)

    @classmethod
    def initial_for(cls, role: CustomRole) -> dict:
        return {
            "name": role.name,
            "description": role.description,
            "permissions": [key for key, _ in PERMISSION_CHOICES if getattr(role, f"grants_{key}")],
            "groups": list(role.groups.all()),
        }

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            **{f"grants_{key}": key in data["permissions"] for key, _ in PERMISSION_CHOICES},
            "groups": data["groups"],
        }


class AuditFilterForm(DateRangeForm):
    """The audit log's query string: its filters and where the page starts."""

    field_order = ["action", "actor", "start", "end"]
    action = forms.ChoiceField(label="Action", required=False)
    actor = forms.CharField(label="Actor", required=False, max_length=254,
                            widget=forms.TextInput(attrs={"placeholder": "email"}))
    after = CursorField()

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions"), *((a, a) for a in actions)]


class MemberQueryForm(QueryForm):
    """The Members page's query string: the search and the page."""

    q = forms.CharField(label="Search members", required=False, max_length=254)
    page = PageField()


class ConsolePasswordChangeForm(PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ConsolePasswordResetForm(PasswordResetForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs["autofocus"] = True


class ConsoleSetPasswordForm(SetPasswordForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class InvitationAccountForm(ConsoleForm):
    """The account an invitee creates: the email is the invitation's."""

    name = forms.CharField(label="Your name", max_length=150,
                           widget=forms.TextInput(attrs={"autocomplete": "name"}),
                           error_messages={"required": "Enter your name."})
    password1 = forms.CharField(
        label="Password", strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, and not a common password.",
        error_messages={"required": "Choose a password."},
    )
    password2 = forms.CharField(
        label="Password again", strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": "Enter the password again."},
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data
