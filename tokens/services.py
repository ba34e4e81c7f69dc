"""Every write to access tokens and runs.

Each function is atomic and writes its audit event in the same transaction. The plaintext
token exists only in `token_create`'s return value; nothing stores or logs it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from workspaces.audit import Actor, record
from workspaces.models import Membership
from workspaces.permissions import Perm, can
from workspaces.services import ServiceError

from . import codec
from .models import AccessToken

NAME_MAX = 100


class AlreadySubmitted(ServiceError):
    """The create form was posted before: its token exists and was shown once already."""

    def __init__(self, token: AccessToken):
        super().__init__(
            f"This form was already submitted: the access token “{token.name}” was created "
            "and shown once. Its value cannot be shown again; revoke it and create a new one "
            "if you did not copy it."
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
    membership = Membership.objects.select_for_update().select_related("workspace", "user").get(
        pk=membership.pk
    )
    workspace, user = membership.workspace, membership.user
    now = timezone.now()
    if request_key:
        existing = AccessToken.objects.filter(created_by=user, request_key=request_key).first()
        if existing is not None:
            raise AlreadySubmitted(existing)
    if not workspace.supports_access_tokens:
        raise ServiceError("Codex access tokens need a Business or Enterprise plan.")
    if not can(membership, Perm.USE_ACCESS_TOKENS):
        raise ServiceError("You do not have the access token permission in this workspace.")
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


@transaction.atomic
def token_revoke(*, token: AccessToken, actor: Actor, reason: str = "") -> bool:
    """Revoke a token. Idempotent: a second call changes nothing and records nothing.

    The conditional UPDATE takes the row lock, so a run being recorded for this token either
    committed before the revocation or sees it and is refused.
    """
    now = timezone.now()
    changed = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=actor.user
    )
    token.refresh_from_db(fields=["revoked_at", "revoked_by"])
    if not changed:
        return False
    details = {"token_id": token.pk, "last_characters": token.last_characters,
               "created_by": token.created_by.email}
    if reason:
        details["reason"] = reason
    record(
        workspace=token.workspace, actor=actor, action="token.revoked", target=token.name,
        details=details,
    )
    return True


def tokens_revoke_for_member(*, membership: Membership, actor: Actor) -> int:
    """Revoke every token a leaving member created in the workspace (inside the caller's
    transaction). Returns how many were revoked."""
    tokens = AccessToken.objects.select_related("workspace", "created_by").filter(
        workspace_id=membership.workspace_id, created_by_id=membership.user_id,
        revoked_at__isnull=True,
    )
    return sum(token_revoke(token=t, actor=actor, reason="member removed") for t in tokens)
