"""The command line, end to end in subprocesses: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def mg5(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mg5bench", *args], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_synth_validate_export_on_a_world(tmp_path: Path) -> None:
    world = tmp_path / "world"
    proc = mg5("data", "synth", "--out", str(world), "--size", "small", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "world:" in proc.stdout and (world / "world.json").is_file()
    for task in ("cc3m", "vist", "mmdialog"):
        proc = mg5("data", "validate", str(world), "--task", task)
        assert proc.returncode == 0, proc.stderr
        assert "train:" in proc.stdout and "val:" in proc.stdout and "ok: no problems found" in proc.stdout
        out = tmp_path / f"{task}.jsonl"
        proc = mg5("data", "export", "--task", task, "--data", str(world), "--split", "val", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert rows and all({"id", "context", "target"} <= set(r) for r in rows)
        assert all(Path(seg["image"]).is_file() for r in rows for seg in r["target"] if "image" in seg)
        manifest = json.loads((tmp_path / f"{task}.jsonl.manifest.json").read_text())
        assert manifest["n_samples"] == len(rows) and manifest["skipped"] == []


def test_default_world_is_built_in_the_user_cache(isolated_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "cc3m.jsonl"
    proc = mg5("data", "export", "--task", "cc3m", "--data", "synth:size=small", "--split", "val", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    worlds = list((isolated_cache / "mg5bench" / "worlds").iterdir())
    assert [w.name for w in worlds] == ["v1-seed0-level1-small-48px"]
    first = Path(json.loads(out.read_text().splitlines()[0])["target"][0]["image"])
    assert first.is_relative_to(worlds[0])


def test_validate_and_export_official_samples(samples_dir: Path, tmp_path: Path) -> None:
    for task, folder, split in (
        ("cc3m", "CC3M", "val"),
        ("vist", "VIST", "val"),
        ("mmdialog", "MMDialog", "test"),
    ):
        proc = mg5("data", "validate", str(samples_dir / folder), "--task", task)
        assert proc.returncode == 0, proc.stderr
        assert f"{split}:" in proc.stdout
        out = tmp_path / f"{task}.jsonl"
        proc = mg5(
            "data",
            "export",
            "--task",
            task,
            "--data",
            str(samples_dir / folder),
            "--split",
            split,
            "--out",
            str(out),
        )
        assert proc.returncode == 0, proc.stderr
    ids = [json.loads(line)["id"] for line in (tmp_path / "vist.jsonl").read_text().splitlines()]
    assert ids == [f"40470_{k}" for k in range(5)]


@pytest.fixture()
def bad_vist(samples_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "VIST"
    shutil.copytree(samples_dir / "VIST", dst)
    return dst


def test_bad_input_one_line_exit_2(bad_vist: Path, tmp_path: Path) -> None:
    (bad_vist / "val_images" / "000000004.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "x.jsonl"
    proc = mg5("data", "export", "--task", "vist", "--data", str(bad_vist), "--split", "val", "--out", str(out))
    assert_one_line_error(proc, "val_cleaned.json", "40470", "000000004.jpg")
    assert not out.exists()  # nothing half-written
    proc = mg5("data", "validate", str(bad_vist), "--task", "vist")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "000000004.jpg" in proc.stderr and "1 problem(s) found" in proc.stdout
    # --skip-bad: the story is skipped and listed, never silently
    proc = mg5(
        "data",
        "export",
        "--task",
        "vist",
        "--data",
        str(bad_vist),
        "--split",
        "val",
        "--out",
        str(out),
        "--skip-bad",
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "x.jsonl.manifest.json").read_text())
    assert len(manifest["skipped"]) == 1 and "40470" in manifest["skipped"][0]["record"]
    assert out.read_text() == ""


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert_one_line_error(mg5("data", "export", "--task", "vits", "--out", str(tmp_path / "x")), "did you mean 'vist'")
    assert_one_line_error(
        mg5("data", "export", "--task", "vist", "--data", str(tmp_path / "nope"), "--out", str(out)),
        "nope",
        "not found",
    )
    assert_one_line_error(
        mg5(
            "data",
            "export",
            "--task",
            "vist",
            "--task-args",
            "round_range=first",
            "--out",
            str(tmp_path / "x"),
        ),
        "round_range must be one of",
    )
    assert_one_line_error(mg5("data", "validate", str(tmp_path), "--task", "cc3m"), "no cc3m data files found")
    # score: a run folder or a predictions file, each with its own options
    assert_one_line_error(mg5("score"), "give a RUN_FOLDER", "--task, --predictions, --out")
    assert_one_line_error(mg5("score", str(tmp_path)), "not a run folder (no run.json)", "mg5bench run")
    assert_one_line_error(mg5("score", str(tmp_path), "--task", "vist"), "from run.json", "drop --task")
    assert_one_line_error(mg5("score", "--task", "vist", "--predictions", str(out), "--out", str(tmp_path), "--limit",
                              "3"), "--limit and --force apply to a RUN_FOLDER")  # fmt: skip
    assert_one_line_error(mg5("run", "--task", "vist", "--model", "gt", "--device", "tpu"), "--device 'tpu'")


def test_convert_vist_sis_cli(samples_dir: Path, tmp_path: Path) -> None:
    stories = json.loads((samples_dir / "VIST" / "val_cleaned.json").read_text())
    mapping = json.loads((samples_dir / "VIST" / "val_image_mapping.json").read_text())
    images = tmp_path / "images"
    images.mkdir()
    annotations = []
    for story_id, steps in stories.items():
        for st in steps:
            shutil.copy(samples_dir / "VIST" / mapping[st["image_id"]], images / f"{st['image_id']}.jpg")
            annotations.append([{
                "story_id": story_id, "photo_flickr_id": st["image_id"], "text": st["caption"],
                "original_text": st["caption"].capitalize(),
                "worker_arranged_photo_order": st["sequence_index"],
                "storylet_id": f"{story_id}{st['sequence_index']}", "album_id": "1",
            }])  # fmt: skip
    annotations.append([{
        "story_id": "99", "photo_flickr_id": "123", "text": "lost .", "original_text": "Lost.",
        "worker_arranged_photo_order": 0, "storylet_id": "990", "album_id": "2",
    }])  # fmt: skip
    src = tmp_path / "val.story-in-sequence.json"
    src.write_text(json.dumps({"annotations": annotations}))
    dst = tmp_path / "out"
    proc = mg5("data", "convert", "vist-sis", str(src), str(images), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert "99" in proc.stderr and "123" in proc.stderr  # the story with a missing image is reported
    converted = json.loads((dst / "val_cleaned.json").read_text())
    assert list(converted) == ["40470"]
    assert [s["caption"] for s in converted["40470"]] == [s["caption"] for s in stories["40470"]]
    proc = mg5("data", "validate", str(dst), "--task", "vist")
    assert proc.returncode == 0, proc.stderr
