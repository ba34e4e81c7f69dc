from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm

from .models import CustomRole, Group, Membership, Role


class ConsoleForm(forms.Form):
    """Labels without a trailing colon, as everywhere in the console."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


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


class SettingsForm(ConsoleForm):
    allow_codex_local = forms.BooleanField(
        label="Allow members to use Codex Local", required=False
    )
    allow_access_tokens = forms.BooleanField(
        label="Allow members to use Codex access tokens", required=False
    )


class MemberAddForm(ConsoleForm):
    email = forms.EmailField(
        label="Email address", max_length=254,
        widget=forms.EmailInput(attrs={"placeholder": "name@company.com", "autocomplete": "off"}),
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(ConsoleForm):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class GroupForm(ConsoleForm):
    name = forms.CharField(
        label="Group name", max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Release engineering"}),
        error_messages={"required": "Enter a group name.",
                        "max_length": "The group name can be at most 100 characters."},
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
        field.label_from_instance = lambda m: m.user.email


PERMISSION_CHOICES = [
    ("codex_local", "Codex Local"),
    ("access_tokens", "Codex access tokens"),
]


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
        help_text="Codex access tokens count only together with Codex Local.",
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
            "permissions": [
                key for key, on in (("codex_local", role.grants_codex_local),
                                    ("access_tokens", role.grants_access_tokens)) if on
            ],
            "groups": list(role.groups.all()),
        }

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "grants_codex_local": "codex_local" in data["permissions"],
            "grants_access_tokens": "access_tokens" in data["permissions"],
            "groups": data["groups"],
        }


class DateRangeForm(ConsoleForm):
    """A list filter over whole days, From and To both included (UTC)."""

    start = forms.DateField(label="From", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}),
                            error_messages={"invalid": "Enter a date as YYYY-MM-DD."})
    end = forms.DateField(label="To", required=False,
                          widget=forms.DateInput(attrs={"type": "date"}),
                          error_messages={"invalid": "Enter a date as YYYY-MM-DD."})

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date must be on or after the start date.")
        return data


class AuditFilterForm(DateRangeForm):
    field_order = ["action", "actor", "start", "end"]
    action = forms.ChoiceField(label="Action", required=False)
    actor = forms.CharField(label="Actor", required=False, max_length=254,
                            widget=forms.TextInput(attrs={"placeholder": "email"}))

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions"), *((a, a) for a in actions)]


class ConsolePasswordChangeForm(PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
