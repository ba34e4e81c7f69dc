"""Without JavaScript the create form works as a plain page."""

import re

import pytest
from playwright.sync_api import expect

from tokens.models import AccessToken

LIST = "/w/acme/admin/access-tokens/"


@pytest.mark.browser
def test_create_token_without_javascript(new_context, owner, sign_in, shot):
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, owner)
    page.goto(LIST)
    page.get_by_role("link", name="Create", exact=True).click()
    page.wait_for_url(re.compile(r"/access-tokens/new/$"))
    form = page.locator("form", has=page.get_by_role("button", name="Create", exact=True))
    name = page.get_by_label("Name", exact=False).and_(page.locator("input[name=name]"))
    expect(name).to_be_visible()
    expect(page.get_by_label("Expiration")).to_be_visible()
    shot(page, "11-no-js-create-form")

    name.fill("No-JS runner")
    form.get_by_role("button", name="Create", exact=True).click()
    field = page.get_by_label("Access token", exact=True)
    expect(field).to_be_visible()
    assert re.match(r"^cxat_[0-9A-Za-z]{36}$", field.input_value())
    shot(page, "12-no-js-token-created")
    assert AccessToken.objects.filter(name="No-JS runner").count() == 1
