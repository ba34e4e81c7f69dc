import random
import secrets
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from tokens import codec
from tokens.models import AccessToken, Run
from tokens.services.runs import rollups_rebuild
from workspaces.models import (
    SERVICE_ACCOUNT_DOMAIN,
    AuditEvent,
    CustomRole,
    Group,
    Invitation,
    Membership,
    Plan,
    Role,
    ServiceAccount,
    User,
    Workspace,
)

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
        demo_emails = [email for email, _, _ in USERS]
        for slug, *_ in WORKSPACES:
            existing = Workspace.objects.filter(slug=slug).first()
            if existing and not existing.memberships.filter(user__email__in=demo_emails).exists():
                raise CommandError(
                    f"A workspace with the slug {slug} exists and is not the demo's: seed_demo "
                    "adds nothing to a real workspace."
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
            user = User.objects.filter(email=email).first()  # the demo's, in their normal form
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
        if not AccessToken.objects.filter(workspace=acme, name="release-ci").exists():
            created += tell_the_story(workspaces, timezone.now())
        self.stdout.write(
            f"Demo data ready ({created} new records). Sign in as owner@acme.test "
            f"with the password {PASSWORD}."
        )


# The story: what a newcomer sees on every page. Tokens in every state, a month of runs from
# CI systems and the Codex CLI, and the audit events that go with them. The tokens' secrets are
# random and thrown away: nobody ever saw them, nobody can use them. Times are relative to the
# moment of seeding; the random choices are seeded, so every demo tells the same story.

CLI = "codex_exec 0.171.0"
COMMANDS = ['codex exec "fix the failing tests"', 'codex exec "review this pull request"',
            'codex exec "update the changelog"', 'codex exec "bump the dependencies"']


def _day(now, days_ago, hour, minute=0):
    day = (now - timedelta(days=days_ago)).astimezone(UTC).date()
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def _token(workspace, user, name, created, expires=None, revoked=None, revoked_by=None):
    secret = codec.generate()  # never shown, never stored: only its digest is
    return AccessToken.objects.create(
        workspace=workspace, created_by=user, name=name, digest=codec.digest(secret),
        last_characters=secret[-4:], created_at=created, expires_at=expires, revoked_at=revoked,
        revoked_by=revoked_by, request_key=secrets.token_urlsafe(12),
    )


def _event(workspace, user, action, target, when, details=None, token=None, ip="192.0.2.10"):
    AuditEvent.objects.create(
        workspace=workspace, actor=user, actor_email=user.email if user else "system",
        action=action, target=target, details=details or {}, ip=ip, created_at=when,
        user_agent="Mozilla/5.0 (demo)", token_id=token.pk if token else None,
    )


def _created(token, when):
    _event(token.workspace, token.created_by, "token.created", token.name, when, token=token,
           details={"token_id": token.pk, "last_characters": token.last_characters,
                    "expires_at": token.expires_at.isoformat() if token.expires_at else None})


def _runs(token, when_list, client, rng, **extra):
    rows = [Run(workspace=token.workspace, token=token, user=token.created_by, started_at=when,
                client=client, command=extra.get("command") or rng.choice(COMMANDS),
                ip=extra.get("ip", f"203.0.113.{rng.randint(10, 60)}"),
                user_agent=extra.get("agent", f"{client}/1.0"), model=extra.get("model", ""),
                sandbox_mode=extra.get("sandbox_mode", ""),
                thread_id=f"demo-{token.pk}-{n}" if extra.get("model") else "",
                turns=rng.randint(1, 6) if extra.get("model") else 1)
            for n, when in enumerate(when_list)]
    Run.objects.bulk_create(rows)
    last = max(rows, key=lambda run: run.started_at)
    AccessToken.objects.filter(pk=token.pk).update(
        last_used_at=last.started_at, last_used_ip=last.ip, first_used_at=min(when_list))
    return len(rows)


def tell_the_story(workspaces, now) -> int:
    rng = random.Random(7)
    acme, globex = workspaces["acme"], workspaces["globex"]
    people = {u.email: u for u in User.objects.filter(email__endswith=".test")}
    owner, admin, dev = people["owner@acme.test"], people["admin@acme.test"], people["dev@acme.test"]
    member, globex_owner = people["member@acme.test"], people["owner@globex.test"]
    made = 0

    # Acme: the workspace's history, then dev@'s four tokens and a few of the admins'.
    _event(acme, owner, "group.created", "Release engineering", _day(now, 40, 9))
    _event(acme, owner, "custom_role.created", "Automation", _day(now, 40, 9, 5),
           details={"permissions": ["Codex access tokens"], "groups": ["Release engineering"]})
    _event(acme, owner, "invitation.sent", "dev@acme.test", _day(now, 40, 9, 10),
           details={"role": "member"})
    _event(acme, dev, "invitation.accepted", "dev@acme.test", _day(now, 39, 10),
           details={"role": "member"})
    _event(acme, owner, "group.member_added", "Release engineering", _day(now, 39, 11),
           details={"member": "dev@acme.test"})

    release = _token(acme, dev, "release-ci", _day(now, 29, 9), expires=_day(now, 29, 9) + timedelta(days=30))
    _created(release, release.created_at)
    daily = [_day(now, d, h, rng.randint(0, 59)) for d in range(28, -1, -1)
             for h in rng.sample(range(8, 19), rng.randint(4, 8))]
    made += _runs(release, [w for w in daily if w < now], "github-actions", rng)

    nightly = _token(acme, dev, "nightly-docs-check", _day(now, 25, 17))
    _created(nightly, nightly.created_at)
    made += _runs(nightly, [_day(now, d, 2, 15) for d in range(24, 0, -1)], "cron", rng,
                  command='codex exec "check the docs build and fix broken links"')

    laptop = _token(acme, dev, "old-laptop", _day(now, 30, 14),
                    expires=_day(now, 30, 14) + timedelta(days=90),
                    revoked=_day(now, 12, 16), revoked_by=owner)
    _created(laptop, laptop.created_at)
    made += _runs(laptop, [_day(now, d, rng.randint(9, 18), rng.randint(0, 59))
                           for d in range(29, 12, -2)], CLI, rng, model="gpt-5.1-codex",
                  sandbox_mode="workspace-write", agent=f"{CLI.replace(' ', '/')} (Linux)")
    _event(acme, owner, "token.revoked", "old-laptop", laptop.revoked_at, token=laptop,
           details={"token_id": laptop.pk, "last_characters": laptop.last_characters,
                    "created_by": dev.email, "reason": "the laptop was replaced"})

    migration = _token(acme, dev, "q3-migration", _day(now, 38, 10),
                       expires=_day(now, 38, 10) + timedelta(days=30))
    _created(migration, migration.created_at)
    made += _runs(migration, [_day(now, d, 13, 30) for d in range(37, 8, -3)], "jenkins", rng,
                  command='codex exec "migrate the billing tables"')

    staging = _token(acme, admin, "staging-deploy", _day(now, 45, 11),
                     expires=_day(now, 45, 11) + timedelta(days=90))
    _created(staging, staging.created_at)  # not used for 45 days: idle
    incident = _token(acme, owner, "incident-bot", _day(now, 25, 8),
                      expires=_day(now, 25, 8) + timedelta(days=28))
    _created(incident, incident.created_at)  # expires within the week: the owner's banner
    made += _runs(incident, [_day(now, d, 3, 40) for d in (20, 14, 9, 4, 1)], "pagerduty", rng,
                  command='codex exec "summarize the incident timeline"')
    _event(acme, owner, "settings.updated", "Acme Corp", _day(now, 26, 15),
           details={"allow_codex_local": {"before": False, "after": True}})
    Invitation.objects.create(
        workspace=acme, email="new.hire@acme.test", role=Role.MEMBER, invited_by=admin,
        key_digest=codec.digest(codec.generate()), sent_at=_day(now, 2, 10),
        created_at=_day(now, 2, 10), expires_at=_day(now, 2, 10) + timedelta(days=7))
    _event(acme, admin, "invitation.sent", "new.hire@acme.test", _day(now, 2, 10),
           details={"role": "member"})

    # A service account: the docs team's bot, in Release engineering (so it holds access
    # tokens through Automation), its token made by the owner and used weekly.
    bot = User(email=f"svc-demo-docs-bot@{SERVICE_ACCOUNT_DOMAIN}", name="docs-bot",
               is_service_account=True, date_joined=_day(now, 21, 9))
    bot.set_unusable_password()
    bot.save()
    ServiceAccount.objects.create(
        workspace=acme, user=bot, name="docs-bot", created_by=owner, created_at=_day(now, 21, 9),
        description="Rebuilds the docs site every week from GitHub Actions")
    Group.objects.get(workspace=acme, name="Release engineering").members.add(
        Membership.objects.create(workspace=acme, user=bot, role=Role.MEMBER,
                                  joined_at=_day(now, 21, 9)))
    _event(acme, owner, "service_account.created", "svc:docs-bot", _day(now, 21, 9),
           details={"name": "docs-bot",
                    "description": "Rebuilds the docs site every week from GitHub Actions"})
    _event(acme, owner, "group.member_added", "Release engineering", _day(now, 21, 9, 2),
           details={"member": "svc:docs-bot"})
    weekly = _token(acme, bot, "weekly-docs", _day(now, 21, 9, 5),
                    expires=_day(now, 21, 9, 5) + timedelta(days=90))
    _event(acme, owner, "token.created", weekly.name, weekly.created_at, token=weekly,
           details={"token_id": weekly.pk, "last_characters": weekly.last_characters,
                    "expires_at": weekly.expires_at.isoformat(),
                    "service_account": "svc:docs-bot"})
    made += _runs(weekly, [_day(now, d, 4, 0) for d in (20, 13, 6)], "github-actions", rng,
                  command='codex exec "rebuild the docs site and fix broken links"')

    # Globex: member@acme.test's personal scripts.
    scripts = _token(globex, member, "personal-scripts", _day(now, 20, 19),
                     expires=_day(now, 20, 19) + timedelta(days=60))
    _created(scripts, scripts.created_at)
    made += _runs(scripts, [_day(now, d, 20, rng.randint(0, 59)) for d in range(19, 0, -2)],
                  "cron", rng, command='codex exec "tidy my dotfiles"')
    _event(globex, globex_owner, "settings.updated", "Globex", _day(now, 22, 9),
           details={"allow_access_tokens": {"before": False, "after": True}})
    for workspace in (acme, globex):
        rollups_rebuild(workspace=workspace)
    return made + 12
