"""What the federation tests share: a stand-in OpenID Connect issuer on loopback (its own RSA and
EC keys, a real discovery document and JWKS over HTTP, key rotation), GitHub- and GitLab-shaped
workload tokens, and a rule built straight in the database."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tokens.models import FederationRule

AUDIENCE = "https://console.test"


def _public_jwk(key, kid: str) -> dict:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) \
        else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig",
                "alg": "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"})
    return jwk


class StandinIssuer:
    """An OpenID Connect issuer on 127.0.0.1: `/.well-known/openid-configuration` and
    `/jwks`, with an RSA key (`rsa-1`) and an EC P-256 key (`ec-1`). `fetches` counts the
    requests per path; `discovery` and `status` let a test make it misbehave."""

    def __init__(self):
        self.keys = {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                     "ec-1": ec.generate_private_key(ec.SECP256R1())}
        self.fetches: dict[str, int] = {}
        self.overrides: dict[str, tuple[int, dict, bytes]] = {}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                issuer.fetches[self.path] = issuer.fetches.get(self.path, 0) + 1
                status, headers, body = issuer.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str) -> tuple[int, dict, bytes]:
        if path in self.overrides:
            return self.overrides[path]
        if path == "/.well-known/openid-configuration":
            document = {"issuer": self.url, "jwks_uri": f"{self.url}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
        elif path == "/jwks":
            document = {"keys": [_public_jwk(key, kid) for kid, key in self.keys.items()]}
        else:
            return 404, {}, b"{}"
        return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()

    def rotate(self) -> str:
        """Publish a new RSA key in place of the old ones; returns its key id."""
        kid = f"rsa-{len(self.fetches) + 2}-{uuid.uuid4().hex[:6]}"
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        return kid

    def sign(self, claims: dict, kid: str = "rsa-1", kid_override: str | None = None) -> str:
        """`claims` signed with the key `kid` (naming `kid_override` instead, if given)."""
        key = self.keys[kid]
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid_override or kid})


def github_claims(issuer: str, *, audience: str = AUDIENCE, repository: str = "acme/release",
                  ref: str = "refs/heads/main", workflow: str = "release", run_id: str = "4242",
                  now: float | None = None, **extra) -> dict:
    """A token shaped like GitHub Actions': its subject and the claims its jobs carry."""
    now = time.time() if now is None else now
    owner = repository.split("/")[0]
    return {
        "iss": issuer, "aud": audience, "sub": f"repo:{repository}:ref:{ref}",
        "jti": str(uuid.uuid4()), "iat": int(now), "nbf": int(now) - 5, "exp": int(now) + 300,
        "repository": repository, "repository_owner": owner, "repository_owner_id": "1001",
        "repository_id": "2002", "workflow": workflow, "ref": ref, "ref_type": "branch",
        "run_id": run_id, "run_attempt": "1", "event_name": "push", "actor": "dora",
        "job_workflow_ref": f"{repository}/.github/workflows/{workflow}.yml@{ref}",
        "runner_environment": "github-hosted", **extra,
    }


def gitlab_claims(issuer: str, *, audience: str = AUDIENCE, project_path: str = "acme/release",
                  ref: str = "main", pipeline_id: str = "777", now: float | None = None,
                  **extra) -> dict:
    """A token shaped like GitLab CI's (`id_tokens:`)."""
    now = time.time() if now is None else now
    return {
        "iss": issuer, "aud": audience,
        "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
        "jti": str(uuid.uuid4()), "iat": int(now), "nbf": int(now) - 5, "exp": int(now) + 300,
        "project_path": project_path, "project_id": "55", "namespace_path": project_path.split("/")[0],
        "namespace_id": "66", "ref": ref, "ref_type": "branch", "ref_protected": "true",
        "pipeline_id": pipeline_id, "pipeline_source": "push", "job_id": "888",
        "user_login": "dora", **extra,
    }


def make_rule(membership, *, issuer: str = "https://token.actions.githubusercontent.com",
              subject: str = "repo:acme/release:ref:refs/heads/main", audience: str = AUDIENCE,
              **fields) -> FederationRule:
    """A rule straight in the database (the service's checks are tested through the page)."""
    return FederationRule.objects.create(
        workspace=membership.workspace, name=fields.pop("name", "release"), issuer=issuer,
        audience=audience, subject=subject, principal=fields.pop("principal", membership.user),
        created_by=membership.user, **fields)
