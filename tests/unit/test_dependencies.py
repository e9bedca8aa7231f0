"""Every package the code imports is declared in pyproject.toml.

A package that arrives only as somebody else's dependency (SQLAlchemy through singer-sdk, say)
can vanish or change major version with their next release; declaring it pins what we rely on.
The product's imports must be in `dependencies`; the tests', the benchmark's and the e2e
runner's may also come from the `dev` extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = {"target_pendo", "pendo_emulator", "tests", "e2e", "bench"}


def declared(requirements: list[str]) -> set[str]:
    return {canonical(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in requirements}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN - {"__future__"}


def distributions(modules: set[str]) -> dict[str, set[str]]:
    known = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in known)
    assert not missing, f"imported but not installed by any distribution: {missing}"
    return {m: {canonical(d) for d in known[m]} for m in modules}


def test_every_package_the_product_imports_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = declared(project["dependencies"])
    undeclared = {
        module: dists
        for module, dists in distributions(
            imported_top_level(ROOT / "target_pendo") | imported_top_level(ROOT / "pendo_emulator")
        ).items()
        if not dists & runtime
    }
    assert not undeclared, f"add to [project] dependencies: {undeclared}"


def test_every_package_the_tests_bench_and_e2e_import_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = declared(project["dependencies"]) | declared(project["optional-dependencies"]["dev"])
    modules = set().union(*(imported_top_level(ROOT / f) for f in ("tests", "e2e", "bench")))
    undeclared = {m: d for m, d in distributions(modules).items() if not d & allowed}
    assert not undeclared, f"add to the dev extra: {undeclared}"
