"""Divter-style baseline (Sun et al. 2022, "Multimodal Dialogue Response Generation"), on the tiny world.

Divter splits the job in two: a *text-only* LM reads the context, with every context image replaced by a
caption, and writes the response text plus a textual *image description*; a text-to-image model draws the
description. Here the parts are the shipped backbones:

    context images --(vision path + LM in its MiniGPT-4 captioning mode)--> captions
    "<context with [image: caption]>" --(backbone LM + LoRA, peft)--> "<text> ###Image: <description> ###"
    description --(the text-to-image backbone)--> image

Training targets follow Divter: the response text is the sample's target text, the description is the
captioner's caption of the target image (not the world's ground truth, which a real captioner would not
have). Only the LoRA weights are trained and shipped (``adapter_model.safetensors``, ~100 KB); the folder
records the backbones' sha256 so a changed backbone is an error, never a silent mismatch.

    mg5bench train divter --task vist --out runs/divter-vist --steps 600
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mg5bench.data.io import atomic_write_json
from mg5bench.errors import ConfigError
from mg5bench.types import Sample

IMAGE_TAG = "###Image:"
NO_IMAGE = "none"
END = "###"


@dataclass
class DivterConfig:
    """Saved as divter_config.json next to the LoRA weights."""

    task: str
    backbones: str  # folder with lm/, vision/ and t2i/ (relative to this file's folder when shipped)
    backbones_sha256: str
    lora_r: int = 16
    lora_alpha: int = 32
    max_context_tokens: int = 192
    max_new_tokens: int = 40
    steps: int = 0
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    data_fingerprint: str = ""
    train_pairs: int = 0
    final_loss: float = 0.0
    wall_s: float = 0.0


class Parts:
    """The backbones Divter and two-stage share: tokenizer, LM, vision path, text-to-image pipeline."""

    def __init__(self, backbones: Path, device: str = "cpu") -> None:
        import torch
        from transformers import AutoTokenizer, LlamaForCausalLM

        from reference_model.vision import VisionPath

        self.folder = Path(backbones)
        self.device = device
        for sub in ("lm", "vision", "t2i"):
            if not (self.folder / sub).is_dir():
                raise ConfigError(f"{self.folder}: no {sub}/ folder; pass the backbones folder of the reference "
                                  "model (reference_model/checkpoints/backbones)")  # fmt: skip
        self.tok = AutoTokenizer.from_pretrained(self.folder / "lm")
        self.lm = LlamaForCausalLM.from_pretrained(self.folder / "lm", dtype=torch.float32).eval().to(device)
        self.vision = VisionPath.from_pretrained(self.folder / "vision").float().eval().to(device)
        self.pipe: Any = None
        self._captions: dict[str, str] = {}

    def t2i(self) -> Any:
        from reference_model.t2i import load_pipeline

        if self.pipe is None:
            self.pipe = load_pipeline(self.folder / "t2i").to(self.device)
        return self.pipe

    def captions(self, paths: Sequence[str], batch: int = 128, progress: bool = False) -> list[str]:
        """Greedy captions of image files (cached per path): the captioner of both pipelines."""
        from PIL import Image
        from tqdm.auto import tqdm

        from reference_model.vision import greedy_captions, preprocess

        todo = sorted({str(p) for p in paths} - set(self._captions))
        for i in tqdm(range(0, len(todo), batch), desc="captioning", unit="batch", disable=not progress or not todo):
            chunk = todo[i : i + batch]
            pix = preprocess([Image.open(p).convert("RGB") for p in chunk], self.vision.image_size).to(self.device)
            for p, c in zip(chunk, greedy_captions(self.vision, self.lm, self.tok, pix), strict=True):
                self._captions[p] = c
        return [self._captions[str(p)] for p in paths]

    def render(self, prompts: Sequence[str], generators: Sequence[Any], guidance: float, steps: int) -> list[Any]:
        import torch

        pipe = self.t2i()
        side = pipe.unet.config.sample_size * pipe.vae_scale_factor
        with torch.inference_mode():
            return list(pipe(list(prompts), generator=list(generators), height=side, width=side,
                             guidance_scale=guidance, num_inference_steps=steps).images)  # fmt: skip


def context_text(sample: Sample, task_format: str, caption_of: dict[str, str]) -> str:
    """The all-text context Divter's LM reads: images become ``[image: <caption>]``; dialog turns keep their
    speaker tags; the current speaker's tag ends a dialog context."""
    parts = []
    for seg in sample.context:
        piece = f"[image: {caption_of[seg.value]}]" if seg.is_image else seg.value
        if task_format == "mmdialog":
            piece = f"###{'Assistant' if seg.role == 'assistant' else 'Human'}: {piece}"
        parts.append(piece)
    if task_format == "mmdialog":
        parts.append(f"###{'Assistant' if sample.meta.get('speaker') == 'assistant' else 'Human'}:")
    return " ".join(parts)


