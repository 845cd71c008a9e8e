"""What the runner costs around the model, on the default run (`mg5bench run --task vist --model minigpt5`).

Prints, each as a ratio against its target:
- cold run wall time / warm re-run wall time (a finished run is read back, not regenerated; target >= 50x);
- the suite's overhead as a fraction of pure model time (wall time of the cold run minus the time spent inside
  the adapter's load + generate, over that model time; target <= 10%);
- peak RSS of the cold run (target <= 3 GiB);
- rescoring the stored run (`mg5bench score RUN --resamples 200`: no model, no generation) vs its generation time;
- speed of 2 processes over 1 process, one thread each (`torchrun --nproc-per-node 2`; ideal 2.0);
- with --profile, where the cold run's seconds go: imports, reading and verifying the data, resolving the run,
  loading the model, generating, and in the scoring the evaluator, feature extraction and the bootstrap (cProfile
  cumulative times of the functions that do each, in a separate cold run).

Every run goes to a fresh temporary --out, through the real CLI in a subprocess (imports included). Measure on a
quiet machine: another process on the CPU makes every ratio worse.

    .venv/bin/python bench/run.py [--task vist] [--model minigpt5] [--limit 200] [--skip-scale] [--profile]
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


# the phases of a cold run and the functions whose cumulative time is each one (the first that ran is used)
PHASES = (
    ("imports (mg5bench + libraries at first use)", None),
    ("data: read the split, verify the world", ("mg5bench/tasks/samples.py", "build_samples")),
    ("resolve the run (adapter, key, folder)", ("mg5bench/runs/keys.py", "prepare")),
    ("load the model", ("mg5bench/adapters/minigpt5.py", "load")),
    ("generate (inside the model)", ("mg5bench/adapters/minigpt5.py", "generate")),
    ("scoring: load the evaluator", ("mg5bench/scoring/evaluators.py", "load_evaluator")),
    ("scoring: image and text features", ("mg5bench/scoring/features.py", "build_bank")),
    ("scoring: metrics and bootstrap", ("mg5bench/scoring/statistics.py", "cluster_bootstrap")),
    ("scoring in all", ("mg5bench/scoring/scorer.py", "score_run")),
)


def profile_cold(common: list[str], limit: int) -> None:
    """A cold run under cProfile; prints the seconds of each phase (PHASES) and their share of the wall time."""
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "cold.prof"
        argv = [*common, "--limit", str(limit), "--out", str(Path(tmp) / "runs"), "--quiet"]
        code = f'import cProfile; from mg5bench.cli import main; cProfile.run("main({argv!r})", {str(prof)!r})'
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        stats = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
        imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mg5bench.cli, torch, open_clip, "
                              "diffusers, transformers, torchmetrics"], capture_output=True, text=True)  # fmt: skip
        import_s = sum(int(line.split("|")[1]) for line in imp.stderr.splitlines()
                       if line.startswith("import time:") and line.split("|")[1].strip().isdigit() and
                       not line.split("|")[2].startswith("  ")) / 1e6  # fmt: skip
    print(f"cold run profile ({limit} samples, wall {wall:.1f} s under cProfile):")
    print(f"  {PHASES[0][0]:<48} {import_s:7.2f} s  {import_s / wall:6.1%}")
    for name, where in PHASES[1:]:
        assert where is not None
        hits = [v for (f, _, fn), v in stats.items() if f.endswith(where[0]) and fn == where[1]]
        secs = max((v[3] for v in hits), default=0.0)
        print(f"  {name:<48} {secs:7.2f} s  {secs / wall:6.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="vist")
    ap.add_argument("--model", default="minigpt5")
    ap.add_argument("--limit", type=int, default=200, help="samples (the CLI's default limit is 200)")
    ap.add_argument("--scale-limit", type=int, default=32, help="samples for the 1- vs 2-process comparison")
    ap.add_argument("--skip-scale", action="store_true", help="skip the 1- vs 2-process comparison")
    ap.add_argument("--profile", action="store_true", help="also profile a cold run: where its seconds go")
    args = ap.parse_args()
    common = ["--task", args.task, "--model", args.model, "--split", "val"]
    if args.profile:
        profile_cold(["run", *common], args.limit)
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
