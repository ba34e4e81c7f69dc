"""Every read of access tokens and runs that a page, a service or the workspace pages need.

What "active", "idle", "expiring soon" and "outliving a limit" mean is `tokens.models`'s
(`TokenQuerySet`, with a Python twin for each on `AccessToken`); "suspended" needs the policy
and is `suspended_creators` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from console.export import day_range
from console.templatetags.console import ago
from workspaces import permissions
from workspaces.models import AuditEvent, Membership, User, Workspace, handle_q

from . import codec, stats
from .models import AccessToken, FederationRule, Run, RunDay, TokenStatus

IDLE = "idle"
SUSPENDED = "suspended"
STATUS_LABELS = {**dict(TokenStatus.choices), SUSPENDED: "Suspended"}
STATUS_FILTERS = [*TokenStatus.choices, (IDLE, "Idle (not used in 30 days)")]
# Sort keys, with where tokens without the value go: no expiration is the latest expiry there
# is, never used the oldest use. Explicit, so SQLite and PostgreSQL agree.
SORTS = {
    "name": ("name", None),
    "created": ("created_at", None),
    "expires": ("expires_at", "largest"),
    "last_used": ("last_used_at", "smallest"),
}
DEFAULT_SORT = "-created"


def remindable_tokens(now):
    """What an expiry reminder may be about: active tokens with an expiry, not replaced, whose
    creator is an active person (the reminders' candidates, and what a queued reminder checks
    again when it goes). A service account's tokens get none: it reads no mail (its page and
    the Access tokens list show their expiry to owners and admins)."""
    return AccessToken.objects.active(now).filter(expires_at__isnull=False,
                                                  replaced_by__isnull=True,
                                                  federation_rule__isnull=True,
                                                  created_by__is_active=True,
                                                  created_by__is_service_account=False)


def _ordering(sort: str):
    key = sort.lstrip("-")
    field, empty = SORTS[key]
    descending = sort.startswith("-")
    expression = F(field)
    if empty is None:
        first = expression.desc() if descending else expression.asc()
    else:
        # Empty values first when they sort as the largest and we go down, or the smallest
        # and we go up.
        empty_first = (empty == "largest") == descending
        nulls = {"nulls_first": True} if empty_first else {"nulls_last": True}
        first = expression.desc(**nulls) if descending else expression.asc(**nulls)
    return [first, F("id").desc() if descending else F("id").asc()]


@dataclass(frozen=True)
class TokenFilters:
    """The Access tokens page's filters, as the query string gave them (unknown values
    dropped)."""

    status: str = ""
    creator: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_query(cls, query, may_filter_by_creator: bool) -> TokenFilters:
        status = query.get("status", "")
        if status not in {value for value, _ in STATUS_FILTERS}:
            status = ""
        sort = query.get("sort", DEFAULT_SORT)
        if sort.lstrip("-") not in SORTS:
            sort = DEFAULT_SORT
        creator = query.get("creator", "").strip() if may_filter_by_creator else ""
        return cls(status=status, creator=creator, q=query.get("q", "").strip(), sort=sort)

    @property
    def any(self) -> bool:
        return bool(self.status or self.creator or self.q)


def visible_tokens(membership: Membership):
    """The tokens `membership` may see (and revoke): every token of the workspace for owners
    and admins, their own for everyone else."""
    return permissions.visible_tokens(membership, AccessToken.objects.all())


def token_list(membership: Membership, filters: TokenFilters, now):
    """The Access tokens page's tokens: those the member may see, filtered and sorted."""
    tokens = visible_tokens(membership).select_related(
        "created_by", "revoked_by", "replaces", "replaced_by", "federation_rule")
    if filters.status == TokenStatus.ACTIVE:
        tokens = tokens.active(now)
    elif filters.status == TokenStatus.EXPIRED:
        tokens = tokens.expired(now)
    elif filters.status == TokenStatus.REVOKED:
        tokens = tokens.revoked()
    elif filters.status == IDLE:
        tokens = tokens.idle(now)
    if filters.creator:
        tokens = tokens.filter(handle_q(filters.creator, "created_by__"))
    if filters.q:
        tokens = tokens.filter(name__icontains=filters.q)
    return tokens.order_by(*_ordering(filters.sort))


def visible_token(membership: Membership, token_id: int, *related: str) -> AccessToken | None:
    return visible_tokens(membership).select_related("workspace", "created_by", *related).filter(
        pk=token_id).first()


def issued_here(strings) -> set[str]:
    """Which of `strings` are access tokens this console issued, whatever their state (active,
    expired, revoked): what a signed leak report's answer labels a true positive."""
    digests = {codec.digest(s): s for s in strings
               if codec.classify(s) is codec.Kind.ACCESS_TOKEN}
    found = AccessToken.objects.filter(digest__in=list(digests)).values_list("digest", flat=True)
    return {digests[digest] for digest in found}


