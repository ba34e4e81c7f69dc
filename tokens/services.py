"""Every write to access tokens and runs.

Each function is atomic and writes its audit event in the same transaction; those that act for
a member take the acting membership, lock what they change and ask `permissions.py` after the
locked read. The plaintext token exists only in the return value of the functions that create
one; nothing stores or logs it.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from workspaces import permissions
from workspaces.audit import Actor, record
from workspaces.errors import Forbidden, ServiceError
from workspaces.locking import lock_members
from workspaces.mail import compose, send_now, send_on_commit
from workspaces.models import Membership, User, Workspace
from workspaces.permissions import Perm

from . import codec, ipranges
from .authn import EXPIRED, FACTS_SQL, REVOKED, Grant, Refusal, TokenFacts, decide, fetch_one
from .models import AccessToken, Run, RunDay, TokenRuns, TokenStatus

NAME_MAX = 100
logger = logging.getLogger(__name__)


class AlreadySubmitted(ServiceError):
    """The create form was posted before: its token exists and was shown once already."""

    def __init__(self, token: AccessToken):
        super().__init__(
            f"This form was already submitted: the access token “{token.name}” was created "
            "and shown once. Its value cannot be shown again; revoke it and create a new one "
            "if you did not copy it.",
            status=409,
        )
        self.token = token


def _active(qs, now):
    return qs.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)


def latest_expiry(workspace: Workspace, now: datetime) -> datetime | None:
    """The latest a new token of this workspace may expire (None: no limit): the end, in UTC,
    of the day that is the maximum lifetime away from today."""
    days = workspace.max_token_lifetime_days
    if days is None:
        return None
    last_day = now.astimezone(UTC).date() + timedelta(days=days)
    return datetime.combine(last_day, time.max, tzinfo=UTC)


def _check_lifetime(workspace: Workspace, expires_at: datetime | None, now: datetime) -> None:
    limit = latest_expiry(workspace, now)
    if limit is None:
        return
    days = workspace.max_token_lifetime_days
    if expires_at is None:
        raise ServiceError(f"Tokens in {workspace.name} must expire within {days} days: choose "
                           "an expiration.", "expiration")
    if expires_at > limit:
        raise ServiceError(f"Tokens in {workspace.name} may live at most {days} days: choose an "
                           f"expiration on or before {limit:%b %-d, %Y}.", "expiration")


@sensitive_variables("plaintext")
def _mint(*, membership: Membership, name: str, expires_at: datetime | None, allowed_ips: str,
          request_key: str, now: datetime, replaces: AccessToken | None = None,
          ) -> tuple[AccessToken, str]:
    """A new token row and its plaintext (inside the caller's transaction)."""
    plaintext = codec.generate()
    try:
        with transaction.atomic():
            token = AccessToken.objects.create(
                workspace=membership.workspace, created_by=membership.user, name=name,
                digest=codec.digest(plaintext), last_characters=plaintext[-4:], created_at=now,
                expires_at=expires_at, allowed_ips=allowed_ips, request_key=request_key or "",
                replaces=replaces,
            )
    except IntegrityError:
        existing = AccessToken.objects.filter(created_by=membership.user,
                                              request_key=request_key).first()
        if request_key and existing is not None:
            raise AlreadySubmitted(existing) from None
        raise
    return token, plaintext


def _lock_creator(membership: Membership, request_key: str | None) -> Membership:
    """The member, locked (so the name and request-key checks hold), who must still be an
    active member holding the access token permission on a plan that has tokens. The workspace
    row is locked first (the lifetime limit read from it holds until the token is saved, as
    lowering it and shortening tokens lock it too), then the user's (a deactivation, which locks
    it before revoking the user's tokens, either comes first and is seen here, or waits and then
    revokes this token too)."""
    list(Workspace.objects.select_for_update(no_key=True).filter(pk=membership.workspace_id)
         .values("pk"))
    active = User.objects.select_for_update(no_key=True).filter(pk=membership.user_id).values_list(
        "is_active", flat=True)
    if not any(active):
        raise Forbidden("This account is deactivated.")
    (membership,) = lock_members(membership)
    if request_key:
        existing = AccessToken.objects.filter(created_by=membership.user,
                                              request_key=request_key).first()
        if existing is not None:
            raise AlreadySubmitted(existing)
    if not permissions.plan_supports_tokens(membership.workspace.plan):
        raise Forbidden("Codex access tokens need a Business or Enterprise plan.")
    if not permissions.can(membership, Perm.USE_ACCESS_TOKENS):
        raise Forbidden(permissions.ASK_FOR_TOKENS)
    return membership


@sensitive_variables("plaintext")
@transaction.atomic
def token_create(
    *,
    membership: Membership,
    actor: Actor,
    name: str,
    expires_at: datetime | None,
    allowed_ips: str = "",
    request_key: str | None = None,
) -> tuple[AccessToken, str]:
    """Create an access token acting as `membership`'s user; returns it and its plaintext.

    The plaintext is returned once and never stored: only its SHA-256 digest is. Posting the
    same `request_key` twice creates one token and raises `AlreadySubmitted` the second time.
    The workspace's maximum token lifetime holds, whatever the form offered.
    """
    membership = _lock_creator(membership, request_key)
    workspace, user = membership.workspace, membership.user
    now = timezone.now()
    name = (name or "").strip()
    if not name:
        raise ServiceError("Enter a name for the token.", "name")
    if len(name) > NAME_MAX:
        raise ServiceError(f"The name can be at most {NAME_MAX} characters.", "name")
    if expires_at is not None and expires_at <= now:
        raise ServiceError("The expiration must be in the future.", "expiration")
    _check_lifetime(workspace, expires_at, now)
    try:
        allowed_ips = ipranges.to_text(ipranges.parse(allowed_ips))
    except ipranges.RangeError as error:
        raise ServiceError(str(error), "allowed_ips") from None
    clash = _active(AccessToken.objects.filter(workspace=workspace, created_by=user, name=name,
                                               replaced_by__isnull=True), now)
    if clash.exists():
        raise ServiceError(
            f"You already have an active token called “{name}”. Choose another name.", "name"
        )
    token, plaintext = _mint(membership=membership, name=name, expires_at=expires_at,
                             allowed_ips=allowed_ips, request_key=request_key, now=now)
    record(
        workspace=workspace, actor=actor, action="token.created", target=name, token_id=token.pk,
        details={
            "token_id": token.pk,
            "last_characters": token.last_characters,
            "expires_at": expires_at.isoformat() if expires_at else None,
            **({"allowed_ips": allowed_ips.split("\n")} if allowed_ips else {}),
        },
    )
    return token, plaintext


OVERLAPS = {"0": timedelta(0), "1h": timedelta(hours=1), "24h": timedelta(hours=24),
            "7d": timedelta(days=7)}


@sensitive_variables("plaintext")
@transaction.atomic
def token_rotate(*, token: AccessToken, acting: Membership, actor: Actor, overlap: str,
                 request_key: str | None = None) -> tuple[AccessToken, str]:
    """Replace a token with a new one: the same name, the same lifetime counted from now (within
    the workspace's limit) and the same allowed ranges. The old token works until the overlap
    ends and then expires (`0`: it is revoked at once). Only its creator rotates a token, and
    only while it is active and not yet replaced. One audit event names both tokens."""
    if overlap not in OVERLAPS:
        raise ServiceError("Choose how long the old token keeps working: 0, 1h, 24h or 7d.",
                           "overlap")
    acting = _lock_creator(acting, request_key)
    now = timezone.now()
    old = AccessToken.objects.select_for_update(of=("self",), no_key=True).select_related(
        "workspace", "created_by").filter(pk=token.pk).first()
    if old is None or not permissions.can_rotate_token(acting, old):
        raise Forbidden("Only the token's creator can rotate it.")
    if old.status_at(now) != TokenStatus.ACTIVE:
        raise ServiceError("Only an active token can be rotated.")
    if AccessToken.objects.filter(replaces=old).exists():
        raise ServiceError("This token was rotated already: rotate its replacement instead.")
    workspace = acting.workspace
    expires_at, capped = None, False
    if old.expires_at is not None:
        expires_at = now + (old.expires_at - old.created_at)
    limit = latest_expiry(workspace, now)
    if limit is not None and (expires_at is None or expires_at > limit):
        expires_at, capped = limit, True
    new, plaintext = _mint(membership=acting, name=old.name, expires_at=expires_at,
                           allowed_ips=old.allowed_ips, request_key=request_key, now=now,
                           replaces=old)
    old_expires_before = old.expires_at
    if OVERLAPS[overlap]:
        ends = now + OVERLAPS[overlap]
        if old.expires_at is None or old.expires_at > ends:
            AccessToken.objects.filter(pk=old.pk).update(expires_at=ends)
            old.expires_at = ends
    else:
        AccessToken.objects.filter(pk=old.pk).update(revoked_at=now, revoked_by=actor.user)
        old.revoked_at, old.revoked_by = now, actor.user
    record(
        workspace=workspace, actor=actor, action="token.rotated", target=old.name,
        token_id=old.pk,
        details={
            "token_id": old.pk, "last_characters": old.last_characters,
            "replacement_id": new.pk, "replacement_last_characters": new.last_characters,
            "overlap": overlap,
            "old_token_works_until": (old.revoked_at or old.expires_at or now).isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
            **({"shortened_to_the_workspace_limit": True} if capped else {}),
            **({"old_expires_at": old_expires_before.isoformat()} if old_expires_before else {}),
        },
    )
    return new, plaintext


REVOKERS = {"leak report": "a leak report: the token was found where others can see it, and "
                           "reported to the console"}


def _revoke(token: AccessToken, actor: Actor, reason: str) -> bool:
    """Revoke one token inside the caller's transaction; False if it was revoked already.

    The conditional UPDATE takes the row lock, so a run being recorded for this token either
    committed before the revocation or sees it and is refused. When someone other than its
    creator revokes it (an owner, an admin, a leak report), the creator is mailed once the
    revocation commits.
    """
    now = timezone.now()
    changed = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=actor.user
    )
    if not changed:
        return False
    token.revoked_at, token.revoked_by = now, actor.user
    details = {"token_id": token.pk, "last_characters": token.last_characters,
               "created_by": token.created_by.email}
    if reason:
        details["reason"] = reason
    record(
        workspace=token.workspace, actor=actor, action="token.revoked", target=token.name,
        details=details, token_id=token.pk,
    )
    if actor.user is None or actor.user.pk != token.created_by_id:
        by = (f"{actor.user.display_name} ({actor.user.email})" if actor.user
              else REVOKERS.get(reason, "the console"))
        send_on_commit(compose("token_revoked", token.created_by.email, {
            "token": token, "by": by, "reason": reason,
            "url": settings.SITE_URL + reverse("tokens:detail",
                                               args=[token.workspace.slug, token.pk]),
        }))
    return True


