"""Pages that must render for who may see them, and refuse who may not."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import make_token


@pytest.mark.browser
def test_member_without_token_permission_sees_403(page, member, sign_in, shot):
    sign_in(page, member)
    response = page.goto("/w/acme/admin/access-tokens/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
    expect(page.locator("body")).to_contain_text("workspace owner or admin")
    expect(page.get_by_role("link", name="Back to Acme Corp")).to_be_visible()
    shot(page, "06-403-access-tokens")


@pytest.mark.browser
def test_admin_pages_render(page, owner, admin, member_with_token_permission, member, sign_in, shot):
    now = timezone.now()
    make_token(owner, name="Nightly CI runner")
    make_token(owner, name="Staging deploy", expires_at=now + timedelta(days=3))
    make_token(
        member_with_token_permission,
        name="Release pipeline",
        expires_at=None,
        last_used_at=now - timedelta(hours=2),
    )
    make_token(member_with_token_permission, name="Old laptop", expires_at=now - timedelta(days=2))
    make_token(admin, name="Retired runner", revoked_at=now - timedelta(days=1), revoked_by=owner.user)

    sign_in(page, owner)
    pages = [
        ("/w/acme/", "Acme Corp", "07-overview"),
        ("/w/acme/admin/access-tokens/", "Access tokens", "01-token-list"),
        ("/w/acme/admin/members/", "Members", "08-members"),
        ("/w/acme/admin/groups/", "Groups", "09-groups"),
        ("/w/acme/admin/roles/", "Custom roles", "10-custom-roles"),
    ]
    for path, heading, name in pages:
        response = page.goto(path)
        assert response.status == 200, path
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        shot(page, name)

    page.goto("/w/acme/admin/access-tokens/")
    statuses = {
        row.locator("strong").inner_text(): row.locator(".badge").inner_text()
        for row in page.locator("tbody tr").all()
    }
    assert statuses == {
        "Nightly CI runner": "Active",
        "Staging deploy": "Active",
        "Release pipeline": "Active",
        "Old laptop": "Expired",
        "Retired runner": "Revoked",
    }
    page.goto("/w/acme/admin/groups/")
    expect(page.locator("main")).to_contain_text("Release engineering")
    page.goto("/w/acme/admin/roles/")
    expect(page.locator("main")).to_contain_text("Automation")
    page.goto("/w/acme/admin/members/")
    for email in ("alice@acme.test", "adam@acme.test", "dora@acme.test", "bob@acme.test"):
        expect(page.locator("main")).to_contain_text(email)
