"""PostgreSQL indexes for the Access tokens list at a large workspace's size.

- Name search (`?q=`, a case-insensitive "contains"): a trigram index (pg_trgm) on the upper-
  cased name, which is what Django's `icontains` compares.
- Sort by last used: an index in the list's own order (never used first when going up, last when
  going down). The run start moves `last_used_at` at most once a minute, so nearly every run
  start still updates the token's row in place (HOT): only that minute's first changes the
  indexed value.

SQLite, at SQLite's sizes, does without them.
"""

from django.db import migrations

TRIGRAMS = "token_name_trgm"
LAST_USED = "token_ws_last_used"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAMS} ON tokens_accesstoken "
        "USING gin (upper(name::text) gin_trgm_ops)"
    )
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {LAST_USED} ON tokens_accesstoken "
        "(workspace_id, last_used_at ASC NULLS FIRST, id)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAMS}")
        schema_editor.execute(f"DROP INDEX IF EXISTS {LAST_USED}")


class Migration(migrations.Migration):
    dependencies = [("tokens", "0007_run_rollups")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
