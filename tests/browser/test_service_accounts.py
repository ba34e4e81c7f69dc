"""A service account in a real browser: made on the Members page, a token created for it on
its page through the modal (shown once), revoked and the account removed through the
confirmation dialogs."""

import pytest
from playwright.sync_api import expect

from tokens import codec
from tokens.models import AccessToken
from workspaces.models import ServiceAccount

MEMBERS = "/w/acme/admin/members/"


@pytest.mark.browser
def test_a_service_account_from_creation_to_removal(page, owner, workspace, sign_in, shot):
    workspace.allow_access_tokens = True
    workspace.save()
    sign_in(page, owner)
    page.goto(MEMBERS)
    section = page.locator("section[aria-labelledby=service-accounts-heading]")
    expect(section).to_contain_text("No service accounts yet")
    section.get_by_label("Name").fill("nightly-ci")
    section.get_by_label("Description").fill("GitHub Actions, nightly")
    section.get_by_role("button", name="New service account").click()
    expect(page.get_by_role("heading", name="svc:nightly-ci", level=1)).to_be_visible()
    account = ServiceAccount.objects.get()

    page.get_by_role("button", name="Create a token").click()
    dialog = page.locator("dialog#create-token-dialog")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("d => d.matches(':modal')")
    expect(dialog).to_contain_text("acts as the service account svc:nightly-ci")
    dialog.get_by_label("Name").fill("nightly")
    dialog.get_by_role("button", name="Create", exact=True).click()
    created = page.locator("dialog#token-created-dialog")
    expect(created).to_be_visible()
    expect(created).to_contain_text("The new token for svc:nightly-ci")
    value = created.locator("#new-token").input_value()
    assert codec.TOKEN_RE.fullmatch(value)
    shot(page, "service-account-new-token")
    created.get_by_role("button", name="Close").click()
    expect(created).to_be_hidden()
    token = AccessToken.objects.get()
    assert token.created_by == account.user
    # Shown once: opened again, the page does not hold it.
    page.reload()
    assert value not in page.content()

    row = page.locator(f"tr[data-token-id='{token.pk}']")
    row.get_by_role("button", name="Revoke").click()
    confirm = page.locator("dialog#confirm-dialog")
    expect(confirm).to_contain_text("of svc:nightly-ci")
    confirm.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("“nightly” was revoked")).to_be_visible()
    assert page.url.endswith(f"/service-accounts/{account.pk}/")
    expect(page.locator(f"tr[data-token-id='{token.pk}'] .badge")).to_have_text("Revoked")

    page.get_by_role("link", name="Remove service account").click()
    expect(confirm).to_contain_text("Every access token it holds is revoked at once")
    confirm.get_by_role("button", name="Remove service account").click()
    expect(page.get_by_text("Service account svc:nightly-ci removed")).to_be_visible()
    assert page.url.endswith(MEMBERS)
    assert not ServiceAccount.objects.exists()
