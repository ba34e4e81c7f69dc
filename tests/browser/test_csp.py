"""The Content-Security-Policy holds in a real browser: no page of the console, signed in or
not, makes Chromium refuse anything (a script, a style, an image, a form target)."""

import pytest

from .pages import ANONYMOUS_PAGES, seed, signed_in_pages

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
});
"""


def violations(page):
    return page.evaluate("window.__violations")


@pytest.mark.browser
def test_no_page_violates_the_policy(context, owner, admin, member_with_token_permission, member,
                                     sign_in):
    data = seed(owner, admin, member_with_token_permission, member)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    messages = []
    page.on("console", lambda m: messages.append(m.text) if "Content Security Policy" in m.text
            else None)
    for path, _ in ANONYMOUS_PAGES:
        page.goto(path)
        assert violations(page) == [], path
    sign_in(page, owner)
    for path, _ in signed_in_pages(data):
        response = page.goto(path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert violations(page) == [], path
    # The open modals too: create a token and see it shown once.
    page.goto("/w/acme/admin/access-tokens/")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Name").fill("csp-check")
    page.get_by_role("dialog").get_by_role("button", name="Create").click()
    page.get_by_label("Access token").wait_for()
    assert violations(page) == []
    assert messages == []
