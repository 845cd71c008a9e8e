"""The level-3 reference set (reference_model/checkpoints-level3/), which scripts/train_reference.sh --level 3 exports
part by part: whatever parts it holds load, say which world they were trained on, and descend from the parts beside
them (a stage-2 part from the stage 1 in the same set, byte for byte)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mg5bench.adapters.common import shipped_checkpoints
from mg5bench.core.hashing import sha256_file
from reference_model.config import checkpoint_stage

ROOT = shipped_checkpoints().with_name("checkpoints-level3")
STAGES = sorted(p.name for p in ROOT.iterdir() if (p / "state.json").exists()) if ROOT.is_dir() else []
T2I = ROOT / "backbones" / "t2i"


def test_the_set_keeps_its_own_100_mb_budget() -> None:
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file()) if ROOT.is_dir() else 0
    assert total <= 100 * 2**20, f"{total / 2**20:.1f} MB"


@pytest.mark.skipif(not (T2I / "model_index.json").is_file(), reason="the level-3 T2I is not trained yet")
def test_the_t2i_loads_and_its_card_names_level_3() -> None:
    from reference_model.t2i import load_pipeline

    pipe = load_pipeline(T2I)
    cfg = json.loads((T2I / "t2i_config.json").read_text())
    assert pipe.scheduler.config.prediction_type == cfg["prediction_type"]
    curve = [json.loads(x) for x in (T2I / "curve.jsonl").read_text().splitlines() if x.strip()]
    assert [r["train_step"] for r in curve] == list(range(1000, 12001, 1000))  # every chunk of the recipe, once
    for path in T2I.rglob("*.json"):  # the content hash does not depend on the training machine's folders
        assert "_name_or_path" not in json.loads(path.read_text()), path
    card = (ROOT / "backbones" / "README.md").read_text()
    assert "level 3" in card and "level-3 val captions" in card and "| 12000 |" in card


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_part_sits_on_this_sets_backbones_and_parent(name: str) -> None:
    state = json.loads((ROOT / name / "state.json").read_text())
    cfg = json.loads((ROOT / name / "minigpt5_config.json").read_text())
    for key in ("lm_path", "vision_path", "t2i_path"):
        assert (ROOT / name / cfg[key]).resolve() == (ROOT / "backbones" / key.removesuffix("_path")).resolve()
    assert "--data $W/" in state["command"]  # the world folder is written as $W, never the machine's path
    assert "-level3-" in state["world"]  # and $W is named by the world's folder name, which holds the level
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
    variant = re.sub(r"-seed\d+$", "", name).removeprefix("stage2-vist").removeprefix("stage2-mmdialog")
    if variant in ("-no-cfg", "-no-caption-loss"):  # an ablation of stage 1 descends from its own stage 1
        assert shipped.name == f"stage1{variant}"
    else:
        assert shipped.name == "stage1"
