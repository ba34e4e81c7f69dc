"""Access tokens and the runs they start, and what the words for a token's state mean.

"Active", "expired", "revoked", "idle", "expiring soon" and "outliving a lifetime limit" are
defined here once each, twice over: as a `TokenQuerySet` filter (for lists and counts) and as
an `AccessToken` method of the same name for a row already loaded; a test holds each pair to
the same answer. ("Suspended" needs the policy: `tokens.selectors.suspended_creators`.)
"""

from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from workspaces.models import Workspace

# An active token not used for this long is idle.
IDLE_AFTER = timedelta(days=30)
# An active token that expires within this long expires soon (the banner, the list's note, the
# week's reminder), if it was made to live longer than that; on its last day (UTC), if it was
# made to live longer than DAY. A token just made for 7 days is not "expiring soon": its
# creator chose that a moment ago.
SOON = timedelta(days=7)
DAY = timedelta(days=1)


def end_of_day(now: datetime) -> datetime:
    """The last moment of `now`'s day, in UTC."""
    return datetime.combine(now.astimezone(UTC).date(), time.max, tzinfo=UTC)


class TokenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


def status_of(revoked_at, expires_at, now) -> TokenStatus:
    """A token's status from its two dates (revoked wins over expired)."""
    if revoked_at is not None:
        return TokenStatus.REVOKED
    if expires_at is not None and expires_at <= now:
        return TokenStatus.EXPIRED
    return TokenStatus.ACTIVE


def latest_expiry(workspace: Workspace, now: datetime) -> datetime | None:
    """The latest a new token of this workspace may expire (None: no limit): the end, in UTC,
    of the day that is the maximum lifetime away from today."""
    days = workspace.max_token_lifetime_days
    if days is None:
        return None
    last_day = now.astimezone(UTC).date() + timedelta(days=days)
    return datetime.combine(last_day, time.max, tzinfo=UTC)


class TokenQuerySet(models.QuerySet):
    def active(self, now):
        """Neither revoked nor expired."""
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def expired(self, now):
        return self.filter(revoked_at__isnull=True, expires_at__lte=now)

    def revoked(self):
        return self.filter(revoked_at__isnull=False)

    def idle(self, now):
        """Active tokens not used in the last 30 days: never used and older than that, or last
        used before then."""
        cutoff = now - IDLE_AFTER
        return self.active(now).filter(Q(last_used_at__lt=cutoff)
                                       | Q(last_used_at__isnull=True, created_at__lt=cutoff))

    def expiring_soon(self, now):
        """Active tokens that expire within a week and were made to live longer than a week,
        or expire today (UTC) and were made to live longer than a day: the banner's, the list's
        and the expiry reminders' one rule."""
        # The outer bound (the later of the two) lets the expiry index bound the scan; the two
        # branches then only look at lifetimes.
        return self.active(now).filter(expires_at__lte=max(now + SOON, end_of_day(now))).filter(
            Q(expires_at__lte=now + SOON, expires_at__gt=F("created_at") + SOON)
            | Q(expires_at__lte=end_of_day(now), expires_at__gt=F("created_at") + DAY))

    def outliving(self, limit: datetime | None, now):
        """Active tokens that would outlive `limit` (a latest expiry; None: no limit)."""
        if limit is None:
            return self.none()
        return self.active(now).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=limit))


NAME_MAX = 100


