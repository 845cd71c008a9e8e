"""Statistics behind every interval and p-value: samples of one story (or conversation) are correlated, so every
quantity resamples, permutes or averages whole clusters, and a trained variant's training seeds are a second level
of variation above the clusters.

- ``cluster_bootstrap``: percentile CIs of a run's own values (the run tables).
- ``cluster_t_interval`` / ``two_level_difference``: the intervals of paired differences in ablations and the
  report: a t-interval on cluster means (coverage measured in ``tests/mg5bench/test_coverage.py``: the percentile
  bootstrap undercovers at 10-20 clusters, this does not), with the spread between training seeds added when a
  variant has several seeds.
- ``sign_flip_test``, ``cluster_swap_test``: paired permutation p-values at the cluster level (one checkpoint per
  side); ``seed_permutation_test``: the exact permutation test at the seed level.
- ``holm``, ``benjamini_hochberg``: multiplicity corrections of a family of p-values.
- ``spearman_bootstrap``, ``spearman_fisher_ci``: rank agreement between metrics, over stories and over variants.
"""

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


# Two runs scored on the same samples differ per sample, and samples of one story (or conversation) are correlated,
# so every paired quantity below resamples or permutes whole clusters, with the same draw for both runs.


def paired_cluster_bootstrap(
    metric_a: Any, metric_b: Any, groups: list[str], resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile CIs of ``a - b`` for every key both metrics' ``statistic`` return. Both metrics hold the same
    samples in the same order (``groups`` per sample); each replicate draws clusters with replacement once and
    weighs both runs with that one draw, which is what makes the interval paired."""
    reps = paired_bootstrap_replicates(metric_a, metric_b, groups, resamples, seed)
    return {key: percentile_ci(d, level) for key, (_, _, d) in reps.items()}


def paired_bootstrap_replicates(
    metric_a: Any, metric_b: Any, groups: list[str], resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per key: the replicates of ``a``, of ``b`` and of ``a - b`` under shared cluster draws (NaN kept)."""
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[list[float], list[float]]] = {}
    for _ in range(resamples):
        w = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[inv].astype(np.float64)
        sa, sb = metric_a.statistic(w), metric_b.statistic(w)
        for key in sa.keys() & sb.keys():
            ra, rb = out.setdefault(key, ([], []))
            ra.append(sa[key])
            rb.append(sb[key])
    return {k: (np.asarray(a), np.asarray(b), np.asarray(a) - np.asarray(b)) for k, (a, b) in sorted(out.items())}


