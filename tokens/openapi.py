"""The OpenAPI 3.1 description of the automation API, served at /api/v1/openapi.json.

Hand-written; tests validate real responses against it, and CI runs schemathesis against a
live server with it.
"""

_ERROR_CODES = [
    "invalid_request", "missing_token", "malformed_token", "wrong_credential_type",
    "invalid_token", "token_expired", "token_revoked", "access_denied", "ip_not_allowed",
    "rate_limited", "unavailable", "not_found", "method_not_allowed", "invalid_signature",
]


def _error(description, codes, headers=None):
    response = {
        "description": description,
        "content": {"application/json": {"schema": {
            "allOf": [{"$ref": "#/components/schemas/Error"}],
            "properties": {"error": {"properties": {"code": {"enum": codes}}}},
        }}},
    }
    if headers:
        response["headers"] = headers
    return response


def _oauth_error(description, codes, headers=None):
    response = {
        "description": description,
        "content": {"application/json": {"schema": {
            "allOf": [{"$ref": "#/components/schemas/OAuthError"}],
            "properties": {"error": {"enum": codes}},
        }}},
    }
    if headers:
        response["headers"] = headers
    return response


_WWW = {"WWW-Authenticate": {"schema": {"type": "string"},
                              "description": "RFC 6750 challenge: Bearer realm=\"codex\"…"}}
_RETRY = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"},
                          "description": "Seconds until this address may try again."}}