class AccessToken(models.Model):
    """A Codex access token: acts as its creator in one workspace.

    Only the SHA-256 digest of the token is kept. A revoked token stays, with when and by whom,
    so the history survives.
    """

    # The governance record keeps its tokens, their creators and workspaces: none of them can
    # be deleted (deactivate a user instead; that revokes their tokens).
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="access_tokens")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_tokens"
    )
    name = models.CharField(max_length=NAME_MAX)
    digest = models.CharField(max_length=64, unique=True)
    last_characters = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # The create form's one-time key: the same form posted twice makes one token.
    request_key = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    # Rotation: the token this one replaced (its `replaced_by` is this one), and when this one
    # was first used (so the creator sees the replacement has been picked up).
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    first_used_at = models.DateTimeField(null=True, blank=True)
    # Where the token may be used from: addresses and CIDR ranges, one per line, normalised
    # (empty: anywhere); and the last call refused for coming from elsewhere.
    allowed_ips = models.TextField(blank=True, db_default="")
    last_refused_ip = models.GenericIPAddressField(null=True, blank=True)
    last_refused_at = models.DateTimeField(null=True, blank=True)
    # Expiry reminders sent to the creator: a week before, and on the day. Each once.
    reminded_week_at = models.DateTimeField(null=True, blank=True)
    reminded_day_at = models.DateTimeField(null=True, blank=True)
    # Issued by a federation rule's exchange (keyless runs): the rule, and the workload's claims
    # that runs record (`WORKLOAD_CLAIMS`). Null for a token made on the Access tokens page.
    federation_rule = models.ForeignKey(
        "FederationRule", null=True, blank=True, on_delete=models.PROTECT,
        related_name="issued_tokens",
    )
    workload = models.JSONField(null=True, blank=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "request_key"], condition=~models.Q(request_key=""),
                name="token_request_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="token_ws_created"),
            models.Index(
                fields=["workspace", "created_by", "-created_at"], name="token_ws_creator"
            ),
            models.Index(fields=["workspace", "name"], name="token_ws_name"),
            # A creator's tokens by expiry: the banner of tokens that expire soon, reminders.
            models.Index(fields=["created_by", "expires_at"], name="token_creator_expiry",
                         condition=models.Q(revoked_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.name} (…{self.last_characters})"

    # The Python twins of TokenQuerySet's filters, for a row already loaded.

    def status_at(self, now) -> TokenStatus:
        return status_of(self.revoked_at, self.expires_at, now)

    def active(self, now) -> bool:
        return self.status_at(now) == TokenStatus.ACTIVE

    def idle(self, now) -> bool:
        return self.active(now) and (self.last_used_at or self.created_at) < now - IDLE_AFTER

    def expiring_soon(self, now) -> bool:
        if not self.active(now) or self.expires_at is None:
            return False
        lifetime = self.expires_at - self.created_at
        return ((self.expires_at <= now + SOON and lifetime > SOON)
                or (self.expires_at <= end_of_day(now) and lifetime > DAY))

    def outliving(self, limit: datetime | None, now) -> bool:
        return (limit is not None and self.active(now)
                and (self.expires_at is None or self.expires_at > limit))


class Run(models.Model):
    """A Codex run started with an access token: the governance record.

    Every run start writes a row, so the table keeps only the indexes its pages use (the
    composite ones below, which also serve the foreign keys' workspace lookups; on PostgreSQL
    `run_ws_time` is replaced by a covering index, see migration 0009). Nothing it points to
    can be deleted (PROTECT): the record survives.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    token = models.ForeignKey(
        AccessToken, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    started_at = models.DateTimeField(default=timezone.now)
    client = models.CharField(max_length=200, blank=True)
    command = models.CharField(max_length=2000, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Runs of the Codex CLI through the console's gateway: one run per thread (a `codex exec`
    # or an interactive session), its turns counted.
    thread_id = models.CharField(max_length=100, blank=True, db_default="")
    model = models.CharField(max_length=100, blank=True, db_default="")
    sandbox_mode = models.CharField(max_length=50, blank=True, db_default="")
    turns = models.PositiveIntegerField(default=1, db_default=1)
    # Started with a token a federation rule issued: the rule and the workload's claims (copied
    # from the token by the run start).
    federation_rule = models.ForeignKey(
        "FederationRule", null=True, blank=True, on_delete=models.PROTECT, related_name="runs",
        db_index=False,
    )
    workload = models.JSONField(null=True, blank=True)
    # The CLI's id of the last turn counted: a turn it retries (the same id) counts once.
    last_turn_id = models.CharField(max_length=100, blank=True, db_default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Only gateway runs have a thread: the index stays empty for API runs.
            models.UniqueConstraint(fields=["token", "thread_id"], condition=~models.Q(thread_id=""),
                                    name="run_token_thread_unique"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-started_at", "-id"], name="run_ws_time"),
            models.Index(fields=["workspace", "user", "-started_at"], name="run_ws_user"),
            models.Index(fields=["workspace", "token", "-started_at"], name="run_ws_token"),
        ]

    def __str__(self):
        return f"run {self.pk} by {self.user_id}"


class RunDay(models.Model):
    """How many runs each member started on each day (UTC): the governance chart and the
    per-member counts, without counting the runs table. Kept by the statement that records a
    run, and by the pruning that deletes runs."""

    pk = models.CompositePrimaryKey("workspace", "day", "user")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                             db_index=False)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.day}: {self.runs} runs by {self.user_id}"


class TokenRuns(models.Model):
    """How many runs each token has started, all its life (within retention): the per-token
    counts of long periods. Kept like RunDay. No index on `runs`: every run updates it, and an
    unindexed column lets PostgreSQL update the row in place."""

    token = models.OneToOneField(AccessToken, on_delete=models.PROTECT, primary_key=True,
                                 related_name="run_total")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    runs = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.token_id}: {self.runs} runs"


# Keyless runs: workload identity federation ---------------------------------------------------

# The claims of a workload's token that runs record, whichever the issuer: GitHub's names, then
# GitLab's (`ref` is both's).
WORKLOAD_CLAIMS = ("repository", "workflow", "ref", "run_id", "project_path", "pipeline_id")
LIFETIME_MIN, LIFETIME_MAX, LIFETIME_DEFAULT = 60, 3600, 900
CLAIMS_MAX = 32


class FederationRuleQuerySet(models.QuerySet):
    def live(self):
        """Not deleted (enabled or not): the Federation page's rules."""
        return self.filter(deleted_at__isnull=True)

    def usable(self):
        """Enabled and not deleted: the rules an exchange may use."""
        return self.live().filter(enabled=True)


class FederationRule(models.Model):
    """A federation rule: which workloads (an OpenID Connect issuer's tokens with this audience,
    subject and claims) receive short-lived access tokens acting as `principal`.

    A deleted rule stays as a row with `deleted_at` (its tokens and their runs point to it, and
    the governance record keeps its name)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT,
                                  related_name="federation_rules")
    name = models.CharField(max_length=NAME_MAX)
    issuer = models.CharField(max_length=300)
    audience = models.CharField(max_length=300)
    # Exact, or ending in `*` as a prefix.
    subject = models.CharField(max_length=300)
    # Further claims that must match exactly: {"repository_owner_id": "123", ...}.
    claims = models.JSONField(default=dict, blank=True)
    principal = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    lifetime = models.PositiveIntegerField(default=LIFETIME_DEFAULT)  # seconds
    allowed_ips = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = FederationRuleQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"],
                                    condition=models.Q(deleted_at__isnull=True),
                                    name="federation_rule_name_unique"),
            models.CheckConstraint(
                condition=models.Q(lifetime__gte=LIFETIME_MIN, lifetime__lte=LIFETIME_MAX),
                name="federation_rule_lifetime_range"),
        ]

    def __str__(self):
        return self.name

    def subject_matches(self, subject) -> bool:
        if not isinstance(subject, str):
            return False
        if self.subject.endswith("*"):
            return subject.startswith(self.subject[:-1])
        return subject == self.subject


class UsedAssertion(models.Model):
    """A workload token (by its issuer and `jti`) that was exchanged: each is exchanged once.
    Kept until the token itself has expired (with the leeway); `prune_runs` removes the rest."""

    issuer = models.CharField(max_length=300)
    jti = models.CharField(max_length=255)
    rule = models.ForeignKey(FederationRule, on_delete=models.PROTECT, related_name="+",
                             db_index=False)
    used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="used_assertion_once")]
        indexes = [models.Index(fields=["expires_at"], name="used_assertion_expiry")]

    def __str__(self):
        return f"{self.issuer} {self.jti}"
