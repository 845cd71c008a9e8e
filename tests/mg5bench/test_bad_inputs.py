"""A corpus of bad arguments and bad files swept through the command line: every case exits with status 2 and one
line on stderr that names the problem (and, for files, the file and the fix); nothing raises, and nothing bad is
accepted silently.

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


def png_of(width: int, height: int) -> bytes:
    """A valid single-colour PNG of ``width`` x ``height`` pixels, its rows compressed as a stream (never held as a
    decoded image): an 8000 x 8000 one is under 1 MB, yet decodes to 192 MB and more in every later copy."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(6)
    row = b"\x00" * (1 + 3 * width)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


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

    def ablate(self, *extra: str, axis: str = "cfg") -> list[str]:
        return ["ablate", axis, "--data", str(self.world), "--out", str(self.tmp / "runs"), "--quiet", *extra]

    def report(self, *extra: str) -> list[str]:
        (self.tmp / "runs").mkdir(exist_ok=True)
        return ["report", "--runs", str(self.tmp / "runs"), "--out", str(self.tmp / "scores"), "--quiet", *extra]

    def axis(self, variants: str, name: str = "x.yaml") -> list[str]:
        """An axis file over the blank model with the given YAML variants list; the argv of 'ablate' on it."""
        path = self.tmp / name
        path.write_text(f"name: x\ntasks: [vist]\nmodel: blank\nvariants:\n{variants}")
        return self.ablate(axis=str(path))


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


def _no_output(c: Ctx) -> tuple[list[str], list[str]]:  # a line without output is not an output
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


def _divter_vist_on_cc3m(c: Ctx) -> tuple[list[str], list[str]]:
    argv = c.run("--model-args", f"checkpoint={CKPTS / 'divter-vist'}", model="divter", task="cc3m")
    return argv, ["divter-vist was trained for the vist task, not cc3m", "cross_task=true"]


def _minigpt5_vist_on_mmdialog(c: Ctx) -> tuple[list[str], list[str]]:
    argv = c.run("--model-args", f"checkpoint={CKPTS / 'stage2-vist'}", model="minigpt5", task="mmdialog")
    return argv, ["trained for the vist task, not mmdialog"]


def _sd2ft_mmdialog_on_vist(c: Ctx) -> tuple[list[str], list[str]]:
    return c.run("--model-args", f"path={CKPTS / 'sd2-ft-mmdialog'}", model="sd2-ft"), ["trained for the mmdialog"]


def _four_step_story(c: Ctx) -> tuple[list[str], list[str]]:
    vist = c.copy(SAMPLES / "VIST", "VIST")
    stories = json.loads((vist / "val_cleaned.json").read_text())
    stories["40470"] = stories["40470"][:4]
    (vist / "val_cleaned.json").write_text(json.dumps(stories))
    argv = ["data", "export", "--task", "vist", "--data", str(vist), "--out", str(c.tmp / "x.jsonl")]
    return argv, ["val_cleaned.json: story 40470", "4 steps, but a VIST story has 5"]


def _incomplete_world(c: Ctx) -> tuple[list[str], list[str]]:  # a half-built folder is never data
    w = c.copy(c.world, "w")
    (w / "world.json").unlink()
    (w / "INCOMPLETE").write_text("{}")
    return ["data", "export", "--task", "cc3m", "--data", str(w), "--out", str(c.tmp / "x.jsonl")], [
        "left this world incomplete", "rerun 'mg5bench data synth --out"]  # fmt: skip


def _truncated_evaluator(c: Ctx) -> tuple[list[str], list[str]]:
    from mg5bench.scoring.evaluators import EMBEDDED_DIR

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


def _big_png_prediction(c: Ctx) -> tuple[list[str], list[str]]:
    (c.tmp / "preds").mkdir()
    (c.tmp / "preds" / "big.png").write_bytes(png_of(8000, 8000))  # under 1 MB, 64 million pixels
    assert (c.tmp / "preds" / "big.png").stat().st_size < 1_000_000
    p = c.preds(json.dumps({"id": SID, "output": [{"image": "big.png"}]}))
    return c.score(p), ["p.jsonl: line 1", "big.png is too large to decode safely", "8000x8000 = 64000000 pixels",
                        "at most 16777216 pixels"]  # fmt: skip


def _url_prediction(c: Ctx) -> tuple[list[str], list[str]]:
    (c.tmp / "preds" / "http:").mkdir(parents=True)  # a local file named like the URL is not used either
    (c.tmp / "preds" / "http:" / "x.png").write_bytes((c.world / "CC3M" / "val" / "0000001.png").read_bytes())
    p = c.preds(json.dumps({"id": SID, "output": [{"image": "http://x.png"}]}))
    return c.score(p), ["p.jsonl: line 1", "'http://x.png' is a URL", "URLs are not supported"]


