"""THE policy: who may do or see what in a workspace.

Everything the console or the API allows is decided here, from facts about one membership:
its built-in role, the workspace's plan and Codex Local toggles, and what custom roles held
through the member's groups grant. Views and services ask `can()` and the object rules below
(services ask again after they lock what they change); the API asks `holds()` with the same
facts fetched in one query, and its one-statement run start (tokens/sql/run_start.sql) writes
the same rule in SQL, its plans and roles taken from `sql_parameters()`. Nothing else decides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache

from django.db.models import Q, QuerySet

from console.errors import Forbidden

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
    # Create, change and remove service accounts, and create access tokens for them.
    MANAGE_SERVICE_ACCOUNTS = "manage_service_accounts"
    # The Federation page: federation rules (keyless runs).
    MANAGE_FEDERATION = "manage_federation"


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
        Perm.MANAGE_SERVICE_ACCOUNTS,
        Perm.MANAGE_FEDERATION,
    }
)
ROLE_PERMS: dict[str, frozenset[Perm]] = {
    Role.OWNER: _ADMIN | {Perm.MANAGE_OWNERS},
    Role.ADMIN: _ADMIN,
    Role.MEMBER: frozenset({Perm.VIEW_WORKSPACE}),
}
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})

# Codex access tokens exist on these plans only.
TOKEN_PLANS = frozenset({Plan.BUSINESS, Plan.ENTERPRISE})

ASK_FOR_TOKENS = (
    "Ask a workspace owner or admin to confirm that access tokens are enabled and that your "
    "role includes the access token permission."
)
ASK_FOR_ADMIN = "Ask a workspace owner or admin for the admin role if you need to manage this."
# What a member without the permission is told to ask for (the 403 page).
ASK_FOR = {
    Perm.VIEW_ACCESS_TOKENS: ASK_FOR_TOKENS,
    Perm.USE_ACCESS_TOKENS: ASK_FOR_TOKENS,
}


def plan_supports_tokens(plan: str) -> bool:
    return plan in TOKEN_PLANS


# What a custom role may grant: its flag on CustomRole, and the label the console shows.
GRANTS = (
    ("grants_codex_local", "Codex Local"),
    ("grants_access_tokens", "Codex access tokens"),
    ("grants_codex_admin", "Codex admin"),
)
# Codex admin: Settings and Permissions (and changing it), Governance and Federation, as owners
# and admins have them; nothing else.
CODEX_ADMIN = frozenset({Perm.MANAGE_SETTINGS, Perm.VIEW_GOVERNANCE, Perm.MANAGE_FEDERATION})


@dataclass(frozen=True)
class Facts:
    """Everything the policy needs to know about one membership."""

    role: str
    plan: str
    allow_codex_local: bool
    allow_access_tokens: bool
    custom_codex_local: bool = False
    custom_access_tokens: bool = False
    custom_codex_admin: bool = False


@lru_cache(maxsize=512)
def holds(facts: Facts) -> frozenset[Perm]:
    """Every permission a membership with these facts holds. (A pure function of a few
    booleans and names: remembered, as the API asks it on every call.)"""
    perms = set(ROLE_PERMS[facts.role])
    tokens_plan = plan_supports_tokens(facts.plan)
    if facts.role in ADMIN_ROLES:
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
        if facts.custom_codex_admin:
            perms |= CODEX_ADMIN
    if Perm.USE_ACCESS_TOKENS in perms:
        perms.add(Perm.VIEW_ACCESS_TOKENS)
    return frozenset(perms)


def may_use_tokens(perms: frozenset[Perm]) -> bool:
    """Whether a token made by someone holding `perms` may act now."""
    return Perm.USE_CODEX_LOCAL in perms and Perm.USE_ACCESS_TOKENS in perms


def sql_parameters() -> dict:
    """The names `holds()`'s rule for "may use an access token" depends on, for its SQL form in
    tokens/sql/run_start.sql. The policy matrix runs through the API as well as through `can()`
    on PostgreSQL, so the two forms cannot drift apart unnoticed."""
    # Comma-joined text rather than arrays: text costs the driver less to send on every call.
    return {"token_plans": ",".join(sorted(TOKEN_PLANS)), "admin_roles": ",".join(sorted(ADMIN_ROLES)),
            "member_role": str(Role.MEMBER)}


def _custom_grants(workspace_id: int, membership_ids: Iterable[int]) -> dict[int, tuple[bool, ...]]:
    """What custom roles held through groups grant, per membership id: one flag per GRANTS."""
    fields = [field for field, _ in GRANTS]
    grants: dict[int, list[bool]] = defaultdict(lambda: [False] * len(fields))
    rows = CustomRole.objects.filter(
        workspace_id=workspace_id, groups__members__in=list(membership_ids)
    ).values_list("groups__members", *fields)
    for membership_id, *flags in rows:
        held = grants[membership_id]
        for n, flag in enumerate(flags):
            held[n] |= flag
    return {k: tuple(v) for k, v in grants.items()}


NO_GRANTS = (False,) * len(GRANTS)


def _facts(membership: Membership, custom: tuple[bool, ...]) -> Facts:
    workspace = membership.workspace
    local, tokens, admin = custom
    return Facts(
        role=membership.role,
        plan=workspace.plan,
        allow_codex_local=workspace.allow_codex_local,
        allow_access_tokens=workspace.allow_access_tokens,
        custom_codex_local=local,
        custom_access_tokens=tokens,
        custom_codex_admin=admin,
    )


def facts_for(membership: Membership) -> Facts:
    custom = NO_GRANTS
    if membership.role == Role.MEMBER:
        custom = _custom_grants(membership.workspace_id, [membership.pk]).get(membership.pk, custom)
    return _facts(membership, custom)


def perms_of(membership: Membership) -> frozenset[Perm]:
    """The membership's permissions, worked out once per request (cached on the instance)."""
    cached = getattr(membership, "_perms", None)
    if cached is None:
        cached = membership._perms = holds(facts_for(membership))
    return cached


