"""The policy as one matrix: every role x every capability x each toggle and custom-role case,
and every role x every object action x own / another member's / another workspace's object,
through real memberships, groups and custom roles in the database."""

import pytest

from tokens.models import AccessToken
from workspaces import permissions
from workspaces.models import Role
from workspaces.permissions import Perm, can

from .factories import (
    CustomRoleFactory,
    GroupFactory,
    MembershipFactory,
    WorkspaceFactory,
    make_service_account,
    make_token,
)
from .policy_cases import ACTORS, CASES, cast, expected, member_in_case


@pytest.mark.parametrize("role,plan,allow_local,allow_tokens,custom", CASES)
def test_it_matches_the_product_rules(db, role, plan, allow_local, allow_tokens, custom):
    membership = member_in_case(role, plan, allow_local, allow_tokens, custom)
    for perm in Perm:
        assert can(membership, perm) == expected(perm, role, plan, allow_local, allow_tokens,
                                                 custom), perm


@pytest.mark.parametrize("role,plan,allow_local,allow_tokens,custom", CASES)
def test_many_at_once_agrees_with_one_at_a_time(db, role, plan, allow_local, allow_tokens,
                                                custom):
    membership = member_in_case(role, plan, allow_local, allow_tokens, custom)
    fresh = type(membership).objects.select_related("workspace").get(pk=membership.pk)
    assert permissions.perms_of_many([fresh])[membership.user_id] == permissions.perms_of(
        membership)


def test_the_toggles_can_be_asked_what_if(db):
    membership = member_in_case(Role.MEMBER, "enterprise", True, True, None)
    assert permissions.may_use_tokens(permissions.perms_of(membership))
    what_if = permissions.perms_of_many([membership], allow_access_tokens=False)
    assert not permissions.may_use_tokens(what_if[membership.user_id])
    assert permissions.may_use_tokens(permissions.perms_of(membership))  # nothing cached


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


@pytest.mark.parametrize("plan,supported", [("business", True), ("enterprise", True),
                                            ("edu", False)])
def test_the_plan_rule(plan, supported):
    assert permissions.plan_supports_tokens(plan) is supported


# Tokens: every actor x own / another member's / another workspace's token -----------------

TOKENS = {
    # actor: (own token, another member's token, another workspace's token)
    "owner": (True, True, False),
    "admin": (True, True, False),
    "member_with_tokens": (True, False, False),
    # Codex admin grants nothing over other members' tokens.
    "codex_admin": (True, False, False),
    # A member who created a token and then lost the permission still sees and revokes it.
    "member": (True, False, False),
}


@pytest.mark.parametrize("actor", ACTORS)
def test_seeing_and_revoking_tokens(db, actor):
    workspace = WorkspaceFactory(allow_codex_local=True, allow_access_tokens=False)
    people = cast(workspace)
    me = people[actor]
    own, _ = make_token(me)
    others, _ = make_token(people["admin" if actor != "admin" else "owner"])
    foreign, _ = make_token(MembershipFactory(role=Role.OWNER))
    # Who sees a token may revoke it: one rule for both (the services revoke what it allows).
    seen = tuple(permissions.can_see_token(me, t) for t in (own, others, foreign))
    assert seen == TOKENS[actor]
    listed = set(permissions.visible_tokens(me, AccessToken.objects.all()))
    assert listed == {t for t, ok in zip((own, others, foreign), TOKENS[actor], strict=True) if ok}


PAGE = {
    # actor: (opens the Access tokens page without a token of theirs, with one)
    "owner": (True, True),
    "admin": (True, True),
    "member_with_tokens": (True, True),
    "codex_admin": (False, True),
    "member": (False, True),
}


@pytest.mark.parametrize("actor", ACTORS)
def test_opening_the_token_page(db, actor):
    me = cast(WorkspaceFactory(allow_codex_local=True, allow_access_tokens=False))[actor]
    assert (permissions.can_open_token_page(me, False),
            permissions.can_open_token_page(me, True)) == PAGE[actor]


# Members: every actor x every target role x every new role, with one owner and with two ----

ROLES = [Role.OWNER, Role.ADMIN, Role.MEMBER]


def role_change_allowed(actor, target_role, new_role, owners):
    if actor not in ("owner", "admin"):
        return False
    if Role.OWNER in (target_role, new_role) and target_role != new_role and actor != "owner":
        return False
    return not (target_role == Role.OWNER and new_role != Role.OWNER and owners <= 1)


