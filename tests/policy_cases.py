"""The policy's cases, shared by the matrix tests (through `can()`) and the API matrix (through
the API's one query and one statement): the product docs, restated."""

import itertools

from workspaces.models import Plan, Role
from workspaces.permissions import Perm

from .factories import CustomRoleFactory, GroupFactory, MembershipFactory, WorkspaceFactory

ADMIN_CAPABILITIES = {
    Perm.MANAGE_SETTINGS, Perm.MANAGE_MEMBERS, Perm.MANAGE_GROUPS, Perm.MANAGE_CUSTOM_ROLES,
    Perm.VIEW_GOVERNANCE, Perm.VIEW_AUDIT_LOG, Perm.VIEW_ACCESS_TOKENS, Perm.MANAGE_ACCESS_TOKENS,
    Perm.MANAGE_SERVICE_ACCOUNTS,
    Perm.MANAGE_FEDERATION,
}

# Custom role held through a group: (grants Codex Local, grants access tokens, grants Codex
# admin), or None.
CUSTOM_CASES = [None, (False, False, False), (True, False, False), (False, True, False),
                (True, True, False), (False, False, True), (True, True, True)]


def expected(perm, role, plan, allow_local, allow_tokens, custom):
    """What each person may do, by the product docs."""
    custom_local, custom_tokens, custom_admin = custom or (False, False, False)
    token_plan = plan in (Plan.BUSINESS, Plan.ENTERPRISE)
    if role in (Role.OWNER, Role.ADMIN):
        if perm == Perm.MANAGE_OWNERS:
            return role == Role.OWNER
        if perm == Perm.USE_ACCESS_TOKENS:
            return token_plan
        return perm in ADMIN_CAPABILITIES | {Perm.VIEW_WORKSPACE, Perm.USE_CODEX_LOCAL}
    local = allow_local or custom_local
    tokens = token_plan and local and (allow_tokens or custom_tokens)
    return {
        Perm.VIEW_WORKSPACE: True,
        Perm.USE_CODEX_LOCAL: local,
        Perm.USE_ACCESS_TOKENS: tokens,
        Perm.VIEW_ACCESS_TOKENS: tokens,
        # Codex admin: Settings and Permissions, Governance and Federation, nothing else.
        Perm.MANAGE_SETTINGS: custom_admin,
        Perm.VIEW_GOVERNANCE: custom_admin,
        Perm.MANAGE_FEDERATION: custom_admin,
    }.get(perm, False)


CASES = list(itertools.product(
    [Role.OWNER, Role.ADMIN, Role.MEMBER],
    [Plan.BUSINESS, Plan.ENTERPRISE, Plan.EDU],
    [False, True],
    [False, True],
    CUSTOM_CASES,
))


def member_in_case(role, plan, allow_local, allow_tokens, custom):
    """A membership in a workspace set up as one case of the matrix."""
    workspace = WorkspaceFactory(plan=plan, allow_codex_local=allow_local,
                                 allow_access_tokens=allow_tokens)
    membership = MembershipFactory(workspace=workspace, role=role)
    if custom is not None:
        group = GroupFactory(workspace=workspace)
        group.members.add(membership)
        CustomRoleFactory(workspace=workspace, grants_codex_local=custom[0],
                          grants_access_tokens=custom[1],
                          grants_codex_admin=custom[2]).groups.add(group)
    return membership


# The cast of the object-level matrix: who acts.
ACTORS = ["owner", "admin", "codex_admin", "member_with_tokens", "member"]


def cast(workspace):
    """One membership per actor of the object matrix, in `workspace` (Codex Local on, access
    tokens off by the toggle: only the custom role grants them)."""
    people = {
        "owner": MembershipFactory(workspace=workspace, role=Role.OWNER),
        "admin": MembershipFactory(workspace=workspace, role=Role.ADMIN),
        "member_with_tokens": MembershipFactory(workspace=workspace, role=Role.MEMBER),
        "member": MembershipFactory(workspace=workspace, role=Role.MEMBER),
        "codex_admin": MembershipFactory(workspace=workspace, role=Role.MEMBER),
    }
    group = GroupFactory(workspace=workspace)
    group.members.add(people["member_with_tokens"])
    CustomRoleFactory(workspace=workspace, grants_codex_local=False,
                      grants_access_tokens=True).groups.add(group)
    admins = GroupFactory(workspace=workspace)
    admins.members.add(people["codex_admin"])
    CustomRoleFactory(workspace=workspace, grants_codex_admin=True).groups.add(admins)
    return people
