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

The parts, the LM's input and output format and the inference wrapper live in ``mg5bench.adapters.divter`` (and
``mg5bench.adapters.backbones``), which the ``divter`` adapter uses; this module only trains and exports.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mg5bench.adapters.backbones import Parts
from mg5bench.adapters.divter import DivterConfig, context_text, response_text
from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.files import atomic_write_json
from mg5bench.core.hashing import sha256_folder
from mg5bench.core.sample import Sample


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
    task: str, out: Path, steps: int, data: str | None = None, base: Path | None = None, batch: int = 32,
    lr: float = 1e-3, seed: int = 0, lora_r: int = 16, task_args: dict[str, Any] | None = None,
    progress: bool = True, device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Train the LoRA of Divter's text LM on a task's train split; writes OUT/{adapter_model.safetensors,
    adapter_config.json, divter_config.json, train_log.json}. Resumable from OUT/divter_state.pt. Batches are
    drawn with a CPU generator (the same batches on any device); the model and its inputs live on ``device``.
    ``base``: the backbones folder (lm/, vision/, t2i/; default: the shipped one)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.tasks import build_samples, get_task
    from reference_model.schedule import warmup_cosine
    from reference_model.state import StateFileError, load_state, resume, save_state

    state_path = Path(out) / "divter_state.pt"
    if state_path.exists():  # read (safely) before any work: a file that is not a state stops here
        try:
            load_state(state_path, map_location=device)
        except StateFileError as e:
            raise DataError(str(e.path), None, e.problem, e.fix) from None
    cfg_task = get_task(task, dict(task_args or {}))
    backbones = Path(base or shipped_checkpoints() / "backbones").resolve()
    parts = Parts(backbones, device)
    sset = build_samples(cfg_task, data, "train", progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DivterConfig(task=task, backbones=str(backbones), backbones_sha256=sha256_folder(backbones), lora_r=lora_r,
                       lora_alpha=2 * lora_r, steps=steps, batch=batch, lr=lr, seed=seed,
                       data_fingerprint=sset.fingerprint)  # fmt: skip
    rows = _encode(parts.tok, training_examples(sset.samples, cfg_task.format, parts), cfg.max_context_tokens)
    cfg.train_pairs = len(rows)
    torch.manual_seed(seed)
    lm = get_peft_model(parts.lm, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))  # fmt: skip
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    def same_settings(state: dict[str, Any]) -> None:
        if state.get("config") != asdict(cfg):
            raise ConfigError(f"{state_path}: written with other settings; use a new --out or the same command")

    start, st = resume(state_path, {"model": lambda sd: lm.load_state_dict(sd, strict=False), "opt": opt},
                       map_location=device, check=same_settings)  # fmt: skip
    log = st.get("log", [])
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
            save_state({"model": trainable, "opt": opt.state_dict(), "step": step + 1, "log": log,
                        "config": asdict(cfg)}, state_path)  # fmt: skip
    cfg.final_loss = round(sum(log[-50:]) / max(len(log[-50:]), 1), 4)
    cfg.wall_s = round(time.time() - t0, 1)
    lm.save_pretrained(out)  # adapter_model.safetensors + adapter_config.json (the LoRA only)
    atomic_write_json(out / "train_log.json", {"loss": [round(v, 4) for v in log]})
    saved = asdict(cfg) | {"backbones": os.path.relpath(backbones, out.resolve())}  # the folder can move with them
    atomic_write_json(out / "divter_config.json", saved)
    return saved


def export_divter(run: Path, dest: Path, backbones: Path) -> dict[str, Any]:
    """Copy a trained Divter folder to ``dest`` (e.g. into the shipped set), re-pointing its recorded backbones
    at ``backbones`` (relative), which must be byte-identical to the ones it was trained on."""
    import shutil

    run, dest = Path(run), Path(dest)
    cfg = json.loads((run / "divter_config.json").read_text())
    if sha256_folder(backbones) != cfg["backbones_sha256"]:
        raise ConfigError(f"{backbones} is not the backbones {run} was trained on (sha256 differs)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("adapter_model.safetensors", "adapter_config.json", "train_log.json"):
        shutil.copy(run / name, tmp / name)
    # peft records the training machine's LM path; a shipped folder names the LM it sits on, relative to itself
    adapter = json.loads((tmp / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = os.path.relpath((Path(backbones) / "lm").resolve(), dest.resolve())
    atomic_write_json(tmp / "adapter_config.json", adapter)
    cfg["backbones"] = os.path.relpath(Path(backbones).resolve(), dest.resolve())
    atomic_write_json(tmp / "divter_config.json", cfg)
    if (dest / "README.md").exists():  # the model card (its hand-written part) outlives a re-export
        shutil.copy(dest / "README.md", tmp / "README.md")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return cfg
