"""The real Codex CLI (`@openai/codex` from npm, pinned) signs in and runs through the console.

The CLI is installed once into a cache folder outside the repository (npm is on the machine;
without npm these tests skip, unless CI is set: there they must run). It talks to a live server;
a stand-in model provider, started here, answers its turns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from console.audit import Actor
from tokens.models import AccessToken, Run
from tokens.services import lifecycle
from workspaces.models import CustomRole

from .factories import make_service_account, make_token
from .standin_model import ANSWER, StandinModel

VERSION = "0.171.0"
CACHE = Path(os.environ.get("CODEX_CLI_CACHE",
                            Path.home() / ".cache" / "workspace-console" / f"codex-cli-{VERSION}"))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


@pytest.fixture(scope="session")
def codex_bin():
    binary = CACHE / "node_modules" / ".bin" / "codex"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            if _in_ci():
                pytest.fail("npm is missing: CI must run the real Codex CLI tests", pytrace=False)
            pytest.skip("npm is missing; the real Codex CLI tests need it (CI=true fails instead)")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                        "--loglevel=error", f"@openai/codex@{VERSION}"],
                       check=True, timeout=900, capture_output=True)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=60, env={**os.environ, "CODEX_HOME": str(CACHE / "home")})
    assert VERSION in version.stdout, version.stdout + version.stderr
    return binary


@pytest.fixture
def cli(codex_bin, asgi_server, tmp_path):
    """Run the CLI against the console as production serves it (config/asgi.py under uvicorn:
    turns on the event loop), in its own CODEX_HOME; returns the finished process."""
    home = tmp_path / "codex-home"
    home.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    base = asgi_server.url
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "CODEX_HOME": str(home),
        "CODEX_AUTHAPI_BASE_URL": f"{base}/codex/auth", "NO_COLOR": "1", "TERM": "dumb",
    }

    def run(*args, stdin: str = "", timeout: int = 120):
        return subprocess.run([str(codex_bin), *args], input=stdin, capture_output=True,
                              text=True, env=env, cwd=workdir, timeout=timeout)

    def login(token: str):
        return run("-c", f"chatgpt_base_url={base}/codex/backend-api", "login",
                   "--with-access-token", stdin=token)

    def exec_(prompt: str):
        return run("exec", "--skip-git-repo-check",
                   "-c", f"chatgpt_base_url={base}/codex/backend-api",
                   "-c", f"openai_base_url={base}/codex/api", prompt)

    run.login, run.exec = login, exec_
    return run


@pytest.fixture
def model(settings):
    with StandinModel() as standin:
        settings.CODEX_UPSTREAM_URL = standin.url
        settings.CODEX_UPSTREAM_API_KEY = "sk-provider-key"
        yield standin


def test_login_with_a_fresh_token(cli, owner):
    _, plaintext = make_token(owner)
    result = cli.login(plaintext)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully logged in" in result.stdout + result.stderr


def test_login_with_a_revoked_token_fails(cli, owner):
    _, plaintext = make_token(owner, revoked_at=timezone.now())
    result = cli.login(plaintext)
    assert result.returncode != 0
    assert "401 Unauthorized" in result.stdout + result.stderr


def test_login_with_a_platform_api_key_fails(cli, db):
    result = cli.login("sk-proj-" + "a" * 40)
    assert result.returncode != 0
    assert "access token" in (result.stdout + result.stderr).lower()


def test_exec_runs_through_the_console_and_shows_on_governance(cli, model, owner,
                                                               member_with_token_permission):
    token, plaintext = make_token(member_with_token_permission, name="release-ci")
    assert cli.login(plaintext).returncode == 0
    result = cli.exec("say hi")
    assert result.returncode == 0, result.stderr
    assert ANSWER in result.stdout
    # The console's managed configuration made the console its model provider: no WebSocket
    # attempt, no apps or plugins, so nothing went wrong on the way.
    assert "provider: workspace_console" in result.stdout + result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    run = Run.objects.get()
    assert (run.user, run.token, run.client) == (member_with_token_permission.user, token,
                                                 f"codex_exec {VERSION}")
    assert run.model and run.sandbox_mode and run.thread_id
    assert len(model.requests) == 1
    assert model.requests[0]["headers"]["Authorization"] == "Bearer sk-provider-key"
    viewer = Client()
    viewer.force_login(owner.user)
    page = viewer.get("/w/acme/admin/governance/").content.decode()
    row = page.rsplit("<tbody>", 1)[1].split("</tr>")[0]  # the runs, after the chart's table
    assert "dora@acme.test" in row and "release-ci" in row and f"codex_exec {VERSION}" in row


def assert_tells_how_to_see_why(result, console_url):
    """The CLI stops sending a refused token: its turns arrive without one, and what it prints
    is the console's missing_token answer, with the line that shows the reason."""
    output = result.stdout + result.stderr
    assert "401 Unauthorized: No access token arrived. The Codex CLI stops sending its token " \
           "after the console refused it" in output, output
    assert f'curl -H "Authorization: Bearer $CODEX_ACCESS_TOKEN" {console_url}/api/v1/whoami ' \
           "(revoked, expired, permission withdrawn, or outside the token's allowed IP ranges)" \
           in output, output


