"""The contamination check against planted duplicates and an independent brute-force count with imagehash's own
Hamming distance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mg5bench.cli import main
from mg5bench.core.errors import ConfigError, DataError
from mg5bench.data.overlap import overlap, read_folder, read_task_split


def _plant(world: Path, folder: Path) -> dict[str, object]:
    """A training folder holding 3 byte copies and 2 enlarged copies of VIST test images, 6 noise images, and a
    CC3M-like TSV with 2 test narrations copied whole, 1 text sharing exactly one 8-gram with a test narration, and 3
    unrelated texts. Returns what was planted."""
    target = read_task_split("vist:test", str(world), progress=False)
    long_texts = sorted({t for _, t in target.texts if len(t.split()) >= 10})
    short_texts = sorted({t for _, t in target.texts if len(t.split()) < 8})
    images = folder / "train"
    images.mkdir(parents=True)
    for i, (_, path) in enumerate(target.images[:3]):
        shutil.copyfile(path, images / f"copy{i}.png")
    for i, (_, path) in enumerate(target.images[10:12]):
        with Image.open(path) as im:
            im.resize((96, 96), Image.NEAREST).save(images / f"big{i}.png")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(images / f"noise{i}.png")
    window = " ".join(long_texts[0].split()[1:9])  # eight tokens from inside a long narration
    texts = [long_texts[1], short_texts[0], f"zebra quokka {window} wombat", "lorem ipsum dolor", "x y z", "okapi ."]
    rows = ["caption\timage_path"] + [f"{t}\ttrain/noise{i}.png" for i, t in enumerate(texts)]
    (folder / "cc3m_train.tsv").write_text("\n".join(rows) + "\n")
    return {"target": target, "copied": [long_texts[1], short_texts[0]], "window": window}


def test_overlap_counts_planted_duplicates(small_world_l3: Path, tmp_path: Path) -> None:
    import imagehash

    planted = _plant(small_world_l3, tmp_path / "src")
    target = planted["target"]
    source = read_folder(tmp_path / "src")
    assert len(source.images) == 11 and len(source.texts) == 6
    report = overlap(source, target, progress=False)
    # images: brute force over every pair with imagehash's own distance
    src_hashes = [imagehash.phash(Image.open(p).convert("RGB")) for _, p in source.images]
    nearest = [min(imagehash.phash(Image.open(p).convert("RGB")) - h for h in src_hashes) for _, p in target.images]
    assert report["images"]["near_duplicate"]["count"] == sum(d <= 8 for d in nearest)
    assert report["images"]["distance_histogram"] == {str(d): nearest.count(d) for d in range(9)}
    # the three byte copies, and whatever else in the split has exactly their pixels (a repeated story image)
    copies = {Image.open(p).convert("RGB").tobytes() for _, p in target.images[:3]}
    same_pixels = sum(Image.open(p).convert("RGB").tobytes() in copies for _, p in target.images)
    assert report["images"]["pixel_identical"]["count"] == same_pixels >= 3
    assert report["images"]["near_duplicate"]["count"] >= 5  # the enlarged copies too
    # texts: whole copies, and the planted 8-gram (world narrations are lower-case and space-tokenised already)
    texts = [t for _, t in target.texts]
    src_texts = [t for _, t in source.texts]
    whole = sum(t in src_texts for t in texts)
    gram = sum(any(_shares(t, s) for s in src_texts) for t in texts)
    assert whole == sum(t in planted["copied"] for t in texts)
    assert sum(f" {planted['window']} " in f" {t} " for t in texts) >= 1
    assert report["texts"]["duplicate"]["count"] == whole >= 2
    assert report["texts"]["ngram"]["count"] == gram > whole
    assert report["texts"]["ngram"]["share"] == pytest.approx(gram / len(texts))


def test_overlap_cli_task_splits_and_official_samples(small_world_l3: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "overlap.json"
    args = ["data", "overlap", "--source", "cc3m:train", "--target", "vist:test", "--data", str(small_world_l3),
            "--out", str(out), "--quiet", "--examples", "2"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["source"]["images"] == 4000 and report["target"]["images"] == 80
    assert f"{report['images']['near_duplicate']['count']} (" in printed and len(report["images"]["examples"]) == 2
    # official samples: the folder holds the MMDialog split itself, and nothing of the VIST one in its CC3M part
    samples = Path(__file__).resolve().parents[3] / "official_samples"
    rep = json.loads(json.dumps(_run_report(samples, "mmdialog:test", samples / "MMDialog")))
    assert rep["images"]["pixel_identical"]["count"] == rep["target"]["images"] == 4
    assert rep["texts"]["duplicate"]["count"] == rep["target"]["texts"] == 9
    rep = _run_report(samples / "CC3M", "vist:val", samples / "VIST")
    assert rep["images"]["near_duplicate"]["count"] == rep["texts"]["ngram"]["count"] == 0
    # bad input: one line, exit 2
    assert main(["data", "overlap", "--source", str(tmp_path / "nope"), "--target", "vist:test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source folder not found" in err[0] and "fix:" in err[0]
    with pytest.raises(ConfigError, match="has no cc3m split 'dev'"):
        read_task_split("cc3m:dev", str(small_world_l3), progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png.*not a readable image"):
        overlap(read_folder(bad), read_task_split("vist:test", str(small_world_l3), progress=False), progress=False)


def _run_report(source: Path, target: str, data: Path) -> dict:
    from mg5bench import api

    return api.overlap(str(source), target, data=str(data), progress=False)


def _shares(t: str, s: str, n: int = 8) -> bool:
    """Brute force on space-separated words (the world's texts are lower-case and space-tokenised): some n words in
    a row of t occur in s, or t is s when shorter than n words."""
    words = t.split()
    if len(words) < n:
        return t == s
    return any(f" {' '.join(words[i : i + n])} " in f" {s} " for i in range(len(words) - n + 1))
