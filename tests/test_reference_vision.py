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
