"""Every write to access tokens and runs.

Each function is atomic and writes its audit event in the same transaction; those that act for
a member take the acting membership, lock what they change and ask `permissions.py` after the
locked read. The plaintext token exists only in the return value of the functions that create
one; nothing stores or logs it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from workspaces import permissions
from workspaces.audit import Actor, record
from workspaces.errors import Forbidden, ServiceError
from workspaces.models import Membership, Workspace
from workspaces.permissions import Perm

from . import codec
from .authn import EXPIRED, FACTS_SQL, REVOKED, Grant, Refusal, decide, fetch_one
from .models import AccessToken, Run

NAME_MAX = 100


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


@sensitive_variables("plaintext")
@transaction.atomic
def token_create(
    *,
    membership: Membership,
    actor: Actor,
    name: str,
    expires_at: datetime | None,
    request_key: str | None = None,
) -> tuple[AccessToken, str]:
    """Create an access token acting as `membership`'s user; returns it and its plaintext.

    The plaintext is returned once and never stored: only its SHA-256 digest is. Posting the
    same `request_key` twice creates one token and raises `AlreadySubmitted` the second time.
    """
    # Serialise token creation per member: the duplicate-name and request-key checks hold.
    membership = Membership.objects.select_for_update(of=("self",)).select_related(
        "workspace", "user").get(pk=membership.pk)
    workspace, user = membership.workspace, membership.user
    now = timezone.now()
    if request_key:
        existing = AccessToken.objects.filter(created_by=user, request_key=request_key).first()
        if existing is not None:
            raise AlreadySubmitted(existing)
    if not permissions.plan_supports_tokens(workspace.plan):
        raise Forbidden("Codex access tokens need a Business or Enterprise plan.")
    if not permissions.can(membership, Perm.USE_ACCESS_TOKENS):
        raise Forbidden(permissions.ASK_FOR_TOKENS)
    name = (name or "").strip()
    if not name:
        raise ServiceError("Enter a name for the token.", "name")
    if len(name) > NAME_MAX:
        raise ServiceError(f"The name can be at most {NAME_MAX} characters.", "name")
    if expires_at is not None and expires_at <= now:
        raise ServiceError("The expiration must be in the future.", "expiration")
    if _active(AccessToken.objects.filter(workspace=workspace, created_by=user, name=name), now
               ).exists():
        raise ServiceError(
            f"You already have an active token called “{name}”. Choose another name.", "name"
        )
    plaintext = codec.generate()
    try:
        with transaction.atomic():
            token = AccessToken.objects.create(
                workspace=workspace,
                created_by=user,
                name=name,
                digest=codec.digest(plaintext),
                last_characters=plaintext[-4:],
                created_at=now,
                expires_at=expires_at,
                request_key=request_key or "",
            )
    except IntegrityError:
        existing = AccessToken.objects.filter(created_by=user, request_key=request_key).first()
        if request_key and existing is not None:
            raise AlreadySubmitted(existing) from None
        raise
    record(
        workspace=workspace, actor=actor, action="token.created", target=name,
        details={
            "token_id": token.pk,
            "last_characters": token.last_characters,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, plaintext


def _revoke(token: AccessToken, actor: Actor, reason: str) -> bool:
    """Revoke one token inside the caller's transaction; False if it was revoked already.

    The conditional UPDATE takes the row lock, so a run being recorded for this token either
    committed before the revocation or sees it and is refused.
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
        details=details,
    )
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
    """Revoke every token a member created in the workspace (inside the caller's transaction,
    which has locked the membership). Returns how many were revoked."""
    tokens = AccessToken.objects.select_related("workspace", "created_by").filter(
        workspace_id=membership.workspace_id, created_by_id=membership.user_id,
        revoked_at__isnull=True,
    )
    return sum(_revoke(t, actor, reason) for t in tokens)


