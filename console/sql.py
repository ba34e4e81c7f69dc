"""Raw SQL statements kept in `.sql` files beside the code that runs them, read once at import."""

from __future__ import annotations

from pathlib import Path


def statement(path: Path) -> str:
    """The statement in the file at `path`, without its comment lines (they explain it to
    readers; the database need not receive them on every call)."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip() + "\n"
