"""mg5bench.eval_reference on a freshly trained (two steps) tiny checkpoint: runs end to end, scores
every sample against its scene record, and is reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest

from mg5bench.data.oracle import ATTRIBUTES
from mg5bench.eval_reference import _interleave, evaluate


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


def test_interleave() -> None:
    assert _interleave("a<Img><ImageHere></Img>b", ["I"]) == ["a", "I", "b"]
    with pytest.raises(ValueError):
        _interleave("a<Img><ImageHere></Img>b", [])


def test_vist_evaluation_scores_every_step(ckpt: Path, small_world: Path) -> None:
    res = evaluate(ckpt, "vist", n=1, world=small_world, steps=2, batch=3)
    again = evaluate(ckpt, "vist", n=1, world=small_world, steps=2, batch=5)
    for key in ("minigpt5", "t2i_caption_only"):
        assert res[key]["n"] == 5 and 0.0 <= res[key]["exact"] <= res[key]["image_rate"] <= 1.0
        assert all(0.0 <= res[key][a] <= 1.0 for a in ATTRIBUTES)
    assert all(res[f"minigpt5_step{k}"]["n"] == 1 for k in range(5))
    assert res["minigpt5"] == again["minigpt5"] and res["t2i_caption_only"] == again["t2i_caption_only"]


def test_model_card(ckpt: Path, small_world: Path) -> None:
    from PIL import Image

    from mg5bench.eval_reference import write_card

    res = evaluate(ckpt, "vist", n=1, world=small_world, steps=2)
    card = write_card(ckpt, res, "tiny test", "python -m mg5bench.eval_reference X")
    text = card.read_text()
    assert "| MiniGPT-5 (this checkpoint) (n=5) |" in text and "caption-only T2I backbone" in text
    assert f"{res['minigpt5']['exact']:.3f}" in text and (ckpt / "eval_val.json").exists()
    side = max(Image.open(res["_images"]["targets"][0]).size[0], 16)  # world images 48 px, generated 16 px
    assert Image.open(ckpt / "samples.png").size == (5 * 2 * side, 3 * 2 * side)  # targets, MiniGPT-5, T2I rows


def test_backbones_card_lists_the_curve(tmp_path: Path) -> None:
    import json

    from mg5bench.eval_reference import write_backbones_card
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