@transaction.atomic
def token_revoke(*, token: AccessToken, acting: Membership, actor: Actor, reason: str = "") -> bool:
    """Revoke a token as `acting`, if the policy lets them see it. Idempotent: a second call
    changes nothing and records nothing (and returns False)."""
    acting = _lock_acting(acting)
    if not permissions.can_revoke_token(acting, token):
        raise Forbidden("You cannot revoke this access token.")
    return _revoke(token, actor, reason)


def tokens_revoke_for_member(*, membership: Membership, actor: Actor, reason: str) -> int:
    """Revoke every active token a member created in the workspace (inside the caller's
    transaction, which has locked the membership). Returns how many were revoked."""
    tokens = _active(AccessToken.objects.filter(
        workspace_id=membership.workspace_id, created_by_id=membership.user_id), timezone.now()
    ).select_related("workspace", "created_by")
    return sum(_revoke(t, actor, reason) for t in tokens)


@transaction.atomic
def tokens_revoke_selected(*, ids, acting: Membership, actor: Actor) -> dict:
    """Revoke the tokens with these ids, each as if one by one (each audited). Tokens `acting`
    may not revoke (not theirs, another workspace's, unknown) are left alone and counted, and
    so are those already revoked: {"revoked": [names], "already": n, "refused": n}."""
    acting = _lock_acting(acting)
    wanted, unreadable = set(), 0
    for value in set(ids):
        try:
            number = int(str(value), 10)
        except ValueError:
            number = 0
        if 0 < number < 2**63:
            wanted.add(number)
        else:
            unreadable += 1
    tokens = list(permissions.visible_tokens(acting, AccessToken.objects.filter(pk__in=wanted))
                  .select_related("workspace", "created_by").order_by("name", "id"))
    result = {"revoked": [], "already": 0,
              "refused": unreadable + len(wanted) - len(tokens)}
    for token in tokens:
        if _revoke(token, actor, "revoked with others selected on the list"):
            result["revoked"].append(token.name)
        else:
            result["already"] += 1
    return result


