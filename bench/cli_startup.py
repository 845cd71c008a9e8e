"""Print `mg5bench --help` wall time against `python -c "import torch"` (median of N runs each).

.venv/bin/python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    help_t = wall([sys.executable, "-m", "mg5bench", "--help"], args.runs)
    torch_t = wall([sys.executable, "-c", "import torch"], args.runs)
    empty_t = wall([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass        : {empty_t:.3f} s")
    print(f"mg5bench --help       : {help_t:.3f} s")
    print(f"python -c import torch: {torch_t:.3f} s")
    print(f"ratio help / import torch: {help_t / torch_t:.3f}")


if __name__ == "__main__":
    main()