def response_text(text: str, description: str | None) -> str:
    """The LM's target: the response text, then the image description (or 'none')."""
    return f" {text.strip()} {IMAGE_TAG} {description or NO_IMAGE} {END}"


def parse_response(generated: str) -> tuple[str, str | None]:
    """Inverse of ``response_text`` on what the LM wrote: (text, description or None)."""
    text, _, rest = generated.partition(IMAGE_TAG)
    desc = rest.split(END)[0].strip()
    return text.split(END)[0].strip(), (desc if desc and desc != NO_IMAGE else None)


def training_examples(samples: Sequence[Sample], task_format: str, parts: Parts) -> list[tuple[str, str]]:
    """(context, target) strings for every train sample; the captioner runs once over all images."""
    paths = [seg.value for s in samples for seg in s.context if seg.is_image]
    paths += [s.target_images[0] for s in samples if s.target_images]
    caption_of = dict(zip(paths, parts.captions(paths, progress=True), strict=True))
    out = []
    for s in samples:
        desc = caption_of[s.target_images[0]] if s.target_images else None
        text = s.target_text if task_format == "mmdialog" else ""
        out.append((context_text(s, task_format, caption_of), response_text(text, desc)))
    return out


def _encode(tok: Any, pairs: Sequence[tuple[str, str]], max_ctx: int) -> list[tuple[list[int], int]]:
    """Token ids of context + target (the context cut from the left to ``max_ctx``), and the target's start."""
    rows = []
    for ctx, tgt in pairs:
        c = tok(ctx, add_special_tokens=False)["input_ids"][-max_ctx:]
        t = tok(tgt, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append(([tok.bos_token_id, *c, *t], 1 + len(c)))
    return rows


def train_divter(
    task: str, out: Path, steps: int, data: str | None = None, backbones: Path | None = None, batch: int = 32,
    lr: float = 1e-3, seed: int = 0, lora_r: int = 16, task_args: dict[str, Any] | None = None,
    progress: bool = True, device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Train the LoRA of Divter's text LM on a task's train split; writes OUT/{adapter_model.safetensors,
    adapter_config.json, divter_config.json, train_log.json}. Resumable from OUT/divter_state.pt. Batches are
    drawn with a CPU generator (the same batches on any device); the model and its inputs live on ``device``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    from mg5bench.adapters.base import folder_sha256
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.tasks import build_samples, get_task
    from reference_model.schedule import warmup_cosine

    cfg_task = get_task(task, dict(task_args or {}))
    backbones = Path(backbones or shipped_checkpoints() / "backbones").resolve()
    parts = Parts(backbones, device)
    sset = build_samples(cfg_task, data, "train", progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DivterConfig(task=task, backbones=str(backbones), backbones_sha256=folder_sha256(backbones), lora_r=lora_r,
                       lora_alpha=2 * lora_r, steps=steps, batch=batch, lr=lr, seed=seed,
                       data_fingerprint=sset.fingerprint)  # fmt: skip
    rows = _encode(parts.tok, training_examples(sset.samples, cfg_task.format, parts), cfg.max_context_tokens)
    cfg.train_pairs = len(rows)
    torch.manual_seed(seed)
    lm = get_peft_model(parts.lm, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))  # fmt: skip
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    state_path = out / "divter_state.pt"
    start, log = 0, []
    if state_path.exists():
        st = torch.load(state_path, weights_only=False, map_location=device)
        if st["config"] != asdict(cfg):
            raise ConfigError(f"{state_path}: written with other settings; use a new --out or the same command")
        lm.load_state_dict(st["model"], strict=False)
        opt.load_state_dict(st["opt"])
        start, log = st["step"], st["log"]
    gen = torch.Generator().manual_seed(seed * 7919 + start)
    lm.train()
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=f"divter {task}", unit="step",
               disable=not progress)  # fmt: skip
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 50)
        idx = torch.randint(0, len(rows), (batch,), generator=gen).tolist()
        width = max(len(rows[i][0]) for i in idx)
        ids = torch.full((batch, width), parts.tok.pad_token_id)  # (B, T)
        labels = torch.full((batch, width), -100)
        att = torch.zeros(batch, width, dtype=torch.long)
        for b, i in enumerate(idx):
            seq, start_t = rows[i]
            ids[b, : len(seq)] = torch.tensor(seq)
            labels[b, start_t : len(seq)] = torch.tensor(seq[start_t:])  # only the response is supervised
            att[b, : len(seq)] = 1
        loss = lm(input_ids=ids.to(device), attention_mask=att.to(device), labels=labels.to(device)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        log.append(float(loss.detach()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(log[-50:]) / len(log[-50:]):.3f}")
        if (step + 1) % 200 == 0 or step + 1 == steps:
            trainable = {k: v for k, v in lm.state_dict().items() if "lora_" in k}
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": trainable, "opt": opt.state_dict(), "step": step + 1, "log": log,
                        "config": asdict(cfg)}, tmp)  # fmt: skip
            os.replace(tmp, state_path)
    cfg.final_loss = round(sum(log[-50:]) / max(len(log[-50:]), 1), 4)
    cfg.wall_s = round(time.time() - t0, 1)
    lm.save_pretrained(out)  # adapter_model.safetensors + adapter_config.json (the LoRA only)
    atomic_write_json(out / "train_log.json", {"loss": [round(v, 4) for v in log]})
    saved = asdict(cfg) | {"backbones": os.path.relpath(backbones, out.resolve())}  # the folder can move with them
    atomic_write_json(out / "divter_config.json", saved)
    return saved


