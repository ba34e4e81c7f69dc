"""Rotating an access token in a real browser: the dialog, the replacement shown once (copy,
close, gone), the notes on the list, and the old token through the API until the overlap ends."""

import re
from datetime import UTC, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import make_token
from tokens import codec
from tokens.models import AccessToken

LIST = "/w/acme/admin/access-tokens/"
WHOAMI = "/api/v1/whoami"


def whoami(plaintext):
    return Client().get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def error_code(response):
    return response.json()["error"]["code"]


def is_rotation_post(response):
    return response.request.method == "POST" and "/rotate/" in response.url


def open_rotate_dialog(page, row_or_page, name):
    row_or_page.get_by_role("button", name="Rotate").click()
    dialog = page.locator("dialog#rotate-dialog")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("d => d.matches(':modal')")
    expect(dialog.get_by_role("heading", level=2)).to_have_text(f"Rotate “{name}”")
    return dialog


@pytest.mark.browser
def test_rotate_with_an_hour_of_overlap(page, live_server, member_with_token_permission, sign_in,
                                        shot):
    creator = member_with_token_permission
    old, old_plaintext = make_token(creator, name="release-ci")
    sign_in(page, creator)
    page.goto(LIST)
    row = page.locator(f"tr[data-token-id='{old.pk}']")
    expect(row.locator(".badge")).to_have_text("Active")

    dialog = open_rotate_dialog(page, row, "release-ci")
    expect(dialog.get_by_label("Keep the old token working for 24 hours")).to_be_checked()
    dialog.get_by_label("Keep the old token working for 1 hour").check()
    shot(page, "rotation-dialog")

    with page.expect_response(is_rotation_post) as response_info:
        dialog.get_by_role("button", name="Rotate", exact=True).click()
    response = response_info.value
    assert response.url == f"{live_server.url}{LIST}{old.pk}/rotate/"
    assert response.status == 201
    assert "no-store" in response.headers.get("cache-control", "")

    created = page.locator("dialog#token-created-dialog")
    expect(created).to_be_visible()
    expect(created).to_contain_text("Copy “release-ci” now")
    plaintext = page.get_by_label("Access token").input_value()
    assert codec.TOKEN_RE.match(plaintext), plaintext
    assert plaintext != old_plaintext
    # The address is the list's again: a reload is a GET and cannot rotate twice.
    assert page.url == live_server.url + LIST
    shot(page, "rotation-created")

    created.get_by_role("button", name="Copy", exact=True).click()
    expect(created.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == plaintext

    created.get_by_role("button", name="Close").click()
    expect(page.locator("dialog#token-created-dialog")).to_have_count(0)
    assert plaintext not in page.content()

    reloaded = page.reload()
    assert (reloaded.request.method, reloaded.status) == ("GET", 200)
    assert plaintext not in page.content()
    expect(page.locator("dialog#token-created-dialog")).to_have_count(0)

    new = AccessToken.objects.get(replaces=old)
    assert new.last_characters == plaintext[-4:]
    old_row = page.locator(f"tr[data-token-id='{old.pk}']")
    new_row = page.locator(f"tr[data-token-id='{new.pk}']")
    expect(old_row).to_contain_text(f"Replaced by …{new.last_characters}")
    expect(old_row).to_contain_text("not used yet")
    expect(old_row.locator(".badge")).to_have_text("Active")
    expect(old_row.get_by_role("button", name="Rotate")).to_have_count(0)
    expect(new_row).to_contain_text(f"Replaces …{old.last_characters}")
    shot(page, "rotation-list-replaced")

    old.refresh_from_db()
    assert abs(old.expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(minutes=1)
    assert whoami(old_plaintext).status_code == 200

    with time_machine.travel(old.expires_at + timedelta(minutes=1), tick=True):
        refused = whoami(old_plaintext)
        assert refused.status_code == 401
        assert error_code(refused) == "token_expired"
        works = whoami(plaintext)
        assert works.status_code == 200
        assert works.json()["token"]["id"] == new.pk

        page.reload()
        old_row = page.locator(f"tr[data-token-id='{old.pk}']")
        expect(old_row.locator(".badge")).to_have_text("Expired")
        expect(old_row).to_contain_text("first used")
        expect(old_row).not_to_contain_text("not used yet")
        shot(page, "rotation-list-after-overlap")


@pytest.mark.browser
def test_rotate_from_the_tokens_page_stopping_the_old_token_at_once(
        page, owner, sign_in, shot):
    old, old_plaintext = make_token(owner, name="nightly-docs-check", expires_at=None)
    sign_in(page, owner)
    page.goto(f"{LIST}{old.pk}/")
    dialog = open_rotate_dialog(page, page.locator(".page-header"), "nightly-docs-check")
    dialog.get_by_label("Stop the old token right away").check()
    with page.expect_response(is_rotation_post) as response_info:
        dialog.get_by_role("button", name="Rotate", exact=True).click()
    assert response_info.value.status == 201
    plaintext = page.get_by_label("Access token").input_value()
    expect(page.locator("dialog#token-created-dialog")).to_contain_text("It has no expiration")
    shot(page, "rotation-from-token-page")

    refused = whoami(old_plaintext)
    assert (refused.status_code, error_code(refused)) == (401, "token_revoked")
    assert whoami(plaintext).status_code == 200
    new = AccessToken.objects.get(replaces=old)
    assert new.expires_at is None

    page.goto(f"{LIST}{old.pk}/")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Replaced by")
    expect(facts.get_by_role("link", name=f"nightly-docs-check …{new.last_characters}")).to_be_visible()
    expect(facts).to_contain_text("first used")
    expect(page.get_by_role("button", name="Rotate")).to_have_count(0)


@pytest.mark.browser
def test_cancelling_the_rotation_changes_nothing(page, owner, sign_in):
    old, old_plaintext = make_token(owner, name="release-ci")
    sign_in(page, owner)
    page.goto(LIST)
    row = page.locator(f"tr[data-token-id='{old.pk}']")
    dialog = open_rotate_dialog(page, row, "release-ci")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert AccessToken.objects.count() == 1
    assert whoami(old_plaintext).status_code == 200

    # The dialog still rotates after a cancel.
    dialog = open_rotate_dialog(page, row, "release-ci")
    submit = dialog.get_by_role("button", name="Rotate", exact=True)
    expect(submit).not_to_have_attribute("aria-disabled", "true")
    submit.click()
    expect(page.locator("dialog#token-created-dialog")).to_be_visible()
    assert AccessToken.objects.filter(replaces=old).count() == 1


@pytest.mark.browser
def test_a_double_click_on_rotate_makes_one_replacement(page, owner, sign_in):
    old, _ = make_token(owner, name="release-ci")
    sign_in(page, owner)
    page.goto(LIST)
    dialog = open_rotate_dialog(page, page.locator(f"tr[data-token-id='{old.pk}']"), "release-ci")
    posts = []
    page.on("request", lambda r: r.method == "POST" and posts.append(r.url))
    dialog.get_by_role("button", name="Rotate", exact=True).dblclick()
    expect(page.locator("dialog#token-created-dialog")).to_be_visible()
    assert codec.TOKEN_RE.match(page.get_by_label("Access token").input_value())
    assert len(posts) == 1, posts
    assert AccessToken.objects.filter(replaces=old).count() == 1


@pytest.mark.browser
def test_rotate_without_javascript(new_context, live_server, owner, sign_in, shot):
    old, _ = make_token(owner, name="release-ci")
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, owner)
    page.goto(LIST)
    page.locator(f"tr[data-token-id='{old.pk}']").get_by_role("button", name="Rotate").click()
    page.wait_for_url(re.compile(re.escape(f"{live_server.url}{LIST}{old.pk}/rotate/") + r"\??$"))
    expect(page.get_by_role("heading", name="Rotate “release-ci”", level=1)).to_be_visible()
    page.get_by_label("Keep the old token working for 7 days").check()
    shot(page, "rotation-no-js-form")
    with page.expect_response(is_rotation_post) as response_info:
        page.get_by_role("button", name="Rotate", exact=True).click()
    assert response_info.value.status == 201
    assert codec.is_valid(page.get_by_label("Access token", exact=True).input_value())
    old.refresh_from_db()
    assert abs(old.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    assert AccessToken.objects.filter(replaces=old).count() == 1


@pytest.mark.browser
def test_rotating_from_the_tokens_page_lands_on_the_new_tokens_page(page, live_server, owner,
                                                                    sign_in):
    old, old_plaintext = make_token(owner, name="release-ci")
    sign_in(page, owner)
    page.goto(f"{LIST}{old.pk}/")
    dialog = open_rotate_dialog(page, page.locator(".page-header"), "release-ci")
    dialog.get_by_label("Keep the old token working for 1 hour").check()
    with page.expect_response(is_rotation_post) as response_info:
        dialog.get_by_role("button", name="Rotate", exact=True).click()
    assert response_info.value.status == 201
    assert "no-store" in response_info.value.headers.get("cache-control", "")
    new = AccessToken.objects.get(replaces=old)

    created = page.locator("dialog#token-created-dialog")
    expect(created).to_be_visible()
    plaintext = page.get_by_label("Access token").input_value()
    assert codec.TOKEN_RE.match(plaintext) and plaintext[-4:] == new.last_characters
    # The address is the new token's page: a reload is a GET there, and shows nothing again.
    assert page.url == f"{live_server.url}{LIST}{new.pk}/"
    page.keyboard.press("Escape")
    expect(created).to_have_count(0)
    expect(page.locator("#token-heading")).to_be_focused()
    assert plaintext not in page.content()
    expect(page.locator("dl.facts")).to_contain_text("Replaces")
    expect(page.get_by_role("link", name=f"release-ci …{old.last_characters}")).to_be_visible()

    reloaded = page.reload()
    assert (reloaded.request.method, reloaded.status) == ("GET", 200)
    assert plaintext not in page.content()
    expect(page.locator("dialog#token-created-dialog")).to_have_count(0)

    # The list says when the old token's overlap ends, not that it "expires today".
    page.goto(LIST)
    old_row = page.locator(f"tr[data-token-id='{old.pk}']")
    old.refresh_from_db()
    ends = old.expires_at.astimezone(UTC)
    expect(old_row.locator(".badge")).to_have_text("Active")
    expect(old_row).to_contain_text(f"overlap ends {ends:%b} {ends.day}, {ends:%H:%M} UTC")
    expect(old_row).not_to_contain_text("expires today")
    expect(old_row).not_to_contain_text("expires in")
    assert whoami(old_plaintext).status_code == 200


@pytest.mark.browser
def test_rotating_from_the_tokens_page_without_javascript_lands_there_too(
        new_context, live_server, owner, sign_in):
    old, _ = make_token(owner, name="release-ci")
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, owner)
    page.goto(f"{LIST}{old.pk}/")
    page.locator(".page-header").get_by_role("button", name="Rotate").click()
    expect(page.get_by_role("heading", name="Rotate “release-ci”", level=1)).to_be_visible()
    with page.expect_response(is_rotation_post) as response_info:
        page.get_by_role("button", name="Rotate", exact=True).click()
    assert response_info.value.status == 201
    new = AccessToken.objects.get(replaces=old)
    assert codec.TOKEN_RE.match(page.get_by_label("Access token", exact=True).input_value())
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"release-ci …{new.last_characters}")
