"""README stays true: its settings table is what `--about --format=markdown` prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def about_settings_table() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "target_pendo", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("|")]
    return "\n".join(rows)


def readme_settings_table() -> str:
    match = re.search(
        r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", README.read_text(), re.S
    )
    assert match, "README lost its settings markers"
    return match.group(1).strip()


def test_readme_settings_table_matches_about() -> None:
    assert readme_settings_table() == about_settings_table(), (
        "README settings table is stale: regenerate it from "
        "`target-pendo --about --format=markdown`"
    )


if __name__ == "__main__":  # `python tests/e2e/test_readme.py` rewrites the table
    text = README.read_text()
    new = re.sub(
        r"<!-- settings:start -->\n.*?<!-- settings:end -->",
        lambda _: f"<!-- settings:start -->\n{about_settings_table()}\n<!-- settings:end -->",
        text,
        flags=re.S,
    )
    README.write_text(new)
