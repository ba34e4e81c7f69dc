"""Audit events: written by `record`, inside the transaction of the change each describes;
`ACTIONS` names them on the audit log. Who acted and what changed come from `console.audit`."""

from __future__ import annotations

from console.audit import Actor

from .models import AuditEvent, Workspace


def record(
    *, workspace: Workspace, actor: Actor, action: str, target: str = "", details=None,
    token_id: int | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the transaction of the change it describes.
    `token_id` names the access token it is about (its page lists it)."""
    return AuditEvent.objects.create(
        token_id=token_id,
        workspace=workspace,
        actor=actor.user,
        actor_email=actor.user.email if actor.user else actor.label,
        action=action,
        target=target[:300],
        details=details or {},
        ip=actor.ip,
        user_agent=actor.user_agent,
    )


ACTIONS = {
    "workspace.created": "Workspace created",
    "settings.updated": "Settings changed",
    "member.added": "Member added",
    "invitation.sent": "Invitation sent",
    "invitation.resent": "Invitation sent again",
    "invitation.cancelled": "Invitation cancelled",
    "invitation.account_created": "Account created from an invitation",
    "invitation.accepted": "Invitation accepted",
    "user.changed": "User changed (Django admin)",
    "user.deactivated": "User deactivated",
    "user.reactivated": "User reactivated",
    "member.removed": "Member removed",
    "member.role_changed": "Member role changed",
    "group.created": "Group created",
    "group.renamed": "Group renamed",
    "group.deleted": "Group deleted",
    "group.member_added": "Added to group",
    "group.member_removed": "Removed from group",
    "custom_role.created": "Custom role created",
    "custom_role.updated": "Custom role changed",
    "custom_role.deleted": "Custom role deleted",
    "token.created": "Access token created",
    "token.revoked": "Access token revoked",
    "token.rotated": "Access token rotated",
    "token.shortened": "Access token shortened",
    "token.exchanged": "Access token issued by a federation rule",
    "federation_rule.created": "Federation rule created",
    "federation_rule.changed": "Federation rule changed",
    "federation_rule.enabled": "Federation rule enabled",
    "federation_rule.disabled": "Federation rule disabled",
    "federation_rule.deleted": "Federation rule deleted",
    "runs.pruned": "Old runs removed (retention)",
}