@transaction.atomic
def tokens_revoke_member(*, membership: Membership, acting: Membership, actor: Actor) -> int:
    """Revoke every active token a member created in the workspace (owners and admins)."""
    membership, acting = lock_members(membership, acting)
    if not permissions.can_see_all_tokens(acting) or membership.workspace_id != acting.workspace_id:
        raise Forbidden("Only owners and admins can revoke another member's tokens.")
    return tokens_revoke_for_member(membership=membership, actor=actor,
                                    reason="all of the member's tokens revoked")


def tokens_outliving(workspace: Workspace, now: datetime):
    """Active tokens that would outlive the workspace's maximum lifetime from now."""
    limit = latest_expiry(workspace, now)
    if limit is None:
        return AccessToken.objects.none()
    return _active(AccessToken.objects.filter(workspace=workspace), now).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=limit))


@transaction.atomic
def tokens_shorten(*, acting: Membership, actor: Actor) -> int:
    """Shorten every active token that outlives the workspace's maximum lifetime to it (each
    audited, before and after). Owners and admins. Returns how many."""
    workspace = Workspace.objects.select_for_update(no_key=True).get(pk=acting.workspace_id)
    acting = _lock_acting(acting)
    if not permissions.can_see_all_tokens(acting):
        raise Forbidden("Only owners and admins can shorten other members' tokens.")
    now = timezone.now()
    limit = latest_expiry(workspace, now)
    count = 0
    for token in tokens_outliving(workspace, now).select_for_update(of=("self",), no_key=True):
        before = token.expires_at
        AccessToken.objects.filter(pk=token.pk).update(expires_at=limit)
        record(workspace=workspace, actor=actor, action="token.shortened", target=token.name,
               token_id=token.pk, details={
                   "token_id": token.pk, "last_characters": token.last_characters,
                   "expires_at": {"before": before.isoformat() if before else None,
                                  "after": limit.isoformat()},
                   "limit_days": workspace.max_token_lifetime_days})
        count += 1
    return count


