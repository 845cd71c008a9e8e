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