def tokens_of_creator(workspace: Workspace, user: User):
    """Every token `user` created in `workspace` (a service account's page), newest first."""
    return (AccessToken.objects.filter(workspace=workspace, created_by=user)
            .select_related("workspace", "created_by", "revoked_by", "replaces", "replaced_by")
            .order_by("-created_at", "-id"))


def creator_emails(workspace: Workspace) -> list[str]:
    """Who the creator filter offers: every member, as the list names them (the email, or
    `svc:<name>` for a service account)."""
    return [user.handle for user in User.objects.filter(
        memberships__workspace=workspace).only("email", "name", "is_service_account")
        .order_by("is_service_account", "email")]


def expires_in_days(expires_at, now) -> int:
    """Whole calendar days (UTC) until the expiry: 0 on the day itself."""
    return (expires_at.date() - now.date()).days


BANNER_SHOWN = 10


def expiring_banner(membership: Membership, now) -> list[AccessToken]:
    """The viewer's own active, not replaced tokens that expire soon, soonest first."""
    tokens = list(
        AccessToken.objects.filter(workspace_id=membership.workspace_id,
                                   created_by_id=membership.user_id, replaced_by__isnull=True)
        .expiring_soon(now).order_by("expires_at")[:BANNER_SHOWN]
    )
    for token in tokens:
        token.expires_in_days = expires_in_days(token.expires_at, now)
    return tokens


def annotate_rows(tokens, membership: Membership, now, list_url: str = "") -> None:
    """Each row's status as shown (Suspended when its creator lacks the permission), whether it
    is idle, how soon it expires, and what the viewer may do with it; one query for every
    creator on the page."""
    creators = {t.created_by_id for t in tokens} - {membership.user_id}
    perms = {membership.user_id: permissions.perms_of(membership)}
    if creators:
        perms.update(permissions.perms_of_many(Membership.objects.filter(
            workspace_id=membership.workspace_id, user_id__in=creators).select_related("workspace")))
    for token in tokens:
        token.current_status = token.status_at(now)
        active = token.current_status == TokenStatus.ACTIVE
        if active and not permissions.may_use_tokens(perms.get(token.created_by_id, frozenset())):
            token.current_status = SUSPENDED
        token.is_idle = token.idle(now)
        token.replacement = getattr(token, "replaced_by", None)
        # A replaced token still working stops when its overlap ends: that, not its expiry
        # as such, is what its row says.
        token.overlap_ends = (token.expires_at if active and token.replacement is not None
                              else None)
        token.expires_soon = token.overlap_ends is None and token.expiring_soon(now)
        if token.expires_soon:
            token.expires_in_days = expires_in_days(token.expires_at, now)
        token.revocable = token.current_status in (TokenStatus.ACTIVE, SUSPENDED)
        token.status_label = STATUS_LABELS[token.current_status]
        token.url = f"{list_url}{token.pk}/"
        token.ranges = [r for r in token.allowed_ips.split("\n") if r]
        if token.last_used_at:
            token.last_used_ago = ago(token.last_used_at, now)
        token.can_rotate = (active and token.replacement is None
                            and permissions.can_rotate_token(membership, token))


TOKEN_PAGE_ROWS = 50


def token_history(token: AccessToken) -> tuple[list[Run], list[AuditEvent]]:
    """A token's latest runs and the audit events about it (and, for a replacement, the
    rotation that made it)."""
    runs = list(Run.objects.filter(workspace_id=token.workspace_id, token_id=token.pk)
                .order_by("-started_at", "-id")[:TOKEN_PAGE_ROWS])
    about = Q(token_id=token.pk)
    if token.replaces_id:
        about |= Q(token_id=token.replaces_id, action="token.rotated")
    events = list(AuditEvent.objects.filter(about, workspace_id=token.workspace_id)
                  .order_by("-created_at", "-id")[:TOKEN_PAGE_ROWS])
    return runs, events


def created_tokens_here(membership: Membership) -> bool:
    """Whether the member created any token in the workspace (they may then open the Access
    tokens page to see and revoke their own, whatever their permissions now). Asked once per
    request: the page's access check and its sidebar share the answer."""
    known = getattr(membership, "_created_tokens_here", None)
    if known is None:
        known = membership._created_tokens_here = AccessToken.objects.filter(
            workspace_id=membership.workspace_id, created_by_id=membership.user_id).exists()
    return known


# Suspended tokens and lifetime limits -----------------------------------------------------


def suspended_creators(workspace: Workspace, **workspace_settings) -> dict[int, int]:
    """{user id: active tokens} of the members whose active tokens cannot start runs because
    they lack the access token permission: now, or if the toggles were `workspace_settings`."""
    active = dict(
        AccessToken.objects.filter(workspace=workspace).active(timezone.now())
        .values("created_by_id").annotate(n=Count("id")).values_list("created_by_id", "n")
    )
    if not active:
        return {}
    creators = Membership.objects.filter(workspace=workspace, user_id__in=active).select_related(
        "workspace")
    perms = permissions.perms_of_many(creators, **workspace_settings)
    return {user_id: n for user_id, n in active.items()
            if not permissions.may_use_tokens(perms.get(user_id, frozenset()))}


