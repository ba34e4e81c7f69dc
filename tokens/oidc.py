"""Workload identity federation: an issuer's signing keys, fetched safely and cached, and a
workload's OpenID Connect token checked against a federation rule, check by check.

Issuer URLs are typed by admins, so fetching them must not become a way into the console's own
network: only `https://` to addresses that are public (every address the name resolves to; the
connection then goes to the address that was checked, so a second lookup cannot point
elsewhere), or with `DEBUG` on `http://127.0.0.1:<port>` for trying a rule locally. Redirects are
followed only within the same origin. Each fetch has a short timeout and a size cap.

The keys are kept in Django's cache (shared by every server) by issuer and key id for an hour.
A token naming a key id the cache does not hold makes the console fetch the issuer's keys
again, at most once a minute per issuer across the servers, so made-up key ids cannot make it
hammer an issuer.

`evaluate` yields the checks in order: the exchange stops at the first that fails (its
`error_description` names it), the tester shows them all.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import jwt
from django.conf import settings
from django.core.cache import cache

from . import ipranges

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
LEEWAY = 60  # seconds, for exp, nbf and iat
FETCH_TIMEOUT = 3  # seconds for each fetch, connecting and reading included
DOCUMENT_MAX = 256 * 1024  # bytes; GitHub's keys are about 2 KiB
KEYS_FRESH_FOR = 3600  # seconds a fetched key is used before the issuer is asked again
REFETCH_EVERY = 60  # at most one fetch of an issuer's keys a minute, whatever tokens name
MAX_REDIRECTS = 3
JTI_MAX = 255

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
# Issuers every organisation shares: a rule on one must pin the repository or the owner.
SHARED_ISSUERS = frozenset({GITHUB_ISSUER, GITLAB_ISSUER})


class FetchError(Exception):
    """An issuer document could not be had (in words for the check's detail)."""


class UnknownKey(Exception):
    """The token names a key the issuer does not publish."""


# Issuer URLs ---------------------------------------------------------------------------------


def _loopback_allowed(parts) -> bool:
    return bool(settings.DEBUG and parts.scheme == "http" and parts.hostname == "127.0.0.1"
                and parts.port)


def url_problem(url: str) -> str | None:
    """Why the console will not fetch `url` (None: it will, once its name resolves to public
    addresses)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "This is not a valid URL."
    if parts.username or parts.password or parts.fragment or parts.query:
        return "The URL may not carry a user, a password, a query or a fragment."
    if parts.scheme == "https" and parts.hostname:
        return None
    if _loopback_allowed(parts):
        return None
    if settings.DEBUG:
        return "The issuer must be an https:// URL (or http://127.0.0.1:<port> for trying it locally)."
    return "The issuer must be an https:// URL."


def _public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, all public; FetchError otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise FetchError(f"{host} could not be resolved ({error}).") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise FetchError(f"{host} resolves to {address}, which is not a public address: "
                             "the console fetches issuer keys from public addresses only.")
        addresses.append(str(address))
    if not addresses:
        raise FetchError(f"{host} could not be resolved.")
    return addresses


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address` (checked before), with TLS and the Host header for the name."""

    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _open(url: str, deadline: float):
    parts = urlsplit(url)
    problem = url_problem(url)
    if problem:
        raise FetchError(f"{url}: {problem}")
    timeout = max(0.1, deadline - time.monotonic())
    if parts.scheme == "https":
        port = parts.port or 443
        connection = _PinnedHTTPSConnection(parts.hostname, _public_addresses(parts.hostname, port)[0],
                                            port, timeout)
    else:  # loopback with DEBUG on (url_problem said so)
        connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=timeout)
    path = parts.path or "/"
    connection.request("GET", path, headers={"Accept": "application/json",
                                             "User-Agent": "workspace-console"})
    return connection, connection.getresponse()


