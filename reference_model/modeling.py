"""MiniGPT-5: an LLM with generative vokens whose hidden states, through fc + an encoder-decoder mapper
with learned queries, condition a frozen latent diffusion model (docs/minigpt5.md, "Parts" to "Losses").

    input:  [BOS] source tokens, each <ImageHere> replaced by the Q projected image queries, target tokens
    LM:     last-layer hidden states after the final RMSNorm  h (B, T, d_llm)
    vokens: p = position of [IMG0]; states at p-1 .. p+n-2 (official; offset 0 is the fix)  (G, n, d_llm)
    CFG:    each voken group zeroed with probability p in training
    mapper: fc (G, n, d_model) -> transformer(src, learned queries) -> c (G, Q, D)
    UNet:   epsilon(z_t, t, c), frozen; the loss flows back into c, the mapper, the LM (LoRA / new rows)

Imports nothing from mg5bench.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reference_model.config import MiniGPT5Config, checkpoint_stage
from reference_model.losses import caption_loss, diffusion_loss, preprocess_caption, text_loss
from reference_model.mapper import VokenMapper
from reference_model.vision import VisionPath, preprocess
from reference_model.vokens import VokenIds, add_vokens, mask_gradients_to_new_rows


def segment_ids(tok: Any, text: str) -> list[int]:
    """Ids of a segment tokenized on its own (the official loader tokenizes source and target apart), with
    the word boundary LLaMA's SentencePiece gives its first word: "i see" -> "▁i ▁see", the same ids as
    after a space. A byte-level BPE (the tiny LM's) has no such dummy prefix: "i" alone is a different,
    never-pretrained token from " i", so the segment gets the space here. A segment that starts with an
    added token ([IMG0]) or with whitespace is encoded as it is, as SentencePiece does."""
    if (
        text
        and not text[0].isspace()
        and not _has_dummy_prefix(tok)
        and not any(text.startswith(t) for t in tok.get_added_vocab())
    ):
        text = " " + text
    return tok(text, add_special_tokens=False)["input_ids"]


@functools.lru_cache(maxsize=16)
def _has_dummy_prefix(tok: Any) -> bool:
    """Does the tokenizer encode a first word as it encodes the same word after a space (SentencePiece)?
    Asked once per tokenizer, not on every target the collate tokenizes."""
    probe = tok("the", add_special_tokens=False)["input_ids"]
    return tok("x the", add_special_tokens=False)["input_ids"][-len(probe) :] == probe


@dataclass
class Batch:
    """A collated batch. T is the length after expanding every <ImageHere> into Q image positions."""

    input_ids: list[list[int]]  # per example: [BOS] + source + target token ids (not expanded)
    labels: list[list[int]]  # same length, -100 where unsupervised
    input_images: list[torch.Tensor]  # per example: (n_i, 3, S, S) normalised, one per <ImageHere>
    output_images: torch.Tensor | None  # (G, 3, H, W) in [-1, 1], one per example that has a voken target
    output_index: list[int]  # which example each output image belongs to
    captions: list[str | None]  # per output image (stage 1 caption loss)


def output_transform(image: Any, size: int, hflip: bool = False) -> torch.Tensor:
    """Target images as the official loader makes them: white-padded to a square, resized (bilinear),
    optionally flipped, scaled to [-1, 1]. Returns (3, size, size)."""
    from PIL import Image, ImageOps

    im = Image.fromarray(np.asarray(image)) if not isinstance(image, Image.Image) else image
    im = im.convert("RGB")
    w, h = im.size
    if w != h:
        s = max(w, h)
        canvas = Image.new("RGB", (s, s), (255, 255, 255))
        canvas.paste(im, ((s - w) // 2, (s - h) // 2))
        im = canvas
    if im.size[0] != size:
        im = im.resize((size, size), Image.BILINEAR)
    if hflip:
        im = ImageOps.mirror(im)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0)  # (H, W, 3)
    return x.permute(2, 0, 1).contiguous()


class MiniGPT5(nn.Module):
    """LM + vision path + voken mapper + frozen text-to-image pipeline."""

    def __init__(self, cfg: MiniGPT5Config, lm: Any, tokenizer: Any, vision: VisionPath, pipe: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.lm = lm
        self.vision = vision.requires_grad_(False).eval()
        self.pipe = pipe
        self.unet = pipe.unet.requires_grad_(False).eval()
        self.vae = pipe.vae.requires_grad_(False).eval()
        self.text_encoder = pipe.text_encoder.requires_grad_(False).eval()
        self.ids: VokenIds = add_vokens(tokenizer, lm, cfg.num_vokens, cfg.image_placeholder)
        self.d_llm = int(lm.config.hidden_size)
        self.mapper = VokenMapper(self.d_llm, cfg.mapper)
        self._grad_hooks: list[Any] = []
        self.stage = 0
        text_width = int(self.text_encoder.config.hidden_size)
        if cfg.mapper.out_dim != text_width:
            raise ValueError(f"mapper.out_dim {cfg.mapper.out_dim} != text encoder width {text_width}")
        if vision.num_queries != cfg.num_image_queries:
            raise ValueError(f"vision path gives {vision.num_queries} queries, config says {cfg.num_image_queries}")
        if int(vision.proj.out_features) != self.d_llm:
            raise ValueError(f"vision projection width {vision.proj.out_features} != LM width {self.d_llm}")
        self.image_recipe = self._image_recipe(cfg)

    @staticmethod
    def _image_recipe(cfg: MiniGPT5Config) -> Any:
        """The backbone's T2IConfig when L_img follows the backbone's training recipe, else None (official).
        "backbone-weights" keeps the official uniform timesteps and takes only the backbone's per-timestep weights
        (its high-noise share set to 0)."""
        kind = cfg.loss.image_recipe
        if kind == "official":
            return None
        if kind not in ("backbone", "backbone-weights"):
            raise ValueError(f"loss.image_recipe {kind!r}: choose 'official', 'backbone' or 'backbone-weights'")
        from reference_model.t2i import T2IConfig

        path = Path(cfg.t2i_path) / "t2i_config.json"
        if not path.exists():
            raise ValueError(
                f"loss.image_recipe 'backbone' needs {path} (written by the tiny T2I trainer); a real SD folder has "
                "no training recipe to follow: use image_recipe 'official'"
            )
        recipe = T2IConfig.from_json(path.read_text())
        return replace(recipe, high_noise_fraction=0.0) if kind == "backbone-weights" else recipe

    # -----------------------------------------------------------------------------------------
    # construction

    @classmethod
    def from_config(cls, cfg: MiniGPT5Config) -> MiniGPT5:
        """Load the frozen parts from the local folders named in ``cfg`` (HF / diffusers formats)."""
        from transformers import AutoTokenizer, LlamaForCausalLM

        from reference_model.t2i import load_pipeline

        for name in ("lm_path", "t2i_path", "vision_path"):
            path = getattr(cfg, name)
            if not path or not Path(path).exists():
                raise FileNotFoundError(f"MiniGPT5Config.{name} = {path!r} does not exist; pass a local folder")
        tok = AutoTokenizer.from_pretrained(cfg.lm_path)
        # float32 on load: shipped parts may be stored in float16 to save space, CPU math wants float32
        lm = LlamaForCausalLM.from_pretrained(cfg.lm_path, dtype=torch.float32)
        pipe = load_pipeline(cfg.t2i_path)
        vision = VisionPath.from_pretrained(Path(cfg.vision_path))
        lm.requires_grad_(False)
        return cls(cfg, lm, tok, vision, pipe)

    @property
    def device(self) -> torch.device:
        return self.mapper.queries.device

    def _decoder(self) -> Any:
        return self.lm.get_decoder()

    def _head(self) -> Any:
        return self.lm.get_output_embeddings()

    def _embed(self) -> Any:
        return self.lm.get_input_embeddings()

    # -----------------------------------------------------------------------------------------
    # training set-up (the official stages)

    def setup_stage(self, stage: int, single_stage: bool = False) -> list[dict[str, Any]]:
        """Freeze / unfreeze as the official stage does and return AdamW parameter groups (lr multipliers
        in 'lr_scale'). Stage 1: fc, mapper, queries at 10x, new token rows at 1x, LM body frozen.
        Stage 2: LoRA on q/v + new token rows + mapper at 1x; fc and queries frozen.
        ``single_stage`` (the ablation without stage 1; the official code has no such mode): stage 2 that also
        trains what stage 1 would have, i.e. fc, mapper and queries from their random init at stage 1's 10x, so
        the ablation measures the missing stage and not a mapper frozen at random."""
        for h in self._grad_hooks:
            h.remove()
        self.lm.requires_grad_(False)
        self.mapper.requires_grad_(True)
        if stage == 2 and not hasattr(self.lm, "peft_config"):
            from peft import LoraConfig, get_peft_model

            lc = self.cfg.lora
            self.lm = get_peft_model(
                self.lm,
                LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                           target_modules=list(lc.target_modules), bias="none"),
            )  # fmt: skip
        rows = [self._embed().weight, self._head().weight]
        self._grad_hooks = mask_gradients_to_new_rows(self.lm, self.ids)  # sets requires_grad on both matrices
        self.stage = stage
        if stage == 1:
            return [
                {"params": rows, "lr_scale": 1.0, "name": "token_rows"},
                {"params": list(self.mapper.parameters()), "lr_scale": 10.0, "name": "fc_mapper_queries"},
            ]
        if stage == 2 and single_stage:
            lora = [p for n, p in self.lm.named_parameters() if "lora_" in n]
            for p in lora:
                p.requires_grad_(True)
            return [
                {"params": lora + rows, "lr_scale": 1.0, "name": "lora_token_rows"},
                {"params": list(self.mapper.parameters()), "lr_scale": 10.0, "name": "fc_mapper_queries"},
            ]
        if stage == 2:
            self.mapper.fc.requires_grad_(False)
            self.mapper.queries.requires_grad_(False)
            lora = [p for n, p in self.lm.named_parameters() if "lora_" in n]
            for p in lora:
                p.requires_grad_(True)
            return [
                {"params": lora + rows, "lr_scale": 1.0, "name": "lora_token_rows"},
                {"params": list(self.mapper.transformer.parameters()), "lr_scale": 1.0, "name": "mapper"},
            ]
        raise ValueError(f"stage must be 1 or 2, got {stage}")

    # -----------------------------------------------------------------------------------------
    # inputs

    def tokenize(self, source: str, target: str) -> tuple[list[int], list[int]]:
        """[BOS] + source + target ids and labels: only the target is supervised, and of the vokens only
        [IMG0] and [IMG n-1] (official quirk; ``loss.supervise_all_vokens`` supervises all)."""
        tok = self.tokenizer
        src = tok(source, add_special_tokens=False)["input_ids"]
        tgt = segment_ids(tok, target)
        ids = [tok.bos_token_id, *src, *tgt]
        masked = set() if self.cfg.loss.supervise_all_vokens else set(self.ids.vokens[1:-1])
        labels = [-100] * (1 + len(src)) + [-100 if t in masked else t for t in tgt]
        return ids, labels

    def _inputs_embeds(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> inputs_embeds (B, T, d), attention_mask (B, T), labels (B, T), expanded token ids (B, T)
        (-1 at image-query positions, pad id at padding). Right padding."""
        emb = self._embed()
        dev = self.device
        all_imgs = [x for x in batch.input_images if len(x)]
        feats = self.vision(torch.cat(all_imgs).to(dev)) if all_imgs else None  # (N_img, Q, d)
        k = 0
        rows, labs, toks = [], [], []
        ph = self.ids.placeholder
        for ids, lab, imgs in zip(batch.input_ids, batch.labels, batch.input_images, strict=True):
            n_ph = sum(1 for t in ids if t == ph)
            if n_ph != len(imgs):
                raise ValueError(f"{n_ph} <ImageHere> tokens but {len(imgs)} input images")
            ids_t = torch.tensor(ids, device=dev)
            e = emb(ids_t)  # (L, d)
            parts, lparts, tparts, start = [], [], [], 0
            for pos in [i for i, t in enumerate(ids) if t == ph]:
                parts += [e[start:pos], feats[k]]  # type: ignore[index]
                lparts += [torch.tensor(lab[start:pos]), torch.full((feats.shape[1],), -100)]  # type: ignore[union-attr]
                tparts += [ids_t[start:pos].cpu(), torch.full((feats.shape[1],), -1)]  # type: ignore[union-attr]
                start, k = pos + 1, k + 1
            parts.append(e[start:])
            lparts.append(torch.tensor(lab[start:]))
            tparts.append(ids_t[start:].cpu())
            rows.append(torch.cat(parts))
            labs.append(torch.cat(lparts))
            toks.append(torch.cat(tparts))
        t_max = max(len(r) for r in rows)
        b = len(rows)
        x = torch.zeros(b, t_max, self.d_llm, device=dev, dtype=rows[0].dtype)
        att = torch.zeros(b, t_max, dtype=torch.long, device=dev)
        y = torch.full((b, t_max), -100, dtype=torch.long, device=dev)
        tk = torch.full((b, t_max), int(self.tokenizer.pad_token_id), dtype=torch.long, device=dev)
        for i in range(b):
            n = len(rows[i])
            x[i, :n] = rows[i]
            att[i, :n] = 1
            y[i, :n] = labs[i]
            tk[i, :n] = toks[i]
        return x, att, y, tk

    def voken_states(self, h: torch.Tensor, tokens: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """h (B, T, d), tokens (B, T) -> (G, n, d): for each listed row, the states at p+off .. p+off+n-1
        where p is the first [IMG0] (official off = -1: p-1 .. p+n-2)."""
        n, off = self.cfg.num_vokens, self.cfg.voken_hidden_offset
        out = []
        for b in rows:
            where = (tokens[b] == self.ids.first).nonzero()
            if len(where) == 0:
                raise ValueError(f"batch row {b} has an output image but no [IMG0] in its target")
            p = int(where[0, 0])
            out.append(h[b, p + off : p + off + n])
        return torch.stack(out)  # (G, n, d)

    @torch.no_grad()
    def caption_targets(self, captions: list[str]) -> torch.Tensor:
        """The diffusion text encoder's last hidden state of the cleaned captions: (G, L, D)."""
        tok = self.pipe.tokenizer
        enc = tok([preprocess_caption(c) for c in captions], padding="max_length", truncation=True,
                  max_length=tok.model_max_length, return_tensors="pt")  # fmt: skip
        mask = enc["attention_mask"].to(self.device) if self.cfg.loss.caption_target_attention_mask else None
        return self.text_encoder(enc["input_ids"].to(self.device), attention_mask=mask).last_hidden_state

    def latents(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(G, 3, H, W) in [-1, 1] -> scaled latents sampled from the VAE posterior (G, C, h, w)."""
        with torch.no_grad():
            dist = self.vae.encode(images.to(self.device)).latent_dist
            return dist.sample(generator) * self.vae.config.scaling_factor

    # -----------------------------------------------------------------------------------------
    # training forward

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Losses of one batch: {'loss', 'text', 'image', 'caption', 'dropped'} (image / caption are 0 when
        the batch has no voken target or no captions)."""
        x, att, labels, tokens = self._inputs_embeds(batch)
        h = self._decoder()(inputs_embeds=x, attention_mask=att).last_hidden_state  # (B, T, d) after final norm
        logits = self._head()(h)  # (B, T, V)
        lt = text_loss(logits, labels)
        lw = self.cfg.loss
        zero = h.sum() * 0.0
        out = {"text": lt.detach(), "image": zero.detach(), "caption": zero.detach(), "dropped": zero.detach()}
        loss = lw.text_weight * lt
        if batch.output_images is not None and len(batch.output_index):
            states = self.voken_states(h, tokens, batch.output_index)  # (G, n, d)
            drop = torch.zeros(len(states), dtype=torch.bool)
            if self.training and self.cfg.cfg_drop_p > 0:
                gdev = generator.device if generator is not None else None
                drop = (torch.rand(len(states), generator=generator, device=gdev) < self.cfg.cfg_drop_p).cpu()
                states = states * (~drop).to(states.dtype).view(-1, 1, 1).to(states.device)
            cond = self.mapper(states)  # (G, Q, D)
            z0 = self.latents(batch.output_images, generator)  # (G, C, h, w)
            li = diffusion_loss(self.unet, self.pipe.scheduler, z0, cond, generator, lw.snr_gamma, self.image_recipe,
                                lw.x0_weight_floor)  # fmt: skip
            loss = loss + lw.image_weight * li
            out["image"], out["dropped"] = li.detach(), drop.float().mean()
            caps = batch.captions
            cw = lw.caption_weight if self.stage != 2 else lw.scene_caption_weight
            if cw > 0 and any(c is not None for c in caps):
                use = [i for i, c in enumerate(caps) if c is not None]
                texts = ["" if bool(drop[i]) else str(caps[i]) for i in use]
                lc = caption_loss(cond[use], self.caption_targets(texts))
                loss = loss + cw * lc
                out["caption"] = lc.detach()
        out["loss"] = loss
        return out

    def collate(self, examples: list[Any], load: Any, train: bool = True, generator: Any = None) -> Batch:
        """Examples (reference_model.data.Example) -> Batch. ``load(path)`` returns a PIL image."""
        ids, labels, ins, outs, out_idx, caps = [], [], [], [], [], []
        size = self.cfg.image_size
        for i, ex in enumerate(examples):
            a, b = self.tokenize(ex.source, ex.target)
            ids.append(a)
            labels.append(b)
            imgs = [load(p) for p in ex.input_images]
            x = preprocess(imgs, self.vision.image_size) if imgs else torch.zeros(0, 3, 1, 1)  # (n_i, 3, S, S)
            if imgs and train and self.cfg.train_input_hflip:  # official: each input image flipped with p = 0.5
                gdev = generator.device if generator is not None else None
                flip = (torch.rand(len(imgs), generator=generator, device=gdev) < 0.5).cpu()
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            ins.append(x)
            if ex.output_image is not None and "[IMG0]" in ex.target:
                gdev = generator.device if generator is not None else None
                flip = bool(self.cfg.train_hflip and train and torch.rand(1, generator=generator, device=gdev) < 0.5)
                outs.append(output_transform(load(ex.output_image), size, flip))
                out_idx.append(i)
                caps.append(ex.caption)
        return Batch(ids, labels, ins, torch.stack(outs) if outs else None, out_idx, caps)

    # -----------------------------------------------------------------------------------------
    # inference (vokens, guidance, decoding)

    def null_condition(self) -> torch.Tensor:
        """The learned negative condition mapper(fc(0)): (1, Q, D)."""
        return self.mapper.null_condition(self.cfg.num_vokens, self.d_llm)

    def _prompt(self, inputs: list[Any]) -> tuple[str, list[Any]]:
        """Interleaved inputs (str or image) -> source text with <Img><ImageHere></Img> per image."""
        text, images = [], []
        for item in inputs:
            if isinstance(item, str):
                text.append(item)
            else:
                text.append("<Img><ImageHere></Img>")
                images.append(item)
        return "".join(text), images

    @torch.no_grad()
    def generate_text(
        self,
        source: str,
        images: list[Any],
        generator: torch.Generator | None,
        *,
        max_new_tokens: int | None = None,
        do_sample: bool = True,
        temperature: float | None = None,
        top_p: float | None = None,
        repetition_penalty: float | None = None,
        force_generation: bool = False,
    ) -> dict[str, Any]:
        """Token-by-token decoding. When [IMG0] is sampled all n vokens are fed at once; the voken states
        are [the state that sampled IMG0] + [the states at IMG0 .. IMG n-2] (offset -1). Stops at ``###``.
        Returns {'text_ids', 'states' (1, n, d) or None, 'raw'}."""
        cfg = self.cfg
        max_new = max_new_tokens or cfg.max_new_tokens
        temp = cfg.temperature if temperature is None else temperature
        top_p = cfg.top_p if top_p is None else top_p
        rep = cfg.repetition_penalty if repetition_penalty is None else repetition_penalty
        ids, _ = self.tokenize(source, "")
        imgs = preprocess(images, self.vision.image_size) if images else torch.zeros(0, 3, 1, 1)
        x, _, _, _ = self._inputs_embeds(Batch([ids], [[-100] * len(ids)], [imgs], None, [], []))
        dec, head, emb = self._decoder(), self._head(), self._embed()
        out = dec(inputs_embeds=x, use_cache=True)
        past, h_last = out.cache, out.last_hidden_state[:, -1]  # (1, d)
        generated: list[int] = []
        states = None
        vok = torch.tensor(self.ids.vokens, device=self.device)
        for _ in range(max_new):
            logits = head(h_last)[0].float()  # (V,)
            if rep != 1.0 and generated:
                seen = torch.tensor(sorted(set(generated)), device=logits.device)
                vals = logits[seen]
                logits[seen] = torch.where(vals < 0, vals * rep, vals / rep)
            if force_generation and states is None:  # official: 10 x the max score; the +10 floor keeps
                top = logits.max()  # IMG0 on top when the max is small or negative (where 10x would not)
                logits[self.ids.first] = torch.maximum(10 * top, top + 10)
            logits[[*self.ids.vokens[1:], self.ids.placeholder]] = -float("inf")  # only IMG0 is sampled
            if do_sample:
                probs = torch.softmax(logits / max(temp, 1e-6), -1)
                sp, si = probs.sort(descending=True)
                keep = sp.cumsum(0) - sp < top_p
                sp = sp * keep
                probs = sp / sp.sum()  # sampled where the sample's generator lives (CPU or the model's device)
                pick = torch.multinomial(probs.to(generator.device) if generator is not None else probs, 1,
                                         generator=generator)  # fmt: skip
                nxt = int(si[int(pick)])
            else:
                nxt = int(logits.argmax())
            if nxt == self.tokenizer.eos_token_id:
                break  # the end of the reply, not a part of its text
            generated.append(nxt)
            if nxt == self.ids.first:
                o8 = dec(inputs_embeds=emb(vok)[None], cache=past, use_cache=True)  # (1, n, d)
                h8 = o8.last_hidden_state
                off = cfg.voken_hidden_offset
                st = torch.cat([h_last[:, None], h8[:, :-1]], 1) if off == -1 else h8[:, : cfg.num_vokens]
                states = st if states is None else states  # only the first group is rendered
                past, h_last = o8.cache, h8[:, -1]
                continue
            if "###" in self.tokenizer.decode(generated[-3:]):
                break
            o = dec(inputs_embeds=emb(torch.tensor([[nxt]], device=self.device)), cache=past, use_cache=True)
            past, h_last = o.cache, o.last_hidden_state[:, -1]
        return {"text_ids": generated, "states": states, "raw": self.tokenizer.decode(generated)}

    def split_text(self, raw: str) -> tuple[str, str]:
        """Raw generated text -> (text before [IMG0], text after it), ``###`` and special tokens removed."""
        raw = raw.split("###")[0]
        for special in {self.tokenizer.bos_token, self.tokenizer.eos_token, self.tokenizer.pad_token} - {None}:
            raw = raw.replace(special, "")  # a decoded "</s>" is not reply text (text metrics would count it)
        before, _, after = raw.partition("[IMG0]")
        return before.strip(), after.strip()

    @torch.no_grad()
    def render(
        self,
        states: torch.Tensor,
        generators: list[torch.Generator],
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
    ) -> list[Any]:
        """Voken states (G, n, d) -> G PIL images through the diffusers pipeline, with the learned null
        condition as the negative (or the pipeline's own "" embedding when learned_null_condition is off)."""
        cfg = self.cfg
        cond = self.mapper(states.to(self.device))  # (G, Q, D)
        neg = self.null_condition().expand_as(cond) if cfg.learned_null_condition else None
        size = cfg.image_size
        return self.pipe(
            prompt_embeds=cond, negative_prompt_embeds=neg, generator=generators, height=size, width=size,
            guidance_scale=cfg.guidance_scale if guidance_scale is None else guidance_scale,
            num_inference_steps=num_inference_steps or cfg.num_inference_steps,
        ).images  # fmt: skip

    @torch.no_grad()
    def generate(
        self,
        inputs: list[list[Any]],
        generators: list[torch.Generator],
        *,
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
        **text_kwargs: Any,
    ) -> list[list[dict[str, Any]]]:
        """Interleaved inputs (per sample a list of str / PIL images, already in the prompt convention)
        -> interleaved outputs (per sample a list of {'text': str} / {'image': PIL}). Each sample uses only
        its own generator (text sampling first, then its diffusion noise), so results do not depend on
        batching."""
        if len(inputs) != len(generators):
            raise ValueError("one torch.Generator per sample is required")
        self.eval()
        texts, states, who = [], [], []
        for i, (inp, g) in enumerate(zip(inputs, generators, strict=True)):
            src, imgs = self._prompt(inp)
            r = self.generate_text(src, imgs, g, **text_kwargs)
            texts.append(self.split_text(r["raw"]))
            if r["states"] is not None:
                states.append(r["states"])
                who.append(i)
        images = (
            self.render(torch.cat(states), [generators[i] for i in who], guidance_scale, num_inference_steps)
            if states else []
        )  # fmt: skip
        by = dict(zip(who, images, strict=True))
        results = []
        for i, (before, after) in enumerate(texts):
            segs: list[dict[str, Any]] = []
            if before:
                segs.append({"text": before})
            if i in by:
                segs.append({"image": by[i]})
            if after:
                segs.append({"text": after})
            results.append(segs)
        return results

    # -----------------------------------------------------------------------------------------
    # checkpoints: only trainable tensors, safetensors + JSON

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """mapper.*, tokens.embed / tokens.head (the new rows, order IMG0..IMGn-1, <ImageHere>), lora.*"""
        new = list(self.ids.new_ids)
        sd = {f"mapper.{k}": v.detach().clone() for k, v in self.mapper.state_dict().items()}
        sd["tokens.embed"] = self._embed().weight[new].detach().clone()
        sd["tokens.head"] = self._head().weight[new].detach().clone()
        if hasattr(self.lm, "peft_config"):
            from peft import get_peft_model_state_dict

            lora = get_peft_model_state_dict(self.lm, save_embedding_layers=False)  # rows are stored above
            sd.update({f"lora.{k}": v.detach().clone() for k, v in lora.items()})
        return sd

    def load_trainable_state(self, sd: dict[str, torch.Tensor], strict: bool = True) -> None:
        """Inverse of ``trainable_state``. LoRA keys need a LoRA-wrapped LM (``setup_stage(2)`` first)."""
        mapper = {k[len("mapper.") :]: v for k, v in sd.items() if k.startswith("mapper.")}
        self.mapper.load_state_dict(mapper, strict=strict)
        new = list(self.ids.new_ids)
        with torch.no_grad():
            if "tokens.embed" in sd:
                self._embed().weight[new] = sd["tokens.embed"].to(self._embed().weight.dtype)
            if "tokens.head" in sd:
                self._head().weight[new] = sd["tokens.head"].to(self._head().weight.dtype)
        lora = {k[len("lora.") :]: v for k, v in sd.items() if k.startswith("lora.")}
        if lora:
            if not hasattr(self.lm, "peft_config"):
                raise ValueError("checkpoint has LoRA weights: call setup_stage(2) before loading it")
            from peft import set_peft_model_state_dict

            res = set_peft_model_state_dict(self.lm, lora)
            missing = [k for k in getattr(res, "missing_keys", []) if "lora_" in k]
            if strict and missing:
                raise ValueError(f"LoRA keys missing from the checkpoint: {missing[:3]}")


def load_checkpoint(folder: Path, **overrides: Any) -> MiniGPT5:
    """A trained checkpoint folder (minigpt5_config.json + trainable.safetensors + state.json) -> model in
    eval mode. ``overrides`` replace config fields (e.g. guidance_scale) and are the caller's to record."""
    import dataclasses
    import json

    from safetensors.torch import load_file

    folder = Path(folder)
    for name in ("minigpt5_config.json", "trainable.safetensors", "state.json"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder}: not a MiniGPT-5 checkpoint (missing {name})")
    cfg = dataclasses.replace(MiniGPT5Config.load(folder), **overrides)
    stage = checkpoint_stage(json.loads((folder / "state.json").read_text()))
    if stage is None:
        raise FileNotFoundError(f"{folder}/state.json: names no training stage (expected 'stage1' or 'stage2')")
    model = MiniGPT5.from_config(cfg)
    model.setup_stage(stage)
    model.load_trainable_state(load_file(str(folder / "trainable.safetensors")))
    return model.eval().requires_grad_(False)