def test_after_revocation_exec_fails_records_nothing_and_says_how_to_see_why(
        cli, model, owner, asgi_server):
    token, plaintext = make_token(owner)
    assert cli.login(plaintext).returncode == 0
    lifecycle.token_revoke(token=token, acting=owner, actor=Actor(owner.user))
    result = cli.exec("say hi")
    assert result.returncode != 0
    assert ANSWER not in result.stdout
    assert_tells_how_to_see_why(result, asgi_server.url)
    assert not Run.objects.exists() and model.requests == []
    # The line it gives names the reason.
    reason = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert reason.json()["error"]["code"] == "token_revoked"


def test_a_member_who_lost_the_permission_is_denied_through_the_cli(cli, model, asgi_server,
                                                                    member_with_token_permission):
    _, plaintext = make_token(member_with_token_permission)
    CustomRole.objects.update(grants_access_tokens=False)
    login = cli.login(plaintext)
    assert login.returncode != 0
    assert "403 Forbidden" in login.stdout + login.stderr
    result = cli.exec("say hi")
    assert result.returncode != 0
    assert_tells_how_to_see_why(result, asgi_server.url)
    assert not Run.objects.exists() and model.requests == []
    assert AccessToken.objects.get().revoked_at is None  # suspended, not revoked


def test_a_service_accounts_token_runs_codex_exec(cli, model, owner, workspace):
    """A token created for a service account on its page signs the CLI in (whoami leaves the
    email out) and runs `codex exec`, recorded as svc:<name>."""
    workspace.allow_access_tokens = True
    workspace.save()
    account, _ = make_service_account(owner, name="nightly-ci")
    viewer = Client()
    viewer.force_login(owner.user)
    created = viewer.post(f"/w/acme/admin/service-accounts/{account.pk}/tokens/new/",
                          {"name": "nightly", "expiration": "30"})
    assert created.status_code == 201
    plaintext = re.search(r'value="(at-[^"]+)"', created.content.decode()).group(1)
    login = cli.login(plaintext)
    assert login.returncode == 0, login.stdout + login.stderr
    result = cli.exec("say hi")
    assert result.returncode == 0, result.stderr
    assert ANSWER in result.stdout
    run = Run.objects.get()
    assert (run.user, run.token.name) == (account.user, "nightly")
    page = viewer.get("/w/acme/admin/governance/").content.decode()
    row = page.rsplit("<tbody>", 1)[1].split("</tr>")[0]
    assert "svc:nightly-ci" in row and f"codex_exec {VERSION}" in row


def test_a_github_shaped_workflow_exchanges_its_token_and_runs_keyless(cli, model, live_server,
                                                                       settings, owner,
                                                                       member_with_token_permission):
    """Keyless runs, end to end: a workflow shaped like GitHub's presents its OpenID Connect
    token (from a stand-in issuer on loopback) to the exchange, runs the real CLI with the
    access token it receives, and shows on governance as its repository and workflow. No
    secret was stored anywhere: the rule holds none, and the token lives minutes."""
    import json
    import urllib.parse
    import urllib.request

    from .federation import StandinIssuer, github_claims, make_rule

    settings.DEBUG = True  # the stand-in issuer is http://127.0.0.1:<port>
    with StandinIssuer() as issuer:
        rule = make_rule(member_with_token_permission, issuer=issuer.url,
                         audience=live_server.url, name="release workflow",
                         subject="repo:acme/release:ref:refs/heads/main",
                         claims={"repository_owner_id": "1001"})
        oidc_token = issuer.sign(github_claims(issuer.url, audience=live_server.url,
                                               workflow="Release", run_id="9001"))
        body = urllib.parse.urlencode({
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "federation_rule_id": str(rule.pk), "assertion": oidc_token}).encode()
        with urllib.request.urlopen(urllib.request.Request(
                f"{live_server.url}/api/v1/oauth/token", data=body, method="POST"),
                timeout=30) as answer:
            exchanged = json.load(answer)
    access_token = exchanged["access_token"]
    assert exchanged["user_id"] == f"user-{member_with_token_permission.user_id}"
    login = cli.login(access_token)
    assert login.returncode == 0, login.stdout + login.stderr
    result = cli.exec("say hi")
    assert result.returncode == 0, result.stderr
    assert ANSWER in result.stdout
    run = Run.objects.get()
    assert run.federation_rule == rule and run.user == member_with_token_permission.user
    assert run.workload == {"repository": "acme/release", "workflow": "Release",
                            "ref": "refs/heads/main", "run_id": "9001"}
    assert run.client == f"codex_exec {VERSION}"
    viewer = Client()
    viewer.force_login(owner.user)
    page = viewer.get("/w/acme/admin/governance/").content.decode()
    row = page.rsplit("<tbody>", 1)[1].split("</tr>")[0]
    assert "release workflow" in row and "repository=acme/release" in row
    assert "workflow=Release" in row and f"codex_exec {VERSION}" in row
