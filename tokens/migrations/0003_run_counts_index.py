"""A covering index for the governance page's per-token and per-member counts over a period.

PostgreSQL answers them with an index-only scan; SQLite has no INCLUDE, and at SQLite's sizes
the plain (workspace, started_at) index does.
"""

from django.db import migrations

INDEX = "run_ws_started_counts"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON tokens_run "
            "(workspace_id, started_at) INCLUDE (token_id, user_id)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("tokens", "0002_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
