"""A query string a page cannot read, in a real browser: the page answers 400 and says which
value is wrong, next to its field (or above the list for a page number or a link to older
entries), with no accessibility violation and no sideways scrolling on a phone."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.factories import make_token

AXE = Axe()

CASES = [
    ("/w/acme/admin/audit-log/?end=9999-12-31", "To", "Enter a date from 1970-01-01"),
    ("/w/acme/admin/governance/?start=10000-01-01", "From", "Enter a date as YYYY-MM-DD."),
    ("/w/acme/admin/access-tokens/?q=%00", "Search", "Null characters are not allowed."),
    ("/w/acme/admin/members/?q=" + "x" * 300, None, "at most 254 characters"),
    ("/w/acme/admin/groups/?page=abc", None, "The page number in this address is not valid"),
    ("/w/acme/admin/audit-log/?after=garbage", None, "The link to older entries"),
]


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_says_which_value_it_cannot_read(new_context, sign_in, owner, theme, width,
                                                  shot):
    make_token(owner, name="nightly")
    context = new_context(color_scheme=theme, viewport={"width": width, "height": 860})
    page = context.new_page()
    sign_in(page, owner)
    found = []
    for n, (path, label, error) in enumerate(CASES):
        response = page.goto(path)
        assert response.status == 400, path
        message = page.locator(".errorlist").filter(has_text=error)
        expect(message).to_be_visible()
        if label:  # beside its field, inside the filter form
            field = page.locator("form .field").filter(has=page.get_by_label(label, exact=True))
            expect(field.locator(".errorlist")).to_contain_text(error)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        if width == 1280:  # as tests/browser/test_accessibility.py checks every page
            found += [f"{path}: {v['id']}" for v in AXE.run(page).response["violations"]]
        shot(page, f"query-error-{n}-{width}-{theme}")
    assert found == [], found
