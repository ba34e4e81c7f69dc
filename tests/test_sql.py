"""The hot path's statements live in tokens/sql/, whole: the run start's facts are the token
check's own statement, word for word, so the two cannot drift."""

from pathlib import Path

from console.sql import statement
from tokens.authn import FACTS_SQL
from tokens.services.runs import RUN_START_SQL

SQL = Path(__file__).resolve().parent.parent / "tokens" / "sql"


def test_the_run_start_checks_with_the_token_checks_statement():
    assert FACTS_SQL.strip() in RUN_START_SQL
    assert RUN_START_SQL.startswith("WITH f AS (\n" + FACTS_SQL.strip() + "\n),")


def test_comments_stay_in_the_files_and_out_of_the_statements(tmp_path):
    path = tmp_path / "s.sql"
    path.write_text("-- why\nSELECT 1 -- trailing words stay\n  -- indented\nFROM t\n")
    assert statement(path) == "SELECT 1 -- trailing words stay\nFROM t\n"
    assert "--" not in FACTS_SQL and "\n--" not in RUN_START_SQL
    assert all(p.read_text().startswith("--") for p in SQL.glob("*.sql"))