def _url_in_data(c: Ctx) -> tuple[list[str], list[str]]:
    vist = c.copy(SAMPLES / "VIST", "VIST")
    mapping = json.loads((vist / "val_image_mapping.json").read_text())
    mapping["693397887"] = "https://example.com/693397887.jpg"
    (vist / "val_image_mapping.json").write_text(json.dumps(mapping))
    argv = ["data", "export", "--task", "vist", "--data", str(vist), "--out", str(c.tmp / "x.jsonl")]
    return argv, ["val_image_mapping.json", "image 693397887", "is a URL", "URLs are not supported"]


def _long_text_prediction(c: Ctx) -> tuple[list[str], list[str]]:
    p = c.preds(json.dumps({"id": "0_1", "output": [{"text": "word " * 200_000}]}))  # 1 MB of text
    argv = ["score", "--task", "mmdialog", "--data", str(c.world), "--split", "val", "--predictions", str(p),
            "--out", str(c.tmp / "scores"), "--metrics", "rouge_l_minigpt5", "--resamples", "0", "--quiet"]  # fmt: skip
    return argv, ["p.jsonl: line 1 (id 0_1)", "text is 1000000 characters long", "at most 10000 characters"]


def _long_sentence_rouge(c: Ctx) -> tuple[list[str], list[str]]:
    p = c.preds(json.dumps({"id": "0_1", "output": [{"text": "word " * 1500}]}))  # within the text limit
    argv = ["score", "--task", "mmdialog", "--data", str(c.world), "--split", "val", "--predictions", str(p),
            "--out", str(c.tmp / "scores"), "--metrics", "rouge_l_minigpt5", "--resamples", "0", "--quiet"]  # fmt: skip
    return argv, ["sample 0_1: rouge_l_minigpt5: a sentence of 1500 words", "leave rouge_l_minigpt5 out"]


def _surrogate_in_mmdialog(c: Ctx) -> tuple[list[str], list[str]]:
    mm = c.copy(SAMPLES / "MMDialog", "MMDialog")
    f = mm / "test" / "test_conversations.txt"
    f.write_text(f.read_text().replace("Happy JAchat day", "Happy \\ud800 day", 1))
    argv = ["data", "export", "--task", "mmdialog", "--data", str(mm), "--out", str(c.tmp / "x.jsonl")]
    return argv, ["test_conversations.txt: line 1", "lone surrogate (U+D800", "valid UTF-8"]


def _surrogate_prediction(c: Ctx) -> tuple[list[str], list[str]]:
    p = c.preds('{"id": "0_1", "output": [{"text": "fine \\udc00 text"}]}')
    argv = ["score", "--task", "mmdialog", "--data", str(c.world), "--split", "val", "--predictions", str(p),
            "--out", str(c.tmp / "scores"), "--metrics", "sbert", "--resamples", "0", "--quiet"]  # fmt: skip
    return argv, ["p.jsonl: line 1 (id 0_1)", "lone surrogate (U+DC00"]


def _alias_bomb(c: Ctx) -> tuple[list[str], list[str]]:
    levels = ['a0: &a0 ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]']
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = c.tmp / "bomb.yaml"
    path.write_text("\n".join(levels) + "\nname: x\nvariants: [*a8]\n")  # 9**8 copies: 2 GB once expanded
    assert path.stat().st_size < 600
    return c.ablate(axis=str(path)), ["bomb.yaml: line 2", "aliases (*name) are not allowed"]


def _variants(n: int) -> str:
    return "".join(f"  - {{name: v{i}, generation: {{guidance_scale: {i}}}}}\n" for i in range(n))


def _run_json_a_list(c: Ctx) -> tuple[list[str], list[str]]:
    run = c.tmp / "run"
    run.mkdir()
    (run / "run.json").write_text("[1, 2]")
    return ["annotate", "--run-a", str(run), "--run-b", str(run), "--db", str(c.tmp / "r.sqlite"), "--no-serve"], [
        "run.json", "malformed run.json"]  # fmt: skip


def _db_folder(*argv: str) -> Callable[[Ctx], tuple[list[str], list[str]]]:
    def case(c: Ctx) -> tuple[list[str], list[str]]:
        (c.tmp / "db").mkdir()
        args = [a.replace("DB", str(c.tmp / "db")) for a in argv]
        return (c.report(*args) if args[0] == "--ratings" else args), ["db: is a folder, not a rating database"]

    return case


