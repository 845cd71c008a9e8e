"""The paired statistics behind ablations (mg5bench.stats): the sign-flip test against scipy's exact permutation
test, the cluster swap test against the sign-flip test (two implementations of one test for a mean), the paired
difference and its cluster-bootstrap CI against hand-computed values, Spearman against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test, spearmanr

from mg5bench.stats import (
    cluster_swap_test,
    paired_bootstrap_replicates,
    paired_difference,
    sign_flip_test,
    spearman_bootstrap,
)


def _scipy_paired(x: np.ndarray, y: np.ndarray) -> float:
    res = permutation_test((x, y), lambda a, b, axis: np.mean(a - b, axis=axis), permutation_type="samples",
                           n_resamples=np.inf, vectorized=True)  # fmt: skip
    return float(res.pvalue)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sign_flip_is_scipys_exact_paired_permutation_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0.3, 1, 11), rng.normal(0, 1, 11)
    assert sign_flip_test(x - y) == pytest.approx(_scipy_paired(x, y), abs=1e-12)


def test_weighted_sign_flip_is_scipy_on_cluster_sums() -> None:
    """Weights = cluster sizes and values = cluster mean differences: the statistic is the per-sample mean
    difference, whose sign-flip null is scipy's on the clusters' summed differences."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 6, 9)
    diffs = [rng.normal(0.2, 1, n) for n in sizes]
    sums = np.array([d.sum() for d in diffs])
    means = np.array([d.mean() for d in diffs])
    expected = _scipy_paired(sums, np.zeros_like(sums))
    assert sign_flip_test(means, sizes.astype(float)) == pytest.approx(expected, abs=1e-12)


def test_sign_flip_on_ties_and_zero() -> None:
    assert sign_flip_test(np.zeros(5)) == 1.0
    # every cluster moved the same way: only the observed pattern and its mirror are as extreme
    assert sign_flip_test(np.full(6, -0.4)) == pytest.approx(2 / 2**6)
    assert np.isnan(sign_flip_test(np.array([np.nan])))


def test_monte_carlo_sign_flip_is_close_to_exact() -> None:
    rng = np.random.default_rng(4)
    d = rng.normal(0.15, 1, 14)
    exact = sign_flip_test(d, exact_max=16)
    mc = sign_flip_test(d, exact_max=4, permutations=20000, seed=1)
    assert mc == pytest.approx(exact, abs=0.02)
    assert sign_flip_test(np.full(20, 1.0), exact_max=4, permutations=999) >= 1 / 1000


def test_swap_test_of_a_mean_is_the_sign_flip_test() -> None:
    """Exchanging the two runs' values inside cluster c flips the sign of its summed difference: for a mean the
    cluster swap test and the sign-flip test are the same test, computed by different code."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(8), rng.integers(1, 5, 8))
    a, b = rng.normal(0.4, 1, len(groups)), rng.normal(0, 1, len(groups))

    def stat(swap: np.ndarray) -> float:
        s = swap[groups]
        return float(np.mean(np.where(s, b, a)) - np.mean(np.where(s, a, b)))

    sums = np.bincount(groups, weights=a - b)
    counts = np.bincount(groups).astype(float)
    assert cluster_swap_test(stat, 8) == pytest.approx(sign_flip_test(sums / counts, counts), abs=1e-12)
    several = cluster_swap_test(lambda s: {"m": stat(s), "neg": -stat(s)}, 8)
    assert several["m"] == pytest.approx(several["neg"], abs=1e-12)


def test_paired_difference_against_hand_computed_values() -> None:
    groups = ["s1"] * 3 + ["s2"] * 2 + ["s3"] * 5
    a = np.array([1, 1, 0, 1, 0, 1, 1, 1, 1, 0], dtype=float)
    b = np.array([0, 1, 0, 0, 0, 0, 1, 0, 1, 0], dtype=float)
    r = paired_difference(a, b, groups, resamples=500)
    assert r["diff"] == pytest.approx(a.mean() - b.mean())  # 0.4
    assert r["n"] == 10 and r["clusters"] == 3
    lo, hi = r["ci"]
    assert lo <= r["diff"] <= hi
    # per-cluster mean differences 1/3, 1/2, 2/5; every resample mixes them, so the CI lies within their range
    assert lo >= 1 / 3 - 1e-12 and hi <= 1 / 2 + 1e-12
    # 3 clusters, all positive: p = 2 / 2^3
    assert r["p"] == pytest.approx(0.25)
    c = paired_difference(a, b, groups, weighting="cluster", resamples=50)
    assert c["diff"] == pytest.approx(np.mean([1 / 3, 1 / 2, 2 / 5]))
    nan = paired_difference(np.array([np.nan, 1.0]), np.array([0.0, 0.0]), ["x", "y"], resamples=10)
    assert nan["n"] == 1 and nan["diff"] == pytest.approx(1.0)


class _Mean:
    """A minimal metric: the weighted mean of fixed per-sample values (what clip_i and scene accuracy are)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def statistic(self, w: np.ndarray) -> dict[str, float]:
        return {"m": float((self.values * w).sum() / w.sum())}


def test_paired_bootstrap_shares_one_draw_between_the_runs() -> None:
    groups = [f"g{i // 2}" for i in range(12)]
    rng = np.random.default_rng(6)
    a = rng.normal(size=12)
    reps = paired_bootstrap_replicates(_Mean(a + 0.25), _Mean(a), groups, resamples=200)
    ra, rb, d = reps["m"]
    # the same draw for both: the difference is exactly the constant shift in every replicate
    assert np.allclose(d, 0.25) and not np.allclose(ra, ra[0])
    assert np.allclose(ra - rb, d)


def test_spearman_is_scipys() -> None:
    x = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    y = np.array([0.2, 0.4, 0.1, 0.8, 0.9])
    reps = np.tile(x, (50, 1)) + np.random.default_rng(7).normal(0, 0.01, (50, 5))
    r = spearman_bootstrap(reps, np.tile(y, (50, 1)), x, y)
    assert r["rho"] == pytest.approx(spearmanr(x, y).statistic)
    assert r["ci"][0] <= r["rho"] <= r["ci"][1] + 1e-12