LEAK_REPORT = "leak report"


@transaction.atomic
def tokens_revoke_leaked(*, strings, actor: Actor) -> int:
    """A leak report: revoke every active token among `strings` (each audited in its own
    workspace as reported leaked, its creator mailed). Anything else among them (revoked,
    expired, unknown, malformed) is ignored. Returns how many were revoked; the caller must not
    tell anyone."""
    digests = {codec.digest(s) for s in strings if codec.classify(s) is codec.Kind.ACCESS_TOKEN}
    if not digests:
        return 0
    tokens = _active(AccessToken.objects.filter(digest__in=digests), timezone.now()) \
        .select_related("workspace", "created_by").select_for_update(of=("self",), no_key=True)
    return sum(_revoke(token, actor, LEAK_REPORT) for token in tokens)


# Retention ---------------------------------------------------------------------------------

PRUNE_BATCH = 5000


def runs_prune(*, before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete the runs started before `before`, in batches of `batch`, each in its own short
    transaction (no lock is held for long, and runs keep being recorded meanwhile). Each batch
    takes its runs out of the roll-ups and is audited in each workspace it touched. Returns how
    many runs were deleted.

    Two prunes at once (a cron line on every server) share the work: a batch locks its runs and
    the other prune skips locked runs, so no run is taken out of the roll-ups twice."""
    deleted = 0
    while True:
        with transaction.atomic():
            rows = list(
                Run.objects.filter(started_at__lt=before).order_by("id")
                .select_for_update(skip_locked=True)
                .values_list("id", "workspace_id", "token_id", "user_id", "started_at")[:batch]
            )
            if not rows:
                return deleted
            Run.objects.filter(pk__in=[row[0] for row in rows]).delete()
            days: dict[tuple, int] = {}
            tokens: dict[tuple, int] = {}
            per_workspace: dict[int, int] = {}
            for _, workspace_id, token_id, user_id, started_at in rows:
                day = (workspace_id, started_at.astimezone(UTC).date(), user_id)
                days[day] = days.get(day, 0) + 1
                tokens[(workspace_id, token_id)] = tokens.get((workspace_id, token_id), 0) + 1
                per_workspace[workspace_id] = per_workspace.get(workspace_id, 0) + 1
            for (workspace_id, day, user_id), n in days.items():
                RunDay.objects.filter(workspace_id=workspace_id, day=day, user_id=user_id).update(
                    runs=F("runs") - n)
            RunDay.objects.filter(runs__lte=0).delete()
            for (_, token_id), n in tokens.items():
                TokenRuns.objects.filter(token_id=token_id).update(runs=F("runs") - n)
            for workspace in Workspace.objects.filter(pk__in=per_workspace):
                record(workspace=workspace, actor=Actor(None, label="retention"),
                       action="runs.pruned", target=f"{per_workspace[workspace.pk]} runs",
                       details={"runs": per_workspace[workspace.pk],
                                "started_before": before.isoformat()})
            deleted += len(rows)


# Expiry reminders -------------------------------------------------------------------------

REMINDER_WEEK = timedelta(days=7)


def _reminder_candidates(now: datetime):
    """Active, not replaced tokens of active creators that have a reminder due: a week before
    the expiry (for tokens that live longer than a week) and on the day itself (UTC)."""
    today_ends = datetime.combine(now.astimezone(UTC).date(), time.max, tzinfo=UTC)
    base = AccessToken.objects.filter(revoked_at__isnull=True, expires_at__gt=now,
                                      replaced_by__isnull=True, created_by__is_active=True)
    # A token that expires today gets the day's reminder only, even if the week's never went.
    week = base.filter(reminded_week_at__isnull=True, reminded_day_at__isnull=True,
                       expires_at__lte=now + REMINDER_WEEK,
                       expires_at__gt=F("created_at") + REMINDER_WEEK).filter(
                           expires_at__gt=today_ends)
    day = base.filter(reminded_day_at__isnull=True, expires_at__lte=today_ends,
                      expires_at__gt=F("created_at") + timedelta(days=1))
    return [("week", pk) for pk in week.order_by("pk").values_list("pk", flat=True)] + \
        [("day", pk) for pk in day.order_by("pk").values_list("pk", flat=True)]


def send_token_reminders(*, now: datetime | None = None) -> int:
    """Mail creators about tokens that expire in a week or today. Each reminder goes once,
    however often this runs and however many run at once: a reminder is claimed by a
    conditional UPDATE that commits before its mail is sent (a slow mail server must not hold
    the token's row, which the token's API calls update), and a mail that cannot go out gives
    its claim back, to be tried again on the next run. Returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for which, pk in _reminder_candidates(now):
        field = "reminded_week_at" if which == "week" else "reminded_day_at"
        # The claim asks again what made the token a candidate: it may have been revoked,
        # replaced or have expired while earlier reminders went out.
        # Every condition is on the row itself (the replacement as NOT EXISTS, not a join that
        # would turn the UPDATE into `pk IN (subquery)`): PostgreSQL re-checks them on the row
        # a concurrent run has just claimed, so only one of the two claims it.
        claim = AccessToken.objects.filter(
            ~Exists(AccessToken.objects.filter(replaces=OuterRef("pk"))),
            pk=pk, revoked_at__isnull=True, expires_at__gt=now, **{f"{field}__isnull": True})
        if not claim.update(**{field: now}):
            continue  # another run sent it
        try:
            token = AccessToken.objects.select_related("workspace", "created_by").get(pk=pk)
            send_now(compose("token_expiry", token.created_by.email, {
                "token": token, "today": which == "day",
                # Days left, to the nearest day: a week's reminder sent by an hourly run says
                # 7 days whatever the hour.
                "days": max(1, round((token.expires_at - now) / timedelta(days=1))),
                "url": settings.SITE_URL + reverse("tokens:detail",
                                                   args=[token.workspace.slug, token.pk]),
            }))
        except Exception:
            logger.exception("Could not send the %s reminder for access token %s", which, pk)
            AccessToken.objects.filter(pk=pk, **{field: now}).update(**{field: None})
            continue
        sent += 1
    return sent


def _lock_acting(acting: Membership) -> Membership:
    return lock_members(acting)[0]


def suspended_creators(workspace: Workspace, **workspace_settings) -> dict[int, int]:
    """{user id: active tokens} of the members whose active tokens cannot start runs because
    they lack the access token permission: now, or if the toggles were `workspace_settings`."""
    active = dict(
        _active(AccessToken.objects.filter(workspace=workspace), timezone.now())
        .values("created_by_id").annotate(n=Count("id")).values_list("created_by_id", "n")
    )
    if not active:
        return {}
    creators = Membership.objects.filter(workspace=workspace, user_id__in=active).select_related(
        "workspace")
    perms = permissions.perms_of_many(creators, **workspace_settings)
    return {user_id: n for user_id, n in active.items()
            if not permissions.may_use_tokens(perms.get(user_id, frozenset()))}


@transaction.atomic
def tokens_revoke_suspended(*, acting: Membership, actor: Actor) -> int:
    """Revoke every active token of the workspace whose creator no longer holds the access
    token permission (each audited). Owners and admins only. Returns how many."""
    workspace = Workspace.objects.select_for_update(no_key=True).get(pk=acting.workspace_id)
    acting = _lock_acting(acting)
    if not permissions.can_see_all_tokens(acting):
        raise Forbidden("Only owners and admins can revoke other members' tokens.")
    stopped = suspended_creators(workspace)
    tokens = _active(AccessToken.objects.filter(workspace=workspace, created_by_id__in=stopped),
                     timezone.now()).select_related("workspace", "created_by")
    reason = "suspended: the creator lacks the access token permission"
    return sum(_revoke(t, actor, reason) for t in tokens)


# The API's writes ----------------------------------------------------------------------------

LAST_USED_EVERY = 60  # seconds: a token's last-used time moves at most this often


def token_touch(*, grant: Grant, ip: str | None, now) -> None:
    """Record that a token was used (whoami): at most once a minute, never after a revocation."""
    if grant.last_used_at is not None and (now - grant.last_used_at).total_seconds() < LAST_USED_EVERY:
        return
    AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).update(
        last_used_at=now, last_used_ip=ip, first_used_at=Coalesce("first_used_at", Value(now))
    )


