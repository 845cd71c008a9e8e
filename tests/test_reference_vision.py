"""reference_model.vision: preprocessing, initialisation that lets a from-scratch encoder learn, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reference_model.vision import CLIP_MEAN, CLIP_STD, VisionConfig, VisionPath, preprocess


def test_preprocess_resizes_shorter_side_crops_and_normalises() -> None:
    im = Image.new("RGB", (60, 40), (255, 0, 128))
    x = preprocess([im], 24)
    assert x.shape == (1, 3, 24, 24)
    want = [(c / 255 - m) / s for c, m, s in zip((255, 0, 128), CLIP_MEAN, CLIP_STD, strict=True)]
    assert np.allclose(x[0].mean(dim=(1, 2)).numpy(), want, atol=1e-5)


def test_fresh_encoder_output_depends_on_the_image() -> None:
    """BLIP-2's default initializer_range (1e-10) made every image look the same to a from-scratch encoder."""
    torch.manual_seed(0)
    v = VisionPath.build(VisionConfig(lm_hidden=32, hidden=32, qformer_hidden=32, num_queries=4)).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        enc = v.encoder(pixel_values=x).last_hidden_state  # (2, 37, 32)
    assert float((enc[0] - enc[1]).abs().mean()) > 1e-2 * float(enc.std())


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    v = VisionPath.build(VisionConfig(lm_hidden=32, hidden=32, qformer_hidden=32, num_queries=4)).eval()
    v.save_pretrained(tmp_path / "v")
    w = VisionPath.from_pretrained(tmp_path / "v").eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(v(x), w(x), atol=1e-6)


def test_train_vision_runs_resumes_and_reports_the_grounding_check(tmp_path: Path) -> None:
    """A few steps on a small world with a tiny LM: the path is saved, vision_info.json carries the matched and
    shuffled-image caption losses (recomputed here with grounding_check), and a rerun resumes instead of retraining."""
    import json

    from transformers import AutoTokenizer, LlamaForCausalLM

    from mg5bench.data.world import WorldConfig, ensure_world
    from reference_model.t2i import read_pairs
    from reference_model.tiny_parts import save_tiny_random_parts
    from reference_model.vision import grounding_check, train_vision

    world = ensure_world(WorldConfig(level=1, size="small"), cache_dir=tmp_path / "cache", progress=False)
    save_tiny_random_parts(tmp_path / "b", ["a big red circle at the top left ."])
    lm_dir = tmp_path / "b" / "lm"
    cfg = VisionConfig(hidden=32, layers=1, heads=2, qformer_hidden=32, qformer_layers=1, qformer_heads=2,
                       num_queries=4, lm_hidden=64)  # fmt: skip
    res = train_vision(world, lm_dir, tmp_path / "run", steps=3, batch=4, cfg=cfg)
    info = json.loads((tmp_path / "run" / "vision_info.json").read_text())
    assert info["steps"] == 3 and set(info) >= {"val_caption_loss_matched", "val_caption_loss_shuffled"}
    vision = VisionPath.from_pretrained(tmp_path / "run" / "vision")
    lm = LlamaForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)
    val = read_pairs(world / "CC3M", "val")[:256]
    pix = preprocess([Image.open(p) for _, p in val], cfg.image_size)
    again = grounding_check(vision, lm, AutoTokenizer.from_pretrained(lm_dir), pix, [c for c, _ in val])
    assert again == {k: info[k] for k in again}
    assert train_vision(world, lm_dir, tmp_path / "run", steps=3, batch=4, cfg=cfg)["final_loss"] == res["final_loss"]
