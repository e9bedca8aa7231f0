"""The package layout's rules that no linter checks: the emulator is an independent witness of
Pendo's contract, so it imports nothing from target_pendo (a limit the client got wrong would
otherwise be wrong in the oracle too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: Path) -> dict[str, set[str]]:
    """file -> the top-level names of the modules it imports."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_emulator_imports_nothing_from_the_target():
    found = imported_modules(ROOT / "pendo_emulator")
    assert found  # the package is where this test looks
    offenders = sorted(path for path, names in found.items() if "target_pendo" in names)
    assert not offenders, f"pendo_emulator imports target_pendo in {offenders}"
