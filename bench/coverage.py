"""Coverage of the intervals behind ablation and report comparisons, measured by simulation.

Paired differences of per-sample values with 5 samples per story (VIST's steps), stories correlated: a
continuous metric (skewed, like CLIP scores) and a 0/1 metric (like exact scene accuracy, with story-level
difficulty), at no effect and at an effect of 0.1. For one checkpoint per side, the share of repetitions whose 95%
interval covers the true difference: the cluster t-interval the suite uses
(``mg5bench.scoring.statistics.cluster_t_interval``) against the cluster percentile bootstrap. For three
training seeds per side with a seed spread, the suite's two-level interval
(``mg5bench.scoring.statistics.two_level_difference``) against a two-level percentile bootstrap.

    .venv/bin/python bench/coverage.py --reps 4000
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

STEPS = 5


def paired_clusters(rng: np.random.Generator, reps: int, clusters: int, kind: str, effect: float) -> np.ndarray:
    """(reps, clusters) per-story mean paired differences under the simulation's model."""
    if kind == "continuous":
        story = rng.normal(0, 0.5, (reps, clusters, 1))
        a = story + rng.exponential(1, (reps, clusters, STEPS)) + effect
        b = story + rng.exponential(1, (reps, clusters, STEPS))
    else:
        p = 0.9 * rng.beta(1, 2, (reps, clusters, 1))
        a = (rng.random((reps, clusters, STEPS)) < p + effect).astype(float)
        b = (rng.random((reps, clusters, STEPS)) < p).astype(float)
    return (a - b).mean(2)


def seeded_runs(rng: np.random.Generator, seeds: int, clusters: int, kind: str, effect: float, seed_sd: float,
                story: np.ndarray) -> np.ndarray:  # fmt: skip
    """(seeds, clusters) per-story means of one recipe's checkpoints: a seed effect shared by all its stories."""
    shift = rng.normal(0, seed_sd, (seeds, 1, 1)) + effect
    if kind == "continuous":
        x = story[None, :, None] + shift + rng.exponential(1, (seeds, clusters, STEPS))
    else:
        p = np.clip(story[None, :, None] + shift, 0, 1)
        x = (rng.random((seeds, clusters, STEPS)) < p).astype(float)
    return x.mean(2)


def one_seed_coverage(kind: str, clusters: int, effect: float, reps: int, seed: int = 0,
                      boot: int = 1000) -> dict[str, float]:  # fmt: skip
    """Coverage of the cluster t-interval and of the percentile bootstrap (``boot`` resamples) over ``reps``."""
    from scipy.stats import t

    rng = np.random.default_rng(seed)
    d = paired_clusters(rng, reps, clusters, kind, effect)
    est = d.mean(1)
    se = d.std(1, ddof=1) / np.sqrt(clusters)
    q = t.ppf(0.975, clusters - 1)
    t_cover = float(np.mean((est - q * se <= effect) & (effect <= est + q * se)))
    pct = 0
    for r in range(reps):
        means = d[r][rng.integers(0, clusters, (boot, clusters))].mean(1)
        lo, hi = np.quantile(means, [0.025, 0.975])
        pct += lo <= effect <= hi
    return {"t": t_cover, "percentile": float(pct / reps)}


def two_level_coverage(kind: str, clusters: int, seed_sd: float, reps: int, seeds: int = 3, seed: int = 0,
                       boot: int = 300) -> dict[str, float]:  # fmt: skip
    """Coverage of the suite's two-level interval and of a two-level percentile bootstrap at no effect, with
    ``seeds`` independent checkpoints per side whose seed effects have standard deviation ``seed_sd``."""
    from mg5bench.scoring.statistics import two_level_difference

    rng = np.random.default_rng(seed)
    w = np.ones(clusters)
    ours = pct = 0
    for _ in range(reps):
        story = rng.normal(0, 0.5, clusters) if kind == "continuous" else 0.8 * rng.beta(1, 2, clusters)
        xb = seeded_runs(rng, seeds, clusters, kind, 0.0, seed_sd, story)
        xo = seeded_runs(rng, seeds, clusters, kind, 0.0, seed_sd, story)
        lo, hi = two_level_difference(xb, xo, w, paired=False)["ci"]
        ours += lo <= 0 <= hi
        reps_b = np.empty(boot)
        for i in range(boot):
            cc = rng.integers(0, clusters, clusters)
            so, sb = rng.integers(0, seeds, seeds), rng.integers(0, seeds, seeds)
            reps_b[i] = xo[so][:, cc].mean() - xb[sb][:, cc].mean()
        lo, hi = np.quantile(reps_b, [0.025, 0.975])
        pct += lo <= 0 <= hi
    return {"two_level_t": float(ours / reps), "two_level_percentile": float(pct / reps)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2000, help="repetitions per cell (default 2000)")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    print(f"one checkpoint per side, {args.reps} repetitions per cell, 95% intervals")
    print(f"{'metric':<11} {'effect':>6} {'stories':>7} {'cluster t':>9} {'percentile':>10}")
    for kind in ("continuous", "binary"):
        for effect in (0.0, 0.1):
            for clusters in (10, 20, 50, 100):
                c = one_seed_coverage(kind, clusters, effect, args.reps)
                out[f"{kind}/{effect}/{clusters}"] = c
                print(f"{kind:<11} {effect:>6} {clusters:>7} {c['t']:>9.3f} {c['percentile']:>10.3f}", flush=True)
    reps = max(100, args.reps // 5)
    print(f"\nthree seeds per side (independent checkpoints), no effect, {reps} repetitions per cell")
    print(f"{'metric':<11} {'seed sd':>7} {'stories':>7} {'two-level t':>11} {'2-level pct':>11}")
    for kind in ("continuous", "binary"):
        for seed_sd in (0.0, 0.05, 0.15):
            for clusters in (20, 100):
                c = two_level_coverage(kind, clusters, seed_sd, reps)
                out[f"seeds/{kind}/{seed_sd}/{clusters}"] = c
                print(f"{kind:<11} {seed_sd:>7} {clusters:>7} {c['two_level_t']:>11.3f} "
                      f"{c['two_level_percentile']:>11.3f}", flush=True)  # fmt: skip
    return out


if __name__ == "__main__":
    main()