def token_refused_from(*, token_id: int, ip: str | None, now) -> None:
    """Record a call refused for coming from outside the token's allowed ranges (its page shows
    the last one). On the refusal path only: the check itself stays one round trip."""
    AccessToken.objects.filter(pk=token_id).update(last_refused_ip=ip, last_refused_at=now)


# Check and record a run in one statement, one round trip (PostgreSQL). It returns the token's
# facts row (for the Python check, which decides the answer) with the run's id at the end,
# NULL there when no run was recorded. The conditional UPDATE takes the token's row lock and
# re-checks revocation and expiry under it, so a revocation that committed first always wins;
# only a token that passes the policy (its SQL form, `permissions.TOKEN_USE_SQL`) yields a row
# for the INSERT. The last-used time moves at most once a minute: the list sorts by it through
# an index, and a row whose indexed columns keep their values is updated in place (a HOT
# update), which the run start does on every other call. A later turn of a Codex CLI thread
# adds a turn to that thread's run instead of recording another (API runs have no thread, so
# never conflict). Raw SQL for the same reason as FACTS_SQL.
RUN_START_SQL = f"""
WITH f AS ({FACTS_SQL}),
used AS (
    UPDATE tokens_accesstoken t
    SET last_used_at = CASE WHEN t.last_used_at > %(fresh)s THEN t.last_used_at ELSE %(now)s END,
        last_used_ip = %(ip)s, first_used_at = COALESCE(t.first_used_at, %(now)s)
    FROM f
    WHERE t.id = f.token_id AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > %(now)s)
      AND (t.allowed_ips = ''
           OR %(ip)s::inet <<= ANY (string_to_array(t.allowed_ips, E'\\n')::cidr[]))
      AND f.user_active AND f.role IS NOT NULL AND {permissions.TOKEN_USE_SQL}
    RETURNING t.id, t.workspace_id, t.created_by_id
),
run AS (
    INSERT INTO tokens_run (workspace_id, token_id, user_id, started_at, client, command, ip,
                            user_agent, thread_id, model, sandbox_mode, turns)
    SELECT workspace_id, id, created_by_id, %(now)s, %(client)s, %(command)s, %(ip)s, %(agent)s,
           %(thread_id)s, %(model)s, %(sandbox_mode)s, 1
    FROM used
    ON CONFLICT (token_id, thread_id) WHERE thread_id <> ''
    DO UPDATE SET turns = tokens_run.turns + 1
    RETURNING id, workspace_id, token_id, user_id, xmax = 0 AS inserted
),
daily AS (
    INSERT INTO tokens_runday (workspace_id, day, user_id, runs)
    SELECT workspace_id, %(day)s, user_id, 1 FROM run WHERE inserted
    ON CONFLICT (workspace_id, day, user_id) DO UPDATE SET runs = tokens_runday.runs + 1
),
total AS (
    INSERT INTO tokens_tokenruns (token_id, workspace_id, runs)
    SELECT token_id, workspace_id, 1 FROM run WHERE inserted
    ON CONFLICT (token_id) DO UPDATE SET runs = tokens_tokenruns.runs + 1
)
SELECT f.*, (SELECT id FROM run) AS run_id FROM f
"""


