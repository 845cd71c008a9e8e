"""The input-image path of MiniGPT-4 / MiniGPT-5: image encoder -> query former -> projection into the LM.

Built from transformers' BLIP-2 parts so that the paper preset (EVA ViT-g + BLIP-2 Q-Former, both in the
Hugging Face ``Blip2VisionModel`` / ``Blip2QFormerModel`` formats, + ``llama_proj`` 768 -> 4096) and the tiny
preset (a small ViT + a 2-layer Q-Former trained on the synthetic world) share one code path:

    pixels (B, 3, S, S) -> vision encoder (+ post LayerNorm = ln_vision) -> (B, 1 + (S/P)^2, Dv)
    -> Q-Former(learned queries (1, Q, Dq), cross-attending to the image tokens) -> (B, Q, Dq)
    -> proj Linear(Dq -> d_llm) -> (B, Q, d_llm), which replaces one ``<ImageHere>`` token.

Its training on the synthetic world (``reference_model.train_vision``, run by ``python -m reference_model.train
backbones``) is "the MiniGPT-4 way": the LM is frozen and learns nothing; the encoder, Q-Former, queries and
projection learn to caption world images into it. Imports nothing from mg5bench.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VisionConfig:
    """Sizes of the image path (saved as vision_config.json next to its weights)."""

    image_size: int = 48
    patch_size: int = 8
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    qformer_hidden: int = 128
    qformer_layers: int = 2
    qformer_heads: int = 4
    num_queries: int = 8
    lm_hidden: int = 256
    # Std of the encoder's learned position embedding at init. transformers initialises it at initializer_range
    # (0.02), about 1/20 of the patch embedding here; trained from scratch, the encoder then drops each object
    # token's place and no caption can say where the object is (measured: the position read back at 0.14).
    pos_std: float = 0.02
    # The Q-Former's hidden and attention dropout (BERT's 0.1). At 0.1 the tiny Q-Former never learns to pass the
    # place on, even when trained on cell labels directly (chance); at 0 it does.
    qformer_dropout: float = 0.1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def preprocess(images: list[Any], size: int) -> torch.Tensor:
    """MiniGPT-5's input-image transform: shorter side to ``size`` (bilinear), centre crop, CLIP mean/std.
    Accepts PIL images or HxWx3 uint8 arrays. Returns (B, 3, size, size) float32. No flip (eval path)."""
    from PIL import Image

    out = []
    for im in images:
        im = Image.fromarray(np.asarray(im)) if not isinstance(im, Image.Image) else im
        im = im.convert("RGB")
        w, h = im.size
        s = size / min(w, h)
        im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (3, S, S)
        out.append(x)
    x = torch.stack(out)  # (B, 3, S, S)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class VisionPath(nn.Module):
    """Encoder + Q-Former + projection: (B, 3, S, S) -> (B, Q, d_llm)."""

    def __init__(self, encoder: nn.Module, qformer: nn.Module, query_tokens: torch.Tensor, proj: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.qformer = qformer
        self.query_tokens = nn.Parameter(query_tokens)  # (1, Q, Dq)
        self.proj = proj

    @property
    def image_size(self) -> int:
        return int(self.encoder.config.image_size)

    @property
    def num_queries(self) -> int:
        return int(self.query_tokens.shape[1])

    @classmethod
    def build(cls, cfg: VisionConfig) -> VisionPath:
        """Random initialisation of the tiny path."""
        from transformers import Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel

        enc = Blip2VisionModel(
            Blip2VisionConfig(
                hidden_size=cfg.hidden, intermediate_size=cfg.hidden * 4, num_hidden_layers=cfg.layers,
                num_attention_heads=cfg.heads, image_size=cfg.image_size, patch_size=cfg.patch_size,
                initializer_range=0.02,  # BLIP-2's default 1e-10 assumes pretrained weights: from scratch, the
            )  # patch embedding would start at ~0, every image would map to the same tokens and nothing learns
        )  # fmt: skip
        qf = Blip2QFormerModel(
            Blip2QFormerConfig(
                hidden_size=cfg.qformer_hidden, num_hidden_layers=cfg.qformer_layers,
                num_attention_heads=cfg.qformer_heads, intermediate_size=cfg.qformer_hidden * 4,
                cross_attention_frequency=1, encoder_hidden_size=cfg.hidden, vocab_size=2,
                use_qformer_text_input=True,  # BLIP-2's text feed-forward (ITC/ITM/ITG pretraining)
                hidden_dropout_prob=cfg.qformer_dropout, attention_probs_dropout_prob=cfg.qformer_dropout,
            )
        )  # fmt: skip
        if cfg.pos_std != VisionConfig.pos_std:  # transformers' init already drew it at 0.02
            with torch.no_grad():
                nn.init.trunc_normal_(enc.embeddings.position_embedding, std=cfg.pos_std, a=-2 * cfg.pos_std,
                                      b=2 * cfg.pos_std)  # fmt: skip
        queries = torch.randn(1, cfg.num_queries, cfg.qformer_hidden) * 0.02
        return cls(enc, qf, queries, nn.Linear(cfg.qformer_hidden, cfg.lm_hidden))

    def query_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values (B, 3, S, S) normalised -> Q-Former outputs (B, Q, Dq)."""
        img = self.encoder(pixel_values=pixel_values).last_hidden_state  # (B, 1+N, Dv), after post LayerNorm
        mask = torch.ones(img.shape[:2], dtype=torch.long, device=img.device)
        q = self.query_tokens.expand(img.shape[0], -1, -1)  # (B, Q, Dq)
        return self.qformer(query_embeds=q, encoder_hidden_states=img, encoder_attention_mask=mask).last_hidden_state

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values (B, 3, S, S) normalised -> (B, Q, d_llm)."""
        return self.proj(self.query_features(pixel_values))  # (B, Q, d_llm)

    def encode_images(self, images: list[Any]) -> torch.Tensor:
        """PIL images or uint8 arrays -> (B, Q, d_llm), with the official preprocessing."""
        x = preprocess(images, self.image_size).to(self.proj.weight.device, self.proj.weight.dtype)
        return self(x)

    def save_pretrained(self, folder: Path) -> None:
        """encoder/ and qformer/ as HF folders; queries + projection in extra.safetensors (atomic)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self.encoder.save_pretrained(tmp / "encoder")
        self.qformer.save_pretrained(tmp / "qformer")
        extra = {"query_tokens": self.query_tokens.detach().contiguous(), "proj.weight": self.proj.weight.detach(),
                 "proj.bias": self.proj.bias.detach()}  # fmt: skip
        save_file({k: v.contiguous() for k, v in extra.items()}, str(tmp / "extra.safetensors"))
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        os.replace(tmp, folder)

    @classmethod
    def from_pretrained(cls, folder: Path) -> VisionPath:
        """Load a folder written by ``save_pretrained`` (also the paper preset's converted BLIP-2 parts)."""
        from safetensors.torch import load_file
        from transformers import Blip2QFormerModel, Blip2VisionModel

        folder = Path(folder)
        for part in ("encoder", "qformer", "extra.safetensors"):
            if not (folder / part).exists():
                raise FileNotFoundError(f"{folder}: missing {part} (expected a folder written by VisionPath)")
        enc = Blip2VisionModel.from_pretrained(folder / "encoder", dtype=torch.float32)
        qf = Blip2QFormerModel.from_pretrained(folder / "qformer", dtype=torch.float32)
        extra = {k: v.float() for k, v in load_file(str(folder / "extra.safetensors")).items()}
        w = extra["proj.weight"]  # (d_llm, Dq)
        proj = nn.Linear(w.shape[1], w.shape[0])
        proj.load_state_dict({"weight": w, "bias": extra["proj.bias"]})
        return cls(enc, qf, extra["query_tokens"], proj)