def _lock_acting(acting: Membership) -> Membership:
    acting = Membership.objects.select_for_update(of=("self",)).select_related(
        "workspace", "user").filter(pk=acting.pk).first()
    if acting is None:
        raise Forbidden("You are no longer a member of this workspace.")
    return acting


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
    workspace = Workspace.objects.select_for_update().get(pk=acting.workspace_id)
    acting = _lock_acting(acting)
    if not permissions.can_see_all_tokens(acting):
        raise Forbidden("Only owners and admins can revoke other members' tokens.")
    stopped = suspended_creators(workspace)
    tokens = _active(AccessToken.objects.filter(workspace=workspace, created_by_id__in=stopped),
                     timezone.now()).select_related("workspace", "created_by")
    reason = "suspended: the creator lacks the access token permission"
    return sum(_revoke(t, actor, reason) for t in tokens)


# The API's writes ----------------------------------------------------------------------------

LAST_USED_EVERY = 60  # seconds: whoami refreshes a token's last-used time at most this often


def token_touch(*, grant: Grant, ip: str | None, now) -> None:
    """Record that a token was used (whoami): at most once a minute, never after a revocation."""
    if grant.last_used_at is not None and (now - grant.last_used_at).total_seconds() < LAST_USED_EVERY:
        return
    AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).update(
        last_used_at=now, last_used_ip=ip
    )


# Check and record a run in one statement, one round trip (PostgreSQL). It returns the token's
# facts row (for the Python check, which decides the answer) with the run's id at the end,
# NULL there when no run was recorded. The conditional UPDATE takes the token's row lock and
# re-checks revocation and expiry under it, so a revocation that committed first always wins;
# only a token that passes the policy (its SQL form, `permissions.TOKEN_USE_SQL`) yields a row
# for the INSERT. A later turn of a Codex CLI thread adds a turn to that thread's run instead
# of recording another (API runs have no thread, so never conflict). Raw SQL for the same
# reason as FACTS_SQL.
RUN_START_SQL = f"""
WITH f AS ({FACTS_SQL}),
used AS (
    UPDATE tokens_accesstoken t SET last_used_at = %(now)s, last_used_ip = %(ip)s
    FROM f
    WHERE t.id = f.token_id AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > %(now)s)
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
    RETURNING id
)
SELECT f.*, (SELECT id FROM run) AS run_id FROM f
"""


def _run_start_portable(params: dict, now) -> tuple[Grant, int | None]:
    """Check, then record the run unless the token was revoked meanwhile (not PostgreSQL)."""
    grant = decide(fetch_one(FACTS_SQL, params), now)
    with transaction.atomic():
        used = AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).exclude(
            expires_at__lte=now
        ).update(last_used_at=now, last_used_ip=params["ip"])
        if not used:
            return grant, None
        if params["thread_id"]:
            run = Run.objects.filter(token_id=grant.token_id, thread_id=params["thread_id"]).first()
            if run is not None:
                Run.objects.filter(pk=run.pk).update(turns=F("turns") + 1)
                return grant, run.pk
        return grant, Run.objects.create(
            workspace_id=grant.workspace_id, token_id=grant.token_id, user_id=grant.user_id,
            started_at=now, client=params["client"], command=params["command"],
            ip=params["ip"], user_agent=params["agent"], thread_id=params["thread_id"],
            model=params["model"], sandbox_mode=params["sandbox_mode"],
        ).pk


def run_start(*, digest: str, now, client: str, ip: str | None, agent: str, command: str = "",
              thread_id: str = "", model: str = "", sandbox_mode: str = "") -> tuple[Grant, int]:
    """Decide whether the token with this digest may start a run now, and record the run (or,
    for a later turn of a Codex CLI thread, count the turn on that thread's run).

    Raises `Refusal` (nothing recorded) when it may not, including when a revocation or the
    expiry won the race with this call.
    """
    params = {"digest": digest, "now": now, "client": client, "command": command, "ip": ip,
              "agent": agent, "thread_id": thread_id, "model": model,
              "sandbox_mode": sandbox_mode}
    if connection.vendor == "postgresql":
        row = fetch_one(RUN_START_SQL, params)
        grant, run_id = decide(row, now), (row.run_id if row else None)
    else:
        grant, run_id = _run_start_portable(params, now)
    if run_id is None:  # revoked (or expired) between the check and the write
        if grant.expires_at is not None and grant.expires_at <= now:
            raise Refusal(*EXPIRED)
        raise Refusal(*REVOKED)
    return grant, run_id
