"""The machine facts a run key needs (torch's default CPU thread count, CUDA devices) are answered without
importing torch once a process of the same machine and environment has asked, and equal torch's own answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = ("import sys; from mg5bench.core.devices import machine_facts, resolve_device; f = machine_facts(); "
         "d = resolve_device('auto'); print(f['threads'], f['cuda_devices'], d, 'torch' in sys.modules)")  # fmt: skip


def _run(code: str, cache: Path, **env: str) -> str:
    full = {**os.environ, "XDG_CACHE_HOME": str(cache), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=full).stdout.strip()  # fmt: skip


def test_facts_are_torchs_and_the_second_process_does_not_import_torch(tmp_path: Path) -> None:
    truth = _run("import torch; print(torch.get_num_threads(), torch.cuda.device_count())", tmp_path)
    first = _run(PROBE, tmp_path).split()
    second = _run(PROBE, tmp_path).split()
    assert first[:2] == truth.split() == second[:2]
    assert first[3] == "True" and second[3] == "False"  # the second answered from the cache
    # another thread setting is another environment: its own answer, torch's (one that differs from this
    # environment's, which may already set OMP_NUM_THREADS=1)
    other = "2" if truth.split()[0] == "1" else "1"
    one = _run(PROBE, tmp_path, OMP_NUM_THREADS=other).split()
    assert one[0] == other
    files = list((tmp_path / "mg5bench" / "machine").glob("*.json"))
    assert len(files) == 2 and all(json.loads(f.read_text())["facts"]["torch"] for f in files)


def test_a_process_that_set_its_threads_does_not_teach_the_cache(tmp_path: Path) -> None:
    code = ("import torch; torch.set_num_threads(1); from mg5bench.core.devices import machine_facts, cpu_threads; "
            "print(machine_facts()['threads'], cpu_threads())")  # fmt: skip
    assert _run(code, tmp_path) == "1 1"
    assert not (tmp_path / "mg5bench" / "machine").exists()  # nothing remembered from a changed count
