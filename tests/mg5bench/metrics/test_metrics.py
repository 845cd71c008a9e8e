"""Metrics against independent references: scipy, numpy, nltk, hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from mg5bench.metrics import FeatureBank, ScoreItem
from mg5bench.metrics.distribution import KID, frechet_distance_torchmetrics, frechet_distance_weighted
from mg5bench.metrics.mmrel import MISSED, SPURIOUS, MMRelevance, clean_text_minigpt5, f1_minigpt5
from mg5bench.metrics.text import Bleu, BleuCharMiniGPT5, RougeL, bleu, word_tokens
from mg5bench.scoring.statistics import cluster_bootstrap


def scipy_frechet(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("shift", [0.0, 0.3, 2.0])
def test_fid_matches_scipy_sqrtm(shift: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16))
    y = rng.normal(size=(350, 16)) @ np.diag(np.linspace(0.5, 1.5, 16)) + shift
    ours, ref = frechet_distance_torchmetrics(x, y), scipy_frechet(x, y)
    assert abs(ours - ref) <= 1e-5 * max(abs(ref), 1e-3), (ours, ref)


def test_weighted_fid_is_torchmetrics_on_the_expanded_sets() -> None:
    """A bootstrap replicate weights each row by its draw count: the numpy formula on the weights equals
    torchmetrics on the sets with every row repeated that often."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 12)), rng.normal(0.2, 1.1, size=(50, 12))
    wx, wy = rng.integers(0, 4, 60).astype(float), rng.integers(0, 4, 50).astype(float)
    ref = frechet_distance_torchmetrics(np.repeat(x, wx.astype(int), 0), np.repeat(y, wy.astype(int), 0))
    assert frechet_distance_weighted(x, wx, y, wy) == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert np.isnan(frechet_distance_weighted(x[:1], np.ones(1), y, wy))


def numpy_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def _kid_with(x: np.ndarray, y: np.ndarray, subset_size: int, subsets: int) -> KID:
    kid = KID(subsets=subsets, subset_size=subset_size)
    kid.real = list(x)
    kid.fake = list(y)
    kid.items = [None] * len(x)  # type: ignore[list-item]
    return kid


def test_kid_matches_direct_numpy_mmd() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.2
    ref = numpy_mmd2_unbiased(x, y)
    # one subset holding every sample: torchmetrics' KID is then the full-sample unbiased MMD^2
    kid = _kid_with(x, y, subset_size=200, subsets=1)
    assert kid.compute()["kid"] == pytest.approx(ref, rel=1e-6)
    # the bootstrap statistic with unit weights is the same estimator
    assert kid.statistic(np.ones(200))["kid"] == pytest.approx(ref, rel=1e-9)
    # weights of 2 equal duplicating the samples
    dup = numpy_mmd2_unbiased(np.repeat(x, 2, 0), np.repeat(y, 2, 0))
    assert kid.statistic(np.full(200, 2.0))["kid"] == pytest.approx(dup, rel=1e-9)


def test_kid_over_the_whole_set_is_torchmetrics_without_torch() -> None:
    """With no more samples than the subset size, KID is computed without torchmetrics: equal to torchmetrics'
    KernelInceptionDistance on the same features (every subset the whole set), and its std not applicable."""
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    from mg5bench.metrics.distribution import _passthrough

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(90, 8)), rng.normal(size=(90, 8)) * 1.2
    got = _kid_with(x, y, subset_size=1000, subsets=100).compute()
    tm = KernelInceptionDistance(feature=_passthrough(8), subsets=2, subset_size=90)
    tm.update(torch.from_numpy(x), real=True)
    tm.update(torch.from_numpy(y), real=False)
    assert got["kid"] == pytest.approx(float(tm.compute()[0]), rel=1e-9) and np.isnan(got["kid.std"])


def test_fid_value_is_torchmetrics() -> None:
    from mg5bench.metrics.distribution import FID

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(80, 6)), rng.normal(0.3, 1.0, size=(70, 6))
    fid = FID()
    fid.real, fid.fake = [*x, *([None] * 10)], [*y, *([None] * 20)]
    fid.items = [None] * 90  # type: ignore[list-item]
    assert fid.statistic(np.ones(90))["fid"] == pytest.approx(frechet_distance_torchmetrics(x, y), rel=1e-9)


def _bank(vectors: dict[str, np.ndarray], texts: dict[str, np.ndarray] | None = None) -> FeatureBank:
    norm = {k: v / np.linalg.norm(v) for k, v in (texts or {}).items()}
    return FeatureBank(dict(vectors), norm, logit_scale=100.0, dim=3)


