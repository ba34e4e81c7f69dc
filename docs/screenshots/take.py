"""`make screenshots`: pictures of the console's main pages, for the README.

A fresh demo (SQLite in a temporary folder, `seed_demo`) served by gunicorn on loopback,
photographed by the system Chromium through Playwright, in the light and the dark theme, wide
and as a phone sees it. The pictures land next to this file; run it again after a change.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "codex-demo-pass"

# (file name, path, who signs in, what to do before the picture)
PAGES = [
    ("overview", "/w/acme/", "owner@acme.test", None),
    ("access-tokens", "/w/acme/admin/access-tokens/", "owner@acme.test", None),
    ("new-token", "/w/acme/admin/access-tokens/", "dev@acme.test", "create"),
    ("token", None, "dev@acme.test", "token"),
    ("governance", "/w/acme/admin/governance/", "owner@acme.test", None),
    ("members", "/w/acme/admin/members/", "owner@acme.test", None),
    ("groups", "/w/acme/admin/groups/", "owner@acme.test", None),
    ("settings", "/w/acme/admin/settings/", "owner@acme.test", None),
    ("audit-log", "/w/acme/admin/audit-log/", "owner@acme.test", None),
]
PHONE = ["overview", "access-tokens", "token", "governance", "members", "groups"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(env: dict, port: int) -> subprocess.Popen:
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                   check=True)
    subprocess.run([python, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    server = subprocess.Popen([python, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
                               "-w", "2", "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the demo server did not start")


def sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def photograph(browser, base: str, theme: str, viewport: dict, suffix: str, names) -> None:
    for name, path, email, action in PAGES:
        if name not in names:
            continue
        context = browser.new_context(base_url=base, viewport=viewport, color_scheme=theme,
                                      device_scale_factor=1)
        page = context.new_page()
        sign_in(page, email)
        if action == "token":
            page.goto("/w/acme/admin/access-tokens/?q=release-ci")
            page.get_by_role("link", name="release-ci").first.click()
        else:
            page.goto(path)
        if action == "create":
            page.get_by_role("button", name="Create").click()
            page.get_by_label("Name").fill(f"docs-preview-{theme}")
            page.locator("dialog#create-token-dialog").get_by_role(
                "button", name="Create", exact=True).click()
            page.locator("dialog#token-created-dialog").wait_for()
        page.wait_for_timeout(150)
        target = OUT / f"{name}-{theme}{suffix}.png"
        page.screenshot(path=str(target))
        print(f"  {target.relative_to(ROOT)}")
        context.close()


def main() -> int:
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        env = {**os.environ, "DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
               "LOG_LEVEL": "WARNING"}
        server = serve(env, port)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                base = f"http://127.0.0.1:{port}"
                # The new token's picture makes a token: it goes last, so that the other
                # pictures show the demo's tokens only.
                later = ["new-token"]
                for theme in ("light", "dark"):
                    photograph(browser, base, theme, {"width": 1280, "height": 800}, "",
                               [name for name, *_ in PAGES if name not in later])
                    photograph(browser, base, theme, {"width": 390, "height": 844}, "-phone",
                               PHONE)
                for theme in ("light", "dark"):
                    photograph(browser, base, theme, {"width": 1280, "height": 800}, "", later)
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
