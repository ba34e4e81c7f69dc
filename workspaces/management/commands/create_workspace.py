from django.core.management.base import BaseCommand, CommandError

from console.audit import Actor
from console.errors import ServiceError
from workspaces.models import Membership, Plan
from workspaces.services.settings import workspace_create


class Command(BaseCommand):
    help = (
        "Create a workspace and its first owner: the owner joins at once if the email has an "
        "account, otherwise an owner invitation is mailed to it. Audited in the new workspace."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--plan", choices=Plan.values, default=Plan.BUSINESS)
        parser.add_argument("--owner", required=True, help="the first owner's email")

    def handle(self, *args, slug, name, plan, owner, **options):
        try:
            workspace, first = workspace_create(
                name=name, slug=slug, plan=plan, owner_email=owner,
                actor=Actor(user=None, user_agent="manage.py create_workspace"),
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        if isinstance(first, Membership):
            self.stdout.write(f"Created {workspace.name} ({workspace.slug}); {owner} is its owner.")
        else:
            self.stdout.write(f"Created {workspace.name} ({workspace.slug}); an owner invitation "
                              f"to {first.email} is queued for the mail worker.")
