"""Accessibility and looks, in a real browser: axe-core (the engine behind Lighthouse) finds no
violation on any page or open modal, in the light and the dark theme; no page scrolls sideways
at 390 px; the keyboard alone creates, copies and revokes a token; the theme switch remembers
its choice and the page never paints the wrong theme first."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from .pages import ANONYMOUS_PAGES, seed, signed_in_pages

AXE = Axe()
THEMES = ["light", "dark"]
# Wide, and as a phone sees it: the phone's top bar and stacked tables are other markup.
VIEWPORTS = {"wide": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


def violations(page, where):
    results = AXE.run(page)
    found = [f"{v['id']} ({v['impact']}): {v['help']} — "
             + "; ".join(", ".join(n["target"]) for n in v["nodes"][:5])
             for v in results.response["violations"]]
    return [f"{where}: {text}" for text in found]


@pytest.fixture
def story(owner, admin, member_with_token_permission, member):
    return seed(owner, admin, member_with_token_permission, member)


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("theme", THEMES)
def test_no_page_has_an_accessibility_violation(new_context, sign_in, owner, story, theme,
                                                viewport):
    context = new_context(color_scheme=theme, viewport=VIEWPORTS[viewport])
    page = context.new_page()
    found = []
    for path, name in ANONYMOUS_PAGES:
        page.goto(path)
        found += violations(page, name)
    sign_in(page, owner)
    for path, name in signed_in_pages(story):
        page.goto(path)
        found += violations(page, name)
        if name == "governance":  # the runs per day as a table, opened
            page.get_by_text("Show runs per day as a table").click()
            found += violations(page, "governance with the table of runs per day")
    assert found == [], found


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("theme", THEMES)
def test_no_open_modal_has_an_accessibility_violation(new_context, sign_in, owner, story, theme,
                                                      viewport):
    context = new_context(color_scheme=theme, viewport=VIEWPORTS[viewport])
    page = context.new_page()
    sign_in(page, owner)
    found = []
    page.goto("/w/acme/admin/access-tokens/")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("dialog#create-token-dialog")).to_be_visible()
    found += violations(page, "create modal")
    page.get_by_label("Name").fill("a11y")
    page.locator("dialog#create-token-dialog").get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_label("Access token")).to_be_visible()
    found += violations(page, "new token modal")
    page.get_by_role("button", name="Close").click()
    page.get_by_role("button", name="Rotate nightly-docs-check").click()
    expect(page.locator("dialog#rotate-dialog")).to_be_visible()
    found += violations(page, "rotate modal")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Revoke staging-deploy").click()
    expect(page.locator("dialog#confirm-dialog")).to_be_visible()
    found += violations(page, "confirm modal")
    assert found == [], found


@pytest.mark.browser
def test_no_page_scrolls_sideways_at_390_px(new_context, sign_in, owner, story):
    context = new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    wide = []

    def check(name):
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            wide.append(f"{name}: {width[0]} > {width[1]}")

    for path, name in ANONYMOUS_PAGES:
        page.goto(path)
        check(name)
    sign_in(page, owner)
    for path, name in signed_in_pages(story):
        page.goto(path)
        check(name)
    page.goto("/w/acme/admin/access-tokens/")
    page.get_by_role("button", name="Create").click()
    dialog = page.locator("dialog#create-token-dialog")
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box  # the modal fits
    check("create modal")
    assert wide == [], wide


@pytest.mark.browser
def test_the_navigation_sits_behind_a_menu_button_on_a_phone(new_context, sign_in, owner, story):
    page = new_context(viewport={"width": 390, "height": 844}).new_page()
    sign_in(page, owner)
    page.goto("/w/acme/")
    nav = page.get_by_role("navigation", name="Workspace")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    expect(nav).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    nav.get_by_role("link", name="Access tokens").click()
    expect(page.get_by_role("heading", name="Access tokens", level=1)).to_be_visible()
    # Tables scroll inside their own frame.
    frame = page.locator(".table-wrap").first
    assert frame.evaluate("e => getComputedStyle(e).overflowX") == "auto"


@pytest.mark.browser
def test_the_keyboard_alone_creates_copies_closes_and_revokes(page, sign_in, owner):
    sign_in(page, owner)
    page.goto("/w/acme/admin/access-tokens/")

    def tab_to(name, limit=80):
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement && (document.activeElement.getAttribute"
                                    "('aria-label') || document.activeElement.textContent || '')"
                                    ".trim()")
            if focused == name:
                return
        raise AssertionError(f"Tab never reached {name!r}")

    tab_to("Create")
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#create-token-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.type("keyboard-only")
    tab_to("Create")
    page.keyboard.press("Enter")
    created = page.locator("dialog#token-created-dialog")
    expect(created).to_be_visible()
    token = created.get_by_label("Access token").input_value()
    tab_to("Copy")
    page.keyboard.press("Enter")
    expect(created.get_by_role("status")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
    tab_to("Close")
    page.keyboard.press("Enter")
    expect(created).to_have_count(0)
    tab_to("Revoke keyboard-only")
    page.keyboard.press("Enter")
    confirm = page.locator("dialog#confirm-dialog")
    expect(confirm).to_be_visible()
    tab_to("Revoke token")
    page.keyboard.press("Enter")
    expect(page.locator("tbody tr", has_text="keyboard-only").locator(".badge")).to_have_text("Revoked")


@pytest.mark.browser
def test_the_theme_switch_remembers_and_never_flashes(new_context, sign_in, owner, shot):
    context = new_context(color_scheme="light")
    page = context.new_page()
    sign_in(page, owner)
    page.goto("/w/acme/")
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    page.get_by_text("Dark", exact=True).click()
    dark = page.evaluate(background)
    assert dark != light
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    # A new page paints dark from the start: the theme is set before the body exists.
    context.add_init_script("""
      new MutationObserver((changes, observer) => {
        if (document.body) {
          window.__themeWhenBodyAppeared = document.documentElement.dataset.theme || "none";
          observer.disconnect();
        }
      }).observe(document, {childList: true, subtree: true});
    """)
    page.goto("/w/acme/admin/access-tokens/")
    assert page.evaluate("window.__themeWhenBodyAppeared") == "dark"
    assert page.evaluate(background) == dark
    expect(page.get_by_role("radio", name="Dark")).to_be_checked()
    page.get_by_text("System", exact=True).click()
    assert page.evaluate("document.documentElement.dataset.theme") is None
    assert page.evaluate(background) == light  # the system says light