def _plan(text: str, needle: str) -> Callable[[Ctx], tuple[list[str], list[str]]]:
    def case(c: Ctx) -> tuple[list[str], list[str]]:
        (c.tmp / "plan.yaml").write_text(text)
        return c.report("--rebuild", "--plan", str(c.tmp / "plan.yaml")), ["plan.yaml", needle]

    return case


def _foreign_db(c: Ctx) -> tuple[list[str], list[str]]:
    import sqlite3

    with sqlite3.connect(c.tmp / "other.sqlite") as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    return ["human", "report", "--db", str(c.tmp / "other.sqlite")], ["not a rating database"]


def _validate_empty_split(c: Ctx) -> tuple[list[str], list[str]]:
    vist = c.copy(SAMPLES / "VIST", "VIST")
    (vist / "val_cleaned.json").write_text("{}")
    return ["data", "validate", str(vist), "--task", "vist"], ["problem:", "split val", "holds no records"]


def _sis_story_of_four(c: Ctx) -> tuple[list[str], list[str]]:
    anns = [[{"story_id": "1", "photo_flickr_id": "693397887", "text": f"step {k} .", "worker_arranged_photo_order": k}]
            for k in range(4)]  # fmt: skip
    (c.tmp / "val.story-in-sequence.json").write_text(json.dumps({"annotations": anns}))
    argv = ["data", "convert", "vist-sis", str(c.tmp / "val.story-in-sequence.json"), str(SAMPLES / "VIST" /
            "val_images"), str(c.tmp / "scores")]  # fmt: skip
    return argv, ["story 1: 4 steps, but a VIST story has 5", "--skip-bad"]


def _sis_no_images(c: Ctx) -> tuple[list[str], list[str]]:
    anns = [[{"story_id": str(s), "photo_flickr_id": f"9{s}{k}", "text": "x .", "worker_arranged_photo_order": k}]
            for s in range(3) for k in range(5)]  # fmt: skip
    (c.tmp / "val.story-in-sequence.json").write_text(json.dumps({"annotations": anns}))
    (c.tmp / "images").mkdir()
    argv = ["data", "convert", "vist-sis", str(c.tmp / "val.story-in-sequence.json"), str(c.tmp / "images"),
            str(c.tmp / "scores")]  # fmt: skip
    return argv, ["no story to write: 0 of 3", "every story misses an image", "IMAGES_DIR"]


