"""The OpenAPI document is served and tells the truth: real responses validate against it."""

import jsonschema
import pytest
from django.utils import timezone
from jsonschema.validators import validator_for

from tokens import codec
from tokens.openapi import DOCUMENT

from .factories import MembershipFactory, WorkspaceFactory, make_service_account, make_token


def check(schema, instance):
    # The document's "#/components/..." references resolve against a root that carries them.
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": DOCUMENT["components"], **schema}
    cls = validator_for(root)
    cls(root, format_checker=cls.FORMAT_CHECKER).validate(instance)


def validate(path, method, response):
    spec = DOCUMENT["paths"][path][method]["responses"][str(response.status_code)]
    check(spec["content"]["application/json"]["schema"], response.json())
    for header in spec.get("headers", {}):
        assert header in response, header


def test_it_is_served_as_openapi_3_1(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"] == "3.1.0"
    assert set(response.json()["paths"]) == {"/api/v1/whoami", "/api/v1/runs",
                                             "/api/v1/tokens/revoke", "/api/v1/oauth/token"}


@pytest.fixture
def tokens(db):
    workspace = WorkspaceFactory(allow_access_tokens=True)
    good = make_token(MembershipFactory(workspace=workspace))[1]
    forever = make_token(MembershipFactory(workspace=workspace), expires_at=None)[1]
    revoked = make_token(MembershipFactory(workspace=workspace), revoked_at=timezone.now())[1]
    denied = make_token(MembershipFactory(workspace=WorkspaceFactory(plan="edu")))[1]
    _, robot = make_service_account(MembershipFactory(workspace=workspace, role="owner"))
    service_account = make_token(robot)[1]
    return {"good": good, "forever": forever, "revoked": revoked, "denied": denied,
            "service_account": service_account,
            "unknown": codec.generate(), "malformed": "at-nope", "key": "sk-abc"}


CASES = [("good", 200, 201), ("forever", 200, 201), ("service_account", 200, 201),
         ("revoked", 401, 401),
         ("denied", 403, 403), ("unknown", 401, 401), ("malformed", 401, 401),
         ("key", 401, 401), (None, 401, 401)]


@pytest.mark.parametrize("which,whoami_status,runs_status", CASES)
def test_real_responses_match_the_document(client, tokens, which, whoami_status, runs_status):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens[which]}"} if which else {}
    response = client.get("/api/v1/whoami", **headers)
    assert response.status_code == whoami_status
    validate("/api/v1/whoami", "get", response)
    response = client.post("/api/v1/runs", {"client": "c", "command": "x"},
                           content_type="application/json", **headers)
    assert response.status_code == runs_status
    validate("/api/v1/runs", "post", response)


def test_400_and_429_match_the_document(client, tokens):
    response = client.get(f"/api/v1/whoami?access_token={tokens['good']}")
    validate("/api/v1/whoami", "get", response)
    for _ in range(30):
        client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {tokens['unknown']}")
    response = client.post("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {tokens['unknown']}")
    assert response.status_code == 429
    validate("/api/v1/runs", "post", response)


def test_a_wrong_body_fails_validation():
    with pytest.raises(jsonschema.ValidationError):
        check({"$ref": "#/components/schemas/Whoami"}, {"user": {}})
    for user in ({"email": None}, {"email": "a@b.test", "service_account": "ci"},
                 {"service_account": "ci"}):
        with pytest.raises(jsonschema.ValidationError):
            check({"$ref": "#/components/schemas/User"}, user)
    with pytest.raises(jsonschema.ValidationError):
        check({"$ref": "#/components/schemas/Error"}, {"error": {"code": "oops", "message": ""}})


def test_leak_reports_match_the_document(client, tokens):
    path = "/api/v1/tokens/revoke"
    for body in ({"tokens": [tokens["good"], "x"]}, {"tokens": []}, {"other": 1}):
        response = client.post(path, body, content_type="application/json")
        assert response.status_code in (202, 400)
        validate(path, "post", response)


def test_an_ip_refusal_matches_the_document(client, db):
    workspace = WorkspaceFactory(allow_access_tokens=True)
    _, plaintext = make_token(MembershipFactory(workspace=workspace), allowed_ips="10.0.0.0/8")
    response = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 403
    validate("/api/v1/whoami", "get", response)


def test_the_exchanges_answers_match_the_document(client, settings, db):
    from urllib.parse import urlencode

    from .federation import StandinIssuer, github_claims, make_rule

    settings.DEBUG = True
    settings.API_FAILURE_LIMIT = 2
    owner = MembershipFactory(workspace=WorkspaceFactory(), role="owner")
    path = "/api/v1/oauth/token"

    def post(**data):
        return client.post(path, urlencode(data), content_type="application/x-www-form-urlencoded")

    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    with StandinIssuer() as issuer:
        rule = make_rule(owner, issuer=issuer.url)
        good = post(grant_type=grant, federation_rule_id=rule.pk,
                    assertion=issuer.sign(github_claims(issuer.url)))
        assert good.status_code == 200
        validate(path, "post", good)
        for data in ({"grant_type": "password"}, {"grant_type": grant},
                     {"grant_type": grant, "federation_rule_id": rule.pk, "assertion": "x.y.z"}):
            refused = post(**data)
            assert refused.status_code in (400, 429)
            validate(path, "post", refused)
    assert post(grant_type=grant).status_code == 429
    validate(path, "post", post(grant_type=grant))
    got = client.get(path)
    assert got.status_code == 405
    validate(path, "post", got)
