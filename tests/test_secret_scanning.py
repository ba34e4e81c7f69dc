"""Secret scanning: the published checks (docs/secret-scanning.md) and the detect-secrets plugin
tell real tokens from lookalikes, as the console's own codec does."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tokens import codec
from tokens.detect_secrets_plugin import checksum_holds

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "secret-scanning.md").read_text()


def lookalikes(token):
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [flipped, token[:-1], token + "0", token.replace("at-", "at_"), "at-" + "0" * 36]


def code_block(language):
    return re.search(rf"```{language}\n(.*?)```", DOC, re.S).group(1)


@pytest.fixture(scope="module")
def samples():
    tokens = [codec.generate() for _ in range(20)]
    return tokens, [fake for token in tokens[:3] for fake in lookalikes(token)]


def test_the_published_python_check_agrees_with_the_codec(samples):
    namespace = {}
    exec(code_block("python"), namespace)  # the docs' own lines
    check = namespace["is_codex_access_token"]
    tokens, fakes = samples
    assert all(check(t) for t in tokens)
    assert not any(check(f) for f in fakes)
    assert all(codec.is_valid(t) for t in tokens) and not any(codec.is_valid(f) for f in fakes)


def test_the_published_shell_check_agrees_with_the_codec(samples, tmp_path):
    script = tmp_path / "is-codex-access-token"
    script.write_text(re.search(r"```sh\n(#!/usr/bin/env bash.*?)```", DOC, re.S).group(1))
    tokens, fakes = samples
    for token in tokens[:5]:
        assert subprocess.run(["bash", str(script), token]).returncode == 0, token
    for fake in fakes:
        assert subprocess.run(["bash", str(script), fake]).returncode != 0, fake


def test_the_plugin_checksum_agrees_with_the_codec(samples):
    tokens, fakes = samples
    assert all(checksum_holds(t) for t in tokens)
    assert not any(checksum_holds(f) for f in fakes if re.fullmatch(r"at-[0-9A-Za-z]{36}", f))


def test_detect_secrets_reports_the_real_token_only(tmp_path):
    token = codec.generate()
    flipped, truncated = lookalikes(token)[0], token[:30]
    leak = tmp_path / "ci.env"
    leak.write_text(f"# a CI file\nCODEX_ACCESS_TOKEN={token}\nEXAMPLE={flipped}\nCUT={truncated}\n")
    scanner = Path(sys.executable).with_name("detect-secrets")
    result = subprocess.run(
        [str(scanner), "scan", "--plugin", str(ROOT / "tokens" / "detect_secrets_plugin.py"),
         leak.name], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["results"].get(leak.name, [])
    ours = [(f["type"], f["line_number"]) for f in findings if f["type"] == "Codex Access Token"]
    assert ours == [("Codex Access Token", 2)]
    assert {f["line_number"] for f in findings} == {2}  # nothing else flags the lookalikes
