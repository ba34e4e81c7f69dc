"""The docs in the repository stay true: the API reference's error table is the OpenAPI
description's, and every link in the README and docs/ leads to a file of the repository (or a
public web page), never outside the clone."""

import re
from pathlib import Path

from tokens.openapi import DOCUMENT

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_errors():
    """(status, code) of every refusal the OpenAPI description lists."""
    found = set()
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                codes = schema.get("properties", {}).get("error", {}).get("properties", {}) \
                    .get("code", {}).get("enum", [])
                found |= {(int(status), code) for code in codes}
    return found


def table_errors():
    text = (ROOT / "docs" / "api.md").read_text()
    table = text.split("<!-- error-table", 1)[1].split("<!-- /error-table -->", 1)[0]
    return {(int(status), code) for status, code in
            re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", table, re.M)}


def test_the_api_references_error_table_is_the_openapi_descriptions():
    table = table_errors()
    assert len(table) >= 13
    every_code = set(DOCUMENT["components"]["schemas"]["Error"]["properties"]["error"]
                     ["properties"]["code"]["enum"])
    assert {code for _, code in table} == every_code
    # Every refusal an operation documents is in the table with the same status.
    assert documented_errors() <= table


def test_links_stay_inside_the_repository():
    for path in MARKDOWN:
        text = path.read_text()
        assert "../shared" not in text, path
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"https?://", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#")[0]).resolve()
            assert resolved.exists() and ROOT in resolved.parents, (path.name, target)


def test_the_readme_points_at_the_docs():
    readme = (ROOT / "README.md").read_text()
    for name in ("docs/api.md", "docs/codex-cli.md", "docs/secret-scanning.md",
                 "docs/federation.md"):
        assert f"]({name})" in readme, name
