"""``sd2-ft``: the text-to-image backbone fine-tuned on a task's training text (the paper's fine-tuned SD 2 baseline).

Training pairs (text, image) come from the task's train samples, so the baseline sees exactly the text it will be
prompted with at test time:
- VIST: the current step's caption (task setting ``context=text``: the concatenated story text so far);
- MMDialog: the response text of every response that carries an image;
- CC3M: the caption (the backbone itself was trained on these; fine-tuning only continues it).

    mg5bench train sd2-ft --task vist --out runs/sd2-ft-vist --steps 600

The result is a StableDiffusionPipeline folder (``OUT/pipeline``) that the ``sd2-ft`` adapter loads. Words the base
tokenizer lacks get new text-encoder rows. Resumable (rerun the same command).

The default fine-tune (``unet="cross-kv"``, after Custom Diffusion, Kumari et al. 2023) trains the text encoder
and the UNet's cross-attention key/value projections only, so ``pack_sd2ft`` can ship the result as the changed
tensors (~1 MB, float16) plus the base's sha256; ``mg5bench.adapters.sd2.load_sd2ft`` rebuilds the pipeline from
base + delta. The prompt text (``sd2ft_text``) lives there too, so training and generation read one definition.
``unet="all"`` fine-tunes the whole UNet (a full pipeline folder to ship).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mg5bench.adapters.sd2 import context_setting, sd2ft_text
from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import sha256_folder
from mg5bench.core.sample import Sample


def training_pairs(samples: Sequence[Sample], task_format: str, context: str = "text+image") -> list[tuple[str, Path]]:
    """(text, target image) pairs: MMDialog pairs the response text with its image; the others use ``sd2ft_text``."""
    pairs = []
    for s in samples:
        if not s.target_images:
            continue
        text = s.target_text if task_format == "mmdialog" else sd2ft_text(s, task_format, context)
        if text.strip():
            pairs.append((text, Path(s.target_images[0])))
    return pairs


def train_sd2ft(
    task: str, out: Path, steps: int, data: str | None = None, base: Path | None = None, batch: int = 32,
    lr: float = 3e-4, seed: int = 0, task_args: dict[str, Any] | None = None, progress: bool = True,
    unet: str = "cross-kv", device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune ``base`` (default: the shipped tiny backbone) on the task's train split on ``device``; returns a
    summary."""
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.adapters.sd2 import SD2
    from mg5bench.tasks import build_samples, get_task
    from reference_model import t2i, train_t2i

    cfg_task = get_task(task, dict(task_args or {}))
    base = Path(base or shipped_checkpoints() / SD2.default_checkpoints[cfg_task.format])
    if not (base / "t2i_config.json").exists() or not (base / "vae").is_dir():
        raise ConfigError(f"{base}: not a tiny T2I pipeline folder (needs t2i_config.json and vae/)")
    sset = build_samples(cfg_task, data, "train", progress=progress)
    pairs = training_pairs(sset.samples, cfg_task.format, context_setting(cfg_task))
    if not pairs:
        raise ConfigError(f"task {task}: no training samples with a target image")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = t2i.T2IConfig.from_json((base / "t2i_config.json").read_text())
    known = set(cfg.vocab)
    new_words = sorted({w for text, _ in pairs for w in text.split()} - known)
    cfg.vocab = [*cfg.vocab, *new_words]
    cfg_path = out / "t2i_config.json"
    if cfg_path.exists() and t2i.T2IConfig.from_json(cfg_path.read_text()) != cfg:
        raise ConfigError(f"{cfg_path}: written for another base or task; use a new --out")
    cfg_path.write_text(cfg.to_json())
    if not (out / "vae").is_dir():
        shutil.copytree(base / "vae", out / "vae")
    res = train_t2i.train_unet(None, out, steps, batch=batch, lr=lr, seed=seed, init_from=base, pairs=pairs,
                               unet_trainable=unet, device=device)  # fmt: skip
    info = {"task": task, "pairs": len(pairs), "new_words": len(new_words), "base": str(base), "unet": unet,
            "data_fingerprint": sset.fingerprint, **res}  # fmt: skip
    (out / "sd2ft_info.json").write_text(json.dumps(info, indent=2))
    if unet == "cross-kv":
        info["packed"] = str(out / "packed")
        pack_sd2ft(out, out / "packed")
    return info


def pack_sd2ft(run: Path, dest: Path) -> dict[str, Any]:
    """Ship a ``cross-kv`` fine-tune compactly: DEST/{sd2ft_delta.safetensors (float16: the text encoder and the
    UNet's cross-attention k/v), t2i_config.json, sd2ft.json (base folder relative to DEST, base sha256)}."""
    import torch
    from safetensors.torch import save_file

    from reference_model import t2i

    run = Path(run)
    info = json.loads((run / "sd2ft_info.json").read_text())
    if info.get("unet") != "cross-kv":
        raise ConfigError(
            f"{run}: only a cross-kv fine-tune packs into a delta (this one trained unet={info.get('unet')!r})"
        )
    pipe = t2i.load_pipeline(run / "pipeline")
    base = Path(info["base"]).resolve()
    keep = t2i.cross_kv_names(pipe.unet)
    sd = {f"unet.{k}": v for k, v in pipe.unet.state_dict().items() if k in keep}
    sd |= {f"text_encoder.{k}": v for k, v in pipe.text_encoder.state_dict().items()}
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, str(tmp / "sd2ft_delta.safetensors"))
    shutil.copy(run / "t2i_config.json", tmp / "t2i_config.json")
    meta = {**{k: info[k] for k in ("task", "pairs", "new_words", "steps", "final_loss", "data_fingerprint")},
            "base": os.path.relpath(base, dest.resolve()), "base_sha256": sha256_folder(base),
            "tensors": len(sd)}  # fmt: skip
    (tmp / "sd2ft.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return meta
