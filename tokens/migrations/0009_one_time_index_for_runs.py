"""PostgreSQL: one index on the runs' time instead of two.

Every run start inserts into each of the runs table's indexes. The governance page's list (newest
first, by time and id) and its counts over a period (an index-only scan that needs the token and
the member) can share one index: (workspace, started_at, id) carrying token_id and user_id.
`run_ws_time` and the earlier covering index go. SQLite keeps `run_ws_time`: at SQLite's sizes
the difference does not matter, and it has no covering indexes.
"""

from django.db import migrations

NEW = "run_ws_started"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {NEW} ON tokens_run (workspace_id, started_at, id) "
        "INCLUDE (token_id, user_id)"
    )
    schema_editor.execute("DROP INDEX IF EXISTS run_ws_started_counts")
    schema_editor.execute("DROP INDEX IF EXISTS run_ws_time")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS run_ws_time ON tokens_run (workspace_id, started_at DESC, id DESC)")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS run_ws_started_counts ON tokens_run (workspace_id, started_at) "
        "INCLUDE (token_id, user_id)")
    schema_editor.execute(f"DROP INDEX IF EXISTS {NEW}")


class Migration(migrations.Migration):
    dependencies = [("tokens", "0008_token_list_indexes")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