def fetch_json(url: str) -> dict:
    """GET a JSON object from `url`: public addresses only, within FETCH_TIMEOUT, at most
    DOCUMENT_MAX bytes, redirects followed only within the same origin."""
    deadline = time.monotonic() + FETCH_TIMEOUT
    origin = urlsplit(url)[:2]
    for _ in range(MAX_REDIRECTS + 1):
        try:
            connection, answer = _open(url, deadline)
            try:
                if answer.status in (301, 302, 303, 307, 308):
                    target = urljoin(url, answer.getheader("Location") or "")
                    if urlsplit(target)[:2] != origin:
                        raise FetchError(f"{url} redirects to another address ({target}); the "
                                         "console follows no redirect elsewhere.")
                    url = target
                    continue
                if answer.status != 200:
                    raise FetchError(f"{url} answered {answer.status}.")
                body = b""
                while len(body) <= DOCUMENT_MAX:
                    if time.monotonic() > deadline:
                        raise FetchError(f"{url} took longer than {FETCH_TIMEOUT} s.")
                    chunk = answer.read1(16384)
                    if not chunk:
                        break
                    body += chunk
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as error:
            raise FetchError(f"{url} could not be fetched ({error}).") from None
        if len(body) > DOCUMENT_MAX:
            raise FetchError(f"{url} is larger than {DOCUMENT_MAX // 1024} KiB.")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FetchError(f"{url} is not JSON.") from None
        if not isinstance(document, dict):
            raise FetchError(f"{url} is not a JSON object.")
        return document
    raise FetchError(f"{url} redirects too many times.")


def fetch_keys(issuer: str) -> dict[str, dict]:
    """The issuer's signing keys by key id: its discovery document, then its `jwks_uri`."""
    discovery = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if discovery.get("issuer") != issuer:
        raise FetchError(f"The discovery document names the issuer {discovery.get('issuer')!r}, "
                         f"not {issuer!r}.")
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError("The discovery document has no jwks_uri.")
    entries = fetch_json(jwks_uri).get("keys")
    if not isinstance(entries, list):
        raise FetchError(f"{jwks_uri} is not a JSON Web Key Set.")
    keys = {}
    for entry in entries:
        if (isinstance(entry, dict) and isinstance(entry.get("kid"), str)
                and entry.get("kty") in ("RSA", "EC") and entry.get("use", "sig") == "sig"):
            keys[entry["kid"]] = entry
    return keys


# The key cache ---------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _key_cache_key(issuer: str, kid: str) -> str:
    return f"federation:key:{_digest(issuer)}:{_digest(kid)}"


@lru_cache(maxsize=256)
def _public_key(jwk_json: str):
    """The key object of a JWK (remembered: loading a key costs more than checking with it)."""
    return jwt.PyJWK(json.loads(jwk_json))


def signing_key(issuer: str, kid: str):
    """The issuer's key `kid` as a `jwt.PyJWK`: from the cache, else fetched (at most once a
    minute per issuer). Raises UnknownKey or FetchError."""
    jwk_json = cache.get(_key_cache_key(issuer, kid))
    if jwk_json is None:
        if not cache.add(f"federation:fetched:{_digest(issuer)}", True, REFETCH_EVERY):
            raise UnknownKey("The issuer's keys, fetched less than a minute ago, hold no key "
                             f"with the id {kid!r}.")
        keys = fetch_keys(issuer)
        texts = {kid_: json.dumps(jwk, sort_keys=True) for kid_, jwk in keys.items()}
        cache.set_many({_key_cache_key(issuer, k): t for k, t in texts.items()}, KEYS_FRESH_FOR)
        jwk_json = texts.get(kid)
        if jwk_json is None:
            raise UnknownKey(f"The issuer publishes no key with the id {kid!r}.")
    try:
        return _public_key(jwk_json)
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise UnknownKey(f"The issuer's key {kid!r} cannot be used ({error}).") from None


