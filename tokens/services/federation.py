"""Workload identity federation: federation rules (create, change, enable, disable, delete,
each audited) and the exchange of a workload's OpenID Connect token for a short-lived access
token (tokens/oidc.py checks the token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from console.audit import Actor, changes
from console.errors import ServiceError
from console.locking import for_update
from console.sql import statement
from workspaces import permissions
from workspaces.audit import record
from workspaces.models import Membership
from workspaces.permissions import Perm
from workspaces.selectors import lock_members

from .. import codec, ipranges, oidc
from ..models import (
    CLAIMS_MAX,
    LIFETIME_MAX,
    LIFETIME_MIN,
    NAME_MAX,
    WORKLOAD_CLAIMS,
    AccessToken,
    FederationRule,
    UsedAssertion,
)
from . import lifecycle

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
CLAIM_VALUE_MAX = 300


def default_audience() -> str:
    """The audience a rule expects unless told otherwise: the console's own address."""
    return settings.SITE_URL.rstrip("/")


@dataclass
class RuleInput:
    """What a rule's form holds, before the service checks it."""

    name: str
    issuer: str
    audience: str
    subject: str
    principal: Membership | None
    claims: dict = field(default_factory=dict)
    lifetime: int = 900
    allowed_ips: str = ""
    enabled: bool = True
    # The author saw the warnings (a shared issuer with nothing pinned) and keeps the rule.
    accept_warnings: bool = False


def _clean(acting: Membership, data: RuleInput, rule: FederationRule | None) -> dict:
    """The rule's fields from `data`, or ServiceError naming the field."""
    name = (data.name or "").strip()
    if not name:
        raise ServiceError("Enter a name for the rule.", "name")
    if len(name) > NAME_MAX:
        raise ServiceError(f"The name can be at most {NAME_MAX} characters.", "name")
    clash = FederationRule.objects.live().filter(workspace_id=acting.workspace_id, name=name)
    if rule is not None:
        clash = clash.exclude(pk=rule.pk)
    if clash.exists():
        raise ServiceError(f"There is already a rule called “{name}”.", "name")
    issuer = (data.issuer or "").strip()
    problem = oidc.url_problem(issuer) if issuer else "Enter the issuer's URL."
    if problem:
        raise ServiceError(problem, "issuer")
    if len(issuer) > 300:
        raise ServiceError("The issuer can be at most 300 characters.", "issuer")
    audience = (data.audience or "").strip() or default_audience()
    if len(audience) > 300:
        raise ServiceError("The audience can be at most 300 characters.", "audience")
    subject = (data.subject or "").strip()
    if not subject:
        raise ServiceError("Enter the subject the workload's token must carry (exact, or ending "
                           "in * as a prefix).", "subject")
    if subject == "*":
        raise ServiceError("A subject of * alone matches every workload of the issuer: name at "
                           "least the beginning of the subject.", "subject")
    if len(subject) > 300 or "*" in subject[:-1]:
        raise ServiceError("The subject is exact, or ends in one * as a prefix (at most 300 "
                           "characters).", "subject")
    claims = data.claims or {}
    if len(claims) > CLAIMS_MAX:
        raise ServiceError(f"At most {CLAIMS_MAX} claims: you gave {len(claims)}.", "claims")
    for key, value in claims.items():
        if not key or not isinstance(value, str) or len(key) > 100 or len(value) > CLAIM_VALUE_MAX:
            raise ServiceError("Each claim is a name and the exact value it must have.", "claims")
    placeholder = "<" in subject or any("<" in v for v in claims.values())
    if placeholder:
        raise ServiceError("Replace the placeholders in <angle brackets> with your own "
                           "names.", "subject" if "<" in subject else "claims")
    if not isinstance(data.lifetime, int) or not LIFETIME_MIN <= data.lifetime <= LIFETIME_MAX:
        raise ServiceError(f"The lifetime is {LIFETIME_MIN} to {LIFETIME_MAX:,} seconds.",
                           "lifetime")
    try:
        allowed_ips = ipranges.to_text(ipranges.parse(data.allowed_ips))
    except ipranges.RangeError as error:
        raise ServiceError(str(error), "allowed_ips") from None
    refusal = permissions.refuse_principal(acting, data.principal)
    if refusal:
        member_here = (data.principal is not None
                       and data.principal.workspace_id == acting.workspace_id)
        raise ServiceError(refusal, "principal", status=403 if member_here else 400)
    warnings = oidc.pin_warnings(issuer, subject, claims)
    if warnings and not data.accept_warnings:
        raise ServiceError(" ".join(warnings), "subject")
    return {"name": name, "issuer": issuer, "audience": audience, "subject": subject,
            "claims": dict(sorted(claims.items())), "principal_id": data.principal.user_id,
            "lifetime": data.lifetime, "allowed_ips": allowed_ips, "enabled": bool(data.enabled)}


def _lock_acting(acting: Membership) -> Membership:
    acting = lock_members(acting)[0]
    permissions.require(acting, Perm.MANAGE_FEDERATION)
    return acting


