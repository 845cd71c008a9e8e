"""Print the synthetic world's sanity figures per level: build time and size, oracle accuracy (clean and degraded),
and what the words carry against the scene on the VIST-like val split (``world_checks.information_bounds``): the
caption-only guess and the best guess of a text pipeline (narration + a caption of every context image) with three
oracle-perfect captioners: one that samples the world's own caption distribution, one that writes its most likely
caption (a greedy captioner), and lossless captions.

    .venv/bin/python bench/world.py [--n 1000] [--levels 1,2,3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mg5bench.data.world import WorldConfig, build_world
from mg5bench.data.world_checks import DEGRADATIONS, information_bounds, oracle_accuracy

METHODS = {
    "caption_only": "caption only",
    "sampling_captioner": "sampling captioner",
    "mode_captioner": "mode captioner",
    "lossless": "lossless captions",
}


def _size_mb(root: Path) -> float:
    """Bytes on disk (allocated blocks, as du counts them) in MB."""
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="fresh scenes per oracle measurement")
    ap.add_argument("--levels", default="1,2,3", help="comma-separated world levels")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in levels:
            t = time.perf_counter()
            root = Path(tmp) / f"level{level}"
            m = build_world(WorldConfig(level=level), root, progress=True)
            print(f"default world level {level}: {m['n_images']} images, {_size_mb(root):.0f} MB on disk, built in "
                  f"{time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
            b = information_bounds(root, fit_split="train", eval_split="val")
            for measure in ("exact", "objects"):
                for method, label in METHODS.items():
                    r = b[method][measure]
                    rows.append((level, measure, label, *r["per_step"].values(), r["later"]))
    print(f"\nwhat the words carry against the scene, VIST-like val ({b['n_stories']} stories); step k as in "
          "sample ids")  # fmt: skip
    head = ("level", "measure", "guess from", *(f"k={k}" for k in range(5)), "k>=1")
    print("  ".join(f"{h:<18}" if i == 2 else f"{h:>7}" for i, h in enumerate(head)))
    for row in rows:
        cells = [f"{row[0]:>7}", f"{row[1]:>7}", f"{row[2]:<18}", *(f"{v:>7.3f}" for v in row[3:])]
        print("  ".join(cells))
    print()
    for level in levels:
        for kind in DEGRADATIONS:
            r = oracle_accuracy(args.n, level=level, kind=kind)
            attrs = " ".join(f"{a}={v:.4f}" for a, v in r["attributes"].items())
            print(f"oracle level {level} {kind:<5} {r['params']}: {attrs} exact={r['exact']:.4f} (n={args.n})",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
