"""What the runner costs around the model, on the default run (`mg5bench run --task vist --model minigpt5`).

Prints, each as a ratio against its target:
- cold run wall time / warm re-run wall time (a finished run is read back, not regenerated; target >= 50x);
- the suite's overhead as a fraction of pure model time (wall time of the cold run minus the time spent inside
  the adapter's load + generate, over that model time; target <= 10%);
- peak RSS of the cold run (target <= 3 GiB);
- rescoring the stored run (`mg5bench score RUN --resamples 200`: no model, no generation) vs its generation time;
- speed of 2 processes over 1 process, one thread each (`torchrun --nproc-per-node 2`; ideal 2.0).

Every run goes to a fresh temporary --out, through the real CLI in a subprocess (imports included).

    .venv/bin/python bench/run.py [--task vist] [--model minigpt5] [--limit 200] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _score(folder: Path, *args: str) -> float:
    """Wall seconds of `mg5bench score RUN_FOLDER ...` in a subprocess."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mg5bench", "score", str(folder), *args, "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def _cli(args: list[str], out: Path, threads: int | None = None, procs: int = 1) -> tuple[float, dict]:
    """Run `mg5bench run ...` in a subprocess; return (wall seconds, run.json)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # thread count only: it changes speed, not numbers
    base = [sys.executable, "-m", "mg5bench", "run", *args, "--out", str(out), "--quiet"]
    if procs > 1:
        base = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "-m", "mg5bench",
                "run", *args, "--out", str(out), "--quiet"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(base, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    info = json.loads(next(out.rglob("run.json")).read_text())
    return wall, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="vist")
    ap.add_argument("--model", default="minigpt5")
    ap.add_argument("--limit", type=int, default=200, help="samples (the CLI's default limit is 200)")
    ap.add_argument("--scale-limit", type=int, default=32, help="samples for the 1- vs 2-process comparison")
    ap.add_argument("--skip-scale", action="store_true", help="skip the 1- vs 2-process comparison")
    args = ap.parse_args()
    common = ["--task", args.task, "--model", args.model, "--split", "val"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "runs"
        cold, info = _cli([*common, "--limit", str(args.limit)], out)
        rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
        warm, _ = _cli([*common, "--limit", str(args.limit)], out)
        folder = next(out.rglob("run.json")).parent
        scoring_s = json.loads(next((folder / "scores").glob("*/metrics.json")).read_text())["seconds"]
        rescore = _score(folder, "--resamples", "200")
    timing = info["runs"][-1]["timing"]
    model_s = timing["model_s_rank0"]
    overhead = (cold - model_s) / model_s
    print(f"default run: {args.model} on {args.task}, {info['runs'][-1]['generated']} samples generated")
    print(f"  cold wall {cold:.1f} s (model {model_s:.1f} s, generation {timing['generation_s']:.1f} s, "
          f"scoring {scoring_s:.1f} s)")  # fmt: skip
    print(f"  warm re-run {warm:.2f} s  -> cold/warm = {cold / warm:.1f}x (target >= 50x)")
    print(f"  rescoring (score RUN --resamples 200, no model) {rescore:.1f} s wall vs generation "
          f"{timing['generation_s']:.1f} s -> {rescore / timing['generation_s']:.3f}")  # fmt: skip
    print(f"  suite overhead / model time = {overhead:.3f} (target <= 0.10)")
    print(f"  peak RSS {rss_gib:.2f} GiB (target <= 3 GiB): ratio {rss_gib / 3:.2f}")
    if args.skip_scale:
        return
    scale = [*common, "--limit", str(args.scale_limit)]
    with tempfile.TemporaryDirectory() as tmp:
        one, i1 = _cli(scale, Path(tmp) / "a", threads=1)
        two, i2 = _cli(scale, Path(tmp) / "b", threads=1, procs=2)
    g1, g2 = i1["runs"][-1]["timing"]["generation_s"], i2["runs"][-1]["timing"]["generation_s"]
    print(f"  1 process x 1 thread: generation {g1:.1f} s (wall {one:.1f} s)")
    print(f"  2 processes x 1 thread: generation {g2:.1f} s (wall {two:.1f} s)")
    print(f"  generation speed 2 procs / 1 proc = {g1 / g2:.2f}x (ideal 2.0); wall {one / two:.2f}x")


if __name__ == "__main__":
    main()