# name -> (argv and needles of the one line), grouped by what would go wrong without the check: a traceback, or
# the bad input accepted silently.
CASES: dict[str, Callable[[Ctx], tuple[list[str], list[str]]]] = {
    # a traceback
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
    "--num-inference-steps 0": lambda c: (c.run("--num-inference-steps", "0", model="sd2"), [">= 1 and <= 1000"]),
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
    "data synth --out another world": lambda c: (
        ["data", "synth", "--out", str(c.world), "--size", "small", "--level", "2", "--quiet"],
        ["holds another world than the one asked for (level 2", "--level 1 --size small --seed 0"],
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
    # accepted silently
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
    # the later commands (ablate, report, annotate, human, data convert), and resource limits
    "an 8000x8000 PNG under 1 MB": _big_png_prediction,
    "an image path that is a URL": _url_prediction,
    "an image path in the data that is a URL": _url_in_data,
    "1 MB of text (rouge_l_minigpt5)": _long_text_prediction,
    "a 1500-word sentence (rouge_l_minigpt5)": _long_sentence_rouge,
    "lone surrogate in MMDialog text": _surrogate_in_mmdialog,
    "lone surrogate in a prediction (sbert)": _surrogate_prediction,
    "score --resamples 100001": lambda c: (c.score(c.preds(), "--resamples", "100001"), ["must be >= 0 and <= 100000"]),
    "run --num-inference-steps 1e9": lambda c: (
        c.run("--num-inference-steps", "1000000000", model="sd2"),
        ["--num-inference-steps: must be >= 1 and <= 1000"],
    ),
    "run --max-new-tokens 10**6": lambda c: (
        c.run("--max-new-tokens", "1000000", model="minigpt5"),
        ["--max-new-tokens: must be >= 1 and <= 4096"],
    ),
    "ablate --permutations 0": lambda c: (c.ablate("--permutations", "0"), ["--permutations: must be >= 100"]),
    "ablate --permutations -3": lambda c: (c.ablate("--permutations", "-3"), ["--permutations: must be >= 100"]),
    "ablate --permutations 99": lambda c: (c.ablate("--permutations", "99"), ["--permutations: must be >= 100"]),
    "ablate --resamples -5": lambda c: (c.ablate("--resamples", "-5"), ["--resamples: must be >= 0 and <= 100000"]),
    "ablate --resamples 10**9": lambda c: (c.ablate("--resamples", "1000000000"), ["<= 100000"]),
    "ablate --batch-size 0": lambda c: (c.ablate("--batch-size", "0"), ["--batch-size: must be a positive integer"]),
    "ablate --limit 0": lambda c: (c.ablate("--limit", "0"), ["--limit: must be a positive integer"]),
    "ablate --out a file": lambda c: (c.ablate("--out", "/etc/hostname"), ["--out /etc/hostname is a file"]),
    "axis guidance_scale .nan": lambda c: (
        c.axis("  - {name: a}\n  - {name: b, generation: {guidance_scale: .nan}}\n"),
        ["x.yaml: variant 'b'", "guidance_scale must be a finite number"],
    ),
    "axis num_inference_steps a string": lambda c: (
        c.axis("  - {name: a}\n  - {name: b, generation: {num_inference_steps: many}}\n"),
        ["x.yaml: variant 'b'", "num_inference_steps: expected an integer, got 'many'"],
    ),
    "axis num_inference_steps 10**9": lambda c: (
        c.axis("  - {name: a}\n  - {name: b, generation: {num_inference_steps: 1000000000}}\n"),
        ["variant 'b'", "num_inference_steps must be >= 1 and <= 1000, got 1000000000"],
    ),
    "axis with 101 variants": lambda c: (c.axis(_variants(101)), ["101 variants, more than the 100"]),
    "axis file of 2 MB": lambda c: (c.axis(_variants(2) + "#" * 2_000_000 + "\n"), ["more than the 1000000"]),
    "YAML alias bomb": _alias_bomb,
    "report --resamples -5": lambda c: (c.report("--resamples", "-5"), ["--resamples: must be >= 0"]),
    "report --limit -1": lambda c: (c.report("--limit", "-1"), ["--limit: must be a positive integer"]),
    "report --limit 0": lambda c: (c.report("--limit", "0"), ["--limit: must be a positive integer"]),
    "report --gallery 1000": lambda c: (c.report("--gallery", "1000"), ["--gallery: must be >= 0 and <= 100"]),
    "report --contact-samples 0": lambda c: (c.report("--contact-samples", "0"), [">= 1 and <= 500"]),
    "report --out a file": lambda c: (c.report("--out", "/etc/hostname"), ["--out /etc/hostname is a file"]),
    "report --runs a file": lambda c: (c.report("--runs", "/etc/hostname"), ["--runs /etc/hostname is not a folder"]),
    "report --plan with limit -1": _plan("tasks: {vist: {limit: -1}}\nmodels: [gt]\n", "task 'vist': limit must be"),
    "report --plan not a mapping": _plan("- gt\n", "a plan is a YAML mapping"),
    "report --ratings a folder": _db_folder("--ratings", "DB"),
    "human export --db a folder": _db_folder("human", "export", "--db", "DB", "--out", "v.csv"),
    "annotate --db a folder": _db_folder("annotate", "--db", "DB", "--no-serve"),
    "annotate --invite --db a folder": _db_folder("annotate", "--invite", "bob", "--db", "DB"),
    "human report: another program's database": _foreign_db,
    "human report --resamples -1": lambda c: (["human", "report", "--resamples", "-1"], ["--resamples: must be >= 0"]),
    "annotate --port 70000": lambda c: (["annotate", "--port", "70000"], ["--port: must be >= 1 and <= 65535"]),
    "annotate --port 0": lambda c: (["annotate", "--port", "0"], ["--port: must be >= 1 and <= 65535"]),
    "annotate --raters 0": lambda c: (["annotate", "--raters", "0"], ["--raters: must be a positive integer"]),
    "annotate with a run.json that is a list": _run_json_a_list,
    "data validate: a split of 0 records": _validate_empty_split,
    "vist-sis: a story of 4 steps": _sis_story_of_four,
    "vist-sis: no image found": _sis_no_images,
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
    for name in (
        "--guidance-scale nan",
        "--model-args size=abc",
        "decompression bomb in a prediction",
        "YAML alias bomb",
        "annotate --port 70000",
    ):
        argv, needles = CASES[name](c)
        proc = subprocess.run([sys.executable, "-m", "mg5bench", *argv], capture_output=True, text=True, cwd=REPO)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert all(n in lines[0] for n in needles)