def _item(gid: str, gt: list[tuple[str, str]], gen: list[tuple[str, str]], iid: str | None = None) -> ScoreItem:
    text = lambda els: " ".join(v for k, v in els if k == "text")  # noqa: E731
    imgs = lambda els: [v for k, v in els if k == "image"]  # noqa: E731
    return ScoreItem(iid or gid, gid, text(gt), text(gen), imgs(gt), imgs(gen), text(gt) or None, gt, gen)


E = np.eye(3)
C60 = np.array([0.5, np.sqrt(3) / 2, 0.0])  # cosine 0.5 with e0


def test_mm_relevance_feng2023_hand_computed() -> None:
    bank = _bank({"A": E[0], "B": C60, "Z": E[2]}, {"hi": E[0], "yo": C60, "zz": E[1]})
    cases = [
        # identical response -> 1
        (_item("c1", [("text", "hi"), ("image", "A")], [("text", "hi"), ("image", "A")]), 1.0),
        # cross-modal pairing by position: text "hi"(e0) vs image "A"(e0) = 1; image B vs text yo = cos(C60, C60) = 1
        (_item("c2", [("image", "A"), ("text", "yo")], [("text", "hi"), ("image", "B")]), 1.0),
        # one of two reference elements produced: P = 1/1, R = 1/2 -> F = 2/3
        (_item("c3", [("text", "hi"), ("image", "A")], [("text", "hi")]), 2 / 3),
        # extra generated element: P = 0.5/2, R = 0.5/1 -> F = 2*0.25*0.5/0.75 = 1/3
        (_item("c4", [("text", "hi")], [("text", "yo"), ("image", "Z")]), 1 / 3),
        # nothing generated -> 0 (sentinel)
        (_item("c5", [("text", "hi")], []), 0.0),
        # orthogonal -> P + R = 0 -> 0
        (_item("c6", [("text", "hi")], [("text", "zz")]), 0.0),
    ]
    for item, expected in cases:
        m = MMRelevance("feng2023")
        m.update([item], bank)
        out = m.compute()
        assert out["mm_relevance"] == pytest.approx(expected), item.id
        assert out["mm_relevance.logit_units"] == pytest.approx(100 * expected)


def test_mm_relevance_minigpt5_hand_computed() -> None:
    bank = _bank({"A": E[0], "B": C60}, {"hi": E[0], "yo": C60})
    # conversation x: turn 1 text+image both present (1.0 and 0.5); turn 2 GT image missed (-1)
    # turn 3 spurious text (-2). S = [1, .5, -1, -2]; V sum = 1.5; P = 1.5/3; R = 1.5/3 -> F1 = 0.5
    items = [
        _item("x", [("text", "hi ###"), ("image", "A")], [("text", "hi [IMG0] junk"), ("image", "B")], "x_1"),
        _item("x", [("image", "A")], [], "x_2"),
        _item("x", [], [("text", "yo")], "x_3"),
        # conversation y: only sentinels -> F1 = 0 (counted in the mean)
        _item("y", [("text", "hi")], [], "y_1"),
        # conversation z: punctuation-only prediction counts as empty -> -1 for text; no images -> F1 = 0
        _item("z", [("text", "hi")], [("text", " ... ")], "z_1"),
    ]
    m = MMRelevance("minigpt5")
    m.update(items, bank)
    assert m.slots[0] == [pytest.approx(1.0), pytest.approx(0.5)]
    assert m.slots[1] == [MISSED] and m.slots[2] == [SPURIOUS] and m.slots[4] == [MISSED]
    assert f1_minigpt5([1.0, 0.5, MISSED, SPURIOUS]) == pytest.approx(0.5)
    assert m.compute()["mm_relevance_minigpt5"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert clean_text_minigpt5("a dog [IMG0][IMG1] ###") == "a dog" and clean_text_minigpt5(" ?! ") == ""
    # the release's check is all(c in string.punctuation for c in pred): a space between marks is not punctuation
    assert clean_text_minigpt5("! ?") == "! ?" and clean_text_minigpt5("") == ""


def test_bleu_word_and_char_against_nltk_and_metrics_md() -> None:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    ref, hyp = "the cat sat on the mat", "a dog ran to the park"
    # docs/metrics.md: official char-level 0.636 / 0.389; word level 0.167 / 0 (unsmoothed)
    assert bleu(ref, hyp, 1, smooth=False) == pytest.approx(0.636, abs=5e-4)
    assert bleu(ref, hyp, 2, smooth=False) == pytest.approx(0.389, abs=5e-4)
    assert bleu(word_tokens(ref), word_tokens(hyp), 1, smooth=True) == pytest.approx(1 / 6)
    assert bleu(word_tokens(ref), word_tokens(hyp), 2, smooth=False) < 1e-6
    assert bleu(word_tokens(ref), word_tokens(hyp), 2, smooth=True) == pytest.approx(
        sentence_bleu([word_tokens(ref)], word_tokens(hyp), (0.5, 0.5), SmoothingFunction().method1)
    )
    # and the metric classes agree with direct nltk calls
    bank = _bank({})
    item = _item("g", [("text", "The cat sat on the mat.")], [("text", "the cat is on the mat .")])
    b2 = Bleu(2)
    b2.update([item], bank)
    direct = sentence_bleu(
        [["the", "cat", "sat", "on", "the", "mat", "."]],
        ["the", "cat", "is", "on", "the", "mat", "."],
        weights=(0.5, 0.5),
        smoothing_function=SmoothingFunction().method1,
    )
    assert b2.compute()["bleu2"] == pytest.approx(direct)
    bc = BleuCharMiniGPT5()
    bc.update([item], bank)
    assert bc.compute()["bleu_char_minigpt5.bleu1"] == pytest.approx(
        sentence_bleu(["The cat sat on the mat."], "the cat is on the mat .", weights=(1.0,))
    )


def lcs(a: list[str], b: list[str]) -> int:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            t[i + 1][j + 1] = t[i][j] + 1 if x == y else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]


