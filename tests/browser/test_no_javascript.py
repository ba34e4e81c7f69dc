"""Without JavaScript the create form works as a plain page."""

import re

import pytest
from playwright.sync_api import expect

from tokens import codec
from tokens.models import AccessToken

LIST = "/w/acme/admin/access-tokens/"


@pytest.mark.browser
def test_create_token_without_javascript(new_context, live_server, owner, sign_in, shot):
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, owner)
    page.goto(LIST)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/w/acme/admin/access-tokens/new/\??$"))

    form = page.locator("dialog#create-token-dialog form")
    expect(form).to_be_visible()
    name = form.get_by_role("textbox", name="Name")
    expect(name).to_be_visible()
    expect(form.get_by_label("Expiration")).to_be_visible()
    shot(page, "11-no-js-create-form")

    name.fill("No-JS runner")
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/access-tokens/new/" in r.url
    ) as response_info:
        form.get_by_role("button", name="Create", exact=True).click()
    assert response_info.value.status == 201
    assert "no-store" in response_info.value.headers.get("cache-control", "")

    field = page.get_by_label("Access token", exact=True)
    expect(field).to_be_visible()
    assert codec.is_valid(field.input_value())
    shot(page, "12-no-js-token-created")
    assert AccessToken.objects.filter(name="No-JS runner").count() == 1
