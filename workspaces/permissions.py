"""THE policy: who may do what in a workspace.

Everything the console or the API allows is decided here, from facts about one membership:
its built-in role, the workspace's plan and Codex Local toggles, and what custom roles held
through the member's groups grant. Views ask `can()`; the API asks `holds()` with the same facts
fetched in one query. Nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .models import CustomRole, Membership, Plan, Role


class Perm(StrEnum):
    VIEW_WORKSPACE = "view_workspace"
    MANAGE_SETTINGS = "manage_settings"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_OWNERS = "manage_owners"
    MANAGE_GROUPS = "manage_groups"
    MANAGE_CUSTOM_ROLES = "manage_custom_roles"
    VIEW_GOVERNANCE = "view_governance"
    VIEW_AUDIT_LOG = "view_audit_log"
    # Codex Local itself, and the access token permission (create and use your own tokens).
    USE_CODEX_LOCAL = "use_codex_local"
    USE_ACCESS_TOKENS = "use_access_tokens"
    # Open the Access tokens page; see and revoke every token of the workspace.
    VIEW_ACCESS_TOKENS = "view_access_tokens"
    MANAGE_ACCESS_TOKENS = "manage_access_tokens"


_ADMIN = frozenset(
    {
        Perm.VIEW_WORKSPACE,
        Perm.MANAGE_SETTINGS,
        Perm.MANAGE_MEMBERS,
        Perm.MANAGE_GROUPS,
        Perm.MANAGE_CUSTOM_ROLES,
        Perm.VIEW_GOVERNANCE,
        Perm.VIEW_AUDIT_LOG,
        Perm.VIEW_ACCESS_TOKENS,
        Perm.MANAGE_ACCESS_TOKENS,
    }
)
ROLE_PERMS: dict[str, frozenset[Perm]] = {
    Role.OWNER: _ADMIN | {Perm.MANAGE_OWNERS},
    Role.ADMIN: _ADMIN,
    Role.MEMBER: frozenset({Perm.VIEW_WORKSPACE}),
}

TOKEN_PLANS = frozenset({Plan.BUSINESS, Plan.ENTERPRISE})

# What a member without the permission is told to ask for (the 403 page).
ASK_FOR = {
    Perm.VIEW_ACCESS_TOKENS: (
        "Ask a workspace owner or admin to confirm that access tokens are enabled and that "
        "your role includes the access token permission."
    ),
    Perm.USE_ACCESS_TOKENS: (
        "Ask a workspace owner or admin to confirm that access tokens are enabled and that "
        "your role includes the access token permission."
    ),
}
ASK_FOR_ADMIN = "Ask a workspace owner or admin for the admin role if you need to manage this."


@dataclass(frozen=True)
class Facts:
    """Everything the policy needs to know about one membership."""

    role: str
    plan: str
    allow_codex_local: bool
    allow_access_tokens: bool
    custom_codex_local: bool = False
    custom_access_tokens: bool = False


def holds(facts: Facts) -> frozenset[Perm]:
    """Every permission a membership with these facts holds."""
    perms = set(ROLE_PERMS[facts.role])
    tokens_plan = facts.plan in TOKEN_PLANS
    if facts.role in (Role.OWNER, Role.ADMIN):
        perms.add(Perm.USE_CODEX_LOCAL)
        if tokens_plan:
            perms.add(Perm.USE_ACCESS_TOKENS)
    else:
        codex_local = facts.allow_codex_local or facts.custom_codex_local
        if codex_local:
            perms.add(Perm.USE_CODEX_LOCAL)
        # The access token permission counts only together with Codex Local access.
        if tokens_plan and codex_local and (facts.allow_access_tokens or facts.custom_access_tokens):
            perms.add(Perm.USE_ACCESS_TOKENS)
    if Perm.USE_ACCESS_TOKENS in perms:
        perms.add(Perm.VIEW_ACCESS_TOKENS)
    return frozenset(perms)


def token_use_sql(*, role, plan, allow_local, allow_tokens, custom_local, custom_tokens) -> str:
    """`holds()`'s rule for "may use an access token" (Codex Local access and the access token
    permission together), as a SQL boolean over the given column expressions.

    The API records a run in one statement with it. The policy matrix runs through the API as
    well as through `can()`, so the two forms cannot drift apart unnoticed.
    """
    plans = ", ".join(f"'{p.value}'" for p in sorted(TOKEN_PLANS))
    admins = f"'{Role.OWNER.value}', '{Role.ADMIN.value}'"
    return (
        f"({plan} IN ({plans}) AND ({role} IN ({admins}) OR ({role} = '{Role.MEMBER.value}' "
        f"AND ({allow_local} OR {custom_local}) AND ({allow_tokens} OR {custom_tokens}))))"
    )


def facts_for(membership: Membership) -> Facts:
    workspace = membership.workspace
    custom_local = custom_tokens = False
    if membership.role == Role.MEMBER:
        for local, tokens in CustomRole.objects.filter(
            workspace_id=membership.workspace_id, groups__members=membership
        ).values_list("grants_codex_local", "grants_access_tokens"):
            custom_local |= local
            custom_tokens |= tokens
    return Facts(
        role=membership.role,
        plan=workspace.plan,
        allow_codex_local=workspace.allow_codex_local,
        allow_access_tokens=workspace.allow_access_tokens,
        custom_codex_local=custom_local,
        custom_access_tokens=custom_tokens,
    )


def perms_of(membership: Membership) -> frozenset[Perm]:
    """The membership's permissions, worked out once per request (cached on the instance)."""
    cached = getattr(membership, "_perms", None)
    if cached is None:
        cached = membership._perms = holds(facts_for(membership))
    return cached


def can(membership: Membership | None, perm: Perm) -> bool:
    return membership is not None and perm in perms_of(membership)


def can_change_role(actor: Membership, target: Membership, new_role: str) -> bool:
    """Owners and admins manage roles; only owners make or unmake owners."""
    if not can(actor, Perm.MANAGE_MEMBERS):
        return False
    if Role.OWNER in (target.role, new_role):
        return can(actor, Perm.MANAGE_OWNERS)
    return True


def can_remove_member(actor: Membership, target: Membership) -> bool:
    if not can(actor, Perm.MANAGE_MEMBERS):
        return False
    if target.role == Role.OWNER:
        return can(actor, Perm.MANAGE_OWNERS)
    return True


def can_revoke_token(actor: Membership, token) -> bool:
    """Owners and admins revoke any token of the workspace; others only their own."""
    if token.workspace_id != actor.workspace_id:
        return False
    if can(actor, Perm.MANAGE_ACCESS_TOKENS):
        return True
    return can(actor, Perm.VIEW_ACCESS_TOKENS) and token.created_by_id == actor.user_id


def can_see_token(actor: Membership, token) -> bool:
    return can_revoke_token(actor, token)