def percentile_ci(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates, NaN replicates left out (NaNs if none is left)."""
    arr = np.asarray(replicates, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if not len(arr):
        return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    return (float(np.quantile(arr, alpha)), float(np.quantile(arr, 1 - alpha)))


def _two_sided(null: np.ndarray, observed: float) -> float:
    """Two-sided permutation p-value as scipy.stats.permutation_test computes it: twice the smaller one-sided
    share of the null distribution (the observed arrangement included) at or beyond ``observed``, at most 1. A
    relative tolerance counts values equal up to rounding as ties."""
    gamma = abs(observed) * 1e-12 + 1e-300
    less = float(np.mean(null <= observed + gamma))
    greater = float(np.mean(null >= observed - gamma))
    return min(1.0, 2 * min(less, greater))


def sign_patterns(n: int) -> np.ndarray:
    """All 2^n sign vectors (rows) of length n; row 0 is all +1 (the observed arrangement)."""
    codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)
    return 1.0 - 2.0 * (codes & 1)


def sign_flip_test(
    cluster_values: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    exact_max: int = 16,
    permutations: int = 9999,
    seed: int = 0,
) -> float:
    """Two-sided p-value of the paired cluster-level sign-flip (permutation) test.

    ``cluster_values`` holds one paired difference d_c per cluster (a story's or conversation's difference
    between the two runs) and the statistic is the weighted mean T = sum(w_c d_c) / sum(w_c). Under H0 the two
    runs are exchangeable within each cluster, so each d_c is as likely to have either sign; the null
    distribution flips every sign pattern: all 2^C of them (exact) when C <= ``exact_max``, else ``permutations``
    seeded random patterns plus the observed one (so p >= 1 / (permutations + 1)). With weights w_c = the
    cluster's sample count and d_c its mean difference, T is the per-sample mean difference; scipy's
    ``permutation_test(..., permutation_type='samples')`` on the cluster values gives the same exact p-value."""
    d = np.asarray(cluster_values, dtype=np.float64)
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = ~np.isnan(d) & (w > 0)
    d, w = d[ok], w[ok]
    if not len(d):
        return float("nan")
    wd = w * d / w.sum()
    observed = float(wd.sum())
    if len(d) <= exact_max:
        signs = sign_patterns(len(d))
    else:
        rng = np.random.default_rng(seed)
        signs = np.vstack([np.ones(len(d)), rng.choice([-1.0, 1.0], size=(permutations, len(d)))])
    return _two_sided(signs @ wd, observed)


def cluster_swap_test(
    statistic: Any, n_clusters: int, *, exact_max: int = 12, permutations: int = 999, seed: int = 0
) -> Any:
    """Two-sided p-value(s) of the paired cluster permutation test for any statistic of two runs, e.g. a set
    distance such as FID whose value is not a mean of per-sample parts.

    ``statistic(swap)`` returns a - b (a float, or a dict of floats for several keys at once, giving a dict of
    p-values) after exchanging the two runs' outputs in every cluster where the boolean ``swap[c]`` is true
    (``swap`` all false = the observed difference). Swapping every cluster exchanges the runs, so the null
    distribution is symmetric: T(~swap) = -T(swap), and only half the patterns are computed. Exact over all 2^C
    patterns when C <= ``exact_max``, else ``permutations`` seeded random patterns plus the observed one."""
    if n_clusters < 1:
        return float("nan")
    observed = statistic(np.zeros(n_clusters, dtype=bool))
    single = not isinstance(observed, dict)
    obs = {"": observed} if single else dict(observed)
    if n_clusters <= exact_max:
        codes = np.arange(2 ** (n_clusters - 1), dtype=np.int64)[:, None] >> np.arange(n_clusters, dtype=np.int64)
        patterns = [(c & 1).astype(bool) for c in codes]
        mirror = True  # the complements (last cluster swapped) are the negated first half
    else:
        rng = np.random.default_rng(seed)
        patterns = list(rng.random((permutations, n_clusters)) < 0.5)
        mirror = False
    nulls: dict[str, list[float]] = {k: [] for k in obs}
    if not mirror:
        for k, v in obs.items():
            nulls[k].append(float(v))
    for swap in patterns:
        value = statistic(swap)
        for k, v in ({"": value} if single else value).items():
            if k in nulls:
                nulls[k].append(float(v))
    out = {}
    for k, values in nulls.items():
        null = np.asarray(values)
        null = np.concatenate([null, -null]) if mirror else null
        null = null[~np.isnan(null)]
        o = float(obs[k])
        out[k] = float("nan") if np.isnan(o) or not len(null) else _two_sided(null, o)
    return out[""] if single else out


def cluster_means(values: np.ndarray, groups: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(cluster names in sorted order, each cluster's mean of the non-NaN values, how many values it has)."""
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    ok = ~np.isnan(v)
    uniq, inv = np.unique(g, return_inverse=True)
    counts = np.bincount(inv[ok], minlength=len(uniq)).astype(np.float64)
    sums = np.bincount(inv[ok], weights=v[ok], minlength=len(uniq))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return [str(u) for u in uniq], means, counts


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    groups: list[str],
    *,
    weighting: str = "sample",
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    exact_max: int = 16,
    permutations: int = 9999,
) -> dict[str, Any]:
    """The paired difference mean(a) - mean(b) of per-sample values with its cluster-bootstrap CI and the
    sign-flip p-value (``sign_flip_test``). NaN marks a sample the metric does not apply to (left out of both).

    ``weighting``: ``sample`` = the mean over samples (CLIP scores, scene accuracy); ``cluster`` = the mean over
    clusters of each cluster's mean (the official MMDialog text averages)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or len(a) != len(groups):
        raise ValueError(f"paired values need equal lengths, got {len(a)}, {len(b)} and {len(groups)} groups")
    if weighting not in ("sample", "cluster"):
        raise ValueError(f"weighting must be 'sample' or 'cluster', got {weighting!r}")
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = np.where(both, a, np.nan), np.where(both, b, np.nan)
    _, ma, counts = cluster_means(a, groups)
    _, mb, _ = cluster_means(b, groups)
    w = counts if weighting == "sample" else (counts > 0).astype(np.float64)
    d = ma - mb
    keep = w > 0
    if not keep.any():
        return {"diff": float("nan"), "ci": (float("nan"),) * 2, "p": float("nan"), "n": 0, "clusters": 0}
    diff = float((w[keep] * d[keep]).sum() / w[keep].sum())
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(keep)
    reps = np.empty(resamples)
    for r in range(resamples):
        k = np.bincount(rng.integers(0, len(idx), len(idx)), minlength=len(idx)).astype(np.float64)
        ww = k * w[idx]
        reps[r] = (ww * d[idx]).sum() / ww.sum()
    p = sign_flip_test(d[keep], w[keep], exact_max=exact_max, permutations=permutations, seed=seed)
    return {"diff": diff, "ci": percentile_ci(reps, level), "p": p, "n": int(both.sum()), "clusters": int(keep.sum())}


def spearman_bootstrap(
    x_reps: np.ndarray, y_reps: np.ndarray, x: np.ndarray, y: np.ndarray, level: float = 0.95
) -> dict[str, Any]:
    """Spearman's rho between two metrics across models, with a percentile CI from paired bootstrap replicates.

    ``x``, ``y``: one value per model; ``x_reps``, ``y_reps``: (replicates, models) values under shared cluster
    draws (every model scored on the same samples, so one draw resamples the same stories for all)."""
    from scipy.stats import spearmanr

    rho = float(spearmanr(x, y).statistic)
    reps = []
    for xr, yr in zip(np.asarray(x_reps), np.asarray(y_reps), strict=True):
        ok = ~np.isnan(xr) & ~np.isnan(yr)
        if ok.sum() >= 3 and np.ptp(xr[ok]) > 0 and np.ptp(yr[ok]) > 0:
            reps.append(float(spearmanr(xr[ok], yr[ok]).statistic))
    lo, hi = percentile_ci(np.asarray(reps), level) if reps else (float("nan"), float("nan"))
    return {"rho": rho, "ci": (lo, hi), "n_models": len(x), "replicates": len(reps)}


MIN_CLUSTERS = 20  # below this many stories / conversations a comparison gets a warning and no verdict


def mc_error(p: float | None, permutations: int | None) -> float | None:
    """Monte-Carlo standard error of a permutation p-value estimated from ``permutations`` random arrangements
    (None for an exact p-value or no p-value): sqrt(p (1 - p) / N)."""
    if p is None or not permutations or p != p:
        return None
    return float(np.sqrt(max(p * (1 - p), 0.0) / permutations))


def _t_quantile(level: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def _t_p(stat: float, df: float) -> float:
    from scipy.stats import t

    return float(min(1.0, 2 * t.sf(abs(stat), df)))


def cluster_variance(d: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(estimate, variance) of the weighted mean sum(w d) / sum(w) of per-cluster values ``d`` when the clusters
    are a sample: the cluster-robust (linearised ratio) variance C/(C-1) sum(w_c^2 (d_c - est)^2) / sum(w)^2. With
    equal weights it is s^2 / C, the variance of a mean of C values."""
    d, w = np.asarray(d, dtype=np.float64), np.asarray(w, dtype=np.float64)
    est = float((w * d).sum() / w.sum())
    c = len(d)
    if c < 2:
        return est, float("nan")
    return est, float(c / (c - 1) * ((w * (d - est)) ** 2).sum() / w.sum() ** 2)


