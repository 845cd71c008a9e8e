"""reference_model.train and export on tiny random parts: stage 2 from stage 1 and its resume, what the stage CLIs
record and use (LoRA targets, caption weights, the scene-caption loss), the exported records, and two processes
under torchrun. Tiny random parts in the real formats (reference_model.tiny_parts), on the small synthetic world."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import REPO
from test_model import _tc

from reference_model.config import MiniGPT5Config
from reference_model.data import vist_examples
from reference_model.lm import world_texts
from reference_model.tiny_parts import save_tiny_random_parts
from reference_model.train import train_stage


@pytest.fixture(scope="module")
def parts(small_world: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("train_parts")
    return save_tiny_random_parts(root, world_texts(small_world)[:400])


def test_stage2_loads_stage1_and_resume(parts, small_world: Path, tmp_path: Path) -> None:
    s1 = tmp_path / "s1"
    train_stage(parts, _tc(data=str(small_world / "CC3M")), s1, threads=1)
    state = json.loads((s1 / "state.json").read_text())
    assert state["stage"] == "stage1" and state["steps"] == 2 and state["data_fingerprint"]
    from safetensors.torch import load_file

    s1_sd = load_file(str(s1 / "trainable.safetensors"))
    s2 = tmp_path / "s2"
    tc2 = _tc(stage=2, task="vist", data=str(small_world / "VIST"), init=str(s1), steps=1)
    train_stage(parts, tc2, s2, threads=1)
    s2_sd = load_file(str(s2 / "trainable.safetensors"))
    assert torch.equal(s2_sd["mapper.queries"], s1_sd["mapper.queries"])  # frozen in stage 2, from stage 1
    assert torch.equal(s2_sd["mapper.fc.0.weight"], s1_sd["mapper.fc.0.weight"])
    key = "mapper.transformer.decoder.norm.weight"
    assert not torch.equal(s2_sd[key], s1_sd[key])  # the mapper trains in stage 2
    assert any(k.startswith("lora.") for k in s2_sd)
    s2_state = json.loads((s2 / "state.json").read_text())
    assert s2_state["parent"]["path"] == str(s1) and len(s2_state["parent"]["sha256"]) == 64
    # resume: asking for more steps continues from the saved step with the same data order
    train_stage(parts, replace(tc2, steps=2), tmp_path / "s2b", threads=1)
    with pytest.raises(ValueError, match="different training config"):
        train_stage(parts, replace(tc2, steps=3), s2, threads=1)


def test_a_checkpoint_loads_whichever_way_its_record_names_the_stage(parts, small_world: Path, tmp_path: Path) -> None:
    from reference_model.config import checkpoint_stage
    from reference_model.modeling import load_checkpoint

    s1 = tmp_path / "s1"
    train_stage(parts, _tc(data=str(small_world / "CC3M")), s1, threads=1)
    record = json.loads((s1 / "state.json").read_text())
    assert record["stage"] == "stage1" and checkpoint_stage(record) == 1  # as train.py writes it
    trained = load_checkpoint(s1).state_dict()
    for stage, expect in ((1, 1), ("2", 2), ("stage3", None), ("", None)):
        assert checkpoint_stage({"stage": stage}) == expect
    assert checkpoint_stage({}) is None
    (s1 / "state.json").write_text(json.dumps({**record, "stage": 1}))  # older records hold the number
    older = load_checkpoint(s1).state_dict()
    assert all(torch.equal(older[k], v) for k, v in trained.items())
    (s1 / "state.json").write_text(json.dumps({**record, "stage": "final"}))
    with pytest.raises(FileNotFoundError, match=r"state\.json: names no training stage"):
        load_checkpoint(s1)


def test_stage2_cli_records_lora_targets(parts, small_world: Path, tmp_path: Path) -> None:
    """--lora-targets puts LoRA on the named projections and the choice is saved in the checkpoint config."""
    from safetensors.torch import load_file

    from reference_model.train import main

    s1 = tmp_path / "s1"
    train_stage(parts, _tc(data=str(small_world / "CC3M"), steps=1), s1, threads=1)
    s2 = tmp_path / "s2"
    main(["stage2", "--task", "vist", "--init", str(s1), "--data", str(small_world / "VIST"), "--out", str(s2),
          "--steps", "1", "--batch", "2", "--warmup", "1", "--threads", "1", "--val-every", "1",
          "--lora-targets", "q_proj,k_proj,v_proj,o_proj"])  # fmt: skip
    cfg = json.loads((s2 / "minigpt5_config.json").read_text())
    assert cfg["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    lora = [k for k in load_file(str(s2 / "trainable.safetensors")) if k.startswith("lora.")]
    assert {m for m in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj") if any(m in k for k in lora)} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    }


def test_stage1_cli_caption_weight_is_recorded_and_used(parts, small_world: Path, tmp_path: Path) -> None:
    """--caption-weight is saved in the checkpoint config, and a continued stage 1 (--init) trains with it: the
    recorded loss equals text_w * text + image + caption_w * caption for the new weight."""
    from reference_model.train import main

    s1 = tmp_path / "s1"
    train_stage(parts, _tc(data=str(small_world / "CC3M"), steps=1), s1, threads=1)
    s1b = tmp_path / "s1b"
    main(["stage1", "--init", str(s1), "--data", str(small_world / "CC3M"), "--out", str(s1b), "--steps", "2",
          "--batch", "2", "--warmup", "1", "--threads", "1", "--val-every", "2", "--caption-weight", "5"])  # fmt: skip
    cfg = json.loads((s1b / "minigpt5_config.json").read_text())
    assert cfg["loss"]["caption_weight"] == 5.0
    state = json.loads((s1b / "state.json").read_text())
    step = torch.load(s1b / "train_state.pt", weights_only=False)["log"][-1]
    want = cfg["loss"]["text_weight"] * step["text"] + step["image"] + 5.0 * step["caption"]
    assert step["caption"] > 0 and step["loss"] == pytest.approx(want, rel=1e-3, abs=1e-4)
    assert state["parent"]["path"] == str(s1)
    with pytest.raises(SystemExit):  # a negative weight is refused before any work
        main(["stage1", "--init", str(s1), "--data", str(small_world / "CC3M"), "--out", str(tmp_path / "x"),
              "--steps", "1", "--caption-weight", "-1"])  # fmt: skip


def test_stage2_scene_caption_loss_targets_the_worlds_scene(parts, small_world: Path, tmp_path: Path) -> None:
    """--scene-caption-weight (tiny preset) gives every stage-2 output image the caption of its scene as read from
    scenes.jsonl, trains with it (recorded loss = text_w * text + image + w * caption, --text-weight setting
    text_w) and saves both in the config;
    the official stage 2 has no caption loss, a folder without scene records stops with the fix."""

    from reference_model.train import main
    from reference_model.world_text import parse_caption, with_scene_captions

    records = {}
    for line in (small_world / "scenes.jsonl").read_text().splitlines():
        rec = json.loads(line)
        keep = ("size", "colour", "shape", "cell")
        records[rec["image"]] = [{a: o[a] for a in keep} for o in rec["scene"]["objects"]]
    ex = with_scene_captions(vist_examples(small_world / "VIST", "train", train=True), small_world / "VIST")
    with_image = [e for e in ex if e.output_image is not None]
    assert with_image and all(e.caption is None for e in ex if e.output_image is None)
    for e in with_image:
        got = [{**o, "cell": int(o["cell"])} for o in parse_caption(e.caption)]
        want = [{**o, "cell": int(o["cell"])} for o in records[e.output_image.relative_to(small_world).as_posix()]]
        assert got == want, e.caption

    s1 = tmp_path / "s1"
    train_stage(parts, _tc(data=str(small_world / "CC3M"), steps=1), s1, threads=1)
    common = ["--task", "vist", "--init", str(s1), "--data", str(small_world / "VIST"), "--steps", "2", "--batch",
              "2", "--warmup", "1", "--threads", "1", "--val-every", "2"]  # fmt: skip
    main(["stage2", *common, "--out", str(tmp_path / "off")])
    off = torch.load(tmp_path / "off" / "train_state.pt", weights_only=False)["log"]
    assert all(step["caption"] == 0 for step in off)  # official stage 2: no caption loss
    assert json.loads((tmp_path / "off" / "minigpt5_config.json").read_text())["loss"]["text_weight"] == 0.01
    main(["stage2", *common, "--out", str(tmp_path / "on"), "--scene-caption-weight", "2", "--text-weight", "0.5"])
    cfg = json.loads((tmp_path / "on" / "minigpt5_config.json").read_text())
    assert cfg["loss"]["scene_caption_weight"] == 2.0 and cfg["loss"]["text_weight"] == 0.5
    log = torch.load(tmp_path / "on" / "train_state.pt", weights_only=False)["log"]
    for step in log:
        if step["image"] > 0:
            want = cfg["loss"]["text_weight"] * step["text"] + step["image"] + 2.0 * step["caption"]
            assert step["caption"] > 0 and step["loss"] == pytest.approx(want, rel=1e-3, abs=1e-4)
    with pytest.raises(SystemExit):
        main(["stage2", *common, "--out", str(tmp_path / "x"), "--scene-caption-weight", "2", "--no-caption-loss"])
    bare = tmp_path / "bare"
    shutil.copytree(small_world / "VIST", bare / "VIST")
    with pytest.raises(FileNotFoundError, match=r"scenes\.jsonl"):
        with_scene_captions(vist_examples(bare / "VIST", "train", train=True), bare / "VIST")


def test_export_writes_portable_records(parts, small_world: Path, tmp_path: Path, monkeypatch) -> None:
    """A shipped state.json names the world as $W and repo files relative to the repo root: no absolute path of
    the training machine survives the export."""

    from reference_model.export import main as export_main

    runs = tmp_path / "runs"
    shutil.copytree(Path(parts.lm_path).parent, runs / "backbones")
    train_stage(parts, _tc(data=str(small_world / "CC3M"), steps=1), runs / "stage1", threads=1)
    monkeypatch.chdir(tmp_path)
    export_main(["runs", "ckpts"])
    text = (tmp_path / "ckpts" / "stage1" / "state.json").read_text()
    state = json.loads(text)
    assert state["train_config"]["data"] == "$W/CC3M" and state["world"] == small_world.name
    assert str(tmp_path) not in text and str(small_world) not in text
    # a stage 2 trained from the shipped stage 1 itself records it as its sibling, checked by sha256
    s2 = _tc(stage=2, task="vist", data=str(small_world / "VIST"), init="ckpts/stage1", steps=1)
    train_stage(MiniGPT5Config.load(tmp_path / "ckpts" / "stage1"), s2, runs / "stage2-vist", threads=1)
    export_main(["runs", "ckpts", "--keep-backbones", "--only", "stage2-vist"])
    parent = json.loads((tmp_path / "ckpts" / "stage2-vist" / "state.json").read_text())["parent"]
    sha = hashlib.sha256((tmp_path / "ckpts" / "stage1" / "trainable.safetensors").read_bytes()).hexdigest()
    assert parent["path"] == "../stage1" and parent["sha256"] == sha and parent["trained_from"] == "ckpts/stage1"
    # trained from a byte-identical copy in a staging folder (new backbones beside a copy of the shipped stage 1)
    shutil.copytree(tmp_path / "ckpts" / "stage1", tmp_path / "staging" / "stage1")
    (tmp_path / "staging" / "backbones").symlink_to(tmp_path / "ckpts" / "backbones")
    s2c = _tc(stage=2, task="vist", data=str(small_world / "VIST"), init="staging/stage1", steps=1)
    train_stage(MiniGPT5Config.load(tmp_path / "staging" / "stage1"), s2c, runs / "stage2-copy", threads=1)
    export_main(["runs", "ckpts", "--keep-backbones", "--only", "stage2-copy"])
    parent = json.loads((tmp_path / "ckpts" / "stage2-copy" / "state.json").read_text())["parent"]
    assert parent["path"] == "../stage1" and parent["sha256"] == sha and parent["trained_from"] == "staging/stage1"
    with open(tmp_path / "ckpts" / "stage1" / "trainable.safetensors", "ab") as f:
        f.write(b"0")  # the sibling changed after training: the record would be a lie
    with pytest.raises(SystemExit, match="changed since"):
        export_main(["runs", "ckpts", "--keep-backbones", "--only", "stage2-vist"])
    export_main(["runs", "ckpts", "--keep-backbones", "--only", "stage2-copy"])  # no longer a copy of the sibling
    assert json.loads((tmp_path / "ckpts" / "stage2-copy" / "state.json").read_text())["parent"]["path"] == (
        "staging/stage1"
    )


def test_ddp_two_processes(parts, small_world: Path, tmp_path: Path) -> None:
    backbones = Path(parts.lm_path).parent
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "reference_model.train",
           "stage1", "--backbones", str(backbones), "--data", str(small_world / "CC3M"), "--out", str(out),
           "--steps", "2", "--batch", "4", "--warmup", "1", "--threads", "1", "--val-every", "2"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    state = json.loads((out / "state.json").read_text())
    assert state["processes"] == 2 and state["steps"] == 2