# RUN_START_SQL's columns: the facts, then the run's id.
RunFacts = namedtuple("RunFacts", (*TokenFacts._fields, "run_id"))


def _run_start_portable(params: dict, now) -> tuple[Grant, int | None]:
    """Check, then record the run unless the token was revoked meanwhile (not PostgreSQL)."""
    grant = decide(fetch_one(FACTS_SQL, params), now, params["ip"])
    with transaction.atomic():
        last_used = Case(When(last_used_at__gt=params["fresh"], then=F("last_used_at")),
                         default=Value(now))
        used = AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).exclude(
            expires_at__lte=now
        ).update(last_used_at=last_used, last_used_ip=params["ip"],
                 first_used_at=Coalesce("first_used_at", Value(now)))
        if not used:
            return grant, None
        if params["thread_id"]:
            run = Run.objects.filter(token_id=grant.token_id, thread_id=params["thread_id"]).first()
            if run is not None:
                Run.objects.filter(pk=run.pk).update(turns=F("turns") + 1)
                return grant, run.pk
        run = Run.objects.create(
            workspace_id=grant.workspace_id, token_id=grant.token_id, user_id=grant.user_id,
            started_at=now, client=params["client"], command=params["command"],
            ip=params["ip"], user_agent=params["agent"], thread_id=params["thread_id"],
            model=params["model"], sandbox_mode=params["sandbox_mode"],
        )
        rollups_add(workspace_id=grant.workspace_id, day=params["day"], user_id=grant.user_id,
                    token_id=grant.token_id, runs=1)
        return grant, run.pk


