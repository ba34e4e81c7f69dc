"""Every confirm dialog of the console, in a real browser with JavaScript on: Cancel changes
nothing and gives the focus back to the button or link that opened the dialog; confirming does
what the button says, on the server."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import GroupFactory, make_service_account, make_token
from tokens.models import AccessToken
from workspaces.models import CustomRole, Group, Invitation, Membership, ServiceAccount

TOKENS = "/w/acme/admin/access-tokens/"
MEMBERS = "/w/acme/admin/members/"


@dataclass
class Case:
    path: str
    opener: Callable  # page -> the button or link that opens the dialog
    action: str  # the dialog's confirming button
    done: Callable  # () -> whether the server did it
    prepare: Callable = lambda page: None  # what the person does before opening the dialog
    also: Callable = lambda: None  # more to check once it is done


def revoked(token):
    token.refresh_from_db()
    return token.revoked_at is not None


def token_revoke_from_the_list(cast):
    token, _ = make_token(cast["dora"], name="release-ci")
    return Case(TOKENS, lambda page: page.get_by_role("button", name="Revoke release-ci"),
                "Revoke token", lambda: revoked(token))


def token_revoke_from_its_page(cast):
    token, _ = make_token(cast["dora"], name="release-ci")
    return Case(f"{TOKENS}{token.pk}/",
                lambda page: page.locator(".page-header").get_by_role("button", name="Revoke"),
                "Revoke token", lambda: revoked(token))


def revoke_selected(cast):
    first, _ = make_token(cast["dora"], name="first")
    second, _ = make_token(cast["owner"], name="second")
    kept, _ = make_token(cast["owner"], name="kept")

    def tick(page):
        page.get_by_label("Select first").check()
        page.get_by_label("Select second").check()

    def kept_alone():
        assert not revoked(kept)

    return Case(TOKENS, lambda page: page.get_by_role("button", name="Revoke selected"),
                "Revoke selected", lambda: revoked(first) and revoked(second),
                prepare=tick, also=kept_alone)


def revoke_all_tokens_of_a_member(cast):
    tokens = [make_token(cast["dora"], name=f"dora {n}")[0] for n in range(2)]
    return Case(MEMBERS,
                lambda page: page.get_by_role("button", name="Revoke all tokens of dora@acme.test"),
                "Revoke all tokens", lambda: all(revoked(t) for t in tokens))


def remove_member(cast):
    bob = cast["bob"]
    return Case(MEMBERS, lambda page: page.get_by_role("link", name="Remove bob@acme.test"),
                "Remove member", lambda: not Membership.objects.filter(pk=bob.pk).exists())


def cancel_invitation(cast):
    owner = cast["owner"]
    invitation = Invitation.objects.create(
        workspace=owner.workspace, email="new@acme.test", role="member", invited_by=owner.user,
        key_digest="1" * 64, expires_at=timezone.now() + timedelta(days=7))

    def cancelled():
        invitation.refresh_from_db()
        return invitation.cancelled_at is not None

    return Case(MEMBERS,
                lambda page: page.get_by_role("link", name="Cancel the invitation for new@acme.test"),
                "Cancel invitation", cancelled)


def delete_group(cast):
    group = GroupFactory(workspace=cast["owner"].workspace, name="Docs team")
    return Case(f"/w/acme/admin/groups/{group.pk}/",
                lambda page: page.get_by_role("link", name="Delete group"),
                "Delete group", lambda: not Group.objects.filter(pk=group.pk).exists())


def delete_custom_role_from_the_list(cast):
    role = CustomRole.objects.get(name="Automation")
    return Case("/w/acme/admin/roles/", lambda page: page.get_by_role("link", name="Delete Automation"),
                "Delete custom role", lambda: not CustomRole.objects.filter(pk=role.pk).exists())


def delete_custom_role_from_its_page(cast):
    role = CustomRole.objects.get(name="Automation")
    return Case(f"/w/acme/admin/roles/{role.pk}/",
                lambda page: page.get_by_role("link", name="Delete", exact=True),
                "Delete custom role", lambda: not CustomRole.objects.filter(pk=role.pk).exists())


def shorten_tokens(cast):
    workspace = cast["owner"].workspace
    workspace.max_token_lifetime_days = 30
    workspace.save(update_fields=["max_token_lifetime_days"])
    token, _ = make_token(cast["owner"], name="forever", expires_at=None)

    def shortened():
        token.refresh_from_db()
        return token.expires_at is not None

    return Case("/w/acme/admin/settings/", lambda page: page.get_by_role("button", name="Shorten them"),
                "Shorten them", shortened)


def revoke_suspended_tokens(cast):
    # Bob is a member without the access token permission: his token is suspended.
    token, _ = make_token(cast["bob"], name="bob's script")
    return Case("/w/acme/admin/settings/", lambda page: page.get_by_role("button", name="Revoke them"),
                "Revoke them", lambda: revoked(token))


def _rule_with_a_token(cast):
    from tests.federation import make_rule

    rule = make_rule(cast["owner"], name="release workflow")
    token, _ = make_token(cast["owner"], name="release workflow: acme/release",
                          federation_rule=rule)
    return rule, token


def disable_federation_rule(cast):
    rule, token = _rule_with_a_token(cast)

    def disabled():
        rule.refresh_from_db()
        return not rule.enabled and revoked(token)

    return Case(f"/w/acme/admin/federation/{rule.pk}/",
                lambda page: page.get_by_role("button", name="Disable", exact=True),
                "Disable rule", disabled)


def delete_federation_rule(cast):
    rule, token = _rule_with_a_token(cast)

    def deleted():
        rule.refresh_from_db()
        return rule.deleted_at is not None and revoked(token)

    return Case(f"/w/acme/admin/federation/{rule.pk}/",
                lambda page: page.locator(".page-header").get_by_role("link", name="Delete"),
                "Delete rule", deleted)


def _service_account_with_a_token(cast):
    account, membership = make_service_account(cast["owner"], name="nightly-ci")
    token, _ = make_token(membership, name="nightly")
    return account, token


def revoke_a_service_accounts_token(cast):
    account, token = _service_account_with_a_token(cast)
    return Case(f"/w/acme/admin/service-accounts/{account.pk}/",
                lambda page: page.get_by_role("button", name="Revoke nightly"),
                "Revoke token", lambda: revoked(token))


def remove_service_account(cast):
    account, token = _service_account_with_a_token(cast)
    return Case(f"/w/acme/admin/service-accounts/{account.pk}/",
                lambda page: page.get_by_role("link", name="Remove service account"),
                "Remove service account",
                lambda: not ServiceAccount.objects.filter(pk=account.pk).exists() and revoked(token))


CASES = [token_revoke_from_the_list, token_revoke_from_its_page, revoke_selected,
         revoke_all_tokens_of_a_member, remove_member, cancel_invitation, delete_group,
         delete_custom_role_from_the_list, delete_custom_role_from_its_page, shorten_tokens,
         revoke_suspended_tokens, disable_federation_rule, delete_federation_rule,
         revoke_a_service_accounts_token, remove_service_account]


def test_every_confirm_dialog_of_the_templates_is_here():
    """A new data-confirm button must get its case above."""
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "templates"
    count = sum(path.read_text().count("data-confirm=") for path in templates.rglob("*.html"))
    # The token page's and the list's Revoke, and the role delete on the list and on its page,
    # are one template each; every other data-confirm is one case.
    assert count == len(CASES), (count, len(CASES))


@pytest.mark.browser
@pytest.mark.parametrize("make_case", CASES, ids=[c.__name__ for c in CASES])
def test_the_confirm_dialog_cancels_then_does_it(page, sign_in, owner, member_with_token_permission,
                                                 member, make_case):
    case = make_case({"owner": owner, "dora": member_with_token_permission, "bob": member})
    sign_in(page, owner)
    page.goto(case.path)
    case.prepare(page)
    confirm = page.locator("dialog#confirm-dialog")

    opener = case.opener(page)
    opener.click()
    expect(confirm).to_be_visible()
    assert confirm.evaluate("d => d.matches(':modal')")
    confirm.get_by_role("button", name="Cancel", exact=True).click()
    expect(confirm).to_be_hidden()
    expect(opener).to_be_focused()
    assert not case.done()

    opener.click()
    expect(confirm).to_be_visible()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        confirm.get_by_role("button", name=case.action, exact=True).click()
    assert answer.value.status in (200, 302), answer.value.status
    page.wait_for_load_state()
    expect(page.locator(".errorlist, [role=alert].notice-error")).to_have_count(0)
    assert case.done()
    case.also()


@pytest.mark.browser
def test_revoke_selected_says_so_when_nothing_is_ticked(page, sign_in, owner):
    token, _ = make_token(owner, name="untouched")
    sign_in(page, owner)
    page.goto(TOKENS)
    page.get_by_role("button", name="Revoke selected").click()
    page.locator("dialog#confirm-dialog").get_by_role("button", name="Revoke selected").click()
    expect(page.get_by_text("Select the tokens to revoke first.")).to_be_visible()
    assert not revoked(token)
    assert AccessToken.objects.filter(revoked_at__isnull=False).count() == 0
