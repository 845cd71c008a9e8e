"""The shape of the code and its text, checked on the tracked files:

- no module over 600 lines and no function over 100 lines (code in mg5bench, reference_model, tests, bench, scripts,
  human_eval), unless a ``# size: <reason>`` comment stands in the module's first lines or on the function's line;
- no history tags in code, docs, cards or configs ("issue N", end-of-block fences, "was:" markers);
- no absolute path of a machine (``/work/``, ``/home/``, ``/root/``, ``/Users/``, ``/mnt/``) anywhere;
- every metric and adapter class says in its docstring what it measures or wraps.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from conftest import REPO

CODE_ROOTS = ("mg5bench/", "reference_model/", "tests/", "bench/", "scripts/", "human_eval/")
TEXT_SUFFIXES = (".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100
SIZE_REASON = re.compile(r"#\s*size:\s*\S")
HISTORY = re.compile(r"\bissue\s*#?\d+|---\s*end of\b|#\s*was:", re.IGNORECASE)
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|Users|mnt)/")
# committed outputs of runs (report tables, world data) are data, not text the project writes by hand
DATA = ("reports/", "official_samples/")


def tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [REPO / f for f in out if f.endswith(suffixes) and (REPO / f).is_file()]


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def test_no_module_or_function_is_too_long_without_a_reason() -> None:
    long = []
    for path in tracked(".py"):
        if not rel(path).startswith(CODE_ROOTS):
            continue
        lines = path.read_text(encoding="utf-8").split("\n")
        if len(lines) > MAX_MODULE_LINES and not any(SIZE_REASON.search(x) for x in lines[:5]):
            long.append(f"{rel(path)}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                around = lines[max(0, node.lineno - 2) : node.lineno]
                if n > MAX_FUNCTION_LINES and not any(SIZE_REASON.search(x) for x in around):
                    long.append(f"{rel(path)}:{node.lineno} {node.name}: {n} lines")
    assert long == []


def test_no_history_tags_in_the_text() -> None:
    found = [f"{rel(p)}:{i}" for p in tracked(*TEXT_SUFFIXES) if not rel(p).startswith(DATA)
             for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").split("\n"), 1)
             if HISTORY.search(line) and p.name != "test_layout.py"]  # fmt: skip
    assert found == []


def test_no_machine_paths_but_the_intended_ones() -> None:
    found = {rel(p) for p in tracked(*TEXT_SUFFIXES) if not rel(p).startswith(DATA) and p.name != "test_layout.py"
             and MACHINE_PATH.search(p.read_text(encoding="utf-8", errors="replace"))}  # fmt: skip
    assert found == set()


def test_every_metric_and_adapter_class_has_a_docstring() -> None:
    missing = []
    for path in tracked(".py"):
        if rel(path).startswith(("mg5bench/metrics/", "mg5bench/adapters/")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            missing += [f"{rel(path)}:{n.name}" for n in ast.walk(tree)
                        if isinstance(n, ast.ClassDef) and not ast.get_docstring(n)]  # fmt: skip
    assert missing == []
