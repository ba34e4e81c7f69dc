"""The mail about people and their places, rendered by the mail worker when it goes
(console/outbox.py): password resets and invitations. Whatever secret such a mail carries is
made here, as it goes, so it exists only in the mail: the reset link's token, the invitation's
key (only its digest is stored)."""

from __future__ import annotations

from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from console.mail import compose, link, renderer

from .models import User
from .services import members


@renderer("password_reset")
def password_reset(mail):
    """Queued for every reset request, whatever the email: a mail goes only when an active
    person's account with a password has that email (its normal form); never to a service
    account."""
    user = User.objects.filter(email=mail.params["email"], is_active=True,
                               is_service_account=False).first()
    if user is None or not user.has_usable_password():
        return None
    confirm = reverse("password_reset_confirm", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    })
    return compose("password_reset", user.email, {"email": user.email, "url": link(confirm)})


@renderer("invitation")
def invitation(mail):
    """The invitation's key is made now; nothing goes if meanwhile it was accepted, cancelled,
    has expired or was sent again."""
    issued = members.invitation_issue_key(invitation_id=mail.params["invitation"],
                                          sent_at=mail.params["sent_at"])
    if issued is None:
        return None
    invitation, key = issued
    inviter = User.objects.filter(pk=mail.params.get("inviter")).first() \
        if mail.params.get("inviter") else None
    return compose("invitation", invitation.email, {
        "invitation": invitation, "inviter": inviter,
        "url": link(reverse("invitation", args=[key])),
    })
