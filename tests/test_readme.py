"""The README tells a newcomer what they need: every setting the console reads is in its
configuration table."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_the_settings_read_is_in_the_readme():
    settings = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings))
    assert {"DEBUG", "EMAIL_URL", "DB_PREPARED_STATEMENTS", "SIGN_IN_EMAIL_LIMIT"} <= read
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert missing == []
