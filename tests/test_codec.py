"""The token format the Codex CLI recognises: at- + 30 random base62 + a 6-character CRC32
checksum in that base62; the earlier cxat_ format is no longer a token."""

import hashlib
import re
import zlib

import pytest

from console.scrubbing import has_secret, scrub
from tokens import codec

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def crc_base62(text: str) -> str:
    crc, digits = zlib.crc32(text.encode()), ""
    while crc:
        crc, rest = divmod(crc, 62)
        digits = ALPHABET[rest] + digits
    return digits.rjust(6, "0")


def test_tokens_have_the_contracts_shape():
    for _ in range(200):
        token = codec.generate()
        assert re.fullmatch(r"at-[0-9A-Za-z]{36}", token)
        assert token[-6:] == crc_base62(token[3:33])
        assert codec.classify(token) is codec.Kind.ACCESS_TOKEN


def test_the_checksum_is_crc32_in_base62():
    random_part = "0" * 30
    assert codec.checksum(random_part) == crc_base62(random_part)
    assert codec.is_valid("at-" + random_part + crc_base62(random_part))


def test_a_lookalike_fails_its_checksum():
    token = codec.generate()
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert codec.classify(flipped) is codec.Kind.MALFORMED
    assert codec.classify(token[:-1]) is codec.Kind.MALFORMED
    assert codec.classify(token + "0") is codec.Kind.MALFORMED
    assert codec.classify(token.replace("at-", "at_")) is codec.Kind.MALFORMED


def test_the_earlier_format_is_malformed():
    random_part = "A" * 30
    old = "cxat_" + random_part + crc_base62(random_part)
    assert codec.classify(old) is codec.Kind.MALFORMED


def test_other_credentials_are_told_apart():
    assert codec.classify("sk-proj-abc123") is codec.Kind.API_KEY
    assert codec.classify("abcdefghijklmnopqrstuvwxyz012345") is codec.Kind.SESSION_KEY
    assert codec.classify("hello") is codec.Kind.MALFORMED


def test_the_digest_is_sha256():
    token = codec.generate()
    assert codec.digest(token) == hashlib.sha256(token.encode()).hexdigest()


def test_scrub_blanks_tokens_and_pieces_of_tokens_out():
    token = codec.generate()
    assert token not in scrub(f"GET /api?access_token={token} 400")
    assert token[:20] not in scrub(f"truncated {token[:20]}")


def test_the_logs_know_every_token_the_codec_makes():
    """The core's scrubbing keeps its own copy of the token's shape (it imports no feature):
    every token the codec makes, and every piece of one, is one it blanks out."""
    for _ in range(200):
        token = codec.generate()
        assert codec.TOKEN_RE.match(token) and has_secret(token) and has_secret(token[:15])


def test_scrub_leaves_ordinary_words_alone():
    text = ("a look at-risk tokens, and the format-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij text, "
            "a risk-free desk-sized task-sk, sk- alone")
    assert scrub(text) == text


@pytest.mark.parametrize("key", ["sk-" + "A1b2" * 12, "sk-proj-" + "x_Y-9" * 30,
                                 "sk-svcacct-abc123", "sk-admin-Zz09_-Zz09-", "sk-pro",
                                 "sk-proj-****************************abcd"])
def test_scrub_blanks_api_keys_whole_in_pieces_and_masked(key):
    """The model provider's key (and any Platform API key a client sends) is blanked as access
    tokens are, whole, cut short, or as a provider masks it when it refuses it."""
    for line in (key, f"Incorrect API key provided: {key}.", f'{{"key": "{key}"}}',
                 f"GET /x?api_key={key}&a=1", f"Bearer {key}"):
        assert key not in scrub(line) and "sk-[FILTERED]" in scrub(line)
        assert has_secret(line)
    assert scrub(f"key: {key}. Next") == "key: sk-[FILTERED]. Next"


def test_finding_a_token_in_text_needs_the_whole_token():
    token = codec.generate()
    assert codec.FIND_RE.search(f"body={token}&x=1")
    assert not codec.FIND_RE.search(f"body={token}0")
    assert not codec.FIND_RE.search("what-" + token[3:])
