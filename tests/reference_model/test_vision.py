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
    from reference_model.train_vision import grounding_check, train_vision

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


def test_blip2_pretraining_phase_then_the_projection_alone(tmp_path: Path) -> None:
    """With qformer_steps the Q-Former is first trained with ITC + ITM + ITG (losses recorded), then only the
    projection learns from the frozen LM's captioning loss: encoder and Q-Former end equal to the phase-1
    state, the projection differs; the caption probe is reported."""
    from transformers import AutoTokenizer

    from mg5bench.data.world import WorldConfig, ensure_world
    from reference_model.lm import world_texts
    from reference_model.tiny_parts import save_tiny_random_parts
    from reference_model.train_vision import QFormerPretrainer, _caption_ids, train_vision

    world = ensure_world(WorldConfig(level=1, size="small"), cache_dir=tmp_path / "cache", progress=False)
    save_tiny_random_parts(tmp_path / "b", world_texts(world)[:200])
    lm_dir = tmp_path / "b" / "lm"
    cfg = VisionConfig(hidden=32, layers=1, heads=2, qformer_hidden=32, qformer_layers=1, qformer_heads=2,
                       num_queries=4, lm_hidden=64)  # fmt: skip
    res = train_vision(world, lm_dir, tmp_path / "run", steps=3, batch=4, cfg=cfg, qformer_steps=3, qformer_batch=8)
    assert set(res["qformer"]) >= {"itc", "itm", "itg"} and all(res["qformer"][k] > 0 for k in ("itc", "itm", "itg"))
    assert set(res["caption_probe"]) >= {"colour", "shape", "size", "cell", "exact"}
    phase1 = torch.load(tmp_path / "run" / "qformer_state.pt", weights_only=False)["model"]
    final = VisionPath.from_pretrained(tmp_path / "run" / "vision").state_dict()
    for k, v in final.items():
        if k.startswith(("encoder.", "qformer.")):
            assert torch.equal(v, phase1["vision." + k]), k
    assert not torch.equal(final["proj.weight"], phase1["vision.proj.weight"])
    # the ITG mask: changing a later caption token never changes the states of earlier positions
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(lm_dir)
    two = VisionConfig(
        hidden=32, layers=1, heads=2, qformer_hidden=32, qformer_layers=2, qformer_heads=2, num_queries=4, lm_hidden=64
    )  # 2 layers: text sees image-informed queries from layer 2 on
    pre = QFormerPretrainer(VisionPath.build(two), len(tok)).eval()
    ids, mask = _caption_ids(tok, ["a big red circle at the top left .", "a small blue square on the right ."])
    assert ids[0, 0] == tok.bos_token_id and bool((ids[mask == 0] == tok.pad_token_id).all())
    img = pre.vision.encoder(pixel_values=torch.randn(2, 3, 48, 48)).last_hidden_state
    other = ids.clone()
    other[:, 4] = (other[:, 4] + 1) % len(tok)
    with torch.no_grad():
        a, b = pre.itg_states(img, ids, mask), pre.itg_states(img, other, mask)
        c = pre.itg_states(img.roll(1, 0), ids, mask)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6) and not torch.allclose(a[:, 4:], b[:, 4:])
    assert not torch.allclose(a[:, :1], c[:, :1])  # the text reads the image through the queries


def test_position_embedding_scale_and_qformer_dropout_are_recorded_settings(tmp_path: Path) -> None:
    """pos_std sets the encoder's position-embedding init (transformers' default draws it at 0.02) and
    qformer_dropout the Q-Former's dropouts; both survive a save/load round trip (vision_config.json and the
    Q-Former's config.json), and the defaults build the old path bit for bit."""
    small = {"lm_hidden": 32, "hidden": 32, "qformer_hidden": 32, "num_queries": 4}
    torch.manual_seed(0)
    old = VisionPath.build(VisionConfig(**small))
    torch.manual_seed(0)
    same = VisionPath.build(VisionConfig(**small, pos_std=0.02, qformer_dropout=0.1))
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), same.state_dict().values(), strict=True))
    torch.manual_seed(0)
    new = VisionPath.build(VisionConfig(**small, pos_std=0.5, qformer_dropout=0.0))
    pos = new.encoder.embeddings.position_embedding.detach()
    assert 0.35 < float(pos.std()) < 0.5 and float(pos.abs().max()) <= 1.0  # truncated at 2 std
    assert float(old.encoder.embeddings.position_embedding.std()) < 0.03
    qc = new.qformer.config
    assert qc.hidden_dropout_prob == 0.0 and qc.attention_probs_dropout_prob == 0.0
    new.save_pretrained(tmp_path / "v")
    back = VisionPath.from_pretrained(tmp_path / "v")
    assert back.qformer.config.hidden_dropout_prob == 0.0
    assert torch.equal(back.encoder.embeddings.position_embedding, pos)
