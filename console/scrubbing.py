"""Secrets kept out of every log line and error report: access tokens (a client that put one in
a query string, a line cut short), API keys (`sk-...`: the model provider's, which it may echo
back, partly masked, when it refuses one), invitation keys (`/invitations/<key>/...`) and
password reset tokens (`/accounts/reset/<uid>/<token>/`).

Plain Python (no Django): gunicorn's master loads the access log (`console/accesslog.py`) before
Django is set up.
"""

from __future__ import annotations

import logging
import re

FILTERED = "[FILTERED]"
# An access token (`at-` and base62, see tokens/codec.py), or a long enough piece of one.
ACCESS_TOKEN_SHAPE = re.compile(r"(?<![0-9A-Za-z])at-[0-9A-Za-z]{12,}")
# A Platform API key (`sk-...`, `sk-proj-...`, `sk-svcacct-...`), whole or a piece of one, or
# as a provider masks it when it refuses it (`sk-proj-****...abcd`).
API_KEY_SHAPE = re.compile(r"(?<![0-9A-Za-z_])sk-(?!\[FILTERED\])[0-9A-Za-z_*.-]*[0-9A-Za-z_*-]")
# Django's reset link swaps its token for "set-password" after the first visit: keep that word.
# Only at a path's start (the console's own /w/<slug>/admin/invitations/<id>/ holds no secret).
_SECRET_PATHS = re.compile(
    r"(?<![\w.~-])(/invitations/)(?!\[FILTERED\])[^/\s?#\"']+"
    r"|(?<![\w.~-])(/accounts/reset/[^/\s?#\"']+/)(?!set-password\b|\[FILTERED\])[^/\s?#\"']+"
)


def has_secret(text: str) -> bool:
    return bool(ACCESS_TOKEN_SHAPE.search(text) or API_KEY_SHAPE.search(text))


def scrub(text: str) -> str:
    """`text` with tokens, API keys and secret path segments blanked out."""
    text = ACCESS_TOKEN_SHAPE.sub("at-" + FILTERED, text)
    if "sk-" in text:
        text = API_KEY_SHAPE.sub("sk-" + FILTERED, text)
    if "/invitations/" in text or "/reset/" in text:
        text = _SECRET_PATHS.sub(lambda m: (m.group(1) or m.group(2)) + FILTERED, text)
    return text


class ScrubFilter(logging.Filter):
    """Blank out secrets in a log record's message and arguments."""

    def filter(self, record):
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        return True


class ScrubbingFormatter(logging.Formatter):
    """The last line of defence: the formatted line, traceback included, is scrubbed too."""

    def format(self, record):
        return scrub(super().format(record))
