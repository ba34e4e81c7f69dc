"""Where the keyboard focus goes, in a real browser: a dialog that closes gives it back to what
opened it, and a form that comes back with errors puts it on the first field in error."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_token

LIST = "/w/acme/admin/access-tokens/"


@pytest.mark.browser
def test_escape_gives_the_focus_back_to_the_button_that_opened_the_dialog(page, sign_in, owner):
    make_token(owner, name="release-ci")
    sign_in(page, owner)
    page.goto(LIST)
    create = page.get_by_role("button", name="Create")
    create.click()
    expect(page.locator("dialog#create-token-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#create-token-dialog")).to_be_hidden()
    expect(create).to_be_focused()

    rotate = page.get_by_role("button", name="Rotate release-ci")
    rotate.click()
    expect(page.locator("dialog#rotate-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#rotate-dialog")).to_be_hidden()
    expect(rotate).to_be_focused()


@pytest.mark.browser
def test_closing_the_new_token_gives_the_focus_back_to_create(page, sign_in, owner):
    sign_in(page, owner)
    page.goto(LIST)
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Name").fill("Nightly CI runner")
    page.locator("dialog#create-token-dialog").get_by_role("button", name="Create", exact=True).click()
    created = page.locator("dialog#token-created-dialog")
    expect(created).to_be_visible()
    page.keyboard.press("Escape")
    expect(created).to_have_count(0)
    expect(page.get_by_role("button", name="Create")).to_be_focused()

    # The same with the Close button.
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Name").fill("Second")
    page.locator("dialog#create-token-dialog").get_by_role("button", name="Create", exact=True).click()
    page.locator("dialog#token-created-dialog").get_by_role("button", name="Close").click()
    expect(page.get_by_role("button", name="Create")).to_be_focused()


@pytest.mark.browser
def test_a_form_error_in_the_create_modal_focuses_the_field_in_error(page, sign_in, owner):
    sign_in(page, owner)
    page.goto(LIST)
    page.get_by_role("button", name="Create").click()
    dialog = page.locator("dialog#create-token-dialog")
    dialog.get_by_label("Name").fill("CI")
    dialog.get_by_label("Allowed IP ranges (optional)").fill("not an address")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        dialog.get_by_role("button", name="Create", exact=True).click()
    assert answer.value.status == 400
    dialog = page.locator("dialog#create-token-dialog")
    expect(dialog).to_be_visible()
    field = dialog.get_by_label("Allowed IP ranges (optional)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()


@pytest.mark.browser
def test_a_form_error_on_a_page_focuses_the_field_in_error(page, sign_in, owner):
    sign_in(page, owner)
    page.goto("/accounts/password_change/")
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a long new passphrase 1")
    page.get_by_label("New password confirmation").fill("a different passphrase 2")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state()
    # The old password was right: the confirmation is the field in error, not the first field.
    confirmation = page.get_by_label("New password confirmation")
    expect(confirmation).to_have_attribute("aria-invalid", "true")
    expect(confirmation).to_be_focused()
