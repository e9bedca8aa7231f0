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


def imported_target_modules(path: Path) -> set[str]:
    """The target_pendo modules a file imports, anywhere in it (in a function too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("target_pendo.")}


def test_the_target_and_its_settings_import_nothing_of_the_cli():
    """cli/ imports target.py (a sync, `ledger retry`) and config/; neither imports cli/ (nor
    config/ the target), so no import has to hide in a function to dodge a cycle."""
    package = ROOT / "target_pendo"
    rules = {
        package / "target.py": ("target_pendo.cli",),
        **{
            p: ("target_pendo.cli", "target_pendo.target")
            for p in (package / "config").rglob("*.py")
        },
    }
    offenders = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path, banned in rules.items()
        for name in imported_target_modules(path)
        if name.startswith(banned)
    )
    assert not offenders, offenders


def module_imports() -> tuple[dict[str, set[str]], list[str]]:
    """target_pendo's modules -> the target_pendo modules they import at their top level;
    and the imports of target_pendo made inside functions (`module: imported`)."""
    package = ROOT / "target_pendo"
    graph: dict[str, set[str]] = {}
    inside: list[str] = []
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), str(path))
        top = [n for stmt in tree.body for n in ast.walk(stmt) if not _in_function(stmt)]
        graph[name] = {m for n in top for m in _target_modules(n)}
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                inside += [f"{name}: {m}" for n in ast.walk(function) for m in _target_modules(n)]
    return graph, inside


def _in_function(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)


def _target_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        names = [node.module]
    elif isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        return []
    return [n for n in names if n.split(".")[0] == "target_pendo"]


def test_imports_run_one_way_with_no_cycle_and_none_dodged_inside_a_function():
    graph, inside = module_imports()
    assert not inside, f"imports inside functions (a cycle dodged?): {inside}"
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done or module not in graph:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
