"""The model provider the Codex CLI's turns go on to: where, in either form `CODEX_UPSTREAM_URL`
takes."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

RESPONSES = "/responses"


@lru_cache(maxsize=8)
def responses_url(configured: str) -> str:
    """The provider's Responses endpoint. `CODEX_UPSTREAM_URL` is either a base URL in the
    OpenAI SDK's convention (`https://api.openai.com/v1`, to which `/responses` is added) or
    the full `/responses` address; a query string (an API version) is kept."""
    parts = urlsplit(configured.strip())
    path = parts.path.rstrip("/")
    if not path.endswith(RESPONSES):
        path += RESPONSES
    return urlunsplit(parts._replace(path=path))
