"""The printed table: what ^ and v mean, the exact-scene row named, no -0.0000, the CI note where an interval
misses its estimate, and FID/KID on few images flagged by the metrics themselves."""

from __future__ import annotations

import numpy as np

from mg5bench.metrics.base import FeatureBank, ScoreItem
from mg5bench.metrics.distribution import FID, KID
from mg5bench.scoring.summary import format_table, number

NOTE = "resampling duplicates samples, which biases set distances upward"


def entry(value: float, low: float, high: float, higher: bool = True, **extra: object) -> dict:
    return {"value": value, "ci_low": low, "ci_high": high, "n": 20, "variant": "x", "higher_is_better": higher,
            **extra}  # fmt: skip


def report(metrics: dict) -> dict:
    return {"metrics": metrics, "evaluator": {"name": "embedded:world-clip", "weights_sha256": "0" * 64},
            "bootstrap": {"resamples": 1000, "cluster": "story"}, "predictions": {"n_missing": 0},
            "notes": ["scene_accuracy skipped: real data has no scene records"]}  # fmt: skip


def test_table_reads_on_its_own() -> None:
    text = format_table(report({
        "fid": entry(-1e-7, -2e-7, 1e-7, higher=False),
        "kid": entry(0.012, 0.019, 0.031, higher=False, ci_note=NOTE, warning="N=20 < 50 images: not meaningful"),
        "clip_i": entry(0.81, 0.75, 0.86, ci_note="not printed: the interval holds the value"),
        "scene_accuracy": entry(0.25, 0.1, 0.4),
        "scene_accuracy.colour": entry(0.5, 0.3, 0.7),
        "clip_t_minigpt5": entry(0.2, 0.1, 0.3, flag="compat: compares images with the voken string"),
    }))  # fmt: skip
    lines = text.splitlines()
    assert "-0.0000" not in text and any(line.startswith("fid v") and " 0.0000 " in line for line in lines)
    assert "^ = higher is better, v = lower is better" in text
    assert any(line.startswith("scene_accuracy (exact scene) ^") for line in lines)
    assert any(line.startswith("scene_accuracy.colour ^") for line in lines)
    assert f"kid: the CI does not contain the value: {NOTE}" in text
    assert "not printed" not in text  # clip_i's interval contains its value
    assert "WARN N=20 < 50 images: not meaningful" in text
    assert "FLAG clip_t_minigpt5: compat: compares images with the voken string" in text
    assert lines[-1] == "scene_accuracy skipped: real data has no scene records"


def test_rows_a_reader_would_misread_are_explained() -> None:
    text = format_table(report({
        "kid": entry(-0.003, -0.01, 0.004, higher=False),
        "kid.std": {**entry(0.0, 0.0, 0.0, higher=False), "value": None},
        "mm_relevance": entry(0.5, 0.45, 0.55),
        "mm_relevance.logit_units": entry(50.0, 45.0, 55.0),
    }))  # fmt: skip
    assert "kid < 0: KID is an unbiased estimate" in text and "kid.std n/a:" in text
    assert "mm_relevance.logit_units: the same score in the paper's units" in text
    plain = format_table(report({"kid": entry(0.01, 0.0, 0.02, higher=False)}))
    assert "kid < 0" not in plain and "kid.std" not in plain and "logit" not in plain


def test_number_never_prints_negative_zero() -> None:
    assert [number(v) for v in (-0.0, -4e-5, 4e-5, -0.00006, None, float("nan"))] == [
        "0.0000", "0.0000", "0.0000", "-0.0001", "n/a", "n/a"]  # fmt: skip


def _distance_metrics(n: int) -> list:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    images = {f"r{i}": real[i] for i in range(n)} | {f"f{i}": fake[i] for i in range(n)}
    bank = FeatureBank(images, {}, 100.0, 8)
    items = [ScoreItem(str(i), str(i), "", "", [f"r{i}"], [f"f{i}"], None) for i in range(n)]
    metrics = [FID(), KID()]
    for m in metrics:
        m.update(items, bank)
    return metrics


def test_fid_and_kid_on_few_images_are_flagged_not_meaningful() -> None:
    for m in _distance_metrics(20):
        assert m.warning is not None and "not meaningful" in m.warning and m.counts() == {"n_real": 20, "n_fake": 20}
        assert m.ci_note and "upward" in m.ci_note
    fid, kid = _distance_metrics(60)
    assert fid.warning is not None and "biased upward at small N" in fid.warning and kid.warning is None
