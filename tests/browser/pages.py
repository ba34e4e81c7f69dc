"""Every page of the console, with the data that makes each show its parts: shared by the
browser tests that visit them all (CSP, accessibility, narrow screens, themes)."""

from datetime import timedelta

from django.utils import timezone

from tests.factories import GroupFactory, make_run, make_service_account, make_token
from tests.federation import make_rule
from workspaces.models import CustomRole, Invitation


def seed(owner, admin, member_with_token_permission, member):
    """Tokens in every state, runs, an invitation, a group and a custom role, and a service
    account with a token and runs."""
    now = timezone.now()
    ci, _ = make_token(member_with_token_permission, name="release-ci", last_used_at=now)
    make_token(owner, name="nightly-docs-check", expires_at=None)
    make_token(owner, name="staging-deploy", expires_at=now + timedelta(days=3))
    make_token(admin, name="old-laptop", revoked_at=now - timedelta(days=1), revoked_by=owner.user)
    make_token(member_with_token_permission, name="q3-migration",
               expires_at=now - timedelta(days=2))
    for n in range(5):
        make_run(ci, client="github-actions", command=f"codex exec 'fix test {n}'",
                 started_at=now - timedelta(hours=n))
    Invitation.objects.create(workspace=owner.workspace, email="new@acme.test", role="member",
                              invited_by=owner.user, key_digest="0" * 64,
                              expires_at=now + timedelta(days=7))
    group = GroupFactory(workspace=owner.workspace, name="Docs team")
    role = CustomRole.objects.get(workspace=owner.workspace, name="Automation")
    robot, robot_membership = make_service_account(owner, name="nightly-ci",
                                                   description="GitHub Actions, nightly")
    role.groups.first().members.add(robot_membership)
    robot_token, _ = make_token(robot_membership, name="nightly", last_used_at=now)
    make_run(robot_token, client="github-actions", command="codex exec 'update docs'")
    # Keyless runs: a rule, a token it issued and a run of its workload.
    rule = make_rule(owner, name="release workflow", claims={"repository_owner_id": "1001"},
                     allowed_ips="203.0.113.0/24")
    make_rule(owner, name="any repository", subject="repo:*", enabled=False)
    workload = {"repository": "acme/release", "workflow": "release", "ref": "refs/heads/main",
                "run_id": "4242"}
    issued, _ = make_token(owner, name="release workflow: acme/release", federation_rule=rule,
                           workload=workload, expires_at=now + timedelta(minutes=15))
    make_run(issued, client="codex_exec 0.171.0", federation_rule=rule, workload=workload,
             started_at=now - timedelta(minutes=1))
    return {"token": ci, "group": group, "role": role, "member": member, "rule": rule,
            "issued": issued, "service_account": robot}


def signed_in_pages(data):
    """(path, name) of every page an owner of "acme" can open."""
    base = "/w/acme/"
    token, group, role, member = data["token"], data["group"], data["role"], data["member"]
    robot = base + f"admin/service-accounts/{data['service_account'].pk}/"
    return [
        (base, "overview"),
        (base + "admin/access-tokens/", "access-tokens"),
        (base + "admin/access-tokens/new/", "access-tokens-new"),
        (base + f"admin/access-tokens/{token.pk}/revoke/", "access-token-revoke"),
        (base + f"admin/access-tokens/{token.pk}/", "access-token"),
        (base + "admin/members/", "members"),
        (base + f"admin/members/{member.pk}/remove/", "member-remove"),
        (robot, "service-account"),
        (robot + "tokens/new/", "service-account-token-new"),
        (robot + "remove/", "service-account-remove"),
        (base + "admin/groups/", "groups"),
        (base + f"admin/groups/{group.pk}/", "group"),
        (base + f"admin/groups/{group.pk}/delete/", "group-delete"),
        (base + "admin/roles/", "roles"),
        (base + "admin/roles/new/", "role-new"),
        (base + f"admin/roles/{role.pk}/", "role"),
        (base + f"admin/roles/{role.pk}/delete/", "role-delete"),
        (base + "admin/settings/", "settings"),
        (base + "admin/governance/", "governance"),
        (base + "admin/federation/", "federation"),
        (base + "admin/federation/new/?preset=github", "federation-new"),
        (base + f"admin/federation/{data['rule'].pk}/", "federation-rule"),
        (base + f"admin/federation/{data['rule'].pk}/edit/", "federation-rule-edit"),
        (base + f"admin/federation/{data['rule'].pk}/delete/", "federation-rule-delete"),
        (base + f"admin/access-tokens/{data['issued'].pk}/", "access-token-federated"),
        (base + "admin/audit-log/", "audit-log"),
        ("/accounts/password_change/", "password-change"),
    ]


ANONYMOUS_PAGES = [
    ("/accounts/login/", "login"),
    ("/accounts/password_reset/", "password-reset"),
    ("/accounts/password_reset/done/", "password-reset-done"),
    ("/invitations/not-a-key/", "invitation-invalid"),
    ("/no-such-page/", "not-found"),
]