# ---------------------------------------------------------------------------------------------
# the MiniGPT-4 step: caption images into the frozen LM

DESCRIBE = "###Human: <Img><ImageHere></Img> Describe this image. ###Assistant:"


@torch.no_grad()
def greedy_captions(vision: VisionPath, lm: Any, tok: Any, images: torch.Tensor, max_new_tokens: int = 16) -> list[str]:
    """Greedy captions of normalised images (B, 3, S, S) under the DESCRIBE prompt (for the model card)."""
    emb = lm.get_input_embeddings()
    before, after = DESCRIBE.split("<ImageHere>")
    dev = images.device
    pre = emb(torch.tensor([tok.bos_token_id, *tok(before, add_special_tokens=False)["input_ids"]], device=dev))
    post = emb(torch.tensor(tok(after, add_special_tokens=False)["input_ids"], device=dev))
    img = vision(images)  # (B, Q, d)
    x = torch.cat([pre.expand(len(images), -1, -1), img, post.expand(len(images), -1, -1)], 1)  # (B, T, d)
    out = lm(inputs_embeds=x, use_cache=True)
    cache, ids = out.cache if hasattr(out, "cache") else out.past_key_values, []
    nxt = out.logits[:, -1].argmax(-1)  # (B,)
    for _ in range(max_new_tokens):
        ids.append(nxt)
        o = lm(inputs_embeds=emb(nxt)[:, None], cache=cache, use_cache=True)
        cache = o.cache if hasattr(o, "cache") else o.past_key_values
        nxt = o.logits[:, -1].argmax(-1)
    seqs = torch.stack(ids, 1).tolist()
    return [tok.decode(s).split("###")[0].strip() for s in seqs]
