"""The shipped reference checkpoints (reference_model/checkpoints/, trained on the default world, level 3, by
scripts/train_reference.sh): within the size budget, each part says which world it was trained on and descends from
the parts beside it (a stage-2 part from the stage 1 in the set, byte for byte), every part has a card, and the
default `mg5bench run --task vist --model minigpt5` works on a fresh clone (a few samples, few diffusion steps)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mg5bench.adapters.common import shipped_checkpoints
from mg5bench.core.hashing import sha256_file
from mg5bench.data.world_content import DEFAULT_LEVEL
from reference_model.config import checkpoint_stage

ROOT = shipped_checkpoints()
STAGES = sorted(p.name for p in ROOT.iterdir() if (p / "state.json").exists()) if ROOT.is_dir() else []


def test_the_set_fits_the_100_mb_budget() -> None:
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    assert total <= 100 * 2**20, f"{total / 2**20:.1f} MB"


def _seed_of(name: str) -> str | None:
    """The first checkpoint of a training-seed sibling NAME-seed<k> (None for a first checkpoint)."""
    first = re.sub(r"-seed\d+$", "", name)
    return first if first != name and (ROOT / first).is_dir() else None


def _seeds_card_lists(name: str) -> None:
    """A seed sibling's figures are in its first checkpoint's card, in the training-seeds section."""
    first = _seed_of(name)
    assert first is not None
    card = (ROOT / first / "README.md").read_text()
    assert "## Training seeds" in card and f"`{name}`" in card.split("## Training seeds", 1)[1], name
    assert first in (ROOT / name / "README.md").read_text()


def test_backbones_load_as_a_pipeline_and_describe_themselves() -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    import reference_model.t2i  # noqa: F401

    pipe = StableDiffusionPipeline.from_pretrained(ROOT / "backbones" / "t2i", safety_checker=None, dtype=torch.float32)
    assert (
        pipe.scheduler.config.prediction_type
        == json.loads((ROOT / "backbones/t2i/t2i_config.json").read_text())["prediction_type"]
    )
    card = (ROOT / "backbones" / "README.md").read_text()
    assert "| UNet step |" in card and f"level {DEFAULT_LEVEL}" in card
    assert f"level-{DEFAULT_LEVEL} val captions" in card
    t2i = ROOT / "backbones" / "t2i"
    curve = [json.loads(x) for x in (t2i / "curve.jsonl").read_text().splitlines() if x.strip()]
    assert [r["train_step"] for r in curve] == list(range(1000, 12001, 1000))  # every chunk of the recipe, once
    assert f"| {curve[-1]['train_step']} |" in card
    for path in t2i.rglob("*.json"):  # the content hash does not depend on the training machine's folders
        assert "_name_or_path" not in json.loads(path.read_text()), path


def test_the_reference_set_is_shipped_and_each_ablation_changes_what_it_says() -> None:
    """Backbones, both stages, and for VIST the three ablations, each differing from stage2-vist in its one setting."""
    want = {"backbones", "stage1", "stage2-vist", "stage2-mmdialog", "stage2-vist-no-cfg",
            "stage2-vist-no-caption-loss", "stage2-vist-single-stage"}  # fmt: skip
    assert want <= {p.name for p in ROOT.iterdir() if p.is_dir()}

    def cfg(name: str) -> dict:
        return json.loads((ROOT / name / "minigpt5_config.json").read_text())

    def state(name: str) -> dict:
        return json.loads((ROOT / name / "state.json").read_text())

    main = cfg("stage2-vist")
    assert main["cfg_drop_p"] > 0 and main["loss"]["caption_weight"] > 0
    assert cfg("stage2-vist-no-cfg")["cfg_drop_p"] == 0 and not cfg("stage2-vist-no-cfg")["learned_null_condition"]
    no_cap = cfg("stage2-vist-no-caption-loss")["loss"]
    assert no_cap["caption_weight"] == 0 and no_cap.get("scene_caption_weight", 0) == 0  # no L_cap in either stage
    # the tiny preset's stage-2 scene-caption loss: the full model and the other ablations keep it
    for name in ("stage2-vist", "stage2-vist-no-cfg", "stage2-vist-single-stage", "stage2-mmdialog"):
        assert cfg(name)["loss"]["scene_caption_weight"] == main["loss"]["scene_caption_weight"] > 0, name
    assert state("stage2-vist-single-stage")["parent"] is None and state("stage2-vist")["parent"] is not None
    from reference_model.train import with_defaults

    for name in ("stage2-vist-no-cfg", "stage2-vist-no-caption-loss", "stage2-vist-single-stage"):
        # a run recorded before a setting existed ran at its default
        tc, ref = with_defaults(state(name)["train_config"]), with_defaults(state("stage2-vist")["train_config"])
        for k in ("init", "data"):  # the parent and the absolute data path differ by construction
            tc.pop(k), ref.pop(k)
        assert tc == ref, f"{name}: stage-2 recipe differs from stage2-vist's"


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_part_sits_on_the_shipped_backbones_and_parent(name: str) -> None:
    state = json.loads((ROOT / name / "state.json").read_text())
    cfg = json.loads((ROOT / name / "minigpt5_config.json").read_text())
    for key in ("lm_path", "vision_path", "t2i_path"):
        assert (ROOT / name / cfg[key]).resolve() == (ROOT / "backbones" / key.removesuffix("_path")).resolve()
    assert "--data $W/" in state["command"]  # the world folder is written as $W, never the machine's path
    assert f"-level{DEFAULT_LEVEL}-" in state["world"]  # $W is named by the world's folder, which holds the level
    parent = state["parent"]
    if checkpoint_stage(state) == 1:
        # stage 1's second part continues its first (not kept: only the finished stage 1 is a part of the set)
        assert parent is None or Path(parent["path"]).name == f"{name}-a"
        return
    if parent is None:  # the single-stage ablation starts from the backbones, by definition
        assert "single-stage" in name
        return
    shipped = ROOT / name / parent["path"]
    assert shipped.resolve().parent == ROOT.resolve(), parent["path"]
    assert sha256_file(shipped / "trainable.safetensors") == parent["sha256"]
    first = _seed_of(name)
    if first is not None:  # a training seed starts from its first checkpoint's parent
        assert parent["sha256"] == json.loads((ROOT / first / "state.json").read_text())["parent"]["sha256"]
    variant = re.sub(r"-seed\d+$", "", name).removeprefix("stage2-vist").removeprefix("stage2-mmdialog")
    if variant in ("-no-cfg", "-no-caption-loss"):  # an ablation of stage 1 descends from its own stage 1
        assert shipped.name == f"stage1{variant}"
    else:
        assert shipped.name == "stage1"


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_checkpoint_has_a_model_card_with_oracle_accuracy(name: str) -> None:
    if _seed_of(name) is not None:
        _seeds_card_lists(name)
        return
    card = ROOT / name / "README.md"
    assert card.exists(), f"{name}: no model card"
    ev = json.loads((ROOT / name / "eval_val.json").read_text())
    assert 0.0 <= ev["minigpt5"]["exact"] <= 1.0 and ev["minigpt5"]["n"] > 0
    assert "Oracle scene accuracy" in card.read_text()


@pytest.mark.skipif(not (ROOT / "stage2-vist").is_dir(), reason="stage2-vist is not shipped")
def test_default_run_on_a_fresh_clone(tmp_path: Path) -> None:
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import GenerationConfig, RunSpec

    spec = RunSpec(
        task="vist", model="minigpt5", split="val", limit=3, generation=GenerationConfig(num_inference_steps=4)
    )
    res = run(spec, tmp_path / "runs", progress=False, resamples=10)
    assert res.n_selected == 3 and res.report["metrics"]["clip_i"]["n"] == 3
    lines = [json.loads(x) for x in (res.folder / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 10  # the whole first batch group (minigpt5's batch size 10), the rest stored for later
    assert res.info["key"]["model"]["sha256"]  # the checkpoint's hash is part of the run's identity
    # run.json records the settings as used: the checkpoint's own, as numbers, and the given steps
    ckpt = json.loads((ROOT / "stage2-vist" / "minigpt5_config.json").read_text())
    assert json.loads((res.folder / "run.json").read_text())["generation"] == {
        "guidance_scale": ckpt["guidance_scale"], "num_inference_steps": 4, "max_new_tokens": ckpt["max_new_tokens"],
        "temperature": ckpt["temperature"], "top_p": ckpt["top_p"], "repetition_penalty": ckpt["repetition_penalty"],
        "do_sample": True,
    }  # fmt: skip


BASELINES = sorted(p.name for p in ROOT.iterdir() if p.name.startswith(("divter-", "sd2-ft-"))) if ROOT.is_dir() else []


@pytest.mark.parametrize("name", BASELINES)
def test_shipped_baselines_load_on_the_shipped_backbones(name: str) -> None:
    """Each baseline records the sha256 of the parts it was trained on; loading checks it (a retrained backbone
    would make them refuse, not silently mismatch)."""
    from mg5bench.adapters.divter import Divter
    from mg5bench.adapters.sd2 import load_sd2ft

    if name.startswith("divter-"):
        model = Divter(ROOT / name)
        assert model.parts.folder.resolve() == (ROOT / "backbones").resolve()
    else:
        pipe = load_sd2ft(ROOT / name)
        assert len(pipe.tokenizer) >= 1
    if _seed_of(name) is not None:
        _seeds_card_lists(name)
    else:
        assert "val split" in (ROOT / name / "README.md").read_text()


def test_every_default_checkpoint_is_shipped() -> None:
    """`mg5bench run --task T --model M` works out of the box for every registered model and task."""
    from mg5bench.catalog import MODELS

    for name in MODELS.names():
        adapter = MODELS.get(name)
        for task, rel in adapter.default_checkpoints.items():  # type: ignore[attr-defined]
            assert (ROOT / rel).is_dir(), f"{name} on {task}: {ROOT / rel} is not shipped"
