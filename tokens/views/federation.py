"""The Federation page: federation rules (keyless runs), a rule's page with its curl line, its
issued tokens and the tester; create, change, enable, disable, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.addresses import client_ip
from console.audit import Actor
from console.errors import ServiceError
from console.forms import PageQueryForm
from console.paging import paginate
from console.rendering import apply_error
from workspaces import permissions
from workspaces.access import workspace_access
from workspaces.layout import render_console
from workspaces.models import Membership
from workspaces.permissions import Perm

from .. import oidc, selectors
from ..forms import (
    PRESETS,
    FederationPresetQueryForm,
    FederationRuleForm,
    claims_text,
    parse_claims,
)
from ..models import FederationRule
from ..services import federation

PAGE_SIZE = 50


def _access(request, slug):
    return workspace_access(request, slug, Perm.MANAGE_FEDERATION)


def _rule_or_404(workspace, rule_id) -> FederationRule:
    rule = selectors.federation_rule(workspace, rule_id)
    if rule is None:
        raise Http404("No such federation rule.")
    return rule


def _console_url(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@login_required
@require_GET
def rule_list(request, slug):
    workspace, membership = _access(request, slug)
    rules = selectors.federation_rules(workspace, timezone.now())
    query_form = PageQueryForm(request.GET)
    page = paginate(rules, query_form.read("page"), PAGE_SIZE)
    for rule in page.object_list:
        rule.warnings = oidc.pin_warnings(rule.issuer, rule.subject, rule.claims)
        rule.principal_label = selectors.principal_label(rule.principal)
    return render_console(request, "tokens/federation.html", membership, "federation", {
        "page": page, "presets": PRESETS, "query_form": query_form,
    }, status=query_form.status())


def _input(form, workspace) -> federation.RuleInput:
    data = form.cleaned_data
    principal = (Membership.objects.select_related("user", "workspace")
                 .filter(workspace=workspace, user_id=data["principal"]).first())
    return federation.RuleInput(
        name=data["name"], issuer=data["issuer"], audience=data["audience"],
        subject=data["subject"], claims=data["claims"], principal=principal,
        lifetime=data["lifetime"], allowed_ips=data["allowed_ips"], enabled=data["enabled"],
        accept_warnings=data["accept_warnings"])


def _form_page(request, membership, form, rule=None, preset=None, status=200, query_form=None):
    warnings = []
    if form.is_bound:  # as posted (a service's refusal takes its field out of cleaned_data)
        try:
            claims = parse_claims(form.data.get("claims", ""))
        except ValidationError:
            claims = {}
        warnings = oidc.pin_warnings(form.data.get("issuer", "").strip(),
                                     form.data.get("subject", "").strip(), claims)
    return render_console(request, "tokens/federation_form.html", membership, "federation", {
        "form": form, "rule": rule, "presets": PRESETS, "preset": preset,
        "warnings": warnings, "default_audience": federation.default_audience(),
        "query_form": query_form,
    }, status=query_form.status(status) if query_form else status)


@login_required
@require_http_methods(["GET", "POST"])
def rule_create(request, slug):
    workspace, membership = _access(request, slug)
    principals = selectors.principal_choices(workspace)
    if request.method == "GET":
        query_form = FederationPresetQueryForm(request.GET)
        preset = PRESETS.get(query_form.read("preset") or "")
        initial = {"principal": membership.user_id, "lifetime": 900, "enabled": True,
                   "audience": federation.default_audience()}
        if preset:
            initial.update(issuer=preset["issuer"], subject=preset["subject"],
                           claims=preset["claims"])
        form = FederationRuleForm(initial=initial, principals=principals)
        return _form_page(request, membership, form, preset=preset, query_form=query_form)
    form, status = FederationRuleForm(request.POST, principals=principals), 400
    if form.is_valid():
        try:
            rule = federation.federation_rule_create(acting=membership,
                                                     actor=Actor.from_request(request),
                                                     data=_input(form, workspace))
        except ServiceError as error:
            apply_error(form, error)
            status = error.status
        else:
            messages.success(request, f"Federation rule “{rule.name}” created.")
            return redirect("tokens:federation_rule", slug=slug, rule_id=rule.pk)
    return _form_page(request, membership, form, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request, slug, rule_id):
    workspace, membership = _access(request, slug)
    rule = _rule_or_404(workspace, rule_id)
    principals = selectors.principal_choices(workspace)
    if request.method == "GET":
        form = FederationRuleForm(initial={
            "name": rule.name, "issuer": rule.issuer, "audience": rule.audience,
            "subject": rule.subject, "claims": claims_text(rule.claims),
            "principal": rule.principal_id, "lifetime": rule.lifetime,
            "allowed_ips": rule.allowed_ips, "enabled": rule.enabled,
            "accept_warnings": bool(oidc.pin_warnings(rule.issuer, rule.subject, rule.claims)),
        }, principals=principals)
        return _form_page(request, membership, form, rule=rule)
    form, status = FederationRuleForm(request.POST, principals=principals), 400
    if form.is_valid():
        try:
            federation.federation_rule_update(acting=membership, actor=Actor.from_request(request),
                                              rule=rule, data=_input(form, workspace))
        except ServiceError as error:
            apply_error(form, error)
            status = error.status
        else:
            messages.success(request, "Federation rule saved.")
            return redirect("tokens:federation_rule", slug=slug, rule_id=rule.pk)
    return _form_page(request, membership, form, rule=rule, status=status)


def _rule_page(request, membership, rule, *, assertion="", checks=None, status=200):
    now = timezone.now()
    console = _console_url(request)
    principal = (Membership.objects.select_related("workspace", "user")
                 .filter(workspace_id=rule.workspace_id, user_id=rule.principal_id).first())
    return render_console(request, "tokens/federation_rule.html", membership, "federation", {
        "rule": rule, "principal_label": selectors.principal_label(rule.principal),
        "principal_may_act": permissions.principal_may_act(principal),
        "claims": sorted(rule.claims.items()),
        "ranges": [r for r in rule.allowed_ips.split("\n") if r],
        "warnings": oidc.pin_warnings(rule.issuer, rule.subject, rule.claims),
        "tokens": selectors.rule_tokens(rule, now),
        "token_url": reverse("tokens:list", args=[rule.workspace.slug]),
        "curl": _curl_line(console, rule),
        "exchange_url": f"{console}/api/v1/oauth/token",
        "assertion": assertion, "checks": checks,
        "passed": checks is not None and all(check.passed for check in checks),
    }, status=status)


def _curl_line(console: str, rule: FederationRule) -> str:
    return (f"curl -sS --fail-with-body {console}/api/v1/oauth/token \\\n"
            f"  -d grant_type={federation.GRANT_TYPE} \\\n"
            f"  -d federation_rule_id={rule.pk} \\\n"
            '  --data-urlencode "assertion=$OIDC_TOKEN"')


@login_required
@require_GET
def rule_detail(request, slug, rule_id):
    workspace, membership = _access(request, slug)
    return _rule_page(request, membership, _rule_or_404(workspace, rule_id))


@login_required
@require_POST
@sensitive_post_parameters("assertion")
def rule_test(request, slug, rule_id):
    """The tester: every check of a pasted token against the rule. Nothing is issued or
    recorded; the page that shows the result is never cached (as every signed-in page)."""
    workspace, membership = _access(request, slug)
    rule = _rule_or_404(workspace, rule_id)
    assertion = request.POST.get("assertion", "").strip()
    if not assertion:
        return _rule_page(request, membership, rule, checks=[oidc.Check(
            "format", False, "Paste a workload's OpenID Connect token to test it.")], status=400)
    if len(assertion) > 16 * 1024:
        return _rule_page(request, membership, rule, checks=[oidc.Check(
            "format", False, "That is too long for an OpenID Connect token.")], status=400)
    checks = federation.federation_test(rule=rule, assertion=assertion, ip=client_ip(request),
                                        now=timezone.now())
    return _rule_page(request, membership, rule, assertion=assertion, checks=checks)


def _set_enabled(request, slug, rule_id, enabled: bool):
    workspace, membership = _access(request, slug)
    rule = _rule_or_404(workspace, rule_id)
    try:
        federation.federation_rule_enable(acting=membership, actor=Actor.from_request(request),
                                          rule=rule, enabled=enabled)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"“{rule.name}” is {'enabled' if enabled else 'disabled'}."
                         + ("" if enabled else " The tokens it issued are revoked."))
    return redirect("tokens:federation_rule", slug=slug, rule_id=rule.pk)


@login_required
@require_POST
def rule_enable(request, slug, rule_id):
    return _set_enabled(request, slug, rule_id, True)


@login_required
@require_POST
def rule_disable(request, slug, rule_id):
    return _set_enabled(request, slug, rule_id, False)


@login_required
@require_http_methods(["GET", "POST"])
def rule_delete(request, slug, rule_id):
    workspace, membership = _access(request, slug)
    rule = _rule_or_404(workspace, rule_id)
    if request.method == "POST":
        try:
            revoked = federation.federation_rule_delete(acting=membership,
                                                        actor=Actor.from_request(request),
                                                        rule=rule)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("tokens:federation_rule", slug=slug, rule_id=rule.pk)
        messages.success(request, f"Federation rule “{rule.name}” deleted"
                         + (f"; {revoked} token{'s' if revoked != 1 else ''} revoked." if revoked
                            else "."))
        return redirect("tokens:federation", slug=slug)
    return render_console(request, "console/confirm.html", membership, "federation", {
        "title": f"Delete the federation rule “{rule.name}”?",
        "body": DELETE_BODY,
        "action": "Delete rule",
        "cancel_url": reverse("tokens:federation_rule", args=[slug, rule.pk]),
    })


DELETE_BODY = ("Workloads can no longer exchange their tokens with it, and every token it "
               "issued is revoked at once. Its runs stay on the governance page.")
