"""A corpus of bad arguments and bad files swept through the command line (issue 16): every case exits with status 2
and one line on stderr that names the problem (and, for files, the file and the fix); nothing raises. The cases
that used to print a traceback, and the ones that used to be accepted silently, are all here (marked ``was:``).

The corpus runs ``mg5bench.cli.main`` in this process (an exception escaping it fails the test just as a traceback
would, and the corpus stays fast); ``test_the_corpus_holds_in_a_real_process`` runs a few cases as real commands."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES

CKPTS = REPO / "reference_model" / "checkpoints"


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file that claims ``width`` x ``height`` pixels: a decompression bomb for any decoder."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@dataclass
class Ctx:
    world: Path
    tmp: Path

    def run(self, *extra: str, model: str = "blank", task: str = "vist") -> list[str]:
        return ["run", "--task", task, "--model", model, "--data", str(self.world), "--split", "val", "--limit", "2",
                "--out", str(self.tmp / "runs"), "--quiet", *extra]  # fmt: skip

    def preds(self, *lines: str, name: str = "p.jsonl") -> Path:
        path = self.tmp / "preds" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def score(self, preds: Path, *extra: str, out: Path | None = None) -> list[str]:
        return ["score", "--task", "vist", "--data", str(self.world), "--split", "val", "--predictions", str(preds),
                "--out", str(out or self.tmp / "scores"), "--quiet", *extra]  # fmt: skip

    def copy(self, src: Path, name: str) -> Path:
        dst = self.tmp / name
        shutil.copytree(src, dst)
        return dst


SID = "val00000_1"  # a sample of the small world's VIST val split


def _bomb_score(c: Ctx) -> tuple[list[str], list[str]]:
    (c.tmp / "preds").mkdir()
    (c.tmp / "preds" / "bomb.png").write_bytes(png_header(30000, 30000))
    p = c.preds(json.dumps({"id": SID, "output": [{"image": "bomb.png"}]}))
    return c.score(p), ["p.jsonl: line 1", "bomb.png is too large to decode safely", "fix:"]


def _bomb_warning_score(c: Ctx) -> tuple[list[str], list[str]]:
    (c.tmp / "preds").mkdir()
    (c.tmp / "preds" / "big.png").write_bytes(png_header(10000, 10000))  # past PIL's warning limit only
    p = c.preds(json.dumps({"id": SID, "output": [{"image": "big.png"}]}))
    return c.score(p), ["big.png is too large to decode safely"]


def _bomb_validate(c: Ctx) -> tuple[list[str], list[str]]:
    vist = c.copy(SAMPLES / "VIST", "VIST")
    (vist / "val_images" / "000000004.jpg").write_bytes(png_header(30000, 30000))
    return ["data", "validate", str(vist), "--task", "vist"], ["problem:", "000000004.jpg is too large"]


def _deep_predictions(c: Ctx) -> tuple[list[str], list[str]]:
    return c.score(c.preds("[" * 100_000 + "]" * 100_000)), ["p.jsonl: line 1", "nested too deeply"]


def _no_output(c: Ctx) -> tuple[list[str], list[str]]:  # was: counted as having output
    return c.score(c.preds(json.dumps({"id": SID}))), ["line 1", "got no 'output'", "empty list for no output"]


def _truncated_minigpt5(c: Ctx) -> tuple[list[str], list[str]]:
    ckpt = c.copy(CKPTS / "stage2-vist", "ckpt")
    w = ckpt / "trainable.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    return c.run("--model-args", f"checkpoint={ckpt}", model="minigpt5"), ["trainable.safetensors", "cut short",
                                                                           "copy the checkpoint again"]  # fmt: skip


def _garbled_header(c: Ctx) -> tuple[list[str], list[str]]:
    ckpt = c.copy(CKPTS / "stage2-vist", "ckpt")
    w = ckpt / "trainable.safetensors"
    data = bytearray(w.read_bytes())
    data[8:40] = b"#" * 32
    w.write_bytes(bytes(data))
    return c.run("--model-args", f"checkpoint={ckpt}", model="minigpt5"), ["header is not valid JSON"]


def _minigpt5_without_backbones(c: Ctx) -> tuple[list[str], list[str]]:
    ckpt = c.copy(CKPTS / "stage2-vist", "ckpt")  # its parts are ../backbones/*: not next to the copy
    return c.run("--model-args", f"checkpoint={ckpt}", model="minigpt5"), ["its lm_path", "is missing",
                                                                           "put the backbones back"]  # fmt: skip


def _divter_without_backbones(c: Ctx) -> tuple[list[str], list[str]]:
    ckpt = c.copy(CKPTS / "divter-vist", "ckpt")
    return c.run("--model-args", f"checkpoint={ckpt}", model="divter"), ["has no lm/", "backbones"]


def _divter_vist_on_cc3m(c: Ctx) -> tuple[list[str], list[str]]:  # was: accepted silently
    argv = c.run("--model-args", f"checkpoint={CKPTS / 'divter-vist'}", model="divter", task="cc3m")
    return argv, ["divter-vist was trained for the vist task, not cc3m", "cross_task=true"]


def _minigpt5_vist_on_mmdialog(c: Ctx) -> tuple[list[str], list[str]]:
    argv = c.run("--model-args", f"checkpoint={CKPTS / 'stage2-vist'}", model="minigpt5", task="mmdialog")
    return argv, ["trained for the vist task, not mmdialog"]


def _sd2ft_mmdialog_on_vist(c: Ctx) -> tuple[list[str], list[str]]:
    return c.run("--model-args", f"path={CKPTS / 'sd2-ft-mmdialog'}", model="sd2-ft"), ["trained for the mmdialog"]


def _four_step_story(c: Ctx) -> tuple[list[str], list[str]]:  # was: accepted silently
    vist = c.copy(SAMPLES / "VIST", "VIST")
    stories = json.loads((vist / "val_cleaned.json").read_text())
    stories["40470"] = stories["40470"][:4]
    (vist / "val_cleaned.json").write_text(json.dumps(stories))
    argv = ["data", "export", "--task", "vist", "--data", str(vist), "--out", str(c.tmp / "x.jsonl")]
    return argv, ["val_cleaned.json: story 40470", "4 steps, but a VIST story has 5"]


def _incomplete_world(c: Ctx) -> tuple[list[str], list[str]]:  # was: an unmarked half-built folder, used as data
    w = c.copy(c.world, "w")
    (w / "world.json").unlink()
    (w / "INCOMPLETE").write_text("{}")
    return ["data", "export", "--task", "cc3m", "--data", str(w), "--out", str(c.tmp / "x.jsonl")], [
        "left this world incomplete", "rerun 'mg5bench data synth --out"]  # fmt: skip


def _truncated_evaluator(c: Ctx) -> tuple[list[str], list[str]]:
    from mg5bench.evaluators import EMBEDDED_DIR

    clip = c.copy(EMBEDDED_DIR, "clip")
    w = clip / "open_clip_model.safetensors"
    w.write_bytes(w.read_bytes()[:-1000])
    argv = c.score(c.preds(), "--evaluator", f"open_clip:local-dir:{clip}")
    return argv, ["open_clip_model.safetensors", "cut short", "copy the evaluator's weights again"]


def _damaged_inception(c: Ctx) -> tuple[list[str], list[str]]:
    (c.tmp / "inception.pth").write_bytes(b"PK\x03\x04 not a torch file")
    argv = c.score(c.preds(), "--inception", str(c.tmp / "inception.pth"), "--metrics", "fid")
    return argv, ["Inception"]  # without torch-fidelity: that it is missing; with it: the damaged file, named


def _bad_run_json(c: Ctx) -> tuple[list[str], list[str]]:
    run = c.tmp / "run"
    run.mkdir()
    (run / "run.json").write_text("[" * 50_000)
    return ["score", str(run)], ["run.json", "malformed JSON"]


def _outside(value: Callable[[Ctx], str]) -> Callable[[Ctx], tuple[list[str], list[str]]]:
    def case(c: Ctx) -> tuple[list[str], list[str]]:
        p = c.preds(json.dumps({"id": SID, "output": [{"image": value(c)}]}))
        return c.score(p), ["p.jsonl: line 1 (id", "is outside the predictions folder", "--media-root"]

    return case


def _symlink_out(c: Ctx) -> str:
    (c.tmp / "preds").mkdir()
    (c.tmp / "preds" / "link.png").symlink_to(c.world / "CC3M" / "val" / "0000001.png")
    return "link.png"


def _unwritable(c: Ctx) -> str:
    return "/sys/mg5bench-test" if Path("/sys").is_dir() else "/proc/mg5bench-test"


# name -> (argv and needles of the one line). "was:" marks the cases the issue found printing a traceback or
# accepted silently; the others are neighbours of theirs.
CASES: dict[str, Callable[[Ctx], tuple[list[str], list[str]]]] = {
    # was: tracebacks
    "decompression bomb in a prediction": _bomb_score,
    "image past the pixel warning limit": _bomb_warning_score,
    "decompression bomb in data validate": _bomb_validate,
    "deeply nested predictions line": _deep_predictions,
    "truncated safetensors checkpoint": _truncated_minigpt5,
    "safetensors header not JSON": _garbled_header,
    "minigpt5 checkpoint without its backbones": _minigpt5_without_backbones,
    "divter checkpoint without its backbones": _divter_without_backbones,
    "--model-args size=abc": lambda c: (c.run("--model-args", "size=abc"), ["--model-args size must be an integer"]),
    "--model-args size=0": lambda c: (c.run("--model-args", "size=0"), ["size must be between 1 and 4096"]),
    "--model-args force_generation=maybe": lambda c: (
        c.run("--model-args", "force_generation=maybe", model="minigpt5"),
        ["force_generation must be true or false"],
    ),
    "--batch-size -2": lambda c: (c.run("--batch-size", "-2"), ["--batch-size: must be a positive integer"]),
    "--batch-size 0": lambda c: (c.run("--batch-size", "0"), ["--batch-size: must be a positive integer"]),
    "--guidance-scale nan": lambda c: (c.run("--guidance-scale", "nan", model="sd2"), ["must be a finite number"]),
    "--temperature inf": lambda c: (c.run("--temperature", "inf", model="minigpt5"), ["must be a finite number"]),
    "--top-p 1.5": lambda c: (c.run("--top-p", "1.5", model="minigpt5"), ["--top-p: must be > 0 and <= 1"]),
    "--num-inference-steps 0": lambda c: (c.run("--num-inference-steps", "0", model="sd2"), ["positive integer"]),
    "--limit -3": lambda c: (c.run("--limit", "-3"), ["--limit: must be >= 0"]),
    "--limit abc": lambda c: (c.run("--limit", "abc"), ["--limit: expected an integer, got 'abc'"]),
    "score --seed -1": lambda c: (c.score(c.preds(), "--seed", "-1"), ["--seed: must be >= 0"]),
    "synth:seed=-1": lambda c: (
        ["data", "export", "--task", "vist", "--data", "synth:seed=-1", "--out", str(c.tmp / "x.jsonl")],
        ["world seed must be a non-negative integer"],
    ),
    "train --lr nan": lambda c: (
        ["train", "divter", "--task", "vist", "--out", str(c.tmp / "t"), "--lr", "nan"],
        ["--lr: must be a finite number"],
    ),
    "train --steps 0": lambda c: (
        ["train", "divter", "--task", "vist", "--out", str(c.tmp / "t"), "--steps", "0"],
        ["--steps: must be a positive integer"],
    ),
    "truncated run.json (deeply nested)": _bad_run_json,
    "evaluator weights cut short": _truncated_evaluator,
    "damaged Inception weights": _damaged_inception,
    "sd2 path that is not a pipeline": lambda c: (
        c.run("--model-args", f"path={c.tmp}", model="sd2"),
        ["no model_index.json"],
    ),
    "score --out a file": lambda c: (c.score(c.preds(), out=Path("/etc/hostname")), ["is a file, not a folder"]),
    "score --out unwritable": lambda c: (c.score(c.preds(), out=Path(_unwritable(c))), ["cannot write in"]),
    "run --out a file": lambda c: (c.run("--out", "/etc/hostname"), ["--out /etc/hostname is a file"]),
    "run --out unwritable": lambda c: (c.run("--out", _unwritable(c)), ["cannot write in"]),
    "run --out under a file": lambda c: (c.run("--out", "/etc/hostname/runs"), ["is a file, so the folder"]),
    "data synth --out a file": lambda c: (
        ["data", "synth", "--out", "/etc/hostname", "--size", "small", "--quiet"],
        ["/etc/hostname is a file, not a folder"],
    ),
    "data export --out a folder": lambda c: (
        ["data", "export", "--task", "vist", "--data", str(c.world), "--out", str(c.tmp)],
        ["is a folder; pass a file name"],
    ),
    "data export --out unwritable": lambda c: (
        ["data", "export", "--task", "vist", "--data", str(c.world), "--out", _unwritable(c) + "/x.jsonl"],
        ["cannot write in"],
    ),
    "train --out a file": lambda c: (["train", "divter", "--task", "vist", "--out", "/etc/hostname"], ["is a file"]),
    # was: accepted silently
    "--resamples -5 (score)": lambda c: (c.score(c.preds(), "--resamples", "-5"), ["--resamples: must be >= 0"]),
    "--resamples -5 (run)": lambda c: (c.run("--resamples", "-5"), ["--resamples: must be >= 0"]),
    "predictions line without output": _no_output,
    "VIST story with 4 steps": _four_step_story,
    "VIST-trained Divter on CC3M": _divter_vist_on_cc3m,
    "VIST-trained MiniGPT-5 on MMDialog": _minigpt5_vist_on_mmdialog,
    "MMDialog sd2-ft on VIST": _sd2ft_mmdialog_on_vist,
    "a half-built world as --data": _incomplete_world,
    # predictions confined to their folder (or --media-root)
    "absolute path outside": _outside(lambda c: str(c.world / "CC3M" / "val" / "0000001.png")),
    "absolute path outside, no such file": _outside(lambda c: str(c.world / "CC3M" / "val" / "nope.png")),
    "../ path outside": _outside(
        lambda c: "../../" + str(c.world.relative_to(c.world.anchor)) + "/CC3M/val/0000001.png"
    ),
    "symlink out of the folder": _outside(_symlink_out),
}


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    from mg5bench.cli import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: exit status 2 after its (one-line) message
        code = int(e.code or 0)
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(name: str, small_world: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv, needles = CASES[name](Ctx(small_world, tmp_path))
    code, lines = cli(argv, capsys)
    assert code == 2 and len(lines) == 1, (code, lines)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("samples*.jsonl"))  # no work done
    assert not (tmp_path / "scores").exists()


def test_the_outside_refusal_does_not_tell_whether_the_file_exists(
    small_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same words for an outside file that exists and one that does not (only the path differs); the same image
    under --media-root is accepted."""
    c = Ctx(small_world, tmp_path)
    there, nope = small_world / "CC3M" / "val" / "0000001.png", small_world / "CC3M" / "val" / "nope.png"
    lines = []
    for path in (there, nope):
        p = c.preds(json.dumps({"id": SID, "output": [{"image": str(path)}]}), name=f"{path.stem}.jsonl")
        lines.append(cli(c.score(p), capsys)[1][0].replace(str(path), "X").replace(p.name, "P"))
    assert lines[0] == lines[1]
    p = c.preds(json.dumps({"id": SID, "output": [{"image": str(there)}]}), name="ok.jsonl")
    code, err = cli(c.score(p, "--media-root", str(small_world / "CC3M"), "--metrics", "clip_i", "--resamples", "0"),
                    capsys)  # fmt: skip
    assert code == 0, err


def test_the_corpus_holds_in_a_real_process(small_world: Path, tmp_path: Path) -> None:
    """A few cases as real commands: exit 2, exactly one line on stderr, no traceback."""
    c = Ctx(small_world, tmp_path)
    for name in ("--guidance-scale nan", "--model-args size=abc", "decompression bomb in a prediction"):
        argv, needles = CASES[name](c)
        proc = subprocess.run([sys.executable, "-m", "mg5bench", *argv], capture_output=True, text=True, cwd=REPO)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert all(n in lines[0] for n in needles)
