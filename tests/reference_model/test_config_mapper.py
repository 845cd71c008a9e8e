"""reference_model: config presets round trip; the mapper's shapes and the official layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reference_model.config import MiniGPT5Config, paper_preset, tiny_preset
from reference_model.mapper import VokenMapper


def test_config_round_trip(tmp_path: Path) -> None:
    parts = tmp_path / "parts"  # part paths are stored relative to the checkpoint and resolved on load
    for cfg in (tiny_preset(lm_path=str(parts / "lm"), t2i_path=str(parts / "t2i")), paper_preset()):
        cfg.save(tmp_path / cfg.preset)
        assert MiniGPT5Config.load(tmp_path / cfg.preset) == cfg
    paper = paper_preset()
    assert paper.voken_tokens == [f"[IMG{i}]" for i in range(8)]
    assert (paper.mapper.d_model, paper.mapper.num_queries, paper.mapper.heads) == (1024, 77, 8)
    assert (paper.loss.text_weight, paper.loss.image_weight, paper.loss.caption_weight) == (0.01, 1.0, 0.1)
    assert (paper.lora.r, paper.lora.alpha, paper.lora.dropout, paper.cfg_drop_p) == (8, 16, 0.05, 0.1)
    assert (paper.guidance_scale, paper.num_inference_steps, paper.loss.snr_gamma) == (7.5, 50, 5.0)


def test_relative_part_paths_are_read_against_the_cwd_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--backbones parts` (relative to the cwd) must still name the same folder when the checkpoint is loaded from
    elsewhere: the stored path is relative to the checkpoint folder, not a copy of the cwd-relative string."""
    (tmp_path / "parts" / "lm").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    cfg = tiny_preset("parts/lm", "parts/t2i", "parts/vision")
    cfg.save(tmp_path / "runs" / "stage1")
    monkeypatch.chdir("/")
    back = MiniGPT5Config.load(tmp_path / "runs" / "stage1")
    assert Path(back.lm_path) == (tmp_path / "parts" / "lm").resolve()
    assert Path(back.vision_path) == (tmp_path / "parts" / "vision").resolve()


def test_mapper_shapes_and_null_condition() -> None:
    cfg = tiny_preset()
    m = VokenMapper(d_llm=64, cfg=cfg.mapper)
    h = torch.randn(3, cfg.num_vokens, 64)  # (B, n_vokens, d_llm)
    out = m(h)
    assert out.shape == (3, cfg.mapper.num_queries, cfg.mapper.out_dim)
    null = m.null_condition(cfg.num_vokens, 64)
    assert null.shape == (1, cfg.mapper.num_queries, cfg.mapper.out_dim)
    assert torch.allclose(null[0], m(torch.zeros(1, cfg.num_vokens, 64))[0])
    # no positional encoding: permuting the vokens leaves the output unchanged (as the official mapper)
    assert torch.allclose(m(h.flip(1)), out, atol=1e-5)


def test_paper_mapper_parameter_count() -> None:
    """fc 4096->1024->1024 = 5.24M and the 4+4-layer d=1024 transformer = 117.6M, the paper's sizes."""
    cfg = paper_preset()
    m = VokenMapper(d_llm=4096, cfg=cfg.mapper)
    fc = sum(p.numel() for p in m.fc.parameters())
    tr = sum(p.numel() for p in m.transformer.parameters())
    assert round(fc / 1e6, 2) == 5.24 and round(tr / 1e6, 1) == 117.6
    assert m.queries.numel() == 78_848