# The checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def claim_text(value) -> str | None:
    """A claim's value as a rule compares it: strings as they are, numbers and booleans as JSON
    writes them; anything else matches nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None


def _moment(seconds) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def evaluate(assertion: str, rule, *, now: datetime, ip: str | None,
             jti_used: Callable[[str, str], bool] | None = None,
             claims_out: dict | None = None) -> Iterator[Check]:
    """The checks of `assertion` against `rule`, in order. A token that cannot be read ends
    them; after that every check is made (those after a failed signature read claims nobody
    vouches for: the exchange has stopped by then). `jti_used(issuer, jti)` says whether the
    token was exchanged before (the exchange itself relies on its insert instead). The token's
    claims are put in `claims_out`, if given (the exchange reads them once every check passed)."""
    try:
        # Read once, unverified: the header names the key, the claims are checked below.
        unverified = jwt.decode_complete(assertion, options={"verify_signature": False})
        header, claims = unverified["header"], unverified["payload"]
        if not isinstance(claims, dict) or not isinstance(header, dict):
            raise ValueError("not objects")
    except (jwt.PyJWTError, ValueError, TypeError):
        yield Check("format", False, "This is not a JSON Web Token (three base64url parts, "
                                     "the second a JSON object).")
        return
    if claims_out is not None:
        claims_out.update(claims)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        yield Check("algorithm", False,
                    f"The token is signed with {str(alg)[:20]!r}; only RS256 and ES256 are accepted.")
        return
    yield Check("algorithm", True, f"Signed with {alg}.")

    issuer = claims.get("iss")
    issuer_ok = issuer == rule.issuer
    yield Check("issuer", issuer_ok,
                f"The token's issuer is {rule.issuer}." if issuer_ok else
                f"The token's issuer is {str(issuer)[:300]!r}; the rule expects {rule.issuer!r}.")

    yield _signature(assertion, header, rule, issuer_ok)

    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else (
        audience if isinstance(audience, list) else [])
    yield Check("audience", rule.audience in audiences,
                f"The token is for {rule.audience}." if rule.audience in audiences else
                f"The token's audience is {str(audience)[:300]!r}; the rule expects "
                f"{rule.audience!r}.")

    moment = now.timestamp()
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not _number(exp):
        yield Check("expiry", False, "The token has no expiry (exp).")
    else:
        yield Check("expiry", moment < exp + LEEWAY,
                    f"The token expires at {_moment(exp)}." if moment < exp + LEEWAY else
                    f"The token expired at {_moment(exp)}.")
    if nbf is not None and not _number(nbf):
        yield Check("not before", False, "The token's nbf is not a time.")
    else:
        early = nbf is not None and nbf > moment + LEEWAY
        yield Check("not before", not early,
                    f"The token is not valid before {_moment(nbf)}." if early else
                    "The token is valid now.")
    if not _number(iat):
        yield Check("issued at", False, "The token does not say when it was issued (iat).")
    else:
        future = iat > moment + LEEWAY
        yield Check("issued at", not future,
                    f"The token says it was issued at {_moment(iat)}, in the future." if future
                    else f"The token was issued at {_moment(iat)}.")

    subject = claims.get("sub")
    yield Check("subject", rule.subject_matches(subject),
                f"The subject {str(subject)[:300]!r} "
                + ("matches " if rule.subject_matches(subject) else "does not match ")
                + ("the prefix " if rule.subject.endswith("*") else "")
                + f"{rule.subject!r}.")

    wrong = [name for name, want in sorted(rule.claims.items())
             if claim_text(claims.get(name)) != want]
    if not rule.claims:
        yield Check("claims", True, "The rule requires no further claims.")
    elif wrong:
        yield Check("claims", False, "; ".join(
            f"{name} is {str(claims.get(name))[:200]!r}, the rule requires "
            f"{rule.claims[name]!r}" for name in wrong) + ".")
    else:
        yield Check("claims", True, f"{', '.join(sorted(rule.claims))} match.")

    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > JTI_MAX:
        yield Check("jti", False, "The token has no usable jti (its unique id), so it could "
                                  "be exchanged more than once.")
    elif jti_used is not None and jti_used(str(issuer), jti):
        yield Check("jti", False, "This token was exchanged before: each token is exchanged once.")
    else:
        yield Check("jti", True, "The token was not exchanged before.")

    allowed = ipranges.allows(rule.allowed_ips, ip)
    yield Check("address", allowed,
                "The rule allows any address." if not rule.allowed_ips else
                f"{ip} is within the rule's allowed IP ranges." if allowed else
                f"{ip or 'This address'} is outside the rule's allowed IP ranges.")


def _signature(assertion: str, header: dict, rule, issuer_ok: bool) -> Check:
    if not issuer_ok:
        return Check("signature", False, "Not checked: the console fetches keys from the rule's "
                                         "issuer only, and the token names another.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return Check("signature", False, "The token names no key (kid).")
    try:
        key = signing_key(rule.issuer, kid)
    except (UnknownKey, FetchError) as error:
        return Check("signature", False, str(error))
    alg = header["alg"]
    if key.algorithm_name != alg:
        return Check("signature", False, f"The issuer's key {kid!r} is for "
                                         f"{key.algorithm_name}, not {alg}.")
    try:
        jwt.decode(assertion, key=key.key, algorithms=[alg],
                   options={"verify_signature": True, "verify_exp": False, "verify_nbf": False,
                            "verify_iat": False, "verify_aud": False, "verify_iss": False,
                            "verify_sub": False, "verify_jti": False, "require": []})
    except jwt.PyJWTError:
        return Check("signature", False, f"The signature does not verify with the issuer's key {kid!r}.")
    return Check("signature", True, f"Signed by the issuer's key {kid!r}.")


# What a safe rule pins ----------------------------------------------------------------------

# Claims that name one repository or project, or one owner (organisation, user or group).
PINNING_CLAIMS = {
    GITHUB_ISSUER: ("repository", "repository_id", "repository_owner", "repository_owner_id",
                    "job_workflow_ref"),
    GITLAB_ISSUER: ("project_path", "project_id", "namespace_path", "namespace_id"),
}
# A subject pins the repository or owner when it names one: GitHub's `repo:<owner>/...`,
# GitLab's `project_path:<group>/...`.
PINNING_SUBJECTS = {GITHUB_ISSUER: "repo:", GITLAB_ISSUER: "project_path:"}


def _subject_pins(issuer: str, subject: str) -> bool:
    lead = PINNING_SUBJECTS[issuer]
    if not subject.startswith(lead):
        return False
    named = subject[len(lead):].split(":", 1)[0]
    owner = named.split("/", 1)[0]
    return bool(owner) and "*" not in owner and ("/" in named or ":" in subject[len(lead):])


def pin_warnings(issuer: str, subject: str, claims: dict) -> list[str]:
    """What makes a rule let in more workloads than its author may think: on an issuer every
    organisation shares, neither the subject nor a claim pins the repository (project) or its
    owner; a prefix that does not end at a separator."""
    warnings = []
    if issuer in SHARED_ISSUERS:
        pinned = _subject_pins(issuer, subject) or any(
            claims.get(name) for name in PINNING_CLAIMS[issuer])
        if not pinned:
            what = "repository or owner" if issuer == GITHUB_ISSUER else "project or group"
            pins = ", ".join(PINNING_CLAIMS[issuer])
            warnings.append(
                f"{issuer} is shared by everyone on that platform, and this rule pins no "
                f"{what}: any of their workloads whose subject matches would receive a token. "
                f"Name the {what} in the subject ({PINNING_SUBJECTS[issuer]}acme/release:...) "
                f"or require one of these claims: {pins}.")
    if subject.endswith("*") and subject[:-1] and subject[-2] not in ":/":
        warnings.append(f"The prefix {subject!r} does not end at “:” or “/”, so it also matches "
                        f"subjects that merely begin the same way ({subject[:-1]}-other...).")
    return warnings