@pytest.mark.parametrize("owners", [1, 2])
@pytest.mark.parametrize("actor", ACTORS)
def test_changing_roles(db, actor, owners):
    workspace = WorkspaceFactory()
    people = cast(workspace)
    if owners == 2:
        MembershipFactory(workspace=workspace, role=Role.OWNER)
    for target_role in ROLES:
        target = MembershipFactory(workspace=workspace, role=target_role)
        for new_role in ROLES:
            allowed = role_change_allowed(actor, target_role, new_role, owners)
            assert permissions.can_change_role(people[actor], target, new_role, owners) is \
                allowed, (target_role, new_role)
        choices = [value for value, _ in permissions.role_choices(people[actor], target, owners)]
        assert choices == [r for r in ROLES
                           if r == target_role or role_change_allowed(actor, target_role, r,
                                                                      owners)]


def test_an_unknown_role_is_refused(db):
    people = cast(WorkspaceFactory())
    assert permissions.refuse_role_change(people["owner"], people["member"], "emperor", 1) == \
        "Choose a valid role."


def test_the_only_owner_is_named_in_the_refusal(db):
    people = cast(WorkspaceFactory())
    refusal = permissions.refuse_role_change(people["owner"], people["owner"], Role.ADMIN, 1)
    assert "is the only owner" in refusal


@pytest.mark.parametrize("owners", [1, 2])
@pytest.mark.parametrize("actor", ACTORS)
def test_removing_members(db, actor, owners):
    workspace = WorkspaceFactory()
    people = cast(workspace)
    for target_role in ROLES:
        target = MembershipFactory(workspace=workspace, role=target_role)
        if actor not in ("owner", "admin"):
            allowed = False
        elif target_role == Role.OWNER:
            allowed = actor == "owner" and owners > 1
        else:
            allowed = True
        assert permissions.can_remove_member(people[actor], target, owners) is allowed, target_role


INVITES = {
    "owner": [Role.OWNER, Role.ADMIN, Role.MEMBER],
    "admin": [Role.ADMIN, Role.MEMBER],
    "codex_admin": [],
    "member_with_tokens": [],
    "member": [],
}


@pytest.mark.parametrize("actor", ACTORS)
def test_inviting(db, actor):
    me = cast(WorkspaceFactory())[actor]
    assert [value for value, _ in permissions.invitable_roles(me)] == INVITES[actor]
    for role in ROLES:
        assert (permissions.refuse_invitation(me, role) is None) is (role in INVITES[actor])


@pytest.mark.parametrize("actor", ACTORS)
def test_managing_service_accounts(db, actor):
    """Owners and admins create, change and remove service accounts and create their tokens,
    in their own workspace only; a service account's role and membership are not managed as a
    person's are, by anyone."""
    workspace = WorkspaceFactory(allow_access_tokens=True)
    people = cast(workspace)
    me = people[actor]
    _, own = make_service_account(people["owner"])
    elsewhere = WorkspaceFactory()
    _, theirs = make_service_account(MembershipFactory(workspace=elsewhere, role=Role.OWNER))
    person = MembershipFactory(workspace=workspace, role=Role.MEMBER)
    allowed = actor in ("owner", "admin")
    assert can(me, Perm.MANAGE_SERVICE_ACCOUNTS) is allowed
    assert permissions.can_manage_service_account(me, own) is allowed
    assert not permissions.can_manage_service_account(me, theirs)
    assert not permissions.can_manage_service_account(me, person)
    for role in ROLES:
        assert permissions.can_change_role(me, own, role, 2) is (role == Role.MEMBER and allowed)
    assert not permissions.can_remove_member(me, own, 2)


# Federation rules: who may name whom as a rule's principal ---------------------------------

PRINCIPALS = {
    # actor: (themselves, another member, an owner, a member of another workspace)
    "owner": (True, True, True, False),
    "admin": (True, True, True, False),
    # A Codex admin manages rules, not members: a rule cannot lend them another person's name.
    "codex_admin": (True, False, False, False),
    "member_with_tokens": (False, False, False, False),
    "member": (False, False, False, False),
}


@pytest.mark.parametrize("actor", ACTORS)
def test_naming_a_rules_principal(db, actor):
    workspace = WorkspaceFactory()
    people = cast(workspace)
    me = people[actor]
    other = MembershipFactory(workspace=workspace, role=Role.MEMBER)
    foreign = MembershipFactory(role=Role.MEMBER)
    allowed = tuple(permissions.refuse_principal(me, target) is None
                    for target in (me, other, people["owner"], foreign))
    assert allowed == PRINCIPALS[actor]
    assert permissions.refuse_principal(me, None) is not None


def test_a_token_a_federation_rule_issued_is_never_rotated(db):
    from .federation import make_rule

    people = cast(WorkspaceFactory())
    owner = people["owner"]
    rule = make_rule(owner)
    issued, _ = make_token(owner, federation_rule=rule)
    own, _ = make_token(owner)
    assert permissions.can_rotate_token(owner, own)
    assert not permissions.can_rotate_token(owner, issued)