def perms_of_many(memberships: Iterable[Membership], **workspace_settings) -> dict[int, frozenset[Perm]]:
    """Permissions of many memberships of one workspace, in one query: {user id: perms}.

    With `workspace_settings` (say `allow_access_tokens=False`), what they would hold if the
    workspace's toggles said so; otherwise the result is also cached on each membership.
    """
    memberships = list(memberships)
    if not memberships:
        return {}
    grants = _custom_grants(memberships[0].workspace_id,
                            [m.pk for m in memberships if m.role == Role.MEMBER])
    result = {}
    for m in memberships:
        facts = _facts(m, grants.get(m.pk, NO_GRANTS))
        if workspace_settings:
            result[m.user_id] = holds(replace(facts, **workspace_settings))
        else:
            m._perms = result[m.user_id] = holds(facts)
    return result


def can(membership: Membership | None, perm: Perm) -> bool:
    return membership is not None and perm in perms_of(membership)


def require(membership: Membership, perm: Perm) -> None:
    """For services, after their locked read: `Forbidden` (with what to ask for) without `perm`."""
    if not can(membership, perm):
        raise Forbidden(ASK_FOR.get(perm, ASK_FOR_ADMIN))


# Members and roles --------------------------------------------------------------------------


def refuse_role_change(actor: Membership, target: Membership, new_role: str,
                       owners: int) -> str | None:
    """Why `actor` may not give `target` the built-in role `new_role`, or None if they may.

    Owners and admins manage roles; only owners make or unmake owners; a workspace always
    keeps at least one owner (`owners` is how many it has now).
    """
    if new_role not in Role.values:
        return "Choose a valid role."
    if not can(actor, Perm.MANAGE_MEMBERS):
        return ASK_FOR_ADMIN
    if target.user.is_service_account and new_role != target.role:
        return SERVICE_ACCOUNT_ROLE
    if Role.OWNER in (target.role, new_role) and new_role != target.role \
            and not can(actor, Perm.MANAGE_OWNERS):
        return "Only owners can make or unmake owners."
    if target.role == Role.OWNER and new_role != Role.OWNER and owners <= 1:
        return f"{target.user.email} is the only owner. Make someone else an owner first."
    return None


# A service account is always a plain member: what it may do comes from the workspace's
# toggles and its groups' custom roles, never from the admin or owner role.
SERVICE_ACCOUNT_ROLE = ("A service account keeps the member role: give it permissions through "
                        "the workspace's toggles or a group's custom role.")


def can_change_role(actor: Membership, target: Membership, new_role: str, owners: int) -> bool:
    return refuse_role_change(actor, target, new_role, owners) is None


def role_choices(actor: Membership, target: Membership, owners: int) -> list[tuple[str, str]]:
    """The roles `actor` may choose for `target`: its current one and every allowed change."""
    return [(value, label) for value, label in Role.choices
            if value == target.role or can_change_role(actor, target, value, owners)]


def refuse_member_removal(actor: Membership, target: Membership, owners: int) -> str | None:
    """Why `actor` may not remove `target` from the workspace, or None if they may."""
    if not can(actor, Perm.MANAGE_MEMBERS):
        return ASK_FOR_ADMIN
    if target.user.is_service_account:
        return "Remove a service account on its own page."
    if target.role == Role.OWNER:
        if not can(actor, Perm.MANAGE_OWNERS):
            return "Only owners can remove an owner."
        if owners <= 1:
            return (f"{target.user.email} is the only owner and cannot be removed. "
                    "Make someone else an owner first.")
    return None