def _lock_rule(acting: Membership, rule_id: int) -> FederationRule:
    rule = for_update(FederationRule.objects.live().filter(
        pk=rule_id, workspace_id=acting.workspace_id)).first()
    if rule is None:
        raise ServiceError("This rule no longer exists.", status=404)
    return rule


def _snapshot(fields: dict, principal_email: str) -> dict:
    snapshot = {k: v for k, v in fields.items() if k != "principal_id"}
    snapshot["principal"] = principal_email
    snapshot["allowed_ips"] = fields["allowed_ips"].split("\n") if fields["allowed_ips"] else []
    return snapshot


@transaction.atomic
def federation_rule_create(*, acting: Membership, actor: Actor, data: RuleInput) -> FederationRule:
    """Create a rule (audited). Owners, admins and Codex admins; the principal by the policy."""
    acting = _lock_acting(acting)
    fields = _clean(acting, data, None)
    now = timezone.now()
    rule = FederationRule.objects.create(workspace_id=acting.workspace_id,
                                         created_by=acting.user, created_at=now,
                                         updated_at=now, **fields)
    record(workspace=acting.workspace, actor=actor, action="federation_rule.created",
           target=rule.name, details={"federation_rule_id": rule.pk,
                                      **_snapshot(fields, data.principal.user.email)})
    return rule


@transaction.atomic
def federation_rule_update(*, acting: Membership, actor: Actor, rule: FederationRule,
                           data: RuleInput) -> FederationRule:
    """Change a rule (audited, before and after). Its issued tokens keep working, except when
    it ends up disabled (then they are revoked, as `federation_rule_disable` does)."""
    acting = _lock_acting(acting)
    rule = _lock_rule(acting, rule.pk)
    fields = _clean(acting, data, rule)
    changed = changes(rule, fields)
    if not changed:
        return rule
    if "principal_id" in changed:
        changed["principal"] = {"before": rule.principal.email, "after": data.principal.user.email}
        del changed["principal_id"]
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.updated_at = timezone.now()
    rule.save()
    record(workspace=acting.workspace, actor=actor, action="federation_rule.changed",
           target=rule.name, details={"federation_rule_id": rule.pk, **changed})
    if not rule.enabled:
        lifecycle.tokens_revoke_issued_by(rule=rule, actor=actor, reason="its federation rule "
                                          "was disabled")
    return rule


@transaction.atomic
def federation_rule_enable(*, acting: Membership, actor: Actor, rule: FederationRule,
                           enabled: bool) -> bool:
    """Enable or disable a rule (audited); disabling revokes every token it issued. Returns
    whether anything changed."""
    acting = _lock_acting(acting)
    rule = _lock_rule(acting, rule.pk)
    if rule.enabled == enabled:
        return False
    FederationRule.objects.filter(pk=rule.pk).update(enabled=enabled, updated_at=timezone.now())
    revoked = 0
    if not enabled:
        revoked = lifecycle.tokens_revoke_issued_by(rule=rule, actor=actor,
                                                    reason="its federation rule was disabled")
    record(workspace=acting.workspace, actor=actor,
           action="federation_rule.enabled" if enabled else "federation_rule.disabled",
           target=rule.name, details={"federation_rule_id": rule.pk,
                                      **({} if enabled else {"tokens_revoked": revoked})})
    return True


@transaction.atomic
def federation_rule_delete(*, acting: Membership, actor: Actor, rule: FederationRule) -> int:
    """Delete a rule (audited): it stops exchanging, every token it issued is revoked, and its
    row stays for the governance record. Returns how many tokens were revoked."""
    acting = _lock_acting(acting)
    rule = _lock_rule(acting, rule.pk)
    FederationRule.objects.filter(pk=rule.pk).update(deleted_at=timezone.now(), enabled=False)
    revoked = lifecycle.tokens_revoke_issued_by(rule=rule, actor=actor,
                                                reason="its federation rule was deleted")
    record(workspace=acting.workspace, actor=actor, action="federation_rule.deleted",
           target=rule.name, details={"federation_rule_id": rule.pk, "tokens_revoked": revoked})
    return revoked


# The exchange ---------------------------------------------------------------------------------


