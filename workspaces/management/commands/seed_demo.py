from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workspaces.models import CustomRole, Group, Membership, Plan, Role, User, Workspace

PASSWORD = "codex-demo-pass"

WORKSPACES = [
    # slug, name, plan, allow Codex Local, allow access tokens
    ("acme", "Acme Corp", Plan.ENTERPRISE, True, False),
    ("globex", "Globex", Plan.BUSINESS, True, True),
    ("initech", "Initech", Plan.EDU, True, True),
]

USERS = [
    # email, name, [(workspace slug, role)]
    ("owner@acme.test", "Olivia Owner", [("acme", Role.OWNER)]),
    ("admin@acme.test", "Adam Admin", [("acme", Role.ADMIN)]),
    ("dev@acme.test", "Dana Developer", [("acme", Role.MEMBER)]),
    ("member@acme.test", "Max Member", [("acme", Role.MEMBER), ("globex", Role.MEMBER)]),
    ("owner@globex.test", "Grace Globex", [("globex", Role.OWNER)]),
    ("owner@initech.test", "Ian Initech", [("initech", Role.OWNER)]),
]


class Command(BaseCommand):
    help = "Load the demo workspaces and users (idempotent). Every password is codex-demo-pass."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    @transaction.atomic
    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a published password, so it refuses to run with "
                "DEBUG off. Pass --force if this really is a demo or test server."
            )
        created = 0
        workspaces = {}
        for slug, name, plan, local, tokens in WORKSPACES:
            workspace, made = Workspace.objects.get_or_create(
                slug=slug,
                defaults={"name": name, "plan": plan, "allow_codex_local": local,
                          "allow_access_tokens": tokens},
            )
            workspaces[slug] = workspace
            created += made
        for email, name, places in USERS:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = User.objects.create_user(email, PASSWORD, name=name)
                created += 1
            for slug, role in places:
                _, made = Membership.objects.get_or_create(
                    workspace=workspaces[slug], user=user, defaults={"role": role}
                )
                created += made
        acme = workspaces["acme"]
        group, made = Group.objects.get_or_create(workspace=acme, name="Release engineering")
        created += made
        automation, made = CustomRole.objects.get_or_create(
            workspace=acme,
            name="Automation",
            defaults={
                "description": "Run Codex from CI and scheduled jobs with access tokens.",
                "grants_access_tokens": True,
            },
        )
        created += made
        if made:
            automation.groups.add(group)
        dev = Membership.objects.get(workspace=acme, user__email="dev@acme.test")
        if not group.members.filter(pk=dev.pk).exists():
            group.members.add(dev)
            created += 1
        self.stdout.write(
            f"Demo data ready ({created} new records). Sign in as owner@acme.test "
            f"with the password {PASSWORD}."
        )
