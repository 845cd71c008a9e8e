"""Statistics: the cluster bootstrap behind every CI (resampling stories or conversations, not
steps or turns, since samples within one are correlated)."""

from __future__ import annotations

from typing import Any

import numpy as np


def cluster_bootstrap(
    metric: Any, groups: list[str], resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile CIs of each value ``metric.statistic`` returns, resampling whole groups with
    replacement ``resamples`` times (seeded). A replicate gives each item its group's draw count."""
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    rng = np.random.default_rng(seed)
    reps: dict[str, list[float]] = {}
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))
        for key, value in metric.statistic(counts[inv].astype(np.float64)).items():
            reps.setdefault(key, []).append(value)
    alpha = (1 - level) / 2
    out = {}
    for key, values in reps.items():
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[~np.isnan(arr)]
        out[key] = (
            (float(np.quantile(arr, alpha)), float(np.quantile(arr, 1 - alpha))) if len(arr) else (float("nan"),) * 2
        )
    return out
