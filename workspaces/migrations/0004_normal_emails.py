"""Every stored email in its one normal form (Unicode NFKC, case-folded, trimmed): users'
emails and invitations'. Refuses, naming them, when two accounts (or two open invitations to one
workspace) would become one address."""

import unicodedata
from collections import defaultdict

from django.core.management.base import CommandError
from django.db import migrations


def normal_email(value):
    # A copy of workspaces.models.normal_email as it is at this migration: a migration must
    # keep doing what it did when the code it came with changes.
    folded = unicodedata.normalize("NFKC", value or "").casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def clashes(rows):
    """{normal form (and its scope): [(id, email), ...]} for the forms more than one row has."""
    groups = defaultdict(list)
    for pk, scope, email in rows:
        groups[(scope, normal_email(email))].append((pk, email))
    return {key: found for key, found in groups.items() if len(found) > 1}


def normalise(apps, schema_editor):
    User = apps.get_model("workspaces", "User")
    Invitation = apps.get_model("workspaces", "Invitation")
    db = schema_editor.connection.alias
    users = User.objects.using(db)
    invitations = Invitation.objects.using(db)
    user_clashes = clashes((pk, "", email) for pk, email in users.values_list("pk", "email"))
    open_invitations = invitations.filter(accepted_at__isnull=True, cancelled_at__isnull=True)
    invitation_clashes = clashes(open_invitations.values_list("pk", "workspace__slug", "email"))
    if user_clashes or invitation_clashes:
        lines = ["Emails are now compared in one normal form (Unicode NFKC, case-folded), in "
                 "which these would be one address. Give all but one of each group another "
                 "email (or cancel the extra invitations), for example with manage.py shell, "
                 "then migrate again:"]
        for (_, normal), found in sorted(user_clashes.items()):
            lines.append(f"  accounts {', '.join(f'{email!r} (user {pk})' for pk, email in found)}"
                         f" would all be {normal!r}")
        for (slug, normal), found in sorted(invitation_clashes.items()):
            lines.append(f"  open invitations to workspace {slug} "
                         f"{', '.join(f'{email!r} (invitation {pk})' for pk, email in found)} "
                         f"would all be {normal!r}")
        raise CommandError("\n".join(lines))
    for manager in (users, invitations):
        for pk, email in manager.values_list("pk", "email"):
            if normal_email(email) != email:
                manager.filter(pk=pk).update(email=normal_email(email))


class Migration(migrations.Migration):

    dependencies = [
        ("workspaces", "0003_lifecycle"),
    ]

    operations = [
        migrations.RunPython(normalise, migrations.RunPython.noop, elidable=False),
    ]
