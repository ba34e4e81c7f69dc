import unicodedata

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def normal_email(value: str) -> str:
    """An email address in its one normal form: Unicode NFKC, case-folded, trimmed. Emails are
    stored in it and compared in it exactly, never with the database's case-insensitive
    matching (PostgreSQL's UPPER() turns `ı` into I and `ſ` into S): so `Victim@Acme.test`
    and `victim@acme.teſt` are one address, and `victım@acme.test` another. Every per-email
    limit counts on it."""
    folded = unicodedata.normalize("NFKC", value or "").casefold()
    return unicodedata.normalize("NFKC", folded).strip()


SERVICE_ACCOUNT_PREFIX = "svc:"


def handle_q(handle: str, prefix: str = "") -> models.Q:
    """A filter for the user a page names by `handle` (an email, or `svc:<name>` for a service
    account); `prefix` leads to the user from another model (`"created_by__"`)."""
    handle = (handle or "").strip()
    if handle.startswith(SERVICE_ACCOUNT_PREFIX):
        return models.Q(**{f"{prefix}is_service_account": True,
                           f"{prefix}name": handle.removeprefix(SERVICE_ACCOUNT_PREFIX)})
    return models.Q(**{f"{prefix}email": normal_email(handle)})


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email):
        return normal_email(email)

    def get_by_natural_key(self, email):
        return self.get(email=normal_email(email))

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


# Service accounts' users get an address under this domain: `.invalid` is reserved (RFC 2606)
# and never resolves, so nothing can be delivered there; invitations and sign-ups refuse it.
SERVICE_ACCOUNT_DOMAIN = "service-account.invalid"


def reserved_email(email: str) -> bool:
    """Whether an address (in its normal form) belongs to the service accounts' domain."""
    return normal_email(email).rpartition("@")[2] == SERVICE_ACCOUNT_DOMAIN


class User(AbstractBaseUser, PermissionsMixin):
    """A person, or a workspace's service account. A person signs in by email and belongs to
    workspaces through memberships. A service account (`is_service_account`) is a member of
    its one workspace and nothing more: no usable password, no sign-in, an address under
    SERVICE_ACCOUNT_DOMAIN that receives no mail, and its name in `name`."""

    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_service_account = models.BooleanField(default=False, editable=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        # Emails are stored in their normal form (normal_email); this keeps a row written
        # around it from doubling an account by case.
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = normal_email(self.email)

    @property
    def display_name(self):
        return self.handle if self.is_service_account else (self.name or self.email)

    @property
    def handle(self) -> str:
        """How the console names this user wherever a creator or an actor is shown: the email,
        or `svc:<name>` for a service account."""
        return f"{SERVICE_ACCOUNT_PREFIX}{self.name}" if self.is_service_account else self.email


class Plan(models.TextChoices):
    BUSINESS = "business", "Business"
    ENTERPRISE = "enterprise", "Enterprise"
    EDU = "edu", "Edu"


# The longest a workspace may let access tokens live (days), besides no limit at all.
TOKEN_LIFETIME_DAYS = (7, 30, 60, 90, 365)
CHOOSE_A_LIFETIME = (f"Choose no limit, or {', '.join(map(str, TOKEN_LIFETIME_DAYS[:-1]))} or "
                     f"{TOKEN_LIFETIME_DAYS[-1]} days.")


class Workspace(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.BUSINESS)
    allow_codex_local = models.BooleanField("Allow members to use Codex Local", default=False)
    allow_access_tokens = models.BooleanField(
        "Allow members to use Codex access tokens", default=False
    )
    # The longest an access token may live, in days; None: no limit.
    max_token_lifetime_days = models.PositiveIntegerField(
        "Maximum token lifetime", null=True, blank=True,
        choices=[(d, f"{d} days") for d in TOKEN_LIFETIME_DAYS],
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(plan__in=[p.value for p in Plan]), name="workspace_plan_valid"
            )
        ]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user's place in a workspace, with a built-in role. One per user and workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["workspace", "role"])]

    def __str__(self):
        return f"{self.user} in {self.workspace} ({self.role})"


SERVICE_ACCOUNT_NAME_MAX = 64


class ServiceAccount(models.Model):
    """A workspace principal that is not a person: automation that belongs to a team. Its user
    (`User.is_service_account`) is a member of this workspace with the member role, so it holds
    permissions as a member does (the toggles, a group's custom role), and tokens are created
    for it by owners and admins. Removing it deletes this row and the membership, revokes its
    tokens and deactivates its user, which stays (with its name) for the governance record."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE,
                                  related_name="service_accounts")
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="service_account")
    name = models.CharField(max_length=SERVICE_ACCOUNT_NAME_MAX)
    description = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="service_account_name_unique"),
        ]

    def __str__(self):
        return f"svc:{self.name}"


class Group(models.Model):
    """A named set of members of one workspace; custom roles are held through groups."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(Membership, related_name="groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="group_name_unique"),
        ]

    def __str__(self):
        return self.name


class CustomRole(models.Model):
    """A set of permissions that the members of the groups holding it receive."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="custom_roles")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    grants_codex_local = models.BooleanField("Codex Local", default=False)
    grants_access_tokens = models.BooleanField("Codex access tokens", default=False)
    grants_codex_admin = models.BooleanField("Codex admin", default=False)
    groups = models.ManyToManyField(Group, related_name="custom_roles", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="custom_role_name_unique"),
        ]

    def __str__(self):
        return self.name


class AuditEvent(models.Model):
    """Something that changed in a workspace: who, what, to what, from where, when.

    The actor's and target's words are copied in, so the record survives their deletion.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="audit_events")
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=50)
    target = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # The access token an event is about, if any: a plain number, so the record outlives it.
    token_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="audit_ws_time"),
            models.Index(fields=["workspace", "action", "-created_at"], name="audit_ws_action"),
            models.Index(fields=["token_id", "-created_at"], name="audit_token",
                         condition=models.Q(token_id__isnull=False)),
        ]

    def __str__(self):
        return f"{self.action} {self.target}"


class Invitation(models.Model):
    """An invitation to join a workspace with a role, for one email address.

    Only the SHA-256 digest of its key is kept; the key itself is made by the mail worker as
    the mail goes, and travels once, in the mail. It works once, for its email (stored in its
    normal form) only, until it expires; a resend issues a new key. It lives on its inviter's
    right to send it (`services.members.invitations_cancel_unsendable`).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    key_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            # One open invitation per email (stored in its normal form) and workspace:
            # inviting again resends it.
            models.UniqueConstraint(
                "workspace", Lower("email"),
                condition=models.Q(accepted_at__isnull=True, cancelled_at__isnull=True),
                name="invitation_open_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="invitation_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.email} to {self.workspace} ({self.role})"

    def is_open_at(self, now) -> bool:
        return self.accepted_at is None and self.cancelled_at is None and self.expires_at > now
