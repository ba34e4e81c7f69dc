"""The Access tokens page in a real browser: create through the modal, copy, close, revoke."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import make_token
from tokens import codec
from tokens.models import AccessToken

LIST = "/w/acme/admin/access-tokens/"
TOKEN_RE = codec.TOKEN_RE
EXPIRATION_PREFIXES = ["7 days", "30 days", "60 days", "90 days", "Custom", "No expiration"]


def open_create_dialog(page):
    page.get_by_role("button", name="Create").click()
    dialog = page.locator("dialog#create-token-dialog")
    expect(dialog).to_be_visible()
    # Opened with showModal(): the rest of the page is inert behind it.
    assert dialog.evaluate("d => d.matches(':modal')")
    return dialog


def create_button(dialog):
    return dialog.get_by_role("button", name="Create", exact=True)


@pytest.mark.browser
def test_create_token_through_the_modal(page, live_server, owner, sign_in, shot):
    sign_in(page, owner)
    page.goto(LIST)
    expect(page.get_by_role("heading", name="Access tokens", level=1)).to_be_visible()

    dialog = open_create_dialog(page)
    # Page-wide, loose look-ups, as a person (or a script) would write them: while the modal
    # is open they find its fields and its Create button, nothing behind it.
    page.get_by_label("Name").fill("Nightly CI runner")
    expiration = page.get_by_label("Expiration")
    texts = [t.strip() for t in expiration.locator("option").all_text_contents()]
    assert len(texts) == len(EXPIRATION_PREFIXES), texts
    for text, prefix in zip(texts, EXPIRATION_PREFIXES, strict=True):
        assert text.startswith(prefix), (text, prefix)
    date_input = dialog.locator("input[type=date]")
    expect(date_input).to_be_hidden()  # only Custom needs a date

    expiration.select_option(label=texts[EXPIRATION_PREFIXES.index("Custom")])
    expect(date_input).to_be_visible()
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert date_input.get_attribute("min") == tomorrow
    shot(page, "02-create-modal-custom-date")

    expiration.select_option(label=texts[EXPIRATION_PREFIXES.index("30 days")])
    expect(date_input).to_be_hidden()
    shot(page, "02-create-modal")

    with page.expect_response(
        lambda r: r.request.method == "POST" and "/access-tokens/new/" in r.url
    ) as response_info:
        page.get_by_role("button", name="Create").click()
    response = response_info.value
    assert response.status == 201
    assert "no-store" in response.headers.get("cache-control", "")

    created = page.locator("dialog#token-created-dialog")
    expect(created).to_be_visible()
    field = page.get_by_label("Access token")  # the one element with that label, loosely matched
    token = field.input_value()
    assert TOKEN_RE.match(token), token
    expect(created).to_contain_text("You cannot view it again after you close the modal")
    # The address is the list's again, so a reload is a GET and cannot post the form twice.
    assert page.url == live_server.url + LIST
    assert "/new/" not in page.url
    shot(page, "03-token-created-modal")

    created.get_by_role("button", name="Copy", exact=True).click()
    expect(created.get_by_role("button", name="Copied")).to_be_visible()
    expect(created.get_by_role("status")).to_contain_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == token
    shot(page, "03-token-created-modal-copied")

    created.get_by_role("button", name="Close").click()
    expect(page.locator("dialog#token-created-dialog")).to_have_count(0)
    assert token not in page.content()

    reloaded = page.reload()
    assert (reloaded.request.method, reloaded.status) == ("GET", 200)
    assert token not in page.content()
    expect(page.locator("dialog#token-created-dialog")).to_have_count(0)
    row = page.locator("tbody tr", has_text="Nightly CI runner")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row).to_contain_text(token[-4:])
    shot(page, "01-token-list-after-create")

    saved = AccessToken.objects.get()
    assert saved.name == "Nightly CI runner"
    assert saved.created_by == owner.user
    assert saved.revoked_at is None
    assert abs(saved.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=5)


@pytest.mark.browser
def test_double_click_on_create_makes_one_token(page, owner, sign_in):
    sign_in(page, owner)
    page.goto(LIST)
    dialog = open_create_dialog(page)
    dialog.get_by_label("Name").fill("Deploy bot")

    posts = []

    def record_post(request):
        if request.method == "POST" and "/access-tokens/" in request.url:
            posts.append(request.url)

    page.on("request", record_post)
    create_button(dialog).dblclick()

    expect(page.locator("dialog#token-created-dialog")).to_be_visible()
    assert TOKEN_RE.match(page.get_by_label("Access token", exact=True).input_value())
    expect(page.get_by_text("already submitted")).to_have_count(0)
    assert AccessToken.objects.count() == 1
    assert len(posts) == 1, posts


@pytest.mark.browser
def test_cancel_then_create_still_works(page, owner, sign_in):
    """Cancelling the modal must not leave its form spent ("Creating…", refusing to submit)."""
    sign_in(page, owner)
    page.goto(LIST)
    dialog = open_create_dialog(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    dialog = open_create_dialog(page)
    submit = dialog.locator("button.btn-primary[type=submit]")
    expect(submit).to_have_text("Create")  # not "Creating…"
    expect(submit).not_to_have_attribute("aria-disabled", "true")
    dialog.get_by_label("Name").fill("After a cancel")
    create_button(dialog).click()
    expect(page.locator("dialog#token-created-dialog")).to_be_visible()
    assert AccessToken.objects.filter(name="After a cancel").count() == 1


@pytest.mark.browser
def test_revoke_through_the_confirmation_dialog(page, member_with_token_permission, sign_in, shot):
    token, _ = make_token(member_with_token_permission, name="Release pipeline")
    sign_in(page, member_with_token_permission)
    page.goto(LIST)
    row = page.locator(f"tr[data-token-id='{token.pk}']")
    expect(row.locator(".badge")).to_have_text("Active")

    confirm = page.locator("dialog#confirm-dialog")
    row.get_by_role("button", name="Revoke").click()
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Release pipeline")
    expect(confirm.get_by_role("button", name="Revoke token")).to_be_visible()
    shot(page, "04-revoke-confirm")

    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(row.locator(".badge")).to_have_text("Active")
    token.refresh_from_db()
    assert token.revoked_at is None

    row.get_by_role("button", name="Revoke").click()
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("“Release pipeline” was revoked")).to_be_visible()
    row = page.locator(f"tr[data-token-id='{token.pk}']")
    expect(row.locator(".badge")).to_have_text("Revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    assert page.url.endswith(LIST)
    token.refresh_from_db()
    assert token.revoked_at is not None
    shot(page, "04-token-list-after-revoke")


@pytest.mark.browser
def test_the_new_token_modal_shows_the_codex_cli_lines(page, live_server, owner, sign_in):
    sign_in(page, owner)
    page.goto(LIST)
    open_create_dialog(page)
    page.get_by_label("Name").fill("laptop")
    create_button(page.locator("dialog#create-token-dialog")).click()
    created = page.locator("dialog#token-created-dialog")
    lines = created.get_by_label("Codex CLI commands")
    expect(lines).to_contain_text(f"export CODEX_AUTHAPI_BASE_URL={live_server.url}/codex/auth")
    expect(lines).to_contain_text(f"openai_base_url={live_server.url}/codex/api")
    token = created.get_by_label("Access token").input_value()
    assert token not in lines.inner_text()  # the lines name the secret, never show it
    # Outside a git repository `codex exec` needs a flag: the modal says when.
    expect(created).to_contain_text("Outside one (a plain folder, a job without a checkout) Codex "
                                    "refuses to start unless you add --skip-git-repo-check after "
                                    "codex exec.")
    created.get_by_role("button", name="Copy the commands").click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("export CODEX_AUTHAPI_BASE_URL=") and "codex exec" in copied