class ExchangeRefused(Exception):
    """The exchange says no: an OAuth error code and which check failed."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error, self.description = error, description


def account_id(workspace_id: int) -> str:
    """The workspace's id as the CLI knows it (whoami's `chatgpt_account_id`)."""
    return f"workspace-{workspace_id}"


def user_id(user_pk: int) -> str:
    return f"user-{user_pk}"


def workload_of(claims: dict) -> dict:
    """The claims runs record (`WORKLOAD_CLAIMS`), those present, as text."""
    found = {}
    for name in WORKLOAD_CLAIMS:
        text = oidc.claim_text(claims.get(name))
        if text:
            found[name] = text[:CLAIM_VALUE_MAX]
    return found


@dataclass(frozen=True)
class Exchanged:
    token: AccessToken
    plaintext: str
    rule: FederationRule


def _refuse(check: oidc.Check):
    raise ExchangeRefused("invalid_grant", f"{check.name}: {check.detail}")


RULE_SQL = statement(Path(__file__).parent.parent / "sql" / "federation_rule_for_exchange.sql")
RULE_SQL_PORTABLE = RULE_SQL.replace("FOR SHARE OF r", "")
# Each token's jti once: a conflict means it was exchanged before. One statement, where the
# ORM would need a savepoint around an insert that may fail (three round trips).
JTI_SQL = ("INSERT INTO tokens_usedassertion (issuer, jti, rule_id, used_at, expires_at) "
           "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (issuer, jti) DO NOTHING RETURNING id")


def _rule_for_exchange(rule_id: str) -> FederationRule | None:
    number = int(rule_id) if rule_id.isascii() and rule_id.isdigit() and len(rule_id) < 19 else 0
    if not number:
        return None
    sql = RULE_SQL if connection.vendor == "postgresql" else RULE_SQL_PORTABLE
    return next(iter(FederationRule.objects.raw(sql, [number])), None)


def _use_jti(rule: FederationRule, claims: dict, now: datetime) -> bool:
    """Record the token's jti as exchanged; False if it was before."""
    expires_at = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=oidc.LEEWAY)
    with connection.cursor() as cursor:
        cursor.execute(JTI_SQL, [rule.issuer, claims["jti"], rule.pk, now, expires_at])
        return cursor.fetchone() is not None


@sensitive_variables("assertion", "plaintext")
@transaction.atomic
def federation_exchange(*, rule_id: str, assertion: str, ip: str | None, now: datetime,
                        user_agent: str = "", workspace_id: str | None = None,
                        principal_id: str | None = None) -> Exchanged:
    """Exchange a workload's token for an access token of the rule's principal.

    Every check of `oidc.evaluate` must pass; the token's `jti` is recorded in the same
    transaction as the access token it buys (a unique constraint: of two exchanges of one token
    at once, exactly one wins). The rule's row is share-locked for the whole exchange, so a rule
    disabled meanwhile either issues nothing or revokes what it issued. Raises
    `ExchangeRefused` (and nothing is written).
    """
    rule = _rule_for_exchange(rule_id)
    if rule is None:
        raise ExchangeRefused("invalid_grant", "federation_rule_id: there is no enabled "
                                               "federation rule with this id.")
    claims: dict = {}  # once every check passed, they are the issuer's
    for check in oidc.evaluate(assertion, rule, now=now, ip=ip, claims_out=claims):
        if not check.passed:
            _refuse(check)
    if workspace_id is not None and workspace_id != account_id(rule.workspace_id):
        raise ExchangeRefused("invalid_grant", "workspace_id: the rule belongs to another "
                                               "workspace.")
    if principal_id is not None and principal_id != user_id(rule.principal_id):
        raise ExchangeRefused("invalid_grant", "principal_id: the rule's principal is someone "
                                               "else.")
    principal = (Membership.objects.select_related("workspace", "user")
                 .filter(workspace_id=rule.workspace_id, user_id=rule.principal_id).first())
    if not permissions.principal_may_act(principal):
        raise ExchangeRefused("invalid_grant", "principal: the rule's principal is no longer "
                                               "a member who may use access tokens.")
    if not _use_jti(rule, claims, now):
        raise ExchangeRefused("invalid_grant", "jti: this token was exchanged before: each "
                                               "token is exchanged once.")
    workload = workload_of(claims)
    label = workload.get("repository") or workload.get("project_path") or str(claims["sub"])
    plaintext = codec.generate()
    token = AccessToken.objects.create(
        workspace_id=rule.workspace_id, created_by_id=rule.principal_id,
        name=f"{rule.name}: {label}"[:NAME_MAX], digest=codec.digest(plaintext),
        last_characters=plaintext[-4:], created_at=now,
        expires_at=now + timedelta(seconds=rule.lifetime), allowed_ips=rule.allowed_ips,
        federation_rule=rule, workload=workload)
    record(workspace=principal.workspace, actor=Actor(None, ip, user_agent[:300],
                                                      label=f"federation rule {rule.name}"),
           action="token.exchanged", target=token.name, token_id=token.pk,
           details={"token_id": token.pk, "last_characters": token.last_characters,
                    "federation_rule_id": rule.pk, "federation_rule": rule.name,
                    "subject": str(claims["sub"])[:300], **workload,
                    "expires_at": token.expires_at.isoformat()})
    return Exchanged(token, plaintext, rule)


def federation_test(*, rule: FederationRule, assertion: str, ip: str | None,
                    now: datetime) -> list[oidc.Check]:
    """The tester: every check of `assertion` against `rule`, passed or failed. Issues nothing
    and records nothing (the token's jti stays unused)."""
    def used(issuer, jti):
        return UsedAssertion.objects.filter(issuer=issuer, jti=jti).exists()

    return list(oidc.evaluate(assertion, rule, now=now, ip=ip, jti_used=used))


def used_assertions_prune(*, now: datetime) -> int:
    """Forget exchanged tokens that have expired (they could not be exchanged again anyway)."""
    return UsedAssertion.objects.filter(expires_at__lt=now).delete()[0]
