"""A detect-secrets plugin for Codex access tokens of the workspace console.

    detect-secrets scan --plugin tokens/detect_secrets_plugin.py <paths>

It reports `at-` tokens whose checksum holds and ignores lookalikes (a wrong checksum, a token cut
short). Self-contained (Python's standard library and detect-secrets only), so it can be copied
into any repository's scanner set-up; docs/secret-scanning.md describes the format.
"""

import re
import zlib

from detect_secrets.plugins.base import RegexBasedDetector

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOKEN = re.compile(r"(?<![0-9A-Za-z])(at-[0-9A-Za-z]{36})(?![0-9A-Za-z])")


def checksum_holds(token: str) -> bool:
    """The last six characters are the CRC32 of the 30 random ones, in base62, padded with 0."""
    random_part, given = token[3:33], token[33:]
    crc, digits = zlib.crc32(random_part.encode("ascii")), ""
    while crc:
        crc, rest = divmod(crc, 62)
        digits = ALPHABET[rest] + digits
    return digits.rjust(6, "0") == given


class CodexAccessTokenDetector(RegexBasedDetector):
    """Codex access token (workspace console)."""

    secret_type = "Codex Access Token"
    denylist = (TOKEN,)

    def analyze_string(self, string):
        for match in super().analyze_string(string):
            if checksum_holds(match):
                yield match
