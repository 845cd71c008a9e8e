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
    from mg5bench.data.world_content import DEFAULT_LEVEL

    assert DEFAULT_LEVEL == 3  # the level the default-world rule chose (docs/world.md)
    assert [w.name for w in worlds] == ["v1-seed0-level3-small-48px"]
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
    photos = ["123", *(st["image_id"] for st in stories["40470"][1:])]  # a five-step story, its first photo missing
    annotations += [[{
        "story_id": "99", "photo_flickr_id": photo, "text": "lost .", "original_text": "Lost.",
        "worker_arranged_photo_order": k, "storylet_id": f"99{k}", "album_id": "2",
    }] for k, photo in enumerate(photos)]  # fmt: skip
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


def test_a_split_the_folder_lacks_names_the_splits_it_has(samples_dir: Path, small_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    # not a file name the user never typed: the split asked for, where, and the splits there are
    proc = mg5("data", "export", "--task", "vist", "--data", str(samples_dir / "VIST"), "--split", "test", "--out",
               str(out))  # fmt: skip
    assert_one_line_error(proc, "'test' is not in", "it has val", "--split val")
    assert "_cleaned.json" not in proc.stderr
    proc = mg5("data", "export", "--task", "cc3m", "--data", str(small_world), "--split", "tset", "--out", str(out))
    assert_one_line_error(proc, "split 'tset' is not in", "it has test, train, val", "--split test")
    assert "cc3m_tset.tsv" not in proc.stderr
    # no --split on a folder with one split (official samples: val only, the card says test): that split is read
    proc = mg5("data", "export", "--task", "vist", "--data", str(samples_dir / "VIST"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "of val to" in proc.stdout and len(out.read_text().splitlines()) == 5
    # several splits, none the default: listed, not guessed
    two = tmp_path / "CC3M"
    shutil.copytree(samples_dir / "CC3M", two)
    shutil.copy(two / "cc3m_val.tsv", two / "cc3m_dev.tsv")
    proc = mg5("data", "export", "--task", "cc3m", "--data", str(two), "--out", str(out))
    assert_one_line_error(proc, "default split 'test' is not in", "it has dev, val")


def test_every_run_option_says_its_default() -> None:
    import argparse

    from mg5bench.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = [a for a in commands.choices["run"]._actions if a.option_strings and a.dest != "help"]
    assert len(options) > 20
    said = [a.option_strings[0] for a in options if "default" in (a.help or "") or "required" in (a.help or "")]
    assert said == [a.option_strings[0] for a in options]


def test_normal_runs_silence_library_output_verbose_shows_it(small_world: Path, tmp_path: Path) -> None:
    """The T2I pipeline's nested 'Loading pipeline components' / 'Loading weights' bars and library warnings are
    not printed on a normal run (mg5bench's own progress is); --verbose shows them."""
    args = ["run", "--task", "cc3m", "--model", "sd2", "--data", str(small_world), "--split", "val", "--limit", "1",
            "--num-inference-steps", "1", "--resamples", "5", "--metrics", "clip_i"]  # fmt: skip
    quiet = mg5(*args, "--out", str(tmp_path / "a"))
    assert quiet.returncode == 0, quiet.stderr
    assert "sd2 cc3m" in quiet.stderr and "Loading" not in quiet.stderr and "Warning" not in quiet.stderr
    verbose = mg5(*args, "--out", str(tmp_path / "b"), "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "Loading" in verbose.stderr
    # main() called in-process silences for its own duration only: nothing leaks into the caller's environment
    import os

    from mg5bench.cli import QUIET_ENV, main

    before = {k: os.environ.get(k) for k in QUIET_ENV}
    assert main(["ls", "trainers"]) == 0
    assert {k: os.environ.get(k) for k in QUIET_ENV} == before
