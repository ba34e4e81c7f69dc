from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from console.audit import Actor
from console.errors import ServiceError
from tokens.services.lifecycle import token_create
from workspaces.models import Membership, normal_email


class Command(BaseCommand):
    help = (
        "Create a Codex access token for a member, as that member (for scripted set-ups such "
        "as CI). Prints the token once on standard output; nothing stores it."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("workspace", help="the workspace's slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--days", type=int, default=30, help="0 for no expiration")

    def handle(self, *args, email, workspace, name, days, **options):
        membership = (
            Membership.objects.select_related("user", "workspace")
            .filter(user__email=normal_email(email), workspace__slug=workspace)
            .first()
        )
        if membership is None:
            raise CommandError(f"{email} is not a member of the workspace “{workspace}”.")
        if days < 0:
            raise CommandError("--days must be 0 (no expiration) or a number of days.")
        expires_at = timezone.now() + timedelta(days=days) if days > 0 else None
        try:
            _, plaintext = token_create(
                membership=membership, actor=Actor(user=membership.user, user_agent="manage.py"),
                name=name, expires_at=expires_at,
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        self.stdout.write(plaintext)
