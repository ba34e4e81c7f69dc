"""The lifecycle of access tokens: create, rotate, revoke (one, the selected, a member's, the
leaked, the suspended) and shorten to the workspace's maximum lifetime."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from console.audit import Actor
from console.errors import Forbidden, ServiceError
from console.locking import for_update
from console.mail import queue_mail
from workspaces import permissions
from workspaces.audit import record
from workspaces.models import Membership, User, Workspace
from workspaces.permissions import Perm
from workspaces.selectors import lock_members

from .. import codec, ipranges
from ..models import NAME_MAX, AccessToken, latest_expiry
from ..selectors import suspended_creators


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


def _lock_creator(membership: Membership, request_key: str | None,
                  acting: Membership | None = None) -> Membership:
    """The member, locked (so the name and request-key checks hold), who must still be an
    active member holding the access token permission on a plan that has tokens. The workspace
    row is locked first (the lifetime limit read from it holds until the token is saved, as
    lowering it and shortening tokens lock it too), then the user's (a deactivation, which locks
    it before revoking the user's tokens, either comes first and is seen here, or waits and then
    revokes this token too)."""
    list(for_update(Workspace.objects.filter(pk=membership.workspace_id)).values("pk"))
    active = for_update(User.objects.filter(pk=membership.user_id)).values_list(
        "is_active", flat=True)
    if not any(active):
        raise Forbidden("This account is deactivated.")
    if acting is None:
        (membership,) = lock_members(membership)
    else:  # an owner or admin creates it for a service account
        membership, acting = lock_members(membership, acting)
        refusal = permissions.refuse_service_account_change(acting, membership)
        if refusal:
            raise Forbidden(refusal)
    if request_key:
        existing = AccessToken.objects.filter(created_by=membership.user,
                                              request_key=request_key).first()
        if existing is not None:
            raise AlreadySubmitted(existing)
    if not permissions.plan_supports_tokens(membership.workspace.plan):
        raise Forbidden("Codex access tokens need a Business or Enterprise plan.")
    if not permissions.can(membership, Perm.USE_ACCESS_TOKENS):
        if acting is not None:
            raise Forbidden(
                f"{membership.user.handle} does not hold the access token permission: turn on "
                "“Allow members to use Codex Local” and “Allow members to use Codex access "
                "tokens” in Settings and Permissions, or add it to a group whose custom role "
                "grants them.")
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
    return _create(membership, actor, name=name, expires_at=expires_at, allowed_ips=allowed_ips,
                   request_key=request_key)


@sensitive_variables("plaintext")
@transaction.atomic
def token_create_for_service_account(
    *,
    service_account: Membership,
    acting: Membership,
    actor: Actor,
    name: str,
    expires_at: datetime | None,
    allowed_ips: str = "",
    request_key: str | None = None,
) -> tuple[AccessToken, str]:
    """Create an access token for a service account (`service_account`: its membership), as
    an owner or admin (`acting`) of its workspace: the token's creator is the service account,
    it acts with the service account's permissions, and the audit event names who made it.
    Otherwise as `token_create`."""
    membership = _lock_creator(service_account, request_key, acting=acting)
    return _create(membership, actor, name=name, expires_at=expires_at, allowed_ips=allowed_ips,
                   request_key=request_key)


@sensitive_variables("plaintext")
def _create(membership: Membership, actor: Actor, *, name: str, expires_at: datetime | None,
            allowed_ips: str, request_key: str | None) -> tuple[AccessToken, str]:
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
    clash = AccessToken.objects.filter(workspace=workspace, created_by=user, name=name,
                                       replaced_by__isnull=True).active(now)
    if clash.exists():
        who = f"{user.handle} already has" if user.is_service_account else "You already have"
        raise ServiceError(
            f"{who} an active token called “{name}”. Choose another name.", "name"
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
            **({"service_account": user.handle} if user.is_service_account else {}),
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
    old = for_update(AccessToken.objects.select_related("workspace", "created_by")
                     .filter(pk=token.pk)).first()
    if old is None or not permissions.can_rotate_token(acting, old):
        raise Forbidden("Only the token's creator can rotate it.")
    if not old.active(now):
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


LEAK_REPORT = "leak report"
REVOKERS = {LEAK_REPORT: "a leak report: the token was found where others can see it, and "
                         "reported to the console"}


def _revoke(token: AccessToken, actor: Actor, reason: str, *, notify: bool = True) -> bool:
    """Revoke one token inside the caller's transaction; False if it was revoked already.

    The conditional UPDATE takes the row lock, so a run being recorded for this token either
    committed before the revocation or sees it and is refused. When someone other than its
    creator revokes it (an owner, an admin), a mail to the creator is queued in the same
    transaction (tokens/mail.py renders it); a leak report queues its notices itself.
    """
    now = timezone.now()
    changed = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=actor.user
    )
    if not changed:
        return False
    token.revoked_at, token.revoked_by = now, actor.user
    details = {"token_id": token.pk, "last_characters": token.last_characters,
               "created_by": token.created_by.handle}
    if reason:
        details["reason"] = reason
    record(
        workspace=token.workspace, actor=actor, action="token.revoked", target=token.name,
        details=details, token_id=token.pk,
    )
    if notify and (actor.user is None or actor.user.pk != token.created_by_id):
        by = (f"{actor.user.display_name} ({actor.user.email})" if actor.user
              else REVOKERS.get(reason, "the console"))
        _queue_notice(token, by)
    return True


def _queue_notice(token: AccessToken, by: str) -> None:
    if token.created_by.is_service_account:
        return  # it reads no mail
    queue_mail(kind="token_revoked", to=token.created_by.email, token=token.pk, by=by)


@transaction.atomic
def token_revoke(*, token: AccessToken, acting: Membership, actor: Actor, reason: str = "") -> bool:
    """Revoke a token as `acting`, if the policy lets them see it. Idempotent: a second call
    changes nothing and records nothing (and returns False)."""
    acting = _lock_acting(acting)
    if not permissions.can_see_token(acting, token):
        raise Forbidden("You cannot revoke this access token.")
    return _revoke(token, actor, reason)


def tokens_revoke_for_member(*, membership: Membership, actor: Actor, reason: str) -> int:
    """Revoke every active token a member created in the workspace (inside the caller's
    transaction, which has locked the membership). Returns how many were revoked."""
    tokens = AccessToken.objects.filter(
        workspace_id=membership.workspace_id, created_by_id=membership.user_id,
    ).active(timezone.now()).select_related("workspace", "created_by")
    return sum(_revoke(t, actor, reason) for t in tokens)


def tokens_revoke_issued_by(*, rule, actor: Actor, reason: str) -> int:
    """Revoke every active token a federation rule issued (inside the caller's transaction,
    which has locked the rule), each audited; no mail (a workload, not a person, held them).
    Returns how many."""
    tokens = for_update(AccessToken.objects.filter(federation_rule=rule).active(timezone.now())
                        .select_related("workspace", "created_by"))
    return sum(_revoke(t, actor, reason, notify=False) for t in tokens)


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


@transaction.atomic
def tokens_shorten(*, acting: Membership, actor: Actor) -> int:
    """Shorten every active token that outlives the workspace's maximum lifetime to it (each
    audited, before and after). Owners and admins. Returns how many."""
    workspace = for_update(Workspace.objects.filter(pk=acting.workspace_id)).get()
    acting = _lock_acting(acting)
    if not permissions.can_see_all_tokens(acting):
        raise Forbidden("Only owners and admins can shorten other members' tokens.")
    now = timezone.now()
    limit = latest_expiry(workspace, now)
    count = 0
    for token in for_update(AccessToken.objects.filter(workspace=workspace)
                            .outliving(limit, now)):
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


@transaction.atomic
def tokens_revoke_leaked(*, strings, actor: Actor) -> int:
    """A leak report: revoke every active token among `strings` (each audited in its own
    workspace as reported leaked). Anything else among them (revoked, expired, unknown,
    malformed) is ignored. Returns how many were revoked; the caller must not tell anyone.

    One mail job is queued for the report whatever it held (the worker then queues a notice to
    each revoked token's creator: `leak_report_notices_queue`), so that a report of live tokens
    and one of anything else do the same kind of work (a write and its commit) and take the
    same time: the time of the answer tells nobody which tokens were live either."""
    digests = {codec.digest(s) for s in strings if codec.classify(s) is codec.Kind.ACCESS_TOKEN}
    tokens = for_update(AccessToken.objects.filter(digest__in=digests).active(timezone.now())
                        .select_related("workspace", "created_by"))
    revoked = [token.pk for token in tokens if _revoke(token, actor, LEAK_REPORT, notify=False)]
    queue_mail(kind="leak_report", tokens=revoked)
    return len(revoked)


@transaction.atomic
def leak_report_notices_queue(*, token_ids: list[int]) -> int:
    """Queue the mail to the creator of each token a leak report revoked (the mail worker calls
    this for the report's job). Returns how many."""
    tokens = AccessToken.objects.filter(pk__in=token_ids).select_related("created_by")
    for token in tokens:
        _queue_notice(token, REVOKERS[LEAK_REPORT])
    return len(tokens)


def _lock_acting(acting: Membership) -> Membership:
    return lock_members(acting)[0]


@transaction.atomic
def tokens_revoke_suspended(*, acting: Membership, actor: Actor) -> int:
    """Revoke every active token of the workspace whose creator no longer holds the access
    token permission (each audited). Owners and admins only. Returns how many."""
    workspace = for_update(Workspace.objects.filter(pk=acting.workspace_id)).get()
    acting = _lock_acting(acting)
    if not permissions.can_see_all_tokens(acting):
        raise Forbidden("Only owners and admins can revoke other members' tokens.")
    stopped = suspended_creators(workspace)
    tokens = AccessToken.objects.filter(workspace=workspace, created_by_id__in=stopped).active(
        timezone.now()).select_related("workspace", "created_by")
    reason = "suspended: the creator lacks the access token permission"
    return sum(_revoke(t, actor, reason) for t in tokens)