def cluster_t_interval(d: np.ndarray, w: np.ndarray | None = None, level: float = 0.95) -> dict[str, Any]:
    """The t-interval of a weighted mean of per-cluster values: estimate +- t_{C-1} * cluster-robust SE.
    ``d``: one value per cluster (e.g. a story's mean paired difference), ``w``: its weight (the story's sample
    count for a per-sample mean, 1 for a mean of cluster means)."""
    d = np.asarray(d, dtype=np.float64)
    w = np.ones_like(d) if w is None else np.asarray(w, dtype=np.float64)
    est, var = cluster_variance(d, w)
    df = len(d) - 1
    if df < 1 or var != var:
        return {"estimate": est, "ci": (float("nan"), float("nan")), "se": float("nan"), "df": df}
    se = float(np.sqrt(var))
    q = _t_quantile(level, df)
    return {"estimate": est, "ci": (est - q * se, est + q * se), "se": se, "df": float(df)}


def _satterthwaite(parts: list[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance estimates (variance, df)."""
    total = sum(v for v, _ in parts)
    denom = sum(v * v / df for v, df in parts if df > 0 and v > 0)
    return float(total * total / denom) if denom > 0 else float("inf")


def seed_variance(base: np.ndarray, other: np.ndarray, paired: bool) -> tuple[float, float]:
    """(variance, df) of the difference of seed means that comes from the seeds: ``base`` (n values) and ``other``
    (m values) are each training seed's value on the same samples. Paired (the same checkpoints under two settings):
    var(other_j - base_j) / k with k - 1 df; independent: Welch's s_o^2/m + s_b^2/n with Satterthwaite's df. A side
    with one checkpoint adds nothing (the comparison is then conditional on that checkpoint)."""
    b, o = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if paired:
        e = o - b
        return (float(e.var(ddof=1) / len(e)), float(len(e) - 1)) if len(e) > 1 else (0.0, 0.0)
    parts = [(float(x.var(ddof=1) / len(x)), float(len(x) - 1)) for x in (o, b) if len(x) > 1]
    if not parts:
        return 0.0, 0.0
    return sum(v for v, _ in parts), _satterthwaite(parts)


def combine(estimate: float, story: tuple[float, float], seed: tuple[float, float],
            level: float = 0.95) -> dict[str, Any]:  # fmt: skip
    """Estimate +- t * sqrt(story variance + seed variance), df by Welch-Satterthwaite; the two-sided t p-value of
    estimate = 0. ``story``, ``seed``: (variance, df); a seed part with df 0 is absent."""
    parts = [p for p in (story, seed) if p[1] > 0]
    var = sum(v for v, _ in parts)
    if not parts or var != var:
        return {"estimate": estimate, "ci": (float("nan"), float("nan")), "se": float("nan"), "df": float("nan"),
                "p": float("nan")}  # fmt: skip
    df = _satterthwaite(parts) if var > 0 else float(story[1])
    se = float(np.sqrt(var))
    if se == 0:
        p = 1.0 if estimate == 0 else 0.0
        return {"estimate": estimate, "ci": (estimate, estimate), "se": 0.0, "df": df, "p": p}
    q = _t_quantile(level, df)
    return {"estimate": estimate, "ci": (estimate - q * se, estimate + q * se), "se": se, "df": df,
            "p": _t_p(estimate / se, df)}  # fmt: skip


def two_level_difference(
    base: np.ndarray, other: np.ndarray, weights: np.ndarray, *, paired: bool, level: float = 0.95
) -> dict[str, Any]:
    """The difference of seed-averaged weighted means, other - base, over clusters shared by every run.

    ``base``: (n seeds, C clusters) per-cluster values (e.g. a story's mean scene accuracy) of each base checkpoint,
    ``other``: (m, C) likewise, ``weights``: (C,) the clusters' weights. The variance adds the cluster part (the
    cluster-robust variance of the seed-averaged paired differences, C - 1 df) and the seed part
    (``seed_variance`` of each run's weighted mean); the interval uses Satterthwaite's df. Conservative by
    construction: the run-by-cluster noise enters both parts (coverage: ``tests/mg5bench/test_coverage.py``)."""
    b, o = np.atleast_2d(np.asarray(base, dtype=np.float64)), np.atleast_2d(np.asarray(other, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    if paired and b.shape != o.shape:
        raise ValueError(f"paired seeds need as many base as other runs, got {b.shape[0]} and {o.shape[0]}")
    xb, xo = (b * w).sum(1) / w.sum(), (o * w).sum(1) / w.sum()
    est, var_c = cluster_variance(o.mean(0) - b.mean(0), w)
    out = combine(est, (var_c, float(len(w) - 1)), seed_variance(xb, xo, paired), level)
    out.update(base_values=xb.tolist(), other_values=xo.tolist(), clusters=len(w))
    return out


def seed_permutation_test(base: np.ndarray, other: np.ndarray, *, paired: bool) -> dict[str, Any]:
    """Exact two-sided permutation p-value at the seed level: the checkpoints are the units. Independent seeds:
    every relabelling of the m + n checkpoints into groups of m and n (scipy's ``permutation_test`` with
    ``permutation_type='independent'`` gives the same p); paired: every sign pattern of the per-seed differences.
    Also the smallest p the design can give (with 3 + 3 seeds: 0.1), so a reader sees when seeds alone cannot
    reach a threshold."""
    from itertools import combinations

    b, o = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if paired:
        e = o - b
        null = sign_patterns(len(e)) @ e / len(e)
        observed = float(e.mean())
    else:
        allv = np.concatenate([o, b])
        m = len(o)
        null = np.array([allv[list(idx)].mean() - np.delete(allv, list(idx)).mean()
                         for idx in combinations(range(len(allv)), m)])  # fmt: skip
        observed = float(o.mean() - b.mean())
    p = _two_sided(null, observed)
    return {"p": p, "p_min": float(min(1.0, 2 / len(null))), "arrangements": len(null)}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error), None kept in place (statsmodels' ``holm``)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and p == p]
    ps = np.array([pvalues[i] for i in idx], dtype=np.float64)
    out: list[float | None] = [None] * len(pvalues)
    if not len(ps):
        return out
    order = np.argsort(ps, kind="stable")
    k = len(ps)
    adj = np.maximum.accumulate((k - np.arange(k)) * ps[order])
    for rank, j in enumerate(order):
        out[idx[j]] = float(min(1.0, adj[rank]))
    return out


def benjamini_hochberg(pvalues: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values (false discovery rate), None kept in place (statsmodels' ``fdr_bh``)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and p == p]
    ps = np.array([pvalues[i] for i in idx], dtype=np.float64)
    out: list[float | None] = [None] * len(pvalues)
    if not len(ps):
        return out
    k = len(ps)
    order = np.argsort(ps, kind="stable")
    q = ps[order] * k / np.arange(1, k + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    for rank, j in enumerate(order):
        out[idx[j]] = float(min(1.0, q[rank]))
    return out


def spearman_fisher_ci(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """A CI of Spearman's rho over the n variants themselves (variants as a sample): Fisher's z with the
    Fieller-Hartley-Pearson variance 1.06 / (n - 3). NaNs below 4 variants."""
    from scipy.stats import norm

    if n < 4 or rho != rho:
        return (float("nan"), float("nan"))
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    h = float(norm.ppf(0.5 + level / 2) * np.sqrt(1.06 / (n - 3)))
    return (float(np.tanh(z - h)), float(np.tanh(z + h)))


def format_p(p: float | None) -> str:
    """A p-value as tables print it: three decimals, two significant digits below 0.001."""
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