@pytest.mark.parametrize(
    ("ref", "hyp"),
    [("police killed the gunman", "police kill the gunman"), ("a b c d e", "e d c b a"), ("x y", "z")],
)
def test_rouge_l_matches_hand_lcs(ref: str, hyp: str) -> None:
    r, h = ref.split(), hyp.split()
    n = lcs(r, h)
    p, rc = n / len(h), n / len(r)
    expected = 0.0 if n == 0 else 2 * p * rc / (p + rc)
    m = RougeL()
    m.update([_item("g", [("text", ref)], [("text", hyp)])], _bank({}))
    assert m.compute()["rouge_l"] == pytest.approx(expected)


def test_text_metrics_missing_prediction_scores_zero_and_average_per_conversation() -> None:
    items = [
        _item("c1", [("text", "a b")], [("text", "a b")], "c1_1"),
        _item("c1", [("text", "a b")], [], "c1_2"),  # no predicted text: 0
        _item("c2", [("text", "a b")], [("text", "a b")], "c2_1"),
        _item("c2", [("image", "A")], [("text", "spurious")], "c2_2"),  # no reference text: not applicable
    ]
    m = RougeL()
    m.update(items, _bank({}))
    # per conversation: c1 = (1 + 0) / 2, c2 = 1; then the mean over conversations
    assert m.compute()["rouge_l"] == pytest.approx(0.75)
    assert m.per_sample()["rouge_l"] == [1.0, 0.0, 1.0, None]


def test_cluster_bootstrap_is_seeded_and_covers_the_value() -> None:
    rng = np.random.default_rng(0)
    items = [_item(f"g{i // 5}", [("text", "a b c")], [("text", "a b" if rng.random() < 0.5 else "x")], f"s{i}")
             for i in range(100)]  # fmt: skip
    m = RougeL()
    m.update(items, _bank({}))
    groups = [it.group for it in items]
    ci1 = cluster_bootstrap(m, groups, 1000, seed=3)["rouge_l"]
    ci2 = cluster_bootstrap(m, groups, 1000, seed=3)["rouge_l"]
    assert ci1 == ci2
    value = m.compute()["rouge_l"]
    assert ci1[0] < value < ci1[1]


def test_official_text_variants_drop_text_after_the_image_and_plain_metrics_keep_it() -> None:
    """metric.py sees '<text> [IMG0]...[IMG7] <more> ###' and keeps split('[IMG0]')[0]: the *_minigpt5 text
    variants score only the text before the first image; bleu1/bleu2 score every text segment."""
    from nltk.translate.bleu_score import sentence_bleu

    bank = _bank({"A": E[0]}, {"here it is": E[0], "here it is and more": C60})
    item = _item("g", [("text", "here it is"), ("image", "A")],
                 [("text", "here it is"), ("image", "A"), ("text", "and more")])  # fmt: skip
    assert item.gen_text_before_image == "here it is" and item.gen_text == "here it is and more"
    bc = BleuCharMiniGPT5()
    bc.update([item], bank)
    assert bc.compute()["bleu_char_minigpt5.bleu1"] == pytest.approx(1.0)  # identical before the image
    b1 = Bleu(1)
    b1.update([item], bank)
    assert b1.compute()["bleu1"] == pytest.approx(
        sentence_bleu([["here", "it", "is"]], ["here", "it", "is", "and", "more"], weights=(1.0,))
    )  # brevity is fine, precision 3/5
    m = MMRelevance("minigpt5")
    m.update([item], bank)
    assert m.compute()["mm_relevance_minigpt5"] == pytest.approx(1.0)  # text slot 'here it is' vs itself, image 1
    raw = _item("r", [("text", "hi there [IMG0][IMG1] ###")], [("text", "hi there [IMG0] ### after")])
    assert raw.gen_text_before_image == "hi there " and clean_text_minigpt5(raw.gen_text_before_image) == "hi there"
