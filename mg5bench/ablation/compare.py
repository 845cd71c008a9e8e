"""Paired comparison of stored runs on the samples they share: every metric is computed by the scorer's own metric
classes on the same items, so a value here equals the run's scored value on the same samples, and the difference
of two runs gets a paired cluster-bootstrap CI and a paired permutation p-value (``mg5bench.scoring.statistics``).

The p-value's test, per result:

- a result with per-sample values (CLIP scores, scene accuracy, text metrics): the sign-flip test on the
  clusters' mean differences, weighted as the metric averages (by sample, or one weight per cluster);
- a set-level result (FID, KID, image rate, produced-only means, conversation-level F1): the cluster swap test,
  which recomputes the metric with the two runs' outputs exchanged in a random half of the clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mg5bench.metrics.base import ScoreItem


def _metric(name: str, ctx: Any, items: Sequence[ScoreItem], bank: Any) -> Any:
    from mg5bench.catalog import make_metric

    m = make_metric(name, ctx)
    m.update(list(items), bank)
    return m


def _clean(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def values_on(runs: Sequence[Sequence[ScoreItem]], names: Sequence[str], ctx: Any, bank: Any, *,
              resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each result of ``names`` on one variant: the mean over its seeds' runs (``runs``, one list of items per
    checkpoint, the same samples in each) with its 95% interval (stories and seeds, ``_side``)."""
    groups = [it.group for it in runs[0]]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        ms = [_metric(name, ctx, items, bank) for items in runs]
        vals = [m.statistic(np.ones(len(runs[0]))) for m in ms]
        counts = ms[0].n()
        keys = set.intersection(*(set(v) for v in vals))
        boot = _Boot(ms, [], groups, resamples, seed) if resamples else None
        per = [m.per_sample() for m in ms]
        for key in sorted(keys):
            x = np.asarray([float(v[key]) for v in vals])
            value = _clean(float(x.mean())) if not np.isnan(x).any() else None
            ci: list[float | None] = [None, None]
            if value is not None:
                side = _side(key, name, x, per, [list(r) for r in runs], groups, boot)
                ci = [_clean(side["ci"][0]), _clean(side["ci"][1])]
            out[key] = {"value": value, "ci": ci, "n": counts.get(key, counts.get(name)),
                        "higher_is_better": bool(ms[0].higher(key)), "seeds": len(runs),
                        "seed_values": [_clean(float(v)) for v in x]}  # fmt: skip
    return out


