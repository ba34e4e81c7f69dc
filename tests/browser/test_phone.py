"""At 390 px, as a phone shows the console: every row of the token list, Members and Groups shows
its name, status and actions inside the screen (no sideways scrolling, in the page or in a
table's frame); a group or custom role's chip is never broken inside a name; and Governance's
runs table fits its card with each command shown whole."""

import pytest
from playwright.sync_api import expect

from tests.factories import GroupFactory, make_run

from .pages import seed

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 860}
LONG_COMMAND = ("codex exec --model gpt-5-codex --sandbox workspace-write \"update the changelog "
                "for the release, then open a pull request against main with the summary\"")


@pytest.fixture
def story(owner, admin, member_with_token_permission, member):
    data = seed(owner, admin, member_with_token_permission, member)
    # A member in two groups, one with a long name: the chips that broke mid-word.
    GroupFactory(workspace=owner.workspace, name="Platform reliability engineering").members.add(
        member_with_token_permission)
    make_run(data["token"], client="github-actions", command=LONG_COMMAND)
    return data


@pytest.fixture
def phone(new_context, sign_in, owner, story):
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, owner)
    return page


def outside(page, locator, width):
    """The parts of `locator`'s elements that reach outside 0..width."""
    boxes = locator.evaluate_all("els => els.map(e => { const r = e.getBoundingClientRect();"
                                 " return [e.textContent.trim().slice(0, 40), r.left, r.right]; })")
    return [box for box in boxes if box[1] < 0 or box[2] > width + 0.5]


def assert_no_sideways_scrolling(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    frames = page.locator(".table-wrap").evaluate_all(
        "els => els.map(e => [e.scrollWidth, e.clientWidth])")
    assert frames and all(scroll <= client for scroll, client in frames), frames


@pytest.mark.browser
def test_each_token_row_shows_name_status_and_actions_on_a_phone(phone, shot):
    phone.goto("/w/acme/admin/access-tokens/")
    rows = phone.locator("tbody tr")
    # The story's five, one a federation rule issued and one of the service account svc:nightly-ci.
    expect(rows).to_have_count(7)
    assert_no_sideways_scrolling(phone)
    for part in ("a.token-name", ".badge", ".actions-cell .btn", "input[type=checkbox]",
                 "td"):
        assert outside(phone, rows.locator(part), PHONE["width"]) == [], part
    # Every row's name, status and (for a live token) Revoke are shown, not just laid out.
    for row in rows.all():
        expect(row.locator("a.token-name")).to_be_visible()
        expect(row.locator(".badge").first).to_be_visible()
    expect(phone.get_by_role("button", name="Revoke release-ci")).to_be_visible()
    shot(phone, "phone-access-tokens")


def assert_chips_whole(page):
    chips = page.locator("main .chip")
    assert chips.count() > 0
    # One line each (a range over its text has one box per line), and not cut short.
    lines = chips.evaluate_all("""els => els.map(e => {
        const range = document.createRange();
        range.selectNodeContents(e);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        return [e.textContent, tops.size, e.scrollWidth <= e.clientWidth];
    })""")
    assert [chip for chip in lines if chip[1] != 1 or not chip[2]] == [], lines


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/w/acme/admin/members/", "/w/acme/admin/groups/",
                                  "/w/acme/admin/roles/"])
def test_members_groups_and_roles_fit_a_phone_with_whole_chips(phone, path, shot):
    phone.goto(path)
    assert_no_sideways_scrolling(phone)
    rows = phone.locator("main table tbody tr")
    assert rows.count() > 0
    for part in ("td", ".chip", ".btn", "strong", "select"):
        assert outside(phone, rows.locator(part), PHONE["width"]) == [], (path, part)
    assert_chips_whole(phone)
    shot(phone, "phone-" + path.strip("/").rsplit("/", 1)[-1])


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["wide", "phone"])
def test_governance_runs_fit_their_card_with_each_command_whole(new_context, sign_in, owner,
                                                                story, viewport):
    page = new_context(viewport=viewport).new_page()
    sign_in(page, owner)
    page.goto("/w/acme/admin/governance/")
    frame = page.get_by_role("region", name="Runs", exact=True)
    width, room = frame.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert width <= room, (width, room)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    cell = page.locator("td.command", has_text="update the changelog")
    # The whole command, wrapped over lines inside its cell, nothing cut or hidden.
    assert cell.inner_text().strip() == LONG_COMMAND
    assert cell.evaluate("e => e.scrollWidth <= e.clientWidth")
    line = cell.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert cell.evaluate("e => e.getBoundingClientRect().height") > 1.5 * line


@pytest.mark.browser
def test_a_tokens_page_fits_a_phone_with_each_command_whole(phone, story):
    phone.goto(f"/w/acme/admin/access-tokens/{story['token'].pk}/")
    assert_no_sideways_scrolling(phone)
    assert outside(phone, phone.locator("main td"), PHONE["width"]) == []
    expect(phone.locator("td.command", has_text="update the changelog")).to_have_text(LONG_COMMAND)


@pytest.mark.browser
def test_the_sort_links_show_when_tab_reaches_them_on_a_phone(phone):
    """The stacked list hides its header row from sight; a keyboard user who tabs into it sees
    the sort link that has the focus, inside the screen."""
    phone.goto("/w/acme/admin/access-tokens/")
    link = phone.locator("thead a").first
    assert link.count() == 1
    link.focus()
    expect(link).to_be_focused()
    box = link.bounding_box()
    assert box["width"] > 20 and box["height"] > 10, box
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    assert_no_sideways_scrolling(phone)