def outliving_counts(workspace: Workspace, limit, now) -> dict:
    """How many active tokens outlive `limit`, and how many of those never expire."""
    return AccessToken.objects.filter(workspace=workspace).outliving(limit, now).aggregate(
        n=Count("id"), never=Count("id", filter=Q(expires_at__isnull=True)))


# Runs (governance) ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilters:
    """The governance page's filters (from its form's cleaned data)."""

    member: str = ""
    token: str = ""
    start: object = None  # a date, or None
    end: object = None


def governance_runs(workspace: Workspace, filters: RunFilters | None):
    """The workspace's runs as filtered (None: a form that did not validate, so none), what the
    counts are about, and the period they cover (the chosen days, else the last 30)."""
    runs = Run.objects.filter(workspace=workspace)
    counted = stats.Filters()
    if filters is None:
        runs, counted = runs.none(), stats.Filters(user_id=-1)
        filters = RunFilters()
    if filters.member:
        # A service account's name may have been used before here (by one since removed):
        # the latest.
        user = (User.objects.filter(handle_q(filters.member))
                .filter(Q(is_service_account=False) | Q(access_tokens__workspace=workspace))
                .order_by("-pk").first())
        counted = stats.Filters(user_id=user.pk if user else -1)
        runs = runs.filter(user_id=counted.user_id)
    if filters.token:
        token_ids = AccessToken.objects.filter(
            workspace=workspace, name__icontains=filters.token.strip()).values("id")
        counted = stats.Filters(user_id=counted.user_id, token_ids=token_ids)
        runs = runs.filter(token_id__in=token_ids)
    low, high = day_range(filters.start, filters.end)
    if low:
        runs = runs.filter(started_at__gte=low)
    if high:
        runs = runs.filter(started_at__lt=high)
    period = stats.period(filters.start, filters.end, timezone.now().astimezone(UTC).date())
    return runs, counted, period


# The workspace pages' figures -------------------------------------------------------------


def overview_figures(membership: Membership, now) -> dict:
    """The overview's token and run figures: runs in the last 7 days (everyone's for who sees
    governance, else the member's own), active tokens the member can see, and the five that
    expire soonest within a week."""
    everyone = permissions.can(membership, permissions.Perm.VIEW_GOVERNANCE)
    week = RunDay.objects.filter(workspace_id=membership.workspace_id,
                                 day__gt=(now - timedelta(days=7)).astimezone(UTC).date())
    if not everyone:
        week = week.filter(user_id=membership.user_id)
    tokens = visible_tokens(membership).active(now)
    return {
        "runs_this_week": week.aggregate(n=Sum("runs"))["n"] or 0,
        "runs_of_everyone": everyone,
        "active_tokens": tokens.count(),
        "expiring": list(tokens.expiring_soon(now).select_related("created_by").order_by("expires_at")[:5]),
        "tokens_of_everyone": permissions.can_see_all_tokens(membership),
    }


# Federation rules ----------------------------------------------------------------------------


def federation_rules(workspace: Workspace, now):
    """The Federation page's rules (not deleted), each with its principal and how many active
    tokens it issued, by name."""
    active = AccessToken.objects.filter(federation_rule=OuterRef("pk")).active(now)
    return (FederationRule.objects.live().filter(workspace=workspace)
            .select_related("principal")
            .annotate(active_tokens=Coalesce(Subquery(
                active.values("federation_rule").annotate(n=Count("id")).values("n")), 0))
            .order_by("name", "id"))


def federation_rule(workspace: Workspace, rule_id: int) -> FederationRule | None:
    return (FederationRule.objects.live().select_related("principal", "created_by")
            .filter(workspace=workspace, pk=rule_id).first())


def rule_tokens(rule: FederationRule, now) -> list[AccessToken]:
    """The latest tokens a rule issued, each with its status."""
    tokens = list(AccessToken.objects.filter(federation_rule=rule)
                  .order_by("-created_at", "-id")[:TOKEN_PAGE_ROWS])
    for token in tokens:
        token.status_label = STATUS_LABELS[token.status_at(now)]
        token.current_status = token.status_at(now)
    return tokens


def principal_choices(workspace: Workspace) -> list[tuple[int, str]]:
    """Who a rule may act as: the workspace's members, by email (service accounts by name)."""
    rows = (Membership.objects.filter(workspace=workspace).select_related("user")
            .order_by("user__email"))
    return [(m.user_id, principal_label(m.user)) for m in rows]


def principal_label(user) -> str:
    return user.handle