class _Boot:
    """Cluster-bootstrap replicates of every run's set-level values under shared draws (computed on first use):
    ``base[key]`` (resamples, n runs) and ``other[key]`` (resamples, m runs)."""

    def __init__(self, base: Sequence[Any], other: Sequence[Any], groups: list[str], resamples: int,
                 seed: int) -> None:  # fmt: skip
        self.metrics = (list(base), list(other))
        self.groups, self.resamples, self.seed = groups, resamples, seed
        self._reps: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    def replicates(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        if self._reps is None:
            uniq, inv = np.unique(np.asarray(self.groups), return_inverse=True)
            rng = np.random.default_rng(self.seed)
            sides: list[dict[str, list[list[float]]]] = [{}, {}]
            for _ in range(self.resamples):
                w = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[inv].astype(np.float64)
                for side, ms in zip(sides, self.metrics, strict=True):
                    row: dict[str, list[float]] = {}
                    for m in ms:
                        for k, v in m.statistic(w).items():
                            row.setdefault(k, []).append(float(v))
                    for k, v in row.items():
                        side.setdefault(k, []).append(v)
            self._reps = ({k: np.asarray(v) for k, v in sides[0].items()},
                          {k: np.asarray(v) for k, v in sides[1].items()})  # fmt: skip
        return self._reps


def _var(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.var(ddof=1)) if len(x) > 1 else float("nan")


def _per_sample_arrays(key: str, name: str, per: Sequence[Mapping[str, Any]],
                       runs: Sequence[Sequence[ScoreItem]]) -> list[np.ndarray] | None:  # fmt: skip
    """Each run's per-sample values of ``key`` (NaN where it does not apply), or None for a set-level result."""
    if all(key in p for p in per):
        rows = [p[key] for p in per]
    elif key.endswith(".image_rate") and all(name in p for p in per):
        rows = [_produced(p[name], items) for p, items in zip(per, runs, strict=True)]
    else:
        return None
    return [np.asarray([np.nan if x is None else x for x in r], dtype=np.float64) for r in rows]


def _cluster_matrix(arrays: Sequence[np.ndarray], groups: list[str],
                    weighting: str) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(runs, clusters) cluster means over the samples every run has a value for, and the clusters' weights."""
    from mg5bench.scoring.statistics import cluster_means

    mask = np.all([~np.isnan(a) for a in arrays], axis=0)
    rows, counts = [], None
    for a in arrays:
        _, m, counts = cluster_means(np.where(mask, a, np.nan), groups)
        rows.append(m)
    assert counts is not None
    keep = counts > 0
    w = counts[keep] if weighting == "sample" else np.ones(int(keep.sum()))
    return np.asarray(rows)[:, keep], w


def _side(key: str, name: str, x: np.ndarray, per: Sequence[Mapping[str, Any]], runs: Sequence[Sequence[ScoreItem]],
          groups: list[str], boot: _Boot | None, side: int = 0) -> dict[str, Any]:  # fmt: skip
    """The 95% interval of one variant's seed-averaged value: per-sample results through the cluster means
    (``two_level_difference`` against zero), set-level ones through the bootstrap variance, seeds added."""
    from mg5bench.scoring.statistics import combine, seed_variance, two_level_difference

    arrays = _per_sample_arrays(key, name, per, runs)
    if arrays is not None:
        for weighting in ("sample", "cluster"):
            xm, w = _cluster_matrix(arrays, groups, weighting)
            if len(w) and np.allclose((xm * w).sum(1) / w.sum(), x, rtol=1e-9, atol=1e-12):
                return two_level_difference(np.zeros((1, xm.shape[1])), xm, w, paired=False)
    if boot is None:
        return {"ci": (float("nan"), float("nan"))}
    reps = boot.replicates()[side].get(key)
    if reps is None:
        return {"ci": (float("nan"), float("nan"))}
    clusters = len(set(groups))
    return combine(float(x.mean()), (_var(reps.mean(1)), float(clusters - 1)), seed_variance(np.zeros(1), x, False))


def _produced(values: Sequence[Any], items: Sequence[ScoreItem]) -> list[float | None]:
    """Per sample: 1 if an image was generated, 0 if not, None where the metric does not apply (its image rate)."""
    return [None if v is None else (1.0 if it.gen_image is not None else 0.0) for v, it in zip(values, items,
                                                                                             strict=True)]  # fmt: skip


def compare(
    base_runs: Sequence[Sequence[ScoreItem]],
    other_runs: Sequence[Sequence[ScoreItem]],
    names: Sequence[str],
    ctx: Any,
    bank: Any,
    *,
    paired_seeds: bool = False,
    keys: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    permutations: int = 9999,
    exact_max: int = 12,
) -> dict[str, dict[str, Any]]:
    """Per result: base and other values (means over each side's seeds) on the same samples, other - base with its
    95% interval and p-value, and the seed spread.

    ``base_runs`` / ``other_runs``: one list of items per checkpoint (seed) of each side, every list holding the
    same samples in the same order. ``paired_seeds``: both sides are the same checkpoints under other settings
    (seed j against seed j). Interval: the two-level t-interval (``mg5bench.scoring.statistics.two_level_difference``:
    cluster means, the seeds' spread added where a side has several). p: with one checkpoint per side, the paired
    cluster permutation test (sign flips for per-sample results, swaps for set-level ones); with seeds, the two-level t
    test, and the exact seed-level permutation p beside it. ``keys`` limits the p-values to those results."""
    from mg5bench.scoring.statistics import combine, seed_permutation_test, seed_variance

    ids = [i.id for i in base_runs[0]]
    if any([i.id for i in r] != ids for r in [*base_runs, *other_runs]):
        raise ValueError("compare() needs the same samples in the same order in every run")
    if paired_seeds and len(base_runs) != len(other_runs):
        raise ValueError("paired seeds need as many base as other runs")
    groups = [it.group for it in base_runs[0]]
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    n_clusters = len(uniq)
    ones = np.ones(len(ids))
    seeded = len(base_runs) > 1 or len(other_runs) > 1
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        mbs = [_metric(name, ctx, r, bank) for r in base_runs]
        mos = [_metric(name, ctx, r, bank) for r in other_runs]
        vbs, vos = [m.statistic(ones) for m in mbs], [m.statistic(ones) for m in mos]
        pbs, pos = [m.per_sample() for m in mbs], [m.per_sample() for m in mos]
        boot = _Boot(mbs, mos, groups, resamples, seed) if resamples else None
        swap_keys: list[str] = []
        counts_b, counts_o = mbs[0].n(), mos[0].n()
        for key in sorted(set.intersection(*(set(v) for v in [*vbs, *vos]))):
            xb = np.asarray([float(v[key]) for v in vbs])
            xo = np.asarray([float(v[key]) for v in vos])
            diff = float(xo.mean() - xb.mean())
            entry = _entry(xb, xo, diff, (counts_b.get(key, counts_b.get(name)), counts_o.get(key, counts_o.get(name))),
                           n_clusters, bool(mos[0].higher(key)), paired_seeds)  # fmt: skip
            out[key] = entry
            if np.isnan(diff):
                continue
            if len(xb) > 1 or len(xo) > 1:
                spread = [v for v in (xb, xo) if len(v) > 1]
                entry["seeds"]["sd"] = _clean(float(np.sqrt(np.mean([v.var(ddof=1) for v in spread]))))
            want_p = keys is None or key in keys
            for side, (x, per, runs) in enumerate(((xb, pbs, base_runs), (xo, pos, other_runs))):
                ci = _side(key, name, x, per, runs, groups, boot, side)["ci"]
                entry["base_ci" if side == 0 else "value_ci"] = [_clean(ci[0]), _clean(ci[1])]
            res = _paired_per_sample(diff, key, name, (pbs, pos), (base_runs, other_runs), groups, paired_seeds)
            if res is not None:
                two, d0, w = res
                entry["diff_ci"] = [_clean(two["ci"][0]), _clean(two["ci"][1])]
                entry["ci_method"] = _ci_method(two, seeded)
                if not want_p:
                    continue
                if seeded:
                    _seeded_p(entry, two, xb, xo, paired_seeds, seed_permutation_test)
                else:
                    _sign_flip_p(entry, d0, w, permutations, seed)
                continue
            if boot is not None:
                rb, ro = boot.replicates()
                if key in rb and key in ro:
                    story = (_var(ro[key].mean(1) - rb[key].mean(1)), float(n_clusters - 1))
                    two = combine(diff, story, seed_variance(xb, xo, paired_seeds))
                    entry["diff_ci"] = [_clean(two["ci"][0]), _clean(two["ci"][1])]
                    entry["ci_method"] = _ci_method(two, seeded, bootstrap=True)
                    if want_p and seeded:
                        _seeded_p(entry, two, xb, xo, paired_seeds, seed_permutation_test)
            if want_p and not seeded:
                swap_keys.append(key)
        if swap_keys:
            _swap_p(out, name, swap_keys, ctx, bank, (base_runs[0], other_runs[0]), inv, n_clusters,
                    exact_max=exact_max, permutations=permutations, seed=seed)  # fmt: skip
    return dict(sorted(out.items()))


def _entry(xb: np.ndarray, xo: np.ndarray, diff: float, n: tuple[Any, Any], n_clusters: int, higher: bool,
           paired_seeds: bool) -> dict[str, Any]:  # fmt: skip
    """A result's comparison entry before its interval and p: both sides' values (seed means), the difference,
    the counts (base, variant) and the seeds' values."""
    from mg5bench.scoring.statistics import MIN_CLUSTERS

    return {
        "base": _clean(float(xb.mean())),
        "value": _clean(float(xo.mean())),
        "diff": _clean(diff),
        "diff_ci": [None, None],
        "base_ci": [None, None],
        "value_ci": [None, None],
        "n": n[1],
        "n_base": n[0],
        "clusters": n_clusters,
        "too_few_clusters": n_clusters < MIN_CLUSTERS,
        "higher_is_better": higher,
        "p": None,
        "p_mc_error": None,
        "test": None,
        "ci_method": None,
        "seeds": {
            "base": len(xb),
            "variant": len(xo),
            "paired": paired_seeds,
            "base_values": [_clean(float(v)) for v in xb],
            "variant_values": [_clean(float(v)) for v in xo],
        },
    }


def _sign_flip_p(entry: dict[str, Any], d0: np.ndarray, w: np.ndarray, permutations: int, seed: int) -> None:
    """One checkpoint per side, a per-sample result: the sign-flip test over the clusters' mean differences."""
    from mg5bench.scoring.statistics import mc_error, sign_flip_test

    exact = len(d0) <= 16
    p = sign_flip_test(d0, w, exact_max=16, permutations=permutations, seed=seed)
    entry["p"] = _clean(p)
    entry["p_mc_error"] = None if exact else _clean(mc_error(p, permutations))
    entry["test"] = f"sign-flip over {len(d0)} clusters ({'exact' if exact else f'{permutations} random flips'})"


def _swap_p(out: dict[str, dict[str, Any]], name: str, swap_keys: Sequence[str], ctx: Any, bank: Any,
            runs: tuple[Sequence[ScoreItem], Sequence[ScoreItem]], inv: np.ndarray, n_clusters: int, *,
            exact_max: int, permutations: int, seed: int) -> None:  # fmt: skip
    """One checkpoint per side, set-level results of one metric: the cluster swap test, which recomputes the metric
    with the two runs' outputs exchanged in a random half of the clusters."""
    from mg5bench.scoring.statistics import cluster_swap_test, mc_error

    ones = np.ones(len(runs[0]))

    def statistic(swap: np.ndarray) -> dict:
        s = swap[inv]
        ob = [o if x else b for b, o, x in zip(runs[0], runs[1], s, strict=True)]
        oo = [b if x else o for b, o, x in zip(runs[0], runs[1], s, strict=True)]
        sb = _metric(name, ctx, ob, bank).statistic(ones)
        so = _metric(name, ctx, oo, bank).statistic(ones)
        return {k: float(so[k]) - float(sb[k]) for k in swap_keys}

    ps = cluster_swap_test(statistic, n_clusters, exact_max=exact_max, permutations=permutations, seed=seed)
    exact = n_clusters <= exact_max
    how = "exact" if exact else f"{permutations} random"
    for key in swap_keys:
        out[key]["p"] = _clean(ps[key])
        out[key]["p_mc_error"] = None if exact else _clean(mc_error(ps[key], permutations))
        out[key]["test"] = f"cluster swap ({how} arrangements of {n_clusters} clusters)"


def _ci_method(two: Mapping[str, Any], seeded: bool, bootstrap: bool = False) -> str:
    df = two.get("df")
    dfs = "n/a" if df is None or df != df else f"{df:.1f}" if df != int(df) else str(int(df))
    what = "bootstrap SE over clusters" if bootstrap else "cluster-robust SE"
    return f"t ({dfs} df), {what}" + (", seed spread added" if seeded else "")


def _seeded_p(entry: dict[str, Any], two: Mapping[str, Any], xb: np.ndarray, xo: np.ndarray, paired: bool,
              seed_permutation_test: Any) -> None:  # fmt: skip
    """The two-level t p-value, and the exact seed-level permutation p beside it."""
    entry["p"] = _clean(two["p"])
    entry["test"] = (f"two-level t ({len(xo)} vs {len(xb)} checkpoints{', paired' if paired else ''}, "
                     f"{entry['clusters']} clusters)")  # fmt: skip
    if len(xb) > 1 and len(xo) > 1:
        perm = seed_permutation_test(xb, xo, paired=paired)
        entry["seeds"]["p_permutation"] = _clean(perm["p"])
        entry["seeds"]["p_permutation_min"] = _clean(perm["p_min"])


def _paired_per_sample(diff: float, key: str, name: str, per: tuple[Sequence[Any], Sequence[Any]],
                       runs: tuple[Sequence[Any], Sequence[Any]], groups: list[str],
                       paired: bool) -> tuple[dict[str, Any], np.ndarray, np.ndarray] | None:  # fmt: skip
    """The two-level interval of a per-sample result, with the first pair's cluster differences and weights (for
    the one-checkpoint permutation test); None when the cluster means do not reproduce the metric's difference
    (then the bootstrap decides)."""
    from mg5bench.scoring.statistics import two_level_difference

    pb = _per_sample_arrays(key, name, per[0], runs[0])
    po = _per_sample_arrays(key, name, per[1], runs[1])
    if pb is None or po is None:
        return None
    for weighting in ("sample", "cluster"):
        xm, w = _cluster_matrix([*pb, *po], groups, weighting)
        if not len(w):
            return None
        xb, xo = xm[: len(pb)], xm[len(pb) :]
        two = two_level_difference(xb, xo, w, paired=paired)
        if abs(two["estimate"] - diff) <= 1e-9 * max(1.0, abs(diff)):
            return two, xo[0] - xb[0], w
    return None
