"""`pip install .` (non-editable) must work: the task definitions and human_eval ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_ships_task_definitions_and_loads_them_outside_the_repo(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip_wheel, "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("mg5bench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for task in ("cc3m", "vist", "mmdialog"):
        assert f"mg5bench/tasks/definitions/{task}.yaml" in names
        assert f"mg5bench/tasks/definitions/{task}/README.md" in names
    assert "mg5bench/_human_eval/README.md" in names
    assert "reference_model/__init__.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    # install into a plain folder and load the task definitions from there, far from the source tree
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = "import mg5bench.tasks as t; print(t.definitions_dir()); print(t.get_task('vist').option('round_range'))"
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    definitions, round_range = out.stdout.split()
    assert Path(definitions) == target / "mg5bench" / "tasks" / "definitions"
    assert round_range == "all"
