"""mg5bench.modelcards.reference on a freshly trained (one step) tiny checkpoint: generated and scored through the
runner, every sample scored against its scene record per step, reused on re-evaluation; the card keeps its
hand-written sections; ``python -m mg5bench.modelcards.reference`` is the command that writes it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mg5bench.data.oracle import ATTRIBUTES
from mg5bench.modelcards.reference import evaluate


@pytest.fixture(scope="module")
def ckpt(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reference_model.lm import world_texts
    from reference_model.tiny_parts import save_tiny_random_parts
    from reference_model.train import TrainConfig, train_stage

    root = tmp_path_factory.mktemp("evalref")
    cfg = save_tiny_random_parts(root / "parts", world_texts(small_world)[:400])
    tc = TrainConfig(stage=1, steps=1, batch=2, warmup=1, val_examples=2, data=str(small_world / "CC3M"))
    train_stage(cfg, tc, root / "s1", threads=1)
    return root / "s1"


@pytest.fixture(scope="module")
def result(ckpt: Path, small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    runs = tmp_path_factory.mktemp("cardruns")
    # a stage-1 (CC3M) checkpoint on VIST: asked for explicitly (refused otherwise)
    with pytest.raises(Exception, match="trained for the cc3m task, not vist"):
        evaluate(ckpt, "vist", n=1, world=small_world, steps=2, batch=5, runs=runs, progress=False)
    return evaluate(ckpt, "vist", n=1, world=small_world, steps=2, batch=5, runs=runs, progress=False,
                    cross_task=True)  # fmt: skip


def test_vist_evaluation_scores_every_step_through_the_runner(result: dict, ckpt: Path, small_world: Path) -> None:
    for key in ("minigpt5", "t2i_caption_only"):
        assert result[key]["n"] == 5 and 0.0 <= result[key]["exact"] <= result[key]["image_rate"] <= 1.0
        assert all(0.0 <= result[key][a] <= 1.0 for a in ATTRIBUTES)
    assert all(result[f"minigpt5_step{k}"]["n"] == 1 and result[f"t2i_step{k}"]["n"] == 1 for k in range(5))
    steps = [result[f"minigpt5_step{k}"] for k in range(5)]
    for a in (*ATTRIBUTES, "exact"):  # the overall row is the mean of the five steps (one sample each)
        assert result["minigpt5"][a] == pytest.approx(sum(s[a] for s in steps) / 5)
    # what the card reports is what `mg5bench run` stored and scored: same folder, same per-sample rows
    run = json.loads((Path(result["runs"]["minigpt5"]) / "run.json").read_text())
    assert run["spec"]["model"] == "minigpt5" and run["samples"]["complete_for"] == 5
    assert run["generation"]["num_inference_steps"] == 2 == result["steps"]
    base = json.loads((Path(result["runs"]["t2i"]) / "run.json").read_text())
    assert base["spec"]["model"] == "sd2" and base["generation"]["guidance_scale"] == result["guidance_scale"]
    # a re-evaluation generates nothing: the stored runs and scorings are reused, the figures are identical
    again = evaluate(ckpt, "vist", n=1, world=small_world, steps=2, batch=5,
                     runs=Path(result["runs"]["minigpt5"]).parents[2], progress=False, cross_task=True)  # fmt: skip
    assert {k: v for k, v in again.items() if not k.startswith("_")} == {
        k: v for k, v in result.items() if not k.startswith("_")
    }


def test_model_card_keeps_hand_written_sections(result: dict, ckpt: Path) -> None:
    from PIL import Image

    from mg5bench.modelcards.reference import write_card

    card = write_card(ckpt, result, "tiny test", "python -m mg5bench.modelcards.reference X")
    text = card.read_text()
    assert "| MiniGPT-5 (this checkpoint) (n=5) |" in text and "caption-only T2I backbone" in text
    assert f"{result['minigpt5']['exact']:.3f}" in text and (ckpt / "eval_val.json").exists()
    side = max(Image.open(result["_images"]["targets"][0]).size[0], 16)  # world images 48 px, generated 16 px
    assert Image.open(ckpt / "samples.png").size == (5 * 2 * side, 3 * 2 * side)  # targets, MiniGPT-5, T2I rows
    # analysis written by hand below (and above) the generated section survives a re-evaluation
    card.write_text("Intro by hand.\n\n" + text + "\n## Why it is behind\n\nHand-written analysis.\n")
    changed = {**result, "seed": 7}
    text = write_card(ckpt, changed, "tiny test", "python -m mg5bench.modelcards.reference Y").read_text()
    assert text.startswith("Intro by hand.") and text.rstrip().endswith("Hand-written analysis.")
    assert "seed 7)" in text and "seed 0)" not in text and text.count("## Oracle scene accuracy") == 1
    # a card written before the markers existed: its generated sections are replaced, its own ones kept
    legacy = "# old\n\nStage: ...\n\n## Oracle scene accuracy on the val split (vist, seed 0)\n\n| old |\n\n" \
             "## Ablation\n\nWhat this ablation changes.\n"  # fmt: skip
    card.write_text(legacy)
    text = write_card(ckpt, result, "tiny test", "cmd").read_text()
    assert "| old |" not in text and text.rstrip().endswith("What this ablation changes.")
    assert text.index("mg5bench:generated end") < text.index("## Ablation")


def test_the_card_command_runs_as_a_module(ckpt: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "mg5bench.modelcards.reference", "--help"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert "--card" in out.stdout and "--runs" in out.stdout


def test_backbones_card_lists_the_curve(tmp_path: Path) -> None:
    from mg5bench.modelcards.reference import write_backbones_card
    from reference_model.t2i import T2IConfig

    run = tmp_path / "t2i"
    run.mkdir()
    (run / "t2i_config.json").write_text(T2IConfig().to_json())
    rows = [{"train_step": 1000, "colour": 0.685, "shape": 0.625, "size": 0.835, "cell": 0.07, "exact": 0.03,
             "seconds": 84.3}, {"train_step": 2000, "colour": 0.9, "shape": 0.8, "size": 0.9, "cell": 0.5,
             "exact": 0.3, "seconds": 80.0}]  # fmt: skip
    (run / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_backbones_card(tmp_path / "card", run, {"steps": 600}).read_text()
    assert "| 1000 | 0.685 | 0.625 | 0.835 | 0.070 | 0.030 | 84.3 |" in text
    assert "| 2000 | 0.900 | 0.800 | 0.900 | 0.500 | 0.300 | 80.0 |" in text and '{"steps": 600}' in text
    assert "level 1" in text and "level-1 val captions" in text
    # another level's set: its own world named, its own retrain command, the hand-written notes kept on a rewrite
    other = tmp_path / "card3"
    write_backbones_card(other, run, level=3)
    (other / "README.md").write_text((other / "README.md").read_text() + "\nHand-written analysis.\n")
    text3 = write_backbones_card(other, run, {"steps": 1500}, level=3).read_text()
    assert "level 3" in text3 and "level-3 val captions" in text3 and "level-1" not in text3
    assert "scripts/train_reference.sh --level 3" in text3 and '{"steps": 1500}' in text3
    assert "Hand-written analysis." in text3
    # the LM probe and the vision records are tables a reader can read, with a few answers
    lm = {
        "step": 1500,
        "loss": 0.35,
        "probe_n": 500,
        "colour": 0.548,
        "shape": 0.824,
        "size": 1.0,
        "cell": 0.616,
        "exact": 0.012,
        "exact_per_step": [0.05, 0.01],
        "examples": [{"prompt": "our story", "answer": "a big"}],
    }
    vision = {
        "qformer": {"steps": 1000, "batch": 32, "itc": 0.68, "itm": 0.63, "itg": 0.47},
        "steps": 800,
        "gen_trainable": "all",
        "wall_s": 981.9,
        "final_loss": 0.3247,
        "val_caption_loss_matched": 0.33,
        "val_caption_loss_shuffled": 1.33,
        "caption_probe": {
            "n": 500,
            "colour": 1.0,
            "shape": 1.0,
            "size": 1.0,
            "cell": 0.562,
            "exact": 0.0,
            "examples": [{"truth": "a big square", "caption": "a big circle"}],
        },
    }
    text3 = write_backbones_card(other, run, lm, vision, level=3).read_text()
    assert "| 0.548 | 0.824 | 1.000 | 0.616 | 0.012 |" in text3 and "exact per story step: 0.05, 0.01" in text3
    assert "| 1.000 | 1.000 | 1.000 | 0.562 | 0.000 |" in text3 and "0.33 with the caption's own image" in text3
    assert "- our story -> a big" in text3 and "- a big square -> a big circle" in text3
    assert "Hand-written analysis." in text3 and '"qformer"' not in text3


def test_t2i_card_scores_the_backbone_through_the_runner(ckpt: Path, small_world: Path, tmp_path: Path) -> None:
    from mg5bench.modelcards.t2i import evaluate as evaluate_t2i
    from reference_model.config import MiniGPT5Config

    res = evaluate_t2i(Path(MiniGPT5Config.load(ckpt).t2i_path), n=3, steps=1, world=small_world, runs=tmp_path)
    assert res["n"] == 3 and res["steps"] == 1 and 0.0 <= res["exact"] <= res["image_rate"] == 1.0
    run = json.loads((Path(res["run"]) / "run.json").read_text())
    assert run["spec"]["model"] == "sd2" and run["spec"]["task"] == "cc3m" and run["samples"]["complete_for"] == 3


def test_baseline_cards_describe_the_shipped_checkpoints() -> None:
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.modelcards.baselines import how_trained

    root = shipped_checkpoints()
    assert how_trained(root / "divter-vist", "divter", "vist").startswith("`mg5bench train divter --task vist")
    assert "delta over" in how_trained(root / "sd2-ft-vist", "sd2-ft", "vist")


def test_a_cards_train_command_follows_a_moved_parent(tmp_path: Path) -> None:
    """A set renamed after training (checkpoints-level3 -> checkpoints) keeps its recorded commands; the card shows
    the parent where it is now, when it is the very file the record names (sha256), so the command re-runs."""
    from mg5bench.core.hashing import sha256_file
    from mg5bench.modelcards.common import train_command

    (tmp_path / "set" / "stage1").mkdir(parents=True)
    (tmp_path / "set" / "stage1" / "trainable.safetensors").write_bytes(b"weights")
    recorded = ("reference_model/train.py stage2 --task vist --init gone/checkpoints-old/stage1 --data $W/VIST "
                "--out runs/x --seed 42")  # fmt: skip
    parent = {"path": "../stage1", "sha256": sha256_file(tmp_path / "set" / "stage1" / "trainable.safetensors")}
    state = {"command": recorded, "parent": parent}
    ckpt = tmp_path / "set" / "stage2-vist"
    want = recorded.replace("gone/checkpoints-old/stage1", str(tmp_path / "set" / "stage1"))
    assert train_command(ckpt, state) == want  # $W stays the placeholder it was written as
    assert train_command(ckpt, {**state, "parent": {**parent, "sha256": "0" * 64}}) == recorded  # another file
    assert train_command(ckpt, {**state, "parent": None}) == recorded
    (tmp_path / "set" / "stage1" / "trainable.safetensors").unlink()
    assert train_command(ckpt, state) == recorded  # nothing beside it to point at


def test_a_single_stage_cards_command_names_the_backbones_where_they_are(tmp_path: Path) -> None:
    """The single-stage ablation has no parent; its recorded --backbones follows the backbones its config loads."""
    from mg5bench.modelcards.common import train_command

    ckpt = tmp_path / "set" / "stage2-vist-single-stage"
    ckpt.mkdir(parents=True)
    (tmp_path / "set" / "backbones" / "lm").mkdir(parents=True)
    (ckpt / "minigpt5_config.json").write_text(json.dumps({"lm_path": "../backbones/lm"}))
    recorded = "reference_model/train.py stage2 --single-stage --backbones gone/backbones --data $W/VIST --seed 42"
    state = {"command": recorded, "parent": None}
    assert train_command(ckpt, state) == recorded.replace("gone/backbones", str(tmp_path / "set" / "backbones"))
    (ckpt / "minigpt5_config.json").unlink()
    assert train_command(ckpt, state) == recorded  # no config: nothing known about where they are
