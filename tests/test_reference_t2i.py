"""reference_model.t2i: the UNet's attention is as wide as configured (diffusers' attention_head_dim trap)."""

from __future__ import annotations

from reference_model.t2i import T2IConfig, build_unet, build_vocab, unet_heads


def test_attention_heads_have_the_configured_width() -> None:
    cfg = T2IConfig(vocab=build_vocab(["a big red circle at the top left ."]))
    unet = build_unet(cfg)
    widths = {name: m.inner_dim // m.heads for name, m in unet.named_modules() if name.endswith(("attn1", "attn2"))}
    assert widths and min(widths.values()) >= cfg.attention_head_width  # was 1 channel per head at the first level
    assert unet_heads(cfg) == tuple(c // 32 for c in cfg.unet_channels)
    inner = {
        m.inner_dim for name, m in unet.named_modules() if name.startswith("down_blocks.0") and name.endswith("attn2")
    }
    assert inner == {cfg.unet_channels[0]}  # no narrowing below the block's channel count


def test_positional_unet_round_trips_through_a_pipeline_folder(tmp_path) -> None:
    """The position-embedding UNet saves as a diffusers pipeline folder, StableDiffusionPipeline loads it back
    with the embedding intact, and sampling runs; the embedding changes outputs per location."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    from reference_model import t2i

    cfg = T2IConfig(vocab=build_vocab(["a big red circle at the top left"]), unet_channels=(16, 32, 32),
                    attention_head_width=16, vae_channels=(16, 16, 16))  # fmt: skip
    torch.manual_seed(0)
    unet, text, vae = t2i.build_unet(cfg), t2i.build_text_encoder(cfg), t2i.build_vae(cfg)
    assert type(unet).__name__ == "PositionalUNet2DConditionModel"
    z = torch.zeros(1, 4, 12, 12)
    cond = torch.zeros(1, 5, cfg.text_hidden)
    base = unet(z, 10, encoder_hidden_states=cond).sample
    with torch.no_grad():
        unet.conv_in.pos[:, 0, 0] = 3.0  # only the top-left latent pixel gets a position signal
        moved = unet(z, 10, encoder_hidden_states=cond).sample
    diff = (moved - base).abs().sum(1)[0]  # (12, 12)
    assert diff[0, 0] > 0 and diff[0, 0] > diff[-1, -1]
    tok = t2i.make_tokenizer(cfg.vocab, cfg.max_text_len)
    t2i.export_pipeline(tmp_path, tmp_path / "pipe", unet, text, tok, vae, cfg)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "pipe", safety_checker=None)
    assert torch.equal(pipe.unet.conv_in.pos, unet.conv_in.pos)
    assert isinstance(pipe.vae, AutoencoderKL)
    out = pipe(["a big red circle"], num_inference_steps=2, height=48, width=48, output_type="np",
               generator=torch.Generator().manual_seed(0)).images  # fmt: skip
    assert out.shape == (1, 48, 48, 3)


def test_old_configs_load_without_the_position_embedding() -> None:
    import json

    d = json.loads(T2IConfig(vocab=["a"]).to_json())
    del d["position_embedding"]
    assert T2IConfig.from_json(json.dumps(d)).position_embedding is False
