"""Codex access tokens as text: generate, check, tell apart from other credentials, digest.

Format: ``at-`` + 30 random base62 characters + a 6-character checksum, the CRC32 of the random
part written in the same base62 (``0-9A-Za-z``) and left-padded with ``0``. ``at-`` is the
prefix the Codex CLI recognises as a personal access token. A secret scanner can check the
checksum offline; only the SHA-256 digest is ever stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from enum import Enum

PREFIX = "at-"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
TOKEN_RE = re.compile(r"^at-[0-9A-Za-z]{36}\Z")
# A token anywhere in a text (a query string, a body, a log line): not inside a longer word.
FIND_RE = re.compile(r"(?<![0-9A-Za-z])at-[0-9A-Za-z]{36}(?![0-9A-Za-z])")
_SESSION_KEY_RE = re.compile(r"^[a-z0-9]{32}\Z")


class Kind(Enum):
    ACCESS_TOKEN = "access_token"
    MALFORMED = "malformed"  # looks like nothing we issue, or fails its checksum
    API_KEY = "api_key"  # a Platform API key, sk-...
    SESSION_KEY = "session_key"  # a browser session key


def base62(number: int, width: int = CHECKSUM_LENGTH) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(random_part: str) -> str:
    return base62(zlib.crc32(random_part.encode("ascii")))


def generate() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + checksum(random_part)


def is_valid(token: str) -> bool:
    """Shape and checksum: a real token, as far as can be told offline."""
    if not TOKEN_RE.match(token):
        return False
    body = token[len(PREFIX):]
    return secrets.compare_digest(checksum(body[:RANDOM_LENGTH]), body[RANDOM_LENGTH:])


def classify(credential: str) -> Kind:
    """What kind of credential this is. Tokens of the earlier ``cxat_`` format are malformed."""
    if credential.startswith(PREFIX):
        return Kind.ACCESS_TOKEN if is_valid(credential) else Kind.MALFORMED
    if credential.startswith("sk-"):
        return Kind.API_KEY
    if _SESSION_KEY_RE.match(credential):
        return Kind.SESSION_KEY
    return Kind.MALFORMED


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()
