"""The report's plan (``plan.yaml``: tasks with their limit, the models to run on every task, the ablation axes):
what ``mg5bench report --rebuild`` asks the API to generate before it renders, and which ablations the report
names as missing when they are not stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLAN_FILE = Path(__file__).resolve().parent / "plan.yaml"


def load_plan(path: Path | None = None) -> dict[str, Any]:
    """A plan YAML (``plan.yaml``: tasks with their limit, models, ablations), checked: every problem is one line
    naming the file and the entry."""
    from mg5bench.core.errors import DataError
    from mg5bench.core.limits import excerpt, int_problem
    from mg5bench.data.io import read_yaml

    path = Path(path or PLAN_FILE)
    plan = read_yaml(path, "plan file")
    if not isinstance(plan, dict):
        raise DataError(str(path), None, "a plan is a YAML mapping with tasks, models and ablations",
                        "see mg5bench/leaderboard/plan.yaml")  # fmt: skip
    tasks, models, ablations = plan.get("tasks") or {}, plan.get("models") or [], plan.get("ablations") or []
    if not isinstance(tasks, dict) or not isinstance(models, list) or not isinstance(ablations, list):
        raise DataError(str(path), None, "tasks must be a mapping, models and ablations lists",
                        "see mg5bench/leaderboard/plan.yaml")  # fmt: skip
    for task, opts in tasks.items():
        problem = int_problem(opts.get("limit") if isinstance(opts, dict) else None, 1)
        if problem:
            raise DataError(str(path), f"task {excerpt(task)}", f"limit {problem}", "give e.g. {limit: 200}")
    for i, a in enumerate(ablations):
        if not isinstance(a, dict) or not isinstance(a.get("axis"), str) or not isinstance(a.get("task"), str):
            raise DataError(str(path), f"ablation {i + 1}", "an ablation is {axis: NAME, task: TASK}")
        problem = int_problem(a["limit"], 1) if a.get("limit") is not None else None
        if problem:
            raise DataError(str(path), f"ablation {i + 1}", f"limit {problem}")
    if not all(isinstance(m, str) for m in models):
        raise DataError(str(path), None, "models must be a list of model names")
    return {"tasks": tasks, "models": models, "ablations": ablations}