class Divter:
    """A trained Divter folder (LoRA + config) on its backbones, ready to generate."""

    def __init__(self, folder: Path, backbones: Path | None = None, device: str = "cpu") -> None:
        from peft import PeftModel

        from mg5bench.adapters.base import folder_sha256

        self.folder = Path(folder)
        path = self.folder / "divter_config.json"
        if not path.exists():
            raise ConfigError(f"{self.folder}: not a Divter checkpoint (no divter_config.json); train one with "
                              "mg5bench train divter --task T --out DIR")  # fmt: skip
        self.cfg = DivterConfig(**json.loads(path.read_text()))
        base = Path(backbones) if backbones else (self.folder / self.cfg.backbones).resolve()
        sha = folder_sha256(base)
        if sha != self.cfg.backbones_sha256:
            raise ConfigError(
                f"{self.folder} was trained on backbones {self.cfg.backbones_sha256[:12]}, but {base} "
                f"is {sha[:12]}; retrain it (mg5bench train divter) or pass backbones=<the original>"
            )
        self.parts = Parts(base, device)
        self.lm = PeftModel.from_pretrained(self.parts.lm, self.folder).eval().to(device)

    def write(self, contexts: Sequence[str], max_new_tokens: int | None = None) -> list[tuple[str, str | None]]:
        """Greedy (text, description) for each all-text context (left-padded batch); ``max_new_tokens`` defaults
        to the trained length (divter_config.json)."""
        import torch

        tok = self.parts.tok
        rows = [[tok.bos_token_id, *tok(c, add_special_tokens=False)["input_ids"][-self.cfg.max_context_tokens:]]
                for c in contexts]  # fmt: skip
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        att = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = torch.tensor(r)
            att[i, width - len(r) :] = 1
        with torch.inference_mode():
            out = self.lm.generate(
                input_ids=ids.to(self.parts.device),
                attention_mask=att.to(self.parts.device),
                max_new_tokens=max_new_tokens or self.cfg.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        return [parse_response(tok.decode(o[width:], skip_special_tokens=True)) for o in out]


def export_divter(run: Path, dest: Path, backbones: Path) -> dict[str, Any]:
    """Copy a trained Divter folder to ``dest`` (e.g. into the shipped set), re-pointing its recorded backbones
    at ``backbones`` (relative), which must be byte-identical to the ones it was trained on."""
    import shutil

    from mg5bench.adapters.base import folder_sha256

    run, dest = Path(run), Path(dest)
    cfg = json.loads((run / "divter_config.json").read_text())
    if folder_sha256(backbones) != cfg["backbones_sha256"]:
        raise ConfigError(f"{backbones} is not the backbones {run} was trained on (sha256 differs)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("adapter_model.safetensors", "adapter_config.json", "train_log.json"):
        shutil.copy(run / name, tmp / name)
    cfg["backbones"] = os.path.relpath(Path(backbones).resolve(), dest.resolve())
    atomic_write_json(tmp / "divter_config.json", cfg)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return cfg
