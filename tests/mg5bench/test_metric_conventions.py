"""The metric conventions the leaderboard exposes: the official ROUGE-L (the rouge package) next
to rouge-score's, the CLIPScore convention 100 x max(cos, 0) where a missing image scores the floor, KID's std as
not applicable when every subset is the whole set, FID with no generated image saying so."""

from __future__ import annotations

import numpy as np
import pytest

from mg5bench.catalog import make_metric
from mg5bench.metrics import FeatureBank, MetricContext, ScoreItem

CTX = MetricContext("mmdialog")


def _item(i: int, gt: str, gen: str, gen_image: str | None = None, gt_image: str | None = None) -> ScoreItem:
    gen_el = [("text", gen)] + ([("image", gen_image)] if gen_image else [])
    gt_el = [("text", gt)] + ([("image", gt_image)] if gt_image else [])
    return ScoreItem(id=f"c{i}_0", group=f"c{i}", gt_text=gt, gen_text=gen, gt_images=[gt_image] if gt_image else [],
                     gen_images=[gen_image] if gen_image else [], caption=gt, gt_elements=gt_el,
                     gen_elements=gen_el)  # fmt: skip


def test_official_rouge_l_is_the_rouge_package_and_differs_from_rouge_score() -> None:
    from rouge import Rouge
    from rouge_score import rouge_scorer

    pairs = [("The Cat sat.", "the cat sat"), ("red circle, top-left", "Red Circle , Top-Left"),
             ("a red square moves left", "a red square moves to the left"), ("I like it!", "i like it")]  # fmt: skip
    items = [_item(i, ref, hyp) for i, (ref, hyp) in enumerate(pairs)]
    official = make_metric("rouge_l_minigpt5", CTX)
    plain = make_metric("rouge_l", CTX)
    official.update(items, None)
    plain.update(items, None)
    got = official.per_sample()["rouge_l_minigpt5"]
    ref_pkg = [Rouge().get_scores(hyp, ref)[0]["rouge-l"]["f"] for ref, hyp in pairs]
    assert got == pytest.approx(ref_pkg)
    # by hand: "the cat sat" vs "The Cat sat": one common token of three (case-sensitive) -> P = R = F = 1/3
    assert got[0] == pytest.approx(1 / 3, abs=1e-7)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert plain.per_sample()["rouge_l"] == pytest.approx([scorer.score(r, h)["rougeL"].fmeasure for r, h in pairs])
    diffs = np.abs(np.array(plain.per_sample()["rouge_l"]) - np.array(got))
    assert diffs.max() == pytest.approx(1.0, abs=1e-7)  # 'red circle, top-left': 1.0 vs 0.0
    assert official.flag and "rouge package" in official.flag


def test_official_rouge_l_reads_only_the_text_before_the_image() -> None:
    item = ScoreItem(id="c0_0", group="c0", gt_text="a red ball", gen_text="a red ball extra words",
                     gt_images=[], gen_images=["x.png"], caption=None, gt_elements=[("text", "a red ball")],
                     gen_elements=[("text", "a red ball"), ("image", "x.png"), ("text", "extra words")])  # fmt: skip
    m = make_metric("rouge_l_minigpt5", CTX)
    m.update([item], None)
    assert m.per_sample()["rouge_l_minigpt5"][0] == pytest.approx(1.0, abs=1e-7)
    plain = make_metric("rouge_l", CTX)
    plain.update([item], None)
    assert plain.per_sample()["rouge_l"][0] < 1.0


def _bank() -> FeatureBank:
    e = np.eye(4, dtype=np.float64)
    images = {"gt.png": e[0], "good.png": e[0] + e[1], "wrong.png": -e[0] + 0.5 * e[2]}
    return FeatureBank(images, {"a caption": e[0]}, 100.0, 4)


def test_clipscore_is_100_max_cos_0_and_a_missing_image_never_outranks_a_drawn_one() -> None:
    bank = _bank()
    items = [
        _item(0, "a caption", "", gen_image="good.png", gt_image="gt.png"),
        _item(1, "a caption", "", gen_image="wrong.png", gt_image="gt.png"),
        _item(2, "a caption", "", gen_image=None, gt_image="gt.png"),
    ]
    raw, score = make_metric("clip_i", CTX), make_metric("clip_score_i", CTX)
    raw.update(items, bank)
    score.update(items, bank)
    cos = raw.per_sample()["clip_i"]
    assert cos == pytest.approx([1 / np.sqrt(2), -1 / np.sqrt(1.25), 0.0])
    # the raw cosine ranks the missing image (0) above the drawn wrong one (-0.894): what the image rate is beside
    assert cos[2] > cos[1]
    # CLIPScore: 100 x max(cos, 0): the wrong image is clipped to the floor, where the missing image also is
    assert score.per_sample()["clip_score_i"] == pytest.approx([100 / np.sqrt(2), 0.0, 0.0])
    stats = score.statistic(np.ones(3))
    assert stats["clip_score_i"] == pytest.approx(100 / np.sqrt(2) / 3)
    assert stats["clip_score_i.image_rate"] == pytest.approx(2 / 3)
    t = make_metric("clip_score_t", CTX)
    t.update(items, bank)
    assert t.per_sample()["clip_score_t"] == pytest.approx([100 / np.sqrt(2), 0.0, 0.0])


def _feature_items(n: int, with_images: bool = True) -> tuple[list[ScoreItem], FeatureBank]:
    rng = np.random.default_rng(0)
    images = {}
    items = []
    for i in range(n):
        images[f"r{i}"] = rng.normal(size=8)
        images[f"f{i}"] = rng.normal(0.3, 1, size=8)
        items.append(ScoreItem(id=f"s{i}", group=f"g{i}", gt_text="", gen_text="", gt_images=[f"r{i}"],
                               gen_images=[f"f{i}"] if with_images else [], caption=None))  # fmt: skip
    return items, FeatureBank(images, {}, 1.0, 8)


def test_kid_std_is_not_applicable_when_every_subset_is_the_whole_set() -> None:
    from mg5bench.metrics.distribution import KID

    items, bank = _feature_items(30)
    whole = make_metric("kid", CTX)  # subsets of min(1000, N) = all 30: every subset is the same set
    whole.update(items, bank)
    out = whole.compute()
    assert np.isfinite(out["kid"]) and np.isnan(out["kid.std"])
    smaller = KID(subset_size=10)
    smaller.update(items, bank)
    out2 = smaller.compute()
    assert out2["kid.std"] > 0


def test_fid_with_no_generated_image_says_so() -> None:
    items, bank = _feature_items(60, with_images=False)
    for name in ("fid", "kid"):
        m = make_metric(name, CTX)
        m.update(items, bank)
        assert np.isnan(m.statistic(np.ones(60))[name])
        assert m.warning is not None and m.warning.startswith("no generated image")
    items, bank = _feature_items(60)
    fid = make_metric("fid", CTX)
    fid.update(items, bank)
    assert fid.warning is not None and "biased upward" in fid.warning


def test_ls_metrics_lists_the_conventions(capsys: pytest.CaptureFixture[str]) -> None:
    from mg5bench.cli import main

    assert main(["ls", "metrics"]) == 0
    out = capsys.readouterr().out
    for name in ("rouge_l_minigpt5", "clip_score_i", "clip_score_t"):
        assert name in out
    assert "100 x max(cos, 0)" in out
