"""Training of the tiny image path (``reference_model.vision.VisionPath``) on the synthetic world: "the MiniGPT-4
way", with the LM frozen (it learns nothing) while the encoder, Q-Former, queries and projection learn to caption
world images into it. In the official system the encoder and Q-Former are pretrained and frozen and only the
projection was trained; the tiny world has no pretrained encoder, so all of the path is trained, optionally after a
BLIP-2 stage 1 (``QFormerPretrainer``: ITC, ITM, ITG). Also the probes that read the trained path: captions parsed
back into objects (``caption_probe``) and whether features follow the image (``grounding_check``). Resumable
(``reference_model.state``). Imports nothing from mg5bench.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reference_model.state import resume, save_state
from reference_model.vision import DESCRIBE, VisionConfig, VisionPath, greedy_captions, preprocess


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


class QFormerPretrainer(nn.Module):
    """BLIP-2's first stage around a ``VisionPath``: the Q-Former also reads text (shared self-attention,
    no cross-attention for text positions) and learns, before any LM sees it,

    - ITC: image-text contrast, similarity = max over queries of (query feature . text [CLS] feature);
    - ITM: binary matching of (image, text) with hard negatives drawn from the ITC similarities, queries and
      text attending to each other;
    - ITG: image-grounded text generation, text decoded causally from the queries (a multimodal causal mask).

    Only the encoder, Q-Former and queries are kept; the text embeddings and heads are discarded afterwards.
    """

    def __init__(self, vision: VisionPath, vocab_size: int, dim: int = 64, max_len: int = 64) -> None:
        super().__init__()
        from transformers import Blip2QFormerConfig
        from transformers.models.blip_2.modeling_blip_2 import Blip2TextEmbeddings

        self.vision = vision
        h = vision.query_tokens.shape[-1]
        self.text_embeddings = Blip2TextEmbeddings(
            Blip2QFormerConfig(hidden_size=h, vocab_size=vocab_size, max_position_embeddings=max_len, pad_token_id=0)
        )
        self.vision_projection = nn.Linear(h, dim)
        self.text_projection = nn.Linear(h, dim)
        self.itm_head = nn.Linear(h, 2)
        self.lm_head = nn.Linear(h, vocab_size)
        self.temp = nn.Parameter(torch.tensor(0.07))

    def itg_states(self, img: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Text states of image-grounded generation: img (B, 1+N, Dv) encoder tokens, ids / mask (B, T) -> (B, T, Dq).
        Multimodal causal mask: queries attend to queries only; text token t to every query and to text <= t."""
        v = self.vision
        b, t = ids.shape
        q = v.query_tokens.expand(b, -1, -1)  # (B, Q, Dq)
        nq = q.shape[1]
        allowed = torch.zeros(b, nq + t, nq + t, dtype=torch.bool, device=ids.device)
        allowed[:, :, :nq] = True
        allowed[:, :nq, nq:] = False
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        allowed[:, nq:, nq:] = causal & mask.bool()[:, None, :]
        m4 = torch.zeros(b, 1, nq + t, nq + t, device=ids.device).masked_fill(~allowed[:, None], -1e4)
        dec_ids = ids.clone()
        dec_ids[:, 0] = 2  # [DEC]: the LM tokenizer's </s> id stands in for BLIP-2's decoder token
        joint = torch.cat([q, self.text_embeddings(input_ids=dec_ids)], 1)  # (B, Q+T, Dq)
        img_mask = torch.ones(img.shape[:2], dtype=torch.long, device=img.device)
        out = v.qformer(query_embeds=joint, query_length=nq, attention_mask=m4, encoder_hidden_states=img,
                        encoder_attention_mask=img_mask).last_hidden_state  # fmt: skip
        return out[:, nq:]

    def losses(self, pixel_values: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, same: torch.Tensor,
               gen: torch.Generator) -> dict[str, torch.Tensor]:  # fmt: skip
        """pixel_values (B, 3, S, S); ids / mask (B, T) starting with the [CLS] id; ``same`` (B, B) True where two
        rows carry the same caption (not negatives of each other)."""
        import torch.nn.functional as F

        v = self.vision
        b = len(ids)
        img = v.encoder(pixel_values=pixel_values).last_hidden_state  # (B, 1+N, Dv)
        img_mask = torch.ones(img.shape[:2], dtype=torch.long, device=img.device)
        q = v.query_tokens.expand(b, -1, -1)  # (B, Q, Dq)
        nq = q.shape[1]
        qf = v.qformer(query_embeds=q, encoder_hidden_states=img, encoder_attention_mask=img_mask).last_hidden_state
        txt = v.qformer(query_embeds=self.text_embeddings(input_ids=ids), query_length=0,
                        attention_mask=mask).last_hidden_state  # (B, T, Dq)  # fmt: skip
        # ITC
        zi = F.normalize(self.vision_projection(qf), dim=-1)  # (B, Q, d)
        zt = F.normalize(self.text_projection(txt[:, 0]), dim=-1)  # (B, d)
        sim = torch.einsum("iqd,jd->ijq", zi, zt).amax(-1) / self.temp.clamp(min=0.01)  # (B img, B txt)
        target = same.float() / same.float().sum(1, keepdim=True)
        itc = (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target.t())) / 2
        # ITM: one hard negative text per image and one hard negative image per text
        with torch.no_grad():
            w_t = F.softmax(sim, 1).masked_fill(same, 0) + 1e-6 * (~same)
            w_i = F.softmax(sim.t(), 1).masked_fill(same, 0) + 1e-6 * (~same)
            neg_t = torch.multinomial(w_t, 1, generator=gen).squeeze(1)  # (B,)
            neg_i = torch.multinomial(w_i, 1, generator=gen).squeeze(1)  # (B,)
        imgs = torch.cat([img, img, img[neg_i]])  # (3B, 1+N, Dv): pos, (img, neg text), (neg img, text)
        tids = torch.cat([ids, ids[neg_t], ids])
        tmask = torch.cat([mask, mask[neg_t], mask])
        qq = v.query_tokens.expand(3 * b, -1, -1)
        joint = torch.cat([qq, self.text_embeddings(input_ids=tids)], 1)  # (3B, Q+T, Dq)
        jmask = torch.cat([torch.ones(3 * b, nq, dtype=torch.long, device=ids.device), tmask], 1)
        out = v.qformer(query_embeds=joint, query_length=nq, attention_mask=jmask, encoder_hidden_states=imgs,
                        encoder_attention_mask=torch.ones(imgs.shape[:2], dtype=torch.long,
                                                          device=ids.device)).last_hidden_state  # fmt: skip
        logits = self.itm_head(out[:, :nq]).mean(1)  # (3B, 2)
        labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(ids.device)
        itm = F.cross_entropy(logits, labels)
        # ITG: [DEC] + caption decoded causally; text sees every query, queries never see text
        out = self.itg_states(img, ids, mask)  # (B, T, Dq)
        pred = self.lm_head(out[:, :-1])  # (B, T-1, V)
        tgt = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        itg = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tgt.reshape(-1), ignore_index=-100)
        return {"itc": itc, "itm": itm, "itg": itg, "qf": qf}