def can_remove_member(actor: Membership, target: Membership, owners: int) -> bool:
    return refuse_member_removal(actor, target, owners) is None


def invitable_roles(actor: Membership) -> list[tuple[str, str]]:
    """The roles `actor` may invite someone with: only owners invite owners."""
    if not can(actor, Perm.MANAGE_MEMBERS):
        return []
    return [(value, label) for value, label in Role.choices
            if value != Role.OWNER or can(actor, Perm.MANAGE_OWNERS)]


def refuse_invitation(actor: Membership, role: str) -> str | None:
    if not can(actor, Perm.MANAGE_MEMBERS):
        return ASK_FOR_ADMIN
    if role not in Role.values:
        return "Choose a valid role."
    if role not in dict(invitable_roles(actor)):
        return "Only owners can invite an owner."
    return None


# Service accounts ---------------------------------------------------------------------------


def refuse_service_account_change(actor: Membership, target: Membership) -> str | None:
    """Why `actor` may not change or remove the service account whose membership is `target`,
    or create or revoke its access tokens, or None if they may: owners and admins of its
    workspace."""
    if not can(actor, Perm.MANAGE_SERVICE_ACCOUNTS):
        return ASK_FOR_ADMIN
    if target.workspace_id != actor.workspace_id or not target.user.is_service_account:
        return "That is not a service account of this workspace."
    return None


def can_manage_service_account(actor: Membership, target: Membership) -> bool:
    return refuse_service_account_change(actor, target) is None


# Access tokens ------------------------------------------------------------------------------


def can_open_token_page(actor: Membership, created_tokens_here: bool) -> bool:
    """The Access tokens page: whoever may use or manage tokens, and any member who created a
    token here (to see and revoke their own, even after losing the permission)."""
    return can(actor, Perm.VIEW_ACCESS_TOKENS) or created_tokens_here


def can_see_all_tokens(actor: Membership) -> bool:
    return can(actor, Perm.MANAGE_ACCESS_TOKENS)


def token_visibility_q(actor: Membership) -> Q:
    """The tokens `actor` may see (and revoke), as a filter over AccessToken: every token of
    the workspace for owners and admins, their own for everyone else."""
    if can_see_all_tokens(actor):
        return Q(workspace_id=actor.workspace_id)
    return Q(workspace_id=actor.workspace_id, created_by_id=actor.user_id)


def visible_tokens(actor: Membership, tokens: QuerySet) -> QuerySet:
    return tokens.filter(token_visibility_q(actor))


def can_see_token(actor: Membership, token) -> bool:
    """Owners and admins see (and revoke) every token of the workspace; its creator always
    sees and revokes their own; nobody else."""
    return owns_token(actor, token) or (token.workspace_id == actor.workspace_id
                                        and can_see_all_tokens(actor))


def owns_token(actor: Membership, token) -> bool:
    """Whether `actor` created this token (in this workspace)."""
    return token.workspace_id == actor.workspace_id and token.created_by_id == actor.user_id


def can_rotate_token(actor: Membership, token) -> bool:
    """Only a token's creator rotates it, and only while they may still make tokens. A token a
    federation rule issued is never rotated: its workload exchanges again."""
    return (owns_token(actor, token) and can(actor, Perm.USE_ACCESS_TOKENS)
            and token.federation_rule_id is None)


# Federation rules ----------------------------------------------------------------------------


def refuse_principal(actor: Membership, principal: Membership | None) -> str | None:
    """Why `actor` may not name `principal` as a federation rule's principal (None: they may).

    The principal must be a member of the rule's workspace. Owners and admins may name any
    member; a Codex admin (who manages rules but not members) only themselves or a service
    account, so that a rule cannot lend them an owner's or another person's name."""
    if not can(actor, Perm.MANAGE_FEDERATION):
        return ASK_FOR_ADMIN
    if principal is None or principal.workspace_id != actor.workspace_id:
        return "Choose a member of this workspace as the principal."
    if actor.role in ADMIN_ROLES or principal.user_id == actor.user_id:
        return None
    if principal.user.is_service_account:
        return None
    return "Only owners and admins can name another member as a rule's principal."


def principal_may_act(principal: Membership | None) -> bool:
    """Whether tokens issued for `principal` may act: an active member holding Codex Local and
    the access token permission on a plan that has tokens (what the run start asks too)."""
    return (principal is not None and principal.user.is_active
            and may_use_tokens(perms_of(principal)))
