"""The policy as one matrix: every role x every capability x each toggle and custom-role case,
through real memberships, groups and custom roles in the database."""

import itertools

import pytest

from tokens.models import AccessToken
from workspaces.models import Plan, Role
from workspaces.permissions import Perm, can, can_change_role, can_remove_member, can_revoke_token

from .factories import (
    CustomRoleFactory,
    GroupFactory,
    MembershipFactory,
    WorkspaceFactory,
    make_token,
)

ADMIN_CAPABILITIES = {
    Perm.MANAGE_SETTINGS, Perm.MANAGE_MEMBERS, Perm.MANAGE_GROUPS, Perm.MANAGE_CUSTOM_ROLES,
    Perm.VIEW_GOVERNANCE, Perm.VIEW_AUDIT_LOG, Perm.VIEW_ACCESS_TOKENS, Perm.MANAGE_ACCESS_TOKENS,
}

# Custom role held through a group: (grants Codex Local, grants access tokens), or None.
CUSTOM_CASES = [None, (False, False), (True, False), (False, True), (True, True)]


def expected(perm, role, plan, allow_local, allow_tokens, custom):
    """The product docs, restated: what each person may do."""
    custom_local, custom_tokens = custom or (False, False)
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
                          grants_access_tokens=custom[1]).groups.add(group)
    return membership


@pytest.mark.parametrize("role,plan,allow_local,allow_tokens,custom", CASES)
def test_it_matches_the_product_rules(db, role, plan, allow_local, allow_tokens, custom):
    membership = member_in_case(role, plan, allow_local, allow_tokens, custom)
    for perm in Perm:
        assert can(membership, perm) == expected(perm, role, plan, allow_local, allow_tokens,
                                                 custom), perm


def test_a_custom_role_of_another_workspace_grants_nothing(db):
    workspace = WorkspaceFactory(allow_codex_local=False, allow_access_tokens=False)
    elsewhere = WorkspaceFactory()
    membership = MembershipFactory(workspace=workspace)
    group = GroupFactory(workspace=elsewhere)
    group.members.add(membership)  # impossible through the console; the policy holds anyway
    CustomRoleFactory(workspace=elsewhere, grants_codex_local=True,
                      grants_access_tokens=True).groups.add(group)
    assert not can(membership, Perm.USE_CODEX_LOCAL)


def test_a_custom_role_not_held_by_the_members_group_grants_nothing(db):
    workspace = WorkspaceFactory(allow_codex_local=False)
    membership = MembershipFactory(workspace=workspace)
    GroupFactory(workspace=workspace).members.add(membership)
    CustomRoleFactory(workspace=workspace, grants_codex_local=True, grants_access_tokens=True)
    assert not can(membership, Perm.USE_CODEX_LOCAL)


def test_nobody_outside_can_anything(db):
    assert not can(None, Perm.VIEW_WORKSPACE)


# Object-level actions: every role x own / other member's / other workspace's object --------

ROLES = [Role.OWNER, Role.ADMIN, "member_with_tokens", Role.MEMBER]


def _cast(db_workspace):
    people = {
        Role.OWNER: MembershipFactory(workspace=db_workspace, role=Role.OWNER),
        Role.ADMIN: MembershipFactory(workspace=db_workspace, role=Role.ADMIN),
        Role.MEMBER: MembershipFactory(workspace=db_workspace, role=Role.MEMBER),
        "member_with_tokens": MembershipFactory(workspace=db_workspace, role=Role.MEMBER),
    }
    group = GroupFactory(workspace=db_workspace)
    group.members.add(people["member_with_tokens"])
    CustomRoleFactory(workspace=db_workspace, grants_access_tokens=True).groups.add(group)
    return people


REVOKE = {
    # role: (own token, another member's token, another workspace's token)
    Role.OWNER: (True, True, False),
    Role.ADMIN: (True, True, False),
    "member_with_tokens": (True, False, False),
    Role.MEMBER: (False, False, False),
}


@pytest.mark.parametrize("role", ROLES)
def test_revoking_tokens(db, role):
    workspace = WorkspaceFactory(allow_codex_local=True, allow_access_tokens=False)
    people = _cast(workspace)
    actor = people[role]
    own, _ = make_token(actor)
    other_person = people[Role.MEMBER if role != Role.MEMBER else Role.ADMIN]
    others, _ = make_token(other_person)
    foreign, _ = make_token(MembershipFactory(role=Role.OWNER))
    assert (can_revoke_token(actor, own), can_revoke_token(actor, others),
            can_revoke_token(actor, foreign)) == REVOKE[role]
    assert AccessToken.objects.count() == 3


ROLE_CHANGES = {
    # (actor, target's role, new role): allowed
    (Role.OWNER, Role.MEMBER, Role.ADMIN): True,
    (Role.OWNER, Role.MEMBER, Role.OWNER): True,
    (Role.OWNER, Role.OWNER, Role.ADMIN): True,
    (Role.ADMIN, Role.MEMBER, Role.ADMIN): True,
    (Role.ADMIN, Role.ADMIN, Role.MEMBER): True,
    (Role.ADMIN, Role.MEMBER, Role.OWNER): False,
    (Role.ADMIN, Role.OWNER, Role.MEMBER): False,
    (Role.MEMBER, Role.MEMBER, Role.ADMIN): False,
    ("member_with_tokens", Role.MEMBER, Role.ADMIN): False,
}


@pytest.mark.parametrize("actor_role,target_role,new_role", list(ROLE_CHANGES))
def test_changing_roles(db, actor_role, target_role, new_role):
    workspace = WorkspaceFactory()
    actor = _cast(workspace)[actor_role]
    target = MembershipFactory(workspace=workspace, role=target_role)
    assert can_change_role(actor, target, new_role) is ROLE_CHANGES[
        (actor_role, target_role, new_role)]


REMOVALS = {
    (Role.OWNER, Role.OWNER): True,
    (Role.OWNER, Role.ADMIN): True,
    (Role.OWNER, Role.MEMBER): True,
    (Role.ADMIN, Role.OWNER): False,
    (Role.ADMIN, Role.ADMIN): True,
    (Role.ADMIN, Role.MEMBER): True,
    (Role.MEMBER, Role.MEMBER): False,
    ("member_with_tokens", Role.MEMBER): False,
}


@pytest.mark.parametrize("actor_role,target_role", list(REMOVALS))
def test_removing_members(db, actor_role, target_role):
    workspace = WorkspaceFactory()
    actor = _cast(workspace)[actor_role]
    target = MembershipFactory(workspace=workspace, role=target_role)
    assert can_remove_member(actor, target) is REMOVALS[(actor_role, target_role)]
