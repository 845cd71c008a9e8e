"""The layers of mg5bench and the reference model, checked on their source. The graph holds every import, also the
ones inside functions (a lazy import is a dependency all the same), and every string that names a module of either
package as ``"module:attr"`` or ``"module"`` (a registry's lazy target is a dependency too). Asserted on it:

- no import cycles anywhere (mg5bench and reference_model together);
- reference_model imports nothing from mg5bench;
- ``mg5bench.core`` reaches nothing outside itself;
- the metrics and the evaluators reach nothing of the registry, the catalog, the API or the CLI;
- the adapters (generation) reach nothing of training, model cards, the run store and runner, scoring, the
  catalog, or the consumers after them (ablation, report, human);
- the report (``mg5bench.leaderboard``) reaches neither the runner nor the ablation package;
- tasks (task -> samples) reach nothing of the stages after them.

"Reaches" is transitive: a module that imports a module that imports a forbidden one breaks the rule as well."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

ROOTS = ("mg5bench", "reference_model")
# a string naming a module of either package (a bare package name, e.g. the distribution "mg5bench", is not one)
TARGET = re.compile(r"^((?:mg5bench|reference_model)(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_][\w.]*)?$")

METRIC_LAYER = ("mg5bench.metrics", "mg5bench.scoring.evaluators")
ABOVE_METRICS = ("mg5bench.catalog", "mg5bench.core.registry", "mg5bench.api", "mg5bench.cli")
AFTER_ADAPTERS = ("mg5bench.training", "mg5bench.modelcards", "mg5bench.runs.runner", "mg5bench.runs.keys",
                  "mg5bench.runs.store", "mg5bench.runs.ablations", "mg5bench.scoring", "mg5bench.catalog",
                  "mg5bench.ablation", "mg5bench.leaderboard", "mg5bench.human", "mg5bench.api",
                  "mg5bench.cli")  # fmt: skip
GENERATION = ("mg5bench.runs.runner", "mg5bench.ablation")
AFTER_TASKS = ("mg5bench.adapters", "mg5bench.runs", "mg5bench.scoring", "mg5bench.metrics", "mg5bench.catalog",
               "mg5bench.training", "mg5bench.modelcards", "mg5bench.ablation", "mg5bench.leaderboard",
               "mg5bench.human", "mg5bench.api", "mg5bench.cli")  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for root in ROOTS for p in (REPO / root).rglob("*.py")}


def _named(target: str, known: dict[str, Path]) -> str | None:
    """The module a dotted name (or ``module:attr`` string) refers to: the longest prefix that is a module."""
    parts = target.split(":")[0].split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        if name in known:
            return name
    return None


def import_graph(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the modules of either package it imports or names in a string target. ``from a.b import c`` points at
    ``a.b.c`` when that is a module, else at ``a.b``."""
    known = modules() if known is None else known
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
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
                    edges.add(full if full in known else base)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TARGET.match(node.value):
                edges.add(TARGET.match(node.value).group(1))  # type: ignore[union-attr]
        resolved = {_named(e, known) for e in edges}
        graph[name] = {e for e in resolved if e is not None and e != name}
    return graph


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` reaches through the graph (itself excluded unless in a cycle)."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def violations(
    graph: dict[str, set[str]], sources: tuple[str, ...], forbidden: tuple[str, ...]
) -> set[tuple[str, str]]:
    """(module, forbidden module it reaches) for every module under ``sources``."""

    def under(m: str, prefixes: tuple[str, ...]) -> bool:
        return any(m == p or m.startswith(p + ".") for p in prefixes)

    return {(m, r) for m in graph if under(m, sources) for r in reach(graph, m) if under(r, forbidden)}


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


def test_the_graph_sees_lazy_package_and_string_imports() -> None:
    graph = import_graph()
    assert "mg5bench.catalog" in graph["mg5bench.runs.keys"]  # a lazy import inside prepare
    assert "mg5bench.adapters.divter" in graph["mg5bench.training.divter"]
    assert "mg5bench.api" in graph["mg5bench.cli.runs"]  # `from mg5bench import api` names the module
    assert "mg5bench.metrics.clip" in graph["mg5bench.catalog"]  # "mg5bench.metrics.clip:ClipI", a string target
    assert "mg5bench.training.finetune" in graph["mg5bench.catalog"]
    assert "reference_model.losses" in graph["reference_model.train_t2i"]


def test_the_graph_sees_a_string_target_cycle(tmp_path: Path) -> None:
    """A registry that names a module which imports the registry back is a cycle, though no import statement
    closes it."""
    (tmp_path / "mg5bench" / "metrics").mkdir(parents=True)
    (tmp_path / "mg5bench" / "__init__.py").write_text("")
    (tmp_path / "mg5bench" / "catalog.py").write_text('ENTRIES = {"m": "mg5bench.metrics.m:M"}\n')
    (tmp_path / "mg5bench" / "metrics" / "__init__.py").write_text("")
    (tmp_path / "mg5bench" / "metrics" / "m.py").write_text("def f():\n    from mg5bench import catalog\n")
    known = {".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (tmp_path / "mg5bench").rglob("*.py")}  # fmt: skip
    assert cycles(import_graph(known)) == [["mg5bench.catalog", "mg5bench.metrics.m"]]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_reference_model_imports_nothing_from_mg5bench() -> None:
    graph = import_graph()
    assert {(m, d) for m, deps in graph.items() if m.startswith("reference_model") for d in deps
            if d.startswith("mg5bench")} == set()  # fmt: skip


def test_core_reaches_nothing_outside_core() -> None:
    graph = import_graph()
    bad = {(m, r) for m in graph if m.startswith("mg5bench.core") for r in reach(graph, m)
           if r.startswith("mg5bench") and not r.startswith("mg5bench.core")}  # fmt: skip
    assert bad == set()


def test_metrics_and_evaluators_reach_no_registry_catalog_or_api() -> None:
    assert violations(import_graph(), METRIC_LAYER, ABOVE_METRICS) == set()


def test_adapters_reach_no_later_stage_nor_training_or_card_code() -> None:
    assert violations(import_graph(), ("mg5bench.adapters",), AFTER_ADAPTERS) == set()


def test_the_report_reaches_neither_the_runner_nor_ablation_code() -> None:
    assert violations(import_graph(), ("mg5bench.leaderboard",), GENERATION) == set()


def test_tasks_reach_no_later_stage() -> None:
    assert violations(import_graph(), ("mg5bench.tasks",), AFTER_TASKS) == set()


def test_the_rules_see_a_reach_through_another_module() -> None:
    graph = {"mg5bench.leaderboard.a": {"mg5bench.scoring.b"}, "mg5bench.scoring.b": {"mg5bench.runs.runner"},
             "mg5bench.runs.runner": set()}  # fmt: skip
    assert violations(graph, ("mg5bench.leaderboard",), GENERATION) == {("mg5bench.leaderboard.a",
                                                                         "mg5bench.runs.runner")}  # fmt: skip
