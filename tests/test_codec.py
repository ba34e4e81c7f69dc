import re
import zlib

from tokens import codec


def test_tokens_have_the_contracts_shape():
    for _ in range(200):
        token = codec.generate()
        assert re.fullmatch(r"cxat_[0-9A-Za-z]{36}", token)
        assert codec.classify(token) is codec.Kind.ACCESS_TOKEN


def test_the_checksum_is_crc32_in_base62():
    random_part = "0" * 30
    crc = zlib.crc32(random_part.encode())
    digits = ""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    while crc:
        crc, rest = divmod(crc, 62)
        digits = alphabet[rest] + digits
    assert codec.checksum(random_part) == digits.rjust(6, "0")
    assert codec.is_valid("cxat_" + random_part + digits.rjust(6, "0"))


def test_a_lookalike_fails_its_checksum():
    token = codec.generate()
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert codec.classify(flipped) is codec.Kind.MALFORMED
    assert codec.classify(token[:-1]) is codec.Kind.MALFORMED
    assert codec.classify(token + "0") is codec.Kind.MALFORMED
    assert codec.classify(token.replace("cxat_", "cxat-")) is codec.Kind.MALFORMED


def test_other_credentials_are_told_apart():
    assert codec.classify("sk-proj-abc123") is codec.Kind.API_KEY
    assert codec.classify("abcdefghijklmnopqrstuvwxyz012345") is codec.Kind.SESSION_KEY
    assert codec.classify("hello") is codec.Kind.MALFORMED


def test_the_digest_is_sha256():
    import hashlib

    token = codec.generate()
    assert codec.digest(token) == hashlib.sha256(token.encode()).hexdigest()


def test_scrub_blanks_tokens_out():
    token = codec.generate()
    assert token not in codec.scrub(f"GET /api?access_token={token} 400")
