"""Pages about accounts rather than a workspace: password reset (limited), and the invitation
page where an invitee signs in or creates an account and accepts."""

from __future__ import annotations

import hashlib

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, user_login_failed
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from console import throttle
from console.addresses import client_ip
from console.audit import Actor
from console.errors import ServiceError
from console.rendering import apply_error

from ..forms import (
    ConsolePasswordChangeForm,
    ConsolePasswordResetForm,
    ConsoleSetPasswordForm,
    EmailAuthenticationForm,
    InvitationAccountForm,
)
from ..models import User, normal_email
from ..services import members as members_services
from ..services import users as users_services
from ..signin import locked_out

RESET_WINDOW = 3600


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per email (its normal form) and per address.

    The answer is the same whether or not the email has an account, and so is the work: every
    request queues a reset for its email, and the mail worker sends a mail only if the email
    has an account (workspaces/mail.py). The limits count every email alike. So neither the
    answer nor its time tells anybody which emails have accounts.
    """

    form_class = ConsolePasswordResetForm

    def form_valid(self, form):
        email = normal_email(form.cleaned_data["email"])
        email_key = hashlib.sha256(email.encode()).hexdigest()
        address = client_ip(self.request) or "unknown"
        for scope, who, limit in (("reset-email", email_key, settings.PASSWORD_RESET_EMAIL_LIMIT),
                                  ("reset-address", address, settings.PASSWORD_RESET_ADDRESS_LIMIT)):
            if throttle.retry_after(who, scope=scope, limit=limit, window=RESET_WINDOW):
                return render(self.request, "registration/locked_out.html", {
                    "title": "Too many reset requests",
                    "reason": "There have been too many password reset requests for this email "
                              "or from this address.",
                    "minutes": RESET_WINDOW // 60,
                }, status=429)
        for scope, who in (("reset-email", email_key), ("reset-address", address)):
            throttle.count(who, scope=scope, window=RESET_WINDOW)
        users_services.password_reset_request(email=email)
        return HttpResponseRedirect(self.get_success_url())


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, where a wrong old password counts as a failed sign-in for the
    user's email and the client's address (django-axes, workspaces/signin.py): past the limit
    the page refuses, even with the right old password, as sign-in does."""

    form_class = ConsolePasswordChangeForm

    def _credentials(self) -> dict:
        return {settings.AXES_USERNAME_FORM_FIELD: self.request.user.get_username()}

    def post(self, request, *args, **kwargs):
        if AxesProxyHandler.is_locked(request, self._credentials()):
            return locked_out(request)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if form.has_error("old_password", "password_incorrect"):
            user_login_failed.send(sender=type(form), credentials=self._credentials(),
                                   request=self.request)
        return super().form_invalid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = ConsoleSetPasswordForm


# Invitations -------------------------------------------------------------------------------


def _invitation_or_gone(request, key):
    invitation = members_services.invitation_by_key(key)
    if invitation is None:
        return None, render(request, "invitations/invalid.html", status=404)
    return invitation, None


def _invitation_page(request, invitation, key, *, sign_in_form=None, account_form=None,
                     status=200):
    user = request.user
    context = {"invitation": invitation, "key": key}
    if user.is_authenticated:
        context["matches"] = normal_email(user.email) == invitation.email
    elif User.objects.filter(email=invitation.email).exists():
        context["sign_in_form"] = sign_in_form or EmailAuthenticationForm(
            request, initial={"username": invitation.email})
    else:
        context["account_form"] = account_form or InvitationAccountForm()
    return render(request, "invitations/invitation.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request, key):
    """GET: the invitation, with what the invitee must do next. POST: accept it."""
    invitation, gone = _invitation_or_gone(request, key)
    if gone:
        return gone
    if request.method == "GET" or not request.user.is_authenticated:
        return _invitation_page(request, invitation, key)
    try:
        members_services.invitation_accept(invitation=invitation, user=request.user,
                                   actor=Actor.from_request(request))
    except ServiceError as error:
        if error.status == 404:
            return render(request, "invitations/invalid.html", status=404)
        messages.error(request, error.message)
        return _invitation_page(request, invitation, key, status=error.status)
    messages.success(request, f"Welcome to {invitation.workspace.name}.")
    return redirect("workspaces:overview", slug=invitation.workspace.slug)


@never_cache
@require_POST
@sensitive_post_parameters("password")
def invitation_sign_in(request, key):
    invitation, gone = _invitation_or_gone(request, key)
    if gone:
        return gone
    data = {"username": invitation.email, "password": request.POST.get("password", "")}
    form = EmailAuthenticationForm(request, data=data)
    if form.is_valid():
        login(request, form.get_user())
        return redirect("invitation", key=key)
    return _invitation_page(request, invitation, key, sign_in_form=form, status=400)


@never_cache
@require_POST
@sensitive_post_parameters("password1", "password2")
def invitation_create_account(request, key):
    invitation, gone = _invitation_or_gone(request, key)
    if gone:
        return gone
    form = InvitationAccountForm(request.POST)
    if form.is_valid():
        try:
            user = members_services.invitation_create_account(
                invitation=invitation, name=form.cleaned_data["name"],
                password=form.cleaned_data["password1"], actor=Actor.from_request(request),
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            login(request, user, backend="workspaces.signin.PeopleOnlyBackend")
            return redirect("invitation", key=key)
    return _invitation_page(request, invitation, key, account_form=form, status=400)