def _caption_ids(tok: Any, caps: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] caption [EOS], right-padded: (B, T) ids and mask (the LM tokenizer; <s> is the [CLS])."""
    rows = [[tok.bos_token_id, *tok(c, add_special_tokens=False)["input_ids"], tok.eos_token_id] for c in caps]
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), tok.pad_token_id)
    mask = torch.zeros(len(rows), t, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def train_vision(
    world: Path, lm_dir: Path, out: Path, steps: int, batch: int = 32, lr: float = 1e-3, seed: int = 0,
    cfg: VisionConfig | None = None, recon_weight: float = 1.0, qformer_steps: int = 0, qformer_batch: int = 32,
    gen_trainable: str = "proj", pos_std: float | None = None, qformer_dropout: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train the tiny image path on the world's CC3M-format captions (train split); resumable.

    With ``qformer_steps`` > 0 it first trains encoder + Q-Former the BLIP-2 way (``QFormerPretrainer``: ITC,
    ITM, ITG) before the LM sees them, then ``steps`` of the MiniGPT-4 step: captioning into the frozen LM,
    training ``gen_trainable`` ("proj" as MiniGPT-4 does, "qformer" = + Q-Former and queries as BLIP-2's
    second stage, "all" = + encoder). With ``qformer_steps`` = 0 it is the older single phase: everything
    trained by captioning plus a self-supervised reconstruction head (``recon_weight``; object pixels 5x),
    which is what made a from-scratch encoder learn at all there (the frozen LM ignored image positions that
    carried nothing yet)."""
    import time

    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, LlamaForCausalLM

    from reference_model.schedule import warmup_cosine
    from reference_model.t2i import read_pairs

    out.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(lm_dir)
    lm = LlamaForCausalLM.from_pretrained(lm_dir, dtype=torch.float32).eval().requires_grad_(False)
    cfg = cfg or VisionConfig(lm_hidden=lm.config.hidden_size)
    if pos_std is not None:
        cfg = replace(cfg, pos_std=pos_std)
    if qformer_dropout is not None:
        cfg = replace(cfg, qformer_dropout=qformer_dropout)
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
    t0 = time.time()
    res: dict[str, Any] = {}
    if qformer_steps > 0:
        res["qformer"] = _pretrain_qformer(vision, decoder, tok, pix, caps, out, qformer_steps, qformer_batch, lr,
                                           seed, recon_weight)  # fmt: skip
        recon_weight = 0.0
        groups = {"proj": [vision.proj], "qformer": [vision.proj, vision.qformer], "all": [vision]}[gen_trainable]
        vision.requires_grad_(False)
        for g in groups:
            g.requires_grad_(True)
        if gen_trainable != "proj":
            vision.query_tokens.requires_grad_(True)
    params = [p for p in vision.parameters() if p.requires_grad] + list(decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    state_path = out / "vision_state.pt"
    start, st = resume(state_path, {"model": vision, "decoder": decoder, "opt": opt})
    log = st.get("log", [])
    gen = torch.Generator().manual_seed(seed + start)
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
            loss = loss + recon_weight * _recon_loss(decoder, qf, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        log.append(float(cap.detach()))  # the captioning loss (the card's number)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(log[-50:]) / len(log[-50:]):.3f}")
        if (step + 1) % 250 == 0 or step + 1 == steps:
            save_state({"model": vision.state_dict(), "decoder": decoder.state_dict(), "opt": opt.state_dict(),
                        "step": step + 1, "log": log}, state_path)  # fmt: skip
    vision.save_pretrained(out / "vision")
    (out / "vision" / "vision_config.json").write_text(cfg.to_json())
    final = sum(log[-100:]) / max(len(log[-100:]), 1)
    res.update({"steps": steps, "qformer_steps": qformer_steps, "gen_trainable": gen_trainable,
                "wall_s": round(time.time() - t0, 1), "final_loss": final})  # fmt: skip
    val = read_pairs(folder, "val")[:256]
    vpix = preprocess([Image.open(p) for _, p in val], cfg.image_size)
    res.update(grounding_check(vision, lm, tok, vpix, [c for c, _ in val]))
    if (world / "scenes.jsonl").exists():
        res["caption_probe"] = caption_probe(vision, lm, tok, world, "val", 500)
    (out / "vision_info.json").write_text(json.dumps(res, indent=2))
    return res


def _recon_loss(decoder: nn.Module, qf: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Weighted MSE of a half-resolution reconstruction from the flattened query features (B, Q, Dq)."""
    target = torch.nn.functional.avg_pool2d(x, 2)  # (B, 3, S/2, S/2)
    bg = target.flatten(2).median(-1).values[..., None, None]  # (B, 3, 1, 1): the background colour
    w = 1 + 4 * ((target - bg).abs().amax(1, keepdim=True) > 0.3).float()  # object pixels x5
    rec = decoder(qf.flatten(1)).view_as(target)
    return (w * (rec - target) ** 2).mean()


def _pretrain_qformer(
    vision: VisionPath, decoder: nn.Module, tok: Any, pix: torch.Tensor, caps: list[str], out: Path, steps: int,
    batch: int, lr: float, seed: int, recon_weight: float,
) -> dict[str, Any]:  # fmt: skip
    """BLIP-2 stage 1 (ITC + ITM + ITG, + the reconstruction head); resumable from out/qformer_state.pt."""
    from tqdm.auto import tqdm

    from reference_model.schedule import warmup_cosine

    pre = QFormerPretrainer(vision, len(tok))
    opt = torch.optim.AdamW([*pre.parameters(), *decoder.parameters()], lr=lr, weight_decay=0.05)
    state_path = out / "qformer_state.pt"
    start, st = resume(state_path, {"model": pre, "decoder": decoder, "opt": opt})
    log = st.get("log", [])
    gen = torch.Generator().manual_seed(seed + 7919 + start)
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="q-former (ITC+ITM+ITG)", unit="step")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 100)
        idx = torch.randint(0, len(caps), (batch,), generator=gen)
        chosen = [caps[int(i)] for i in idx]
        ids, mask = _caption_ids(tok, chosen)
        same = torch.tensor([[a == b for b in chosen] for a in chosen])
        ls = pre.losses(pix[idx], ids, mask, same, gen)
        loss = ls["itc"] + ls["itm"] + ls["itg"]
        if recon_weight > 0:
            loss = loss + recon_weight * _recon_loss(decoder, ls["qf"], pix[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pre.parameters(), 1.0)
        opt.step()
        log.append({k: round(float(ls[k].detach()), 4) for k in ("itc", "itm", "itg")})
        if step % 10 == 0:
            last = log[-50:]
            bar.set_postfix({k: f"{sum(r[k] for r in last) / len(last):.3f}" for k in ("itc", "itm", "itg")})
        if (step + 1) % 250 == 0 or step + 1 == steps:
            save_state({"model": pre.state_dict(), "decoder": decoder.state_dict(), "opt": opt.state_dict(),
                        "step": step + 1, "log": log}, state_path)  # fmt: skip
    last = log[-100:]
    return {"steps": steps, "batch": batch, **{k: round(sum(r[k] for r in last) / max(len(last), 1), 4)
                                              for k in ("itc", "itm", "itg")}}  # fmt: skip


@torch.no_grad()
def caption_probe(
    vision: VisionPath, lm: Any, tok: Any, world: Path, split: str = "val", n: int = 500
) -> dict[str, Any]:
    """Greedy captions of the first ``n`` CC3M images of ``split`` (DESCRIBE prompt) parsed back into objects
    and compared with the world's scene records: colour, shape, size, cell (position) and exact accuracy."""
    from PIL import Image

    from reference_model.t2i import read_pairs
    from reference_model.world_text import ATTRIBUTES, attribute_scores, load_scene_objects

    scenes = load_scene_objects(world)
    rows = read_pairs(Path(world) / "CC3M", split)[:n]
    was = vision.training
    vision.eval()
    caps: list[str] = []
    for i in range(0, len(rows), 128):
        chunk = rows[i : i + 128]
        pix = preprocess([Image.open(p) for _, p in chunk], vision.image_size)
        caps += greedy_captions(vision, lm, tok, pix, max_new_tokens=20)
    vision.train(was)
    truths = [scenes[f"CC3M/{Path(p).relative_to(Path(world) / 'CC3M').as_posix()}"] for _, p in rows]
    scores = [attribute_scores(t, c) for t, c in zip(truths, caps, strict=True)]
    res: dict[str, Any] = {"n": len(scores)}
    for a in (*ATTRIBUTES, "exact"):
        res[a] = round(sum(s[a] for s in scores) / max(len(scores), 1), 4)
    res["examples"] = [{"truth": rows[i][0], "caption": caps[i]} for i in range(min(5, len(caps)))]
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
