"""The package's layout: no import circles between its modules, and each stage's subpackage imports only the stages
below it (job -> data -> models -> reconcile -> evaluate -> staffing / inventory -> outputs; pipeline, stage_log and
cli on top). Read from the source with `ast`, every import counted, those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import forecasting

PACKAGE = Path(forecasting.__file__).resolve().parent
# The stages in data-path order; a module may import its own stage and the ones before it.
ORDER = ["job", "data", "models", "reconcile", "evaluate", "staffing", "inventory", "outputs"]
TOP = {"pipeline", "onboarding", "stage_log", "cli", "cli_common", "cli_setup"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports (`from forecasting.x import y` counts forecasting.x.y when that is a
    module, else forecasting.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [name for name in names if name in modules] or [node.module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules}
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imports(path, modules) - {name} for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in edges.get(node, ()):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "top"


def rank(module: str) -> int:
    name = stage(module)
    if name in ORDER:
        return ORDER.index(name)
    return len(ORDER)  # pipeline, stage_log, cli and the package itself


def test_the_package_has_no_import_circle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_circle():
    """The check above can fail: a made-up graph with a circle of three and a self-contained pair."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(cycles(edges)) == [["a", "b", "c"], ["d", "e"]]


def test_each_stage_imports_only_the_stages_below_it():
    upward = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if rank(target) > rank(module)
    ]
    assert upward == []


def test_every_subpackage_is_a_stage_and_the_top_holds_only_the_orchestration():
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages <= set(ORDER), subpackages - set(ORDER)
    top_modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_modules <= TOP, top_modules - TOP


def test_the_job_imports_nothing_else_of_the_project():
    outside = {f"{m} -> {t}" for m, ts in graph().items() if stage(m) == "job" for t in ts if stage(t) != "job"}
    assert outside == set()
