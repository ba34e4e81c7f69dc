"""PostgreSQL-only tuning for the two hot tables.

- A covering index for the governance page's per-token and per-member counts over a period:
  PostgreSQL answers them with an index-only scan. SQLite has no INCLUDE, and at SQLite's sizes
  the plain (workspace, started_at) index does.
- Free space in the access tokens table's pages: every run start rewrites its token's
  last-used columns, and with room on the page PostgreSQL updates the row in place (a HOT
  update) instead of adding an entry to each of the table's indexes.
"""

from django.db import migrations

INDEX = "run_ws_started_counts"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON tokens_run "
            "(workspace_id, started_at) INCLUDE (token_id, user_id)"
        )
        schema_editor.execute("ALTER TABLE tokens_accesstoken SET (fillfactor = 80)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        schema_editor.execute("ALTER TABLE tokens_accesstoken RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("tokens", "0002_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
