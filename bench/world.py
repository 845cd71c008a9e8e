"""Print the synthetic world's sanity figures: build time, oracle accuracy (clean and degraded),
and how often caption k alone determines the step-k scene on the VIST-like split.

    .venv/bin/python bench/world.py [--n 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mg5bench.data.world import WorldConfig, build_world
from mg5bench.data.world_checks import DEGRADATIONS, caption_determinacy, oracle_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="fresh scenes per oracle measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for level in (1, 2):
            t = time.perf_counter()
            root = Path(tmp) / f"level{level}"
            m = build_world(WorldConfig(level=level), root, progress=False)
            print(f"default world level {level}: {m['n_images']} images built in {time.perf_counter() - t:.1f} s")
            d = caption_determinacy(root, fit_split="train", eval_split="val")
            steps = ", ".join(f"step {k}: {v:.3f}" for k, v in d["per_step"].items())
            print(f"  caption-only exact-scene accuracy (fit train, eval val): {steps}")
            print(f"  steps 2-5 pooled: {d['steps_2_5']:.3f} (must be < 0.5)")
    for level in (1, 2):
        for kind in DEGRADATIONS:
            r = oracle_accuracy(args.n, level=level, kind=kind)
            attrs = " ".join(f"{a}={v:.4f}" for a, v in r["attributes"].items())
            print(f"oracle level {level} {kind:<5} {r['params']}: {attrs} exact={r['exact']:.4f} (n={args.n})")


if __name__ == "__main__":
    main()
