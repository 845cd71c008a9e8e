"""The package's layers, checked on its source: no import cycles, and the adapters (the generation stage) import
nothing from the stages after them or from training and card code. Every import counts, also the ones inside
functions (a lazy import is a dependency all the same)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "mg5bench"
# what the generation stage must not reach: the later stages of the flow, and training and model-card code
FORBIDDEN_FOR_ADAPTERS = ("mg5bench.training", "mg5bench.modelcards", "mg5bench.runs.runner", "mg5bench.scoring.scorer")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the mg5bench modules it imports. ``from a.b import c`` points at ``a.b.c`` when that is a module
    of the package, else at ``a.b``."""
    modules = {module_name(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    pkg = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    edges.add(full if full in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_and_package_imports() -> None:
    graph = import_graph()
    assert "mg5bench.catalog" in graph["mg5bench.runs.keys"]  # a lazy import inside prepare
    assert "mg5bench.adapters.divter" in graph["mg5bench.training.divter"]
    assert "mg5bench.api" in graph["mg5bench.cli.runs"]  # `from mg5bench import api` names the module


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_adapters_import_no_later_stage_nor_training_or_card_code() -> None:
    graph = import_graph()
    bad = {(m, dep) for m, deps in graph.items() if m.startswith("mg5bench.adapters") for dep in deps
           if dep.startswith(FORBIDDEN_FOR_ADAPTERS)}  # fmt: skip
    assert bad == set()


def test_reference_model_imports_nothing_from_mg5bench() -> None:
    for path in (REPO / "reference_model").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "mg5bench"], path
