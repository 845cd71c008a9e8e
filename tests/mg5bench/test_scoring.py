"""`mg5bench score` end to end on the synthetic world and the official samples."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mg5bench.core.errors import ConfigError
from mg5bench.scoring.scorer import score
from mg5bench.tasks import build_samples, get_task


def write_preds(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def vist_predictions(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sset = build_samples(get_task("vist"), str(small_world), "val", progress=False)
    d = tmp_path_factory.mktemp("preds")
    Image.new("RGB", (48, 48), (200, 200, 200)).save(d / "blank.png")
    targets = [s.target_images[0] for s in sset.samples]
    shuffled = targets[:]
    random.Random(0).shuffle(shuffled)
    return {
        "copy": write_preds(
            d / "copy.jsonl",
            [{"id": s.id, "output": [{"image": t}]} for s, t in zip(sset.samples, targets, strict=True)],
        ),
        "shuffled": write_preds(
            d / "shuffled.jsonl",
            [{"id": s.id, "output": [{"image": t}]} for s, t in zip(sset.samples, shuffled, strict=True)],
        ),
        "blank": write_preds(
            d / "blank.jsonl", [{"id": s.id, "output": [{"image": "blank.png"}]} for s in sset.samples]
        ),
    }


@pytest.fixture(scope="module")
def vist_scores(small_world: Path, vist_predictions: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    cache = tmp_path_factory.mktemp("cache")
    out = {}
    for name, path in vist_predictions.items():
        out[name] = score(
            "vist", path, path.parent / f"out_{name}", data=str(small_world), split="val",
            metrics=["clip_i", "clip_t", "fid", "kid", "scene_accuracy", "fid_per_story_minigpt5"],
            resamples=200, cache_dir=cache, progress=False,
        )  # fmt: skip
    return out


def test_copy_predictions_are_perfect(vist_scores: dict) -> None:
    m = vist_scores["copy"]["metrics"]
    assert m["clip_i"]["value"] == pytest.approx(1.0, abs=1e-5)
    assert abs(m["fid"]["value"]) < 1e-6
    assert m["scene_accuracy"]["value"] == 1.0
    assert m["clip_i"]["n"] == 80 and m["fid"]["n_real"] == 80 == m["fid"]["n_fake"]
    assert "warning" in m["fid"]  # N < 2048 is flagged
    assert "flag" in m["fid_per_story_minigpt5"]


@pytest.mark.parametrize("key", ["clip_i", "clip_t", "scene_accuracy", "scene_accuracy.cell"])
def test_paired_image_metrics_order_gt_shuffled_blank(vist_scores: dict, key: str) -> None:
    v = {k: vist_scores[k]["metrics"][key]["value"] for k in ("copy", "shuffled", "blank")}
    assert v["copy"] > v["shuffled"] > v["blank"], v


@pytest.mark.parametrize("key", ["fid", "kid"])
def test_distribution_metrics_order_gt_shuffled_blank(vist_scores: dict, key: str) -> None:
    v = {k: vist_scores[k]["metrics"][key]["value"] for k in ("copy", "shuffled", "blank")}
    # shuffling keeps the set of images, so the distribution distance stays at the copy's level
    assert v["copy"] == pytest.approx(v["shuffled"], abs=1e-6) and v["shuffled"] < v["blank"], v


def test_cis_bracket_values_and_files_are_written(vist_scores: dict, vist_predictions: dict[str, Path]) -> None:
    m = vist_scores["shuffled"]["metrics"]
    for key in ("clip_i", "scene_accuracy", "clip_t"):
        assert m[key]["ci_low"] <= m[key]["value"] <= m[key]["ci_high"], (key, m[key])
    # set distances: duplicates in bootstrap replicates bias them upward; the entry says so
    assert m["fid"]["ci_low"] < m["fid"]["ci_high"] and "biases set distances upward" in m["fid"]["ci_note"]
    out = vist_predictions["shuffled"].parent / "out_shuffled"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["clip_i"]["value"] == m["clip_i"]["value"]
    assert saved["evaluator"]["weights_sha256"] and saved["evaluator"]["preprocessing"].startswith("open_clip")
    rows = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    assert len(rows) == 80 and np.mean([r["clip_i"] for r in rows]) == pytest.approx(m["clip_i"]["value"])


def test_clip_i_matches_direct_open_clip(
    vist_scores: dict, vist_predictions: dict[str, Path], small_world: Path
) -> None:
    import open_clip
    import torch

    from mg5bench.scoring.evaluators import EMBEDDED_DIR

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{EMBEDDED_DIR}")
    model.eval()
    preds = [json.loads(line) for line in vist_predictions["shuffled"].read_text().splitlines()][:10]
    sset = build_samples(get_task("vist"), str(small_world), "val", progress=False)
    gt = {s.id: s.target_images[0] for s in sset.samples}
    rows = {
        json.loads(line)["id"]: json.loads(line)
        for line in (vist_predictions["shuffled"].parent / "out_shuffled" / "per_sample.jsonl").read_text().splitlines()
    }
    with torch.no_grad():
        for p in preds:
            a = model.encode_image(preprocess(Image.open(gt[p["id"]]).convert("RGB"))[None])
            b = model.encode_image(preprocess(Image.open(p["output"][0]["image"]).convert("RGB"))[None])
            direct = float(torch.nn.functional.cosine_similarity(a, b))
            assert rows[p["id"]]["clip_i"] == pytest.approx(direct, abs=1e-5)


def test_missing_predictions_count_as_empty(
    small_world: Path, vist_predictions: dict[str, Path], tmp_path: Path
) -> None:
    lines = vist_predictions["copy"].read_text().splitlines()
    half = write_preds(tmp_path / "half.jsonl", [json.loads(x) for x in lines[:40]])
    rep = score("vist", half, None, data=str(small_world), split="val", metrics=["clip_i"], resamples=0, progress=False)
    m = rep["metrics"]
    assert rep["predictions"]["n_missing"] == 40
    assert m["clip_i"]["value"] == pytest.approx(0.5, abs=1e-5)  # missing images count as 0, not dropped
    assert m["clip_i.produced_only"]["value"] == pytest.approx(1.0, abs=1e-5)
    assert m["clip_i.image_rate"]["value"] == pytest.approx(0.5)


def test_ground_truth_features_are_cached(small_world: Path, vist_predictions: dict[str, Path], tmp_path: Path) -> None:
    kw = dict(data=str(small_world), split="val", metrics=["clip_i"], resamples=0, cache_dir=tmp_path, progress=False)
    first = score("vist", vist_predictions["blank"], None, **kw)
    second = score("vist", vist_predictions["blank"], None, **kw)
    assert first["encoding"]["gt_images_from_cache"] == 0 and first["encoding"]["images_encoded"] == 81
    assert second["encoding"]["gt_images_from_cache"] == 80 and second["encoding"]["images_encoded"] == 1
    assert first["metrics"]["clip_i"]["value"] == second["metrics"]["clip_i"]["value"]


def test_mmdialog_copy_and_official_samples(small_world: Path, samples_dir: Path, tmp_path: Path) -> None:
    sset = build_samples(get_task("mmdialog"), str(small_world), "val", progress=False)
    p = write_preds(
        tmp_path / "p.jsonl", [{"id": s.id, "output": [x.to_json() for x in s.target]} for s in sset.samples]
    )
    rep = score("mmdialog", p, None, data=str(small_world), split="val", resamples=50, progress=False,
                metrics=["mm_relevance", "mm_relevance_minigpt5", "bleu1", "rouge_l", "clip_i"])  # fmt: skip
    m = rep["metrics"]
    for key in ("mm_relevance", "mm_relevance_minigpt5", "bleu1", "rouge_l", "clip_i"):
        assert m[key]["value"] == pytest.approx(1.0, abs=1e-5), key
    # real data: scene_accuracy from the card is skipped with a note, not faked
    real = build_samples(get_task("mmdialog"), str(samples_dir / "MMDialog"), "test", progress=False)
    p2 = write_preds(tmp_path / "p2.jsonl", [{"id": s.id, "output": [{"text": "lovely photo"}]} for s in real.samples])
    real_data = {"data": str(samples_dir / "MMDialog"), "split": "test", "resamples": 20, "progress": False}
    # the embedded evaluator (a 48-pixel CLIP of coloured shapes) is not chosen silently for real data ...
    with pytest.raises(ConfigError, match=r"not the synthetic world.*--evaluator open_clip:"):
        score("mmdialog", p2, None, **real_data)
    # ... and when named, it is used with a warning that stays in the report and the printed table
    rep2 = score("mmdialog", p2, None, evaluator="embedded", **real_data)
    assert "scene_accuracy" not in rep2["metrics"]
    assert "scene_accuracy skipped: real data has no scene records" in rep2["notes"]
    assert rep2["metrics"]["clip_i"]["value"] == 0.0 and rep2["metrics"]["clip_i.image_rate"]["value"] == 0.0
    from mg5bench.scoring.summary import format_table

    assert "WARNING: scored with the embedded evaluator" in format_table(rep2)


def mg5(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mg5bench", *args], capture_output=True, text=True)


def test_bad_predictions_one_line_exit_2(small_world: Path, tmp_path: Path) -> None:
    base = ["score", "--task", "cc3m", "--data", str(small_world), "--split", "val", "--out", str(tmp_path / "o")]
    cases = {
        "unknown sample id": '{"id": "val/nope", "output": []}\n',
        "malformed JSON": '{"id": \n',
        "corrupt or unreadable": '{"id": "val/0000000", "output": [{"image": "bad.png"}]}\n',
        "is missing": '{"id": "val/0000000", "output": [{"image": "nowhere.png"}]}\n',
        "exactly one of": '{"id": "val/0000000", "output": [{"img": "x"}]}\n',
    }
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    for needle, content in cases.items():
        p = tmp_path / "p.jsonl"
        p.write_text(content)
        proc = mg5(*base, "--predictions", str(p), "--quiet")
        assert proc.returncode == 2, (needle, proc.stderr)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and needle in lines[0] and "p.jsonl" in lines[0] and "line 1" in lines[0], proc.stderr
        assert not (tmp_path / "o" / "metrics.json").exists()