@transaction.atomic
def rollups_rebuild(*, workspace: Workspace) -> None:
    """Count a workspace's roll-ups afresh from its runs (after runs were written in bulk, as
    the demo and the benchmark do)."""
    RunDay.objects.filter(workspace=workspace).delete()
    TokenRuns.objects.filter(workspace=workspace).delete()
    runs = Run.objects.filter(workspace=workspace)
    RunDay.objects.bulk_create(
        RunDay(workspace=workspace, day=row["day"], user_id=row["user_id"], runs=row["n"])
        for row in runs.annotate(day=TruncDate("started_at", tzinfo=UTC))
        .values("day", "user_id").annotate(n=Count("id")))
    TokenRuns.objects.bulk_create(
        TokenRuns(workspace=workspace, token_id=row["token_id"], runs=row["n"])
        for row in runs.values("token_id").annotate(n=Count("id")))


def rollups_add(*, workspace_id: int, day, user_id: int, token_id: int, runs: int) -> None:
    """Add `runs` (negative: take them away) to the roll-ups of a day, a member and a token
    (inside the caller's transaction). The PostgreSQL run start does the same in its
    statement."""
    updated = RunDay.objects.filter(workspace_id=workspace_id, day=day, user_id=user_id).update(
        runs=F("runs") + runs)
    if not updated:
        RunDay.objects.create(workspace_id=workspace_id, day=day, user_id=user_id, runs=runs)
    updated = TokenRuns.objects.filter(token_id=token_id).update(runs=F("runs") + runs)
    if not updated:
        TokenRuns.objects.create(token_id=token_id, workspace_id=workspace_id, runs=runs)


def run_start(*, digest: str, now, client: str, ip: str | None, agent: str, command: str = "",
              thread_id: str = "", model: str = "", sandbox_mode: str = "") -> tuple[Grant, int]:
    """Decide whether the token with this digest may start a run now, and record the run (or,
    for a later turn of a Codex CLI thread, count the turn on that thread's run).

    Raises `Refusal` (nothing recorded) when it may not, including when a revocation or the
    expiry won the race with this call.
    """
    params = {"digest": digest, "now": now, "day": now.astimezone(UTC).date(),
              "fresh": now - timedelta(seconds=LAST_USED_EVERY), "client": client,
              "command": command, "ip": ip, "agent": agent, "thread_id": thread_id,
              "model": model, "sandbox_mode": sandbox_mode}
    if connection.vendor == "postgresql":
        row = fetch_one(RUN_START_SQL, params, RunFacts)
        grant, run_id = decide(row, now, ip), (row.run_id if row else None)
    else:
        grant, run_id = _run_start_portable(params, now)
    if run_id is None:  # revoked (or expired) between the check and the write
        if grant.expires_at is not None and grant.expires_at <= now:
            raise Refusal(*EXPIRED)
        raise Refusal(*REVOKED)
    return grant, run_id
