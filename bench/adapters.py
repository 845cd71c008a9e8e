"""Every registered model on every task of the embedded world: the leaderboard in miniature.

Runs `mg5bench run` (the Python API, one process) for each (task, model) on the first --limit val samples with the
shipped default checkpoints, and prints one table per task with the headline metrics and their 95% CIs, plus
whether gt > minigpt5 > blank holds on VIST's clip_i and scene_accuracy. Runs are stored under --out, so a second
call only prints.

    .venv/bin/python bench/adapters.py [--limit 100] [--out runs/bench-adapters] [--models gt,blank,minigpt5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HEADLINE = {
    "vist": ["clip_i", "clip_i.image_rate", "scene_accuracy", "fid"],
    "cc3m": ["clip_t", "clip_i", "scene_accuracy", "fid"],
    "mmdialog": ["clip_i", "clip_i.image_rate", "mm_relevance", "bleu1", "scene_accuracy"],
}


def _fmt(m: dict | None) -> str:
    if not m or m.get("value") is None:
        return "-"
    lo, hi = m.get("ci_low"), m.get("ci_high")
    return f"{m['value']:.3f}" + (f" [{lo:.3f},{hi:.3f}]" if lo is not None and hi is not None else "")


def main() -> None:
    from mg5bench import api

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-adapters"))
    ap.add_argument("--tasks", default="vist,mmdialog,cc3m")
    ap.add_argument("--models", default=",".join(name for name, _ in api.names("models")))
    args = ap.parse_args()
    results: dict[tuple[str, str], dict] = {}
    for task in args.tasks.split(","):
        for model in args.models.split(","):
            t0 = time.perf_counter()
            res = api.run(api.RunSpec(task=task, model=model, split="val", limit=args.limit), args.out, progress=True)
            results[task, model] = res.report["metrics"]
            print(f"{task}/{model}: {time.perf_counter() - t0:.1f} s ({'reused' if res.reused else 'generated'})")
    for task in args.tasks.split(","):
        cols = HEADLINE[task]
        print(f"\n## {task} (val, first {args.limit} samples)\n")
        print("| model | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for model in args.models.split(","):
            m = results[task, model]
            print(f"| {model} | " + " | ".join(_fmt(m.get(c)) for c in cols) + " |")
    if "vist" in args.tasks.split(",") and {"gt", "minigpt5", "blank"} <= set(args.models.split(",")):
        for metric in ("clip_i", "scene_accuracy"):
            v = [results["vist", k][metric]["value"] for k in ("gt", "minigpt5", "blank")]
            print(f"VIST {metric}: gt {v[0]:.3f} > minigpt5 {v[1]:.3f} > blank {v[2]:.3f}: {v[0] > v[1] > v[2]}")


if __name__ == "__main__":
    main()
