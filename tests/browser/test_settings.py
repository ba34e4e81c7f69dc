"""Settings and Permissions in a real browser: the two member toggles."""

import pytest
from playwright.sync_api import expect

SETTINGS = "/w/acme/admin/settings/"
LOCAL = "Allow members to use Codex Local"
TOKENS = "Allow members to use Codex access tokens"


@pytest.mark.browser
def test_owner_toggles_member_permissions(page, workspace, owner, sign_in, shot):
    assert (workspace.allow_codex_local, workspace.allow_access_tokens) == (True, False)
    sign_in(page, owner)
    page.goto(SETTINGS)
    local = page.get_by_label(LOCAL, exact=True)
    tokens = page.get_by_label(TOKENS, exact=True)
    expect(local).to_be_checked()
    expect(tokens).not_to_be_checked()
    shot(page, "05-settings")

    tokens.check()
    local.uncheck()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label(LOCAL, exact=True)).not_to_be_checked()
    expect(page.get_by_label(TOKENS, exact=True)).to_be_checked()
    shot(page, "05-settings-saved")

    page.reload()
    expect(page.get_by_text("Settings saved.")).to_have_count(0)  # the message shows once
    expect(page.get_by_label(LOCAL, exact=True)).not_to_be_checked()
    expect(page.get_by_label(TOKENS, exact=True)).to_be_checked()

    workspace.refresh_from_db()
    assert (workspace.allow_codex_local, workspace.allow_access_tokens) == (False, True)

    # And back: switching the first one on again is saved as well.
    page.get_by_label(LOCAL, exact=True).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    workspace.refresh_from_db()
    assert (workspace.allow_codex_local, workspace.allow_access_tokens) == (True, True)
