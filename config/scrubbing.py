"""Secrets that travel in URLs, kept out of every log line: access tokens (a client that put one
in a query string), invitation keys (`/invitations/<key>/...`) and password reset tokens
(`/accounts/reset/<uid>/<token>/`). Plain Python, so that gunicorn's master can load it before
Django is set up.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

from tokens.codec import scrub as scrub_tokens

FILTERED = "[FILTERED]"
# Django's reset link swaps its token for "set-password" after the first visit: keep that word.
# Only at a path's start (the console's own /w/<slug>/admin/invitations/<id>/ holds no secret).
_SECRET_PATHS = re.compile(
    r"(?<![\w.~-])(/invitations/)(?!\[FILTERED\])[^/\s?#\"']+"
    r"|(?<![\w.~-])(/accounts/reset/[^/\s?#\"']+/)(?!set-password\b|\[FILTERED\])[^/\s?#\"']+"
)


def scrub(text: str) -> str:
    """`text` with tokens and secret path segments blanked out."""
    text = scrub_tokens(text)
    if "/invitations/" in text or "/reset/" in text:
        text = _SECRET_PATHS.sub(lambda m: (m.group(1) or m.group(2)) + FILTERED, text)
    return text


class ScrubbingGunicornLogger(Logger):
    """gunicorn's logger, with the request's path scrubbed in the access log."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = scrub(atoms[key])
        return atoms
