"""The input-image path of MiniGPT-4 / MiniGPT-5: image encoder -> query former -> projection into the LM.

Built from transformers' BLIP-2 parts so that the paper preset (EVA ViT-g + BLIP-2 Q-Former, both in the
Hugging Face ``Blip2VisionModel`` / ``Blip2QFormerModel`` formats, + ``llama_proj`` 768 -> 4096) and the tiny
preset (a small ViT + a 2-layer Q-Former trained on the synthetic world) share one code path:

    pixels (B, 3, S, S) -> vision encoder (+ post LayerNorm = ln_vision) -> (B, 1 + (S/P)^2, Dv)
    -> Q-Former(learned queries (1, Q, Dq), cross-attending to the image tokens) -> (B, Q, Dq)
    -> proj Linear(Dq -> d_llm) -> (B, Q, d_llm), which replaces one ``<ImageHere>`` token.

``python -m reference_model.vision`` trains the tiny path "the MiniGPT-4 way": the LM is frozen and
learns nothing; the encoder, Q-Former, queries and projection learn to caption world images into it
(in the official system the encoder and Q-Former are pretrained and frozen and only the projection
was trained; the tiny world has no pretrained encoder, so all of the path is trained). Imports nothing
from mg5bench.
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
            )
        )  # fmt: skip
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


def caption_batch(
    vision: VisionPath, lm: Any, tok: Any, images: torch.Tensor, captions: list[str], img: torch.Tensor | None = None
) -> torch.Tensor:  # fmt: skip
    """Captioning loss of a batch: [BOS] prompt-before | Q image embeddings | prompt-after caption ###.
    images: (B, 3, S, S) normalised (or ``img``: their (B, Q, d) embeddings). Only the caption and ' ###'
    are supervised."""
    emb = lm.get_input_embeddings()
    before, after = DESCRIBE.split("<ImageHere>")
    ids_b = tok(before, add_special_tokens=False)["input_ids"]
    ids_a = tok(after, add_special_tokens=False)["input_ids"]
    img = vision(images) if img is None else img  # (B, Q, d)
    rows, labels = [], []
    for i, cap in enumerate(captions):
        tgt = tok(" " + cap + " ###", add_special_tokens=False)["input_ids"]
        pre = torch.tensor([tok.bos_token_id, *ids_b])
        post = torch.tensor([*ids_a, *tgt])
        e = torch.cat([emb(pre), img[i], emb(post)])  # (T, d)
        lab = torch.cat([torch.full((len(pre) + img.shape[1] + len(ids_a),), -100), torch.tensor(tgt)])
        rows.append(e)
        labels.append(lab)
    t = max(len(r) for r in rows)
    d = rows[0].shape[1]
    x = torch.zeros(len(rows), t, d)
    y = torch.full((len(rows), t), -100)
    att = torch.zeros(len(rows), t, dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labels, strict=True)):
        x[i, : len(r)] = r
        y[i, : len(lab)] = lab
        att[i, : len(r)] = 1
    return lm(inputs_embeds=x, attention_mask=att, labels=y).loss


def train_vision(
    world: Path, lm_dir: Path, out: Path, steps: int, batch: int = 32, lr: float = 1e-3, seed: int = 0,
    cfg: VisionConfig | None = None, recon_weight: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """Train the tiny image path on the world's CC3M-format captions (train split); resumable.

    Captioning into the frozen LM alone did not train a from-scratch encoder here: the LM ignores image
    positions that carry nothing yet, so their gradient stays noise (measured: Q-Former weights moved by the
    random-walk amount, features identical across images, correct vs shuffled images gave the same loss).
    A self-supervised reconstruction head on the Q-Former outputs (``recon_weight``; object pixels weighted
    5x; discarded afterwards) makes the queries carry the image from the first steps - the stand-in for
    the pretrained EVA-CLIP + Q-Former of the real system."""
    import time

    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, LlamaForCausalLM

    from reference_model.schedule import warmup_cosine
    from reference_model.t2i import read_pairs

    out.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(lm_dir)
    lm = LlamaForCausalLM.from_pretrained(lm_dir, dtype=torch.float32).eval().requires_grad_(False)
    cfg = cfg or VisionConfig(lm_hidden=lm.config.hidden_size)
    folder = world / "CC3M"
    rows = read_pairs(folder, "train")  # (caption, image path)
    from PIL import Image

    chunks = [rows[i : i + 512] for i in range(0, len(rows), 512)]
    pix = torch.cat([preprocess([Image.open(p) for _, p in c], cfg.image_size) for c in chunks])  # (N,3,S,S)
    caps = [c for c, _ in rows]
    torch.manual_seed(seed)
    vision = VisionPath.build(cfg)
    side = cfg.image_size // 2
    decoder = nn.Linear(cfg.num_queries * cfg.qformer_hidden, 3 * side * side)  # reconstruction head (discarded)
    opt = torch.optim.AdamW([*vision.parameters(), *decoder.parameters()], lr=lr, weight_decay=0.01)
    state_path = out / "vision_state.pt"
    start, log = 0, []
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        vision.load_state_dict(st["model"])
        decoder.load_state_dict(st["decoder"])
        opt.load_state_dict(st["opt"])
        start, log = st["step"], st["log"]
    gen = torch.Generator().manual_seed(seed + start)
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="vision", unit="step")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 100)
        idx = torch.randint(0, len(caps), (batch,), generator=gen)
        x = pix[idx]  # (B, 3, S, S)
        qf = vision.query_features(x)  # (B, Q, Dq)
        cap = caption_batch(vision, lm, tok, x, [caps[int(i)] for i in idx], img=vision.proj(qf))
        loss = cap
        if recon_weight > 0:
            target = torch.nn.functional.avg_pool2d(x, 2)  # (B, 3, S/2, S/2)
            bg = target.flatten(2).median(-1).values[..., None, None]  # (B, 3, 1, 1): the background colour
            w = 1 + 4 * ((target - bg).abs().amax(1, keepdim=True) > 0.3).float()  # object pixels x5
            rec = decoder(qf.flatten(1)).view_as(target)
            loss = loss + recon_weight * (w * (rec - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vision.parameters(), 1.0)
        opt.step()
        log.append(float(cap.detach()))  # the captioning loss (the card's number)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(log[-50:]) / len(log[-50:]):.3f}")
        if (step + 1) % 250 == 0 or step + 1 == steps:
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": vision.state_dict(), "decoder": decoder.state_dict(), "opt": opt.state_dict(),
                        "step": step + 1, "log": log}, tmp)  # fmt: skip
            os.replace(tmp, state_path)
    vision.save_pretrained(out / "vision")
    (out / "vision" / "vision_config.json").write_text(cfg.to_json())
    final = sum(log[-100:]) / max(len(log[-100:]), 1)
    res = {"steps": steps, "wall_s": round(time.time() - t0, 1), "final_loss": final}
    val = read_pairs(folder, "val")[:256]
    vpix = preprocess([Image.open(p) for _, p in val], cfg.image_size)
    res.update(grounding_check(vision, lm, tok, vpix, [c for c, _ in val]))
    (out / "vision_info.json").write_text(json.dumps(res, indent=2))
    return res


@torch.no_grad()
def grounding_check(
    vision: VisionPath, lm: Any, tok: Any, images: torch.Tensor, captions: list[str]
) -> dict[str, float]:
    """Captioning loss with each image vs with the images rolled by one (a wrong image per caption). A path
    that reads its image has a clearly lower loss on the matching images; the collapsed first path had
    0.6885 for both."""
    vision.eval()
    matched = float(caption_batch(vision, lm, tok, images, captions))
    shuffled = float(caption_batch(vision, lm, tok, images.roll(1, 0), captions))
    vision.train()
    return {"val_caption_loss_matched": round(matched, 4), "val_caption_loss_shuffled": round(shuffled, 4)}


@torch.no_grad()
def greedy_captions(vision: VisionPath, lm: Any, tok: Any, images: torch.Tensor, max_new_tokens: int = 16) -> list[str]:
    """Greedy captions of normalised images (B, 3, S, S) under the DESCRIBE prompt (for the model card)."""
    emb = lm.get_input_embeddings()
    before, after = DESCRIBE.split("<ImageHere>")
    pre = emb(torch.tensor([tok.bos_token_id, *tok(before, add_special_tokens=False)["input_ids"]]))
    post = emb(torch.tensor(tok(after, add_special_tokens=False)["input_ids"]))
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
