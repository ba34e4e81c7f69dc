"""Real-browser tests: the system Chromium driven by Playwright against pytest-django's live server.

One Chromium for the browser tests, a fresh context (cookies, clipboard permission) and page per test.
Without Chromium the tests skip, unless CI is set: there a missing browser fails the run, so
CI can never pass without having exercised the real UI.

Screenshots taken while the tests run land in ``screenshots/`` (gitignored) for review.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}
TIMEOUT_MS = 5_000


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def _unavailable(reason: str):
    """Skip locally; fail in CI, where the browser tests must run."""
    if _in_ci():
        pytest.fail(
            f"{reason}. CI is set, so the real-browser tests must run: install Chromium at "
            f"{CHROMIUM} (or point CHROMIUM_PATH at it).",
            pytrace=False,
        )
    pytest.skip(f"{reason}; the real-browser tests need it (set CI=true to make this a failure)")


# Package scope: Playwright's event loop is stopped once the browser tests are done, before
# the rest of the suite runs in this thread (left running, Django code after it opened a
# second database connection that outlived the test database's teardown).
@pytest.fixture(scope="package")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is in the test extras
        _unavailable("The Python package playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _live_database(transactional_db):
    """The live server answers from another thread: the test data must be committed.

    Autouse, so it is set up before the cast fixtures of tests/conftest.py (which ask for
    `db`), and every browser test runs on a transactional database."""


@pytest.fixture
def new_context(browser, live_server):
    """Open a browser context on the live server; closed after the test."""
    contexts = []

    def make(**options):
        options.setdefault("base_url", live_server.url)
        options.setdefault("viewport", VIEWPORT)
        options.setdefault("permissions", ["clipboard-read", "clipboard-write"])
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context):
    return new_context()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def sign_in():
    """Sign a membership's user in through the real login page (email and password)."""

    def sign_in(page, membership, next_path=None):
        page.goto("/accounts/login/" + (f"?next={next_path}" if next_path else ""))
        page.locator("input[name=username]").fill(membership.user.email)
        page.locator("input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return sign_in


@pytest.fixture(scope="session")
def screenshot_dir():
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def shot(screenshot_dir):
    """Save a full-page screenshot of `page` as screenshots/<name>.png."""

    def shot(page, name):
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot
