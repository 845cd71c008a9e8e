"""The paired statistics behind ablations (mg5bench.scoring.statistics): the sign-flip test against scipy's exact
permutation test, the cluster swap test against the sign-flip test (two implementations of one test for a mean), the
paired difference and its cluster-bootstrap CI against hand-computed values, Spearman against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test, spearmanr

from mg5bench.scoring.statistics import (
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


def test_holm_and_bh_are_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    from mg5bench.scoring.statistics import benjamini_hochberg, holm

    rng = np.random.default_rng(8)
    ps = [*rng.uniform(0, 0.2, 17).tolist(), 0.0004, 0.9, 0.03, 0.03]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]), abs=1e-12)
    assert benjamini_hochberg(ps) == pytest.approx(list(multipletests(ps, method="fdr_bh")[1]), abs=1e-12)
    # missing p-values stay in place and do not count towards the family
    with_none = [ps[0], None, ps[1], float("nan")]
    assert holm(with_none)[1] is None and holm(with_none)[3] is None
    assert holm(with_none)[0] == pytest.approx(multipletests(ps[:2], method="holm")[1][0])


def test_cluster_t_interval_is_scipys_one_sample_t_with_equal_weights() -> None:
    from scipy.stats import t, ttest_1samp

    from mg5bench.scoring.statistics import cluster_t_interval

    d = np.random.default_rng(9).normal(0.2, 1, 23)
    r = cluster_t_interval(d)
    ref = ttest_1samp(d, 0).confidence_interval(0.95)
    assert r["ci"] == pytest.approx((ref.low, ref.high), abs=1e-12)
    # weights: a ratio of sums, its linearised SE (hand-computed on three clusters)
    w = np.array([1.0, 2.0, 3.0])
    dd = np.array([0.0, 0.5, 1.0])
    est = (0 + 1 + 3) / 6
    var = 3 / 2 * ((1 * (0 - est)) ** 2 + (2 * (0.5 - est)) ** 2 + (3 * (1 - est)) ** 2) / 36
    q = t.ppf(0.975, 2)
    r = cluster_t_interval(dd, w)
    assert r["estimate"] == pytest.approx(est)
    assert r["ci"] == pytest.approx((est - q * var**0.5, est + q * var**0.5))


def test_two_level_difference_adds_the_seed_spread() -> None:
    from scipy.stats import ttest_ind, ttest_rel

    from mg5bench.scoring.statistics import two_level_difference

    rng = np.random.default_rng(10)
    C = 30
    stories = rng.normal(0, 1, C)
    base = stories + rng.normal(0, 0.3, (3, 1)) + rng.normal(0, 0.1, (3, C))
    other = stories + 0.5 + rng.normal(0, 0.3, (3, 1)) + rng.normal(0, 0.1, (3, C))
    w = np.ones(C)
    r = two_level_difference(base, other, w, paired=False)
    assert r["estimate"] == pytest.approx(other.mean() - base.mean())
    # seeds only (no cluster part): Welch's t-test on the seed means
    flat_b = np.repeat(base.mean(1, keepdims=True), C, 1)
    flat_o = np.repeat(other.mean(1, keepdims=True), C, 1)
    only_seeds = two_level_difference(flat_b, flat_o, w, paired=False)
    welch = ttest_ind(other.mean(1), base.mean(1), equal_var=False)
    assert only_seeds["p"] == pytest.approx(welch.pvalue, rel=1e-9)
    paired = two_level_difference(flat_b, flat_o, w, paired=True)
    assert paired["p"] == pytest.approx(ttest_rel(other.mean(1), base.mean(1)).pvalue, rel=1e-9)
    # the seed part widens the interval against the one-seed comparison of the same data
    one = two_level_difference(base[:1], other[:1], w, paired=False)
    assert (r["ci"][1] - r["ci"][0]) > (one["ci"][1] - one["ci"][0])
    assert one["df"] == C - 1


def test_seed_permutation_test_is_scipys_exact_test() -> None:
    from scipy.stats import permutation_test

    from mg5bench.scoring.statistics import seed_permutation_test

    b, o = np.array([0.40, 0.44, 0.41]), np.array([0.30, 0.36, 0.31])
    ref = permutation_test((o, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                           permutation_type="independent", n_resamples=np.inf, vectorized=True)  # fmt: skip
    r = seed_permutation_test(b, o, paired=False)
    assert r["p"] == pytest.approx(ref.pvalue) and r["p_min"] == pytest.approx(0.1) and r["arrangements"] == 20
    paired = seed_permutation_test(b, o, paired=True)
    assert paired["p"] == pytest.approx(0.25) and paired["arrangements"] == 8


def test_fisher_z_interval_of_spearman() -> None:
    from mg5bench.scoring.statistics import spearman_fisher_ci

    lo, hi = spearman_fisher_ci(0.36, 14)
    h = 1.959963984540054 * (1.06 / 11) ** 0.5
    assert (lo, hi) == pytest.approx((np.tanh(np.arctanh(0.36) - h), np.tanh(np.arctanh(0.36) + h)))
    assert lo < 0 < hi
    assert np.isnan(spearman_fisher_ci(0.5, 3)[0])
