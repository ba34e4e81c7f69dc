"""GitHub's secret scanning partner program: is a leak report signed by GitHub?

GitHub signs the raw body of each report with ECDSA P-256 / SHA-256 (a base64 DER signature in
`Github-Public-Key-Signature`) and names the key in `Github-Public-Key-Identifier`. Its public
keys are published as `{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}` at
SECRET_SCANNING_KEYS_URL. The document is kept in Django's cache (shared by every server) for an
hour, and fetched again sooner when a report names a key it does not hold (a rotation), at most
once a minute across the servers, so a stream of made-up key identifiers cannot make the console
hammer GitHub. A document that could not be fetched again is used until it is a day old.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"

CACHE_KEY = "secret-scanning:keys"
REFETCH_GUARD = "secret-scanning:fetched-recently"
FRESH_FOR = 3600  # seconds a fetched document is used before it is fetched again
KEPT_FOR = 86400  # ...and how long it still serves when fetching it again fails
REFETCH_EVERY = 60  # at most one fetch a minute, whatever the reports name
FETCH_TIMEOUT = 5  # seconds
DOCUMENT_MAX = 64 * 1024  # bytes; GitHub's is about 1 KiB


class KeysUnavailable(Exception):
    """No keys document could be had: the report cannot be checked now (the caller answers
    503, and GitHub sends it again later)."""


def signed(request) -> bool:
    """Whether the request carries either of GitHub's signature headers."""
    return KEY_ID_HEADER in request.headers or SIGNATURE_HEADER in request.headers


def signature_valid(body: bytes, key_id: str, signature: str) -> bool:
    """Whether `signature` (base64 DER) is a signature of `body` by the published key
    `key_id`. Raises KeysUnavailable when no keys document could be had."""
    if not key_id or not signature:
        return False
    pem = _keys(key_id).get(key_id)
    if pem is None:
        return False
    try:
        der = base64.b64decode(signature, validate=True)
        _public_key(pem).verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def _public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key in `pem`; ValueError for anything else."""
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (UnsupportedAlgorithm, UnicodeEncodeError) as error:
        raise ValueError("not a public key") from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 public key")
    return key


def _keys(wanted: str) -> dict[str, str]:
    """The published keys by identifier: from the cache, fetched again when stale or when
    `wanted` is not among them (at most once a minute)."""
    held = cache.get(CACHE_KEY)
    stale = held is None or time.time() - held["fetched"] > FRESH_FOR
    if (stale or wanted not in held["keys"]) and cache.add(REFETCH_GUARD, True, REFETCH_EVERY):
        try:
            held = {"keys": _fetch(), "fetched": time.time()}
        except KeysUnavailable as error:
            logger.warning("Secret scanning keys could not be fetched from %s: %s",
                           settings.SECRET_SCANNING_KEYS_URL, error)
        else:
            cache.set(CACHE_KEY, held, KEPT_FOR)
    if held is None:
        raise KeysUnavailable("no keys document")
    return held["keys"]


def _fetch() -> dict[str, str]:
    """GET the keys document (short timeout, size cap) and keep its usable keys."""
    url = settings.SECRET_SCANNING_KEYS_URL
    if urlsplit(url).scheme not in ("https", "http"):
        raise KeysUnavailable("SECRET_SCANNING_KEYS_URL is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "workspace-console"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as answer:
            body = answer.read(DOCUMENT_MAX + 1)
    except (OSError, ValueError) as error:  # URLError, HTTPError and timeouts are OSErrors
        raise KeysUnavailable(str(error)) from None
    if len(body) > DOCUMENT_MAX:
        raise KeysUnavailable(f"the document is larger than {DOCUMENT_MAX} bytes")
    try:
        entries = json.loads(body)["public_keys"]
        keys = {}
        for entry in entries:
            try:
                _public_key(entry["key"])
            except (ValueError, TypeError, KeyError):
                continue  # a key we cannot use verifies nothing
            if isinstance(entry.get("key_identifier"), str):
                keys[entry["key_identifier"]] = entry["key"]
    except (ValueError, TypeError, KeyError):
        raise KeysUnavailable("the document is not {\"public_keys\": [...]}") from None
    if not keys:
        raise KeysUnavailable("the document holds no usable P-256 key")
    return keys