_REFUSALS = {
    "400": _error("The token was sent in the query string or the body, or the body is not "
                  "valid.", ["invalid_request"], _WWW),
    "401": _error("No token, or a token that cannot act: malformed, of the wrong kind, unknown, "
                  "expired or revoked.",
                  ["missing_token", "malformed_token", "wrong_credential_type", "invalid_token",
                   "token_expired", "token_revoked"], _WWW),
    "403": _error("The token's creator no longer holds Codex Local access and the access "
                  "token permission, is no longer a member, or the plan does not support "
                  "access tokens (access_denied); or the call comes from outside the token's "
                  "allowed IP ranges (ip_not_allowed).", ["access_denied", "ip_not_allowed"],
                  _WWW),
    "429": _error("A call that fails (401, 403, or a body refused), from an address with more "
                  "than 30 failed attempts within 5 minutes (the same known token counts once). "
                  "A token that may act is never refused for them.", ["rate_limited"], _RETRY),
    "503": _error("The console cannot reach its database.", ["unavailable"]),
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "Codex workspace console API",
        "version": "1.0.0",
        "description": (
            "Automation presents a Codex access token (at-...) when a Codex run starts; the "
            "console decides whether the run may go ahead as the token's creator and records "
            "it for governance. Send the token only in the Authorization header. Secret "
            "scanners report leaked tokens, without a credential, to /api/v1/tokens/revoke. "
            "CI jobs with an OpenID Connect token exchange it for a short-lived access token "
            "at /api/v1/oauth/token (keyless runs)."
        ),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/whoami": {
            "get": {
                "operationId": "whoami",
                "summary": "The member, workspace and token this access token acts as",
                "responses": {
                    "200": {"description": "The token may act.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}
                    }},
                    **_REFUSALS,
                },
            }
        },
        "/api/v1/tokens/revoke": {
            "post": {
                "operationId": "reportLeakedTokens",
                "summary": "Report leaked access tokens: every active one among them is revoked",
                "description": (
                    "No credential. Every string that is an active access token is revoked at "
                    "once, audited in its workspace as reported leaked, and its creator is "
                    "mailed. Two forms. The plain report, {\"tokens\": [...]}, is answered "
                    "202 whichever strings were tokens. GitHub's secret scanning partner "
                    "program sends a JSON array of matches signed with ECDSA P-256 / SHA-256 "
                    "over the raw body (Github-Public-Key-Signature, base64 DER) by the "
                    "published key named in Github-Public-Key-Identifier; a body that is an "
                    "array, or that comes with either header, must be signed so, and is "
                    "answered 200 with each match labelled. At most 60 calls per hour from "
                    "one address, both forms counted together."
                ),
                "security": [],
                "parameters": [
                    {"name": "Github-Public-Key-Identifier", "in": "header", "required": False,
                     "description": "Which published key signed the body (GitHub's reports).",
                     "schema": {"type": "string"}},
                    {"name": "Github-Public-Key-Signature", "in": "header", "required": False,
                     "description": "Base64 DER ECDSA P-256 / SHA-256 signature of the raw "
                                    "body (GitHub's reports).",
                     "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/LeakReport"},
                        {"$ref": "#/components/schemas/GitHubLeakReport"},
                    ]}}},
                },
                "responses": {
                    "200": {"description": "A signed report: each match, labelled true_positive "
                                           "when it is an access token issued here (active, "
                                           "expired or revoked); active ones are revoked.",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/GitHubLeakReportAnswer"}}}},
                    "202": {"description": "Received; active tokens among them are revoked.",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/LeakReportReceived"}}}},
                    "400": _error("The body is not {\"tokens\": [1 to 100 strings]}, nor (signed) "
                                  "an array of 1 to 1,000 matches.", ["invalid_request"]),
                    "401": _error("An array, or a body with a signature header, whose "
                                  "signature is missing or wrong: nothing was revoked.",
                                  ["invalid_signature"], _WWW),
                    "429": _error("More than 60 reports from this address within an hour.",
                                  ["rate_limited"], _RETRY),
                    "503": _error("The console cannot reach its database, or cannot fetch the "
                                  "published keys to check a signed report.", ["unavailable"]),
                },
            }
        },
        "/api/v1/oauth/token": {
            "post": {
                "operationId": "exchangeWorkloadToken",
                "summary": "Exchange a workload's OpenID Connect token for a short-lived access "
                           "token (RFC 7523 jwt-bearer)",
                "description": (
                    "No credential but the workload's token. The federation rule named by "
                    "federation_rule_id decides: the token must be signed (RS256 or ES256) by "
                    "a key its issuer publishes, carry the rule's issuer, audience, subject "
                    "(exact or by prefix) and claims, be within its times (60 s leeway), and "
                    "never have been exchanged before (its jti). The access token issued acts "
                    "as the rule's principal and expires after the rule's lifetime. Refusals "
                    "use the OAuth error shape and name the check that failed; they count "
                    "toward the per-address failure limit the rest of the API shares (then "
                    "429, for calls that fail). Every answer is Cache-Control: no-store."
                ),
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": {
                        "$ref": "#/components/schemas/TokenExchangeRequest"}}},
                },
                "responses": {
                    "200": {"description": "Every check passed: an ordinary access token.",
                            "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/TokenExchanged"}}}},
                    "400": _oauth_error("A malformed form (invalid_request), another grant "
                                        "(unsupported_grant_type), or a check that failed "
                                        "(invalid_grant: error_description names it).",
                                        ["invalid_request", "unsupported_grant_type",
                                         "invalid_grant"]),
                    "405": _oauth_error("Not a POST.", ["invalid_request"]),
                    "429": _oauth_error("Too many failed attempts from this address; this "
                                        "call failed too.", ["rate_limited"], _RETRY),
                    "503": _oauth_error("The console cannot reach its database.",
                                        ["temporarily_unavailable"]),
                },
            }
        },
        "/api/v1/runs": {
            "post": {
                "operationId": "startRun",
                "summary": "Start a Codex run as the token's creator and record it",
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/RunRequest"}}},
                },
                "responses": {
                    "201": {"description": "The run may go ahead; it is recorded.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Run"}}
                    }},
                    **_REFUSALS,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "at- access token",
                       "description": "^at-[0-9A-Za-z]{36}$"}
        },
        "schemas": {
            "User": {"description": "Who the token acts as: a person (their email), or a "
                                    "service account (its name; `email` is null).",
                     "oneOf": [
                         {"type": "object", "required": ["email"], "additionalProperties": False,
                          "properties": {"email": {"type": "string"}}},
                         {"type": "object", "required": ["email", "service_account"],
                          "additionalProperties": False,
                          "properties": {"email": {"type": "null"},
                                         "service_account": {"type": "string"}}},
                     ]},
            "Workspace": {"type": "object", "required": ["slug", "name"],
                          "additionalProperties": False,
                          "properties": {"slug": {"type": "string"}, "name": {"type": "string"}}},
            "Token": {"type": "object", "required": ["id", "name", "expires_at"],
                      "additionalProperties": False,
                      "properties": {
                          "id": {"type": "integer"},
                          "name": {"type": "string"},
                          "expires_at": {"type": ["string", "null"], "format": "date-time"},
                      }},
            "Whoami": {"type": "object", "required": ["user", "workspace", "token"],
                       "additionalProperties": False,
                       "properties": {
                           "user": {"$ref": "#/components/schemas/User"},
                           "workspace": {"$ref": "#/components/schemas/Workspace"},
                           "token": {"$ref": "#/components/schemas/Token"},
                       }},
            "RunRequest": {"type": "object", "additionalProperties": True, "properties": {
                "client": {"type": "string", "maxLength": 200,
                           "description": "What started the run, e.g. codex-cli 1.2 in CI."},
                "command": {"type": "string", "maxLength": 2000},
            }},
            "Run": {"type": "object",
                    "required": ["id", "started_at", "user", "workspace", "token"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "integer"},
                        "started_at": {"type": "string", "format": "date-time"},
                        "user": {"$ref": "#/components/schemas/User"},
                        "workspace": {"$ref": "#/components/schemas/Workspace"},
                        "token": {"$ref": "#/components/schemas/Token"},
                    }},
            "LeakReport": {"type": "object", "required": ["tokens"], "additionalProperties": False,
                           "properties": {"tokens": {
                               "type": "array", "minItems": 1, "maxItems": 100,
                               "items": {"type": "string", "maxLength": 1000},
                               "description": "Strings found where they should not be: "
                                              "access tokens (at-...), or anything else.",
                           }}},
            "GitHubLeakReport": {
                "type": "array", "minItems": 1, "maxItems": 1000,
                "description": "GitHub's secret scanning partner program: one object per match.",
                "items": {"type": "object", "required": ["token", "type"],
                          "additionalProperties": True, "properties": {
                              "token": {"type": "string", "maxLength": 1000},
                              "type": {"type": "string"},
                              "url": {"type": "string"},
                              "source": {"type": "string"},
                          }},
            },
            "GitHubLeakReportAnswer": {
                "type": "array",
                "items": {"type": "object", "required": ["token_raw", "token_type", "label"],
                          "additionalProperties": False, "properties": {
                              "token_raw": {"type": "string"},
                              "token_type": {"type": "string"},
                              "label": {"enum": ["true_positive", "false_positive"]},
                          }},
            },
            "LeakReportReceived": {"type": "object", "required": ["received"],
                                   "additionalProperties": False,
                                   "properties": {"received": {"type": "integer", "minimum": 1}}},
            "TokenExchangeRequest": {
                "type": "object", "required": ["grant_type", "assertion", "federation_rule_id"],
                "properties": {
                    "grant_type": {"const": "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                    "assertion": {"type": "string", "maxLength": 16384,
                                  "description": "The workload's OpenID Connect token."},
                    "federation_rule_id": {"type": "string", "pattern": "^[0-9]+$",
                                           "description": "The id on the rule's page."},
                    "workspace_id": {"type": "string", "description": (
                        "Optional: must equal the answer's chatgpt_account_id.")},
                    "principal_id": {"type": "string", "description": (
                        "Optional: must equal the answer's user_id.")},
                }},
            "TokenExchanged": {
                "type": "object", "additionalProperties": False,
                "required": ["access_token", "token_type", "expires_in", "issued_token_type",
                             "chatgpt_account_id", "user_id"],
                "properties": {
                    "access_token": {"type": "string", "pattern": "^at-[0-9A-Za-z]{36}$"},
                    "token_type": {"const": "Bearer"},
                    "expires_in": {"type": "integer", "minimum": 60, "maximum": 3600},
                    "issued_token_type": {
                        "const": "urn:ietf:params:oauth:token-type:access_token"},
                    "chatgpt_account_id": {"type": "string", "description": (
                        "The workspace's id, as the Codex CLI's whoami names it.")},
                    "user_id": {"type": "string", "description": "The rule's principal's id."},
                }},
            "OAuthError": {"type": "object", "required": ["error", "error_description"],
                           "additionalProperties": False,
                           "properties": {"error": {"type": "string"},
                                          "error_description": {"type": "string"}}},
            "Error": {"type": "object", "required": ["error"], "additionalProperties": False,
                      "properties": {"error": {
                          "type": "object", "required": ["code", "message"],
                          "additionalProperties": False,
                          "properties": {"code": {"enum": _ERROR_CODES},
                                         "message": {"type": "string"}},
                      }}},
        },
    },
}
