"""Tiny *random* parts saved in the exact formats of the real ones (a LlamaForCausalLM folder with its
tokenizer, a StableDiffusionPipeline folder, a VisionPath folder), so that the loading code of both
presets, the training loop and generation can be exercised in seconds. Nothing here is trained.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from reference_model.config import MiniGPT5Config, config_from_backbones
from reference_model.lm import build_lm, train_tokenizer
from reference_model.t2i import (
    T2IConfig,
    build_text_encoder,
    build_unet,
    build_vae,
    build_vocab,
    export_pipeline,
    make_tokenizer,
)
from reference_model.vision import VisionConfig, VisionPath


def save_tiny_random_parts(root: Path, texts: list[str], seed: int = 0, image_size: int = 16) -> MiniGPT5Config:
    """Write lm/, t2i/ and vision/ under ``root`` (a backbones folder) and return a matching small config."""
    torch.manual_seed(seed)
    root = Path(root)
    tok = train_tokenizer(texts, vocab_size=320)
    lm = build_lm(len(tok), hidden=64, layers=2, heads=4, max_len=1024)
    lm.save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    tcfg = T2IConfig(
        image_size=image_size,
        vae_channels=(16, 16),
        unet_channels=(16, 16, 32),
        attention_head_width=8,
        text_hidden=32,
        text_layers=1,
        text_heads=2,
        max_text_len=16,
        vocab=build_vocab(texts),
    )
    export_pipeline(
        root,
        root / "t2i",
        build_unet(tcfg),
        build_text_encoder(tcfg),
        make_tokenizer(tcfg.vocab, tcfg.max_text_len),
        build_vae(tcfg),
        tcfg,
    )
    vcfg = VisionConfig(image_size=image_size, patch_size=8, hidden=32, layers=1, heads=2, qformer_hidden=32,
                        qformer_layers=1, qformer_heads=2, num_queries=4, lm_hidden=64)  # fmt: skip
    VisionPath.build(vcfg).save_pretrained(root / "vision")
    cfg = config_from_backbones(root)
    cfg.mapper = replace(cfg.mapper, fc_hidden=32, heads=2, encoder_layers=1, decoder_layers=1, ffn=64)
    return replace(cfg, num_inference_steps=3, max_new_tokens=12)
