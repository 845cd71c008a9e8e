"""``sd2``: the text-to-image backbone given only a caption (the paper's SD 2 baseline; not fine-tuned).
Any diffusers StableDiffusionPipeline folder works (``--model-args path=...``, e.g. a real SD-2.1-base);
the default is the shipped tiny backbone of the embedded world.

``sd2-ft``: the same backbone fine-tuned on the task's training text (``mg5bench train sd2-ft``, in
``mg5bench.training.finetune``). What the trainer and this adapter must agree on lives here, below both: the text
a sample is prompted with (``sd2ft_text``, also the training text) and the packed delta format (``load_sd2ft``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.adapters.base import Adapter, Output
from mg5bench.adapters.common import (
    CROSS_TASK,
    CROSS_TASK_HELP,
    caption_prompt,
    check_trained_task,
    int_arg,
    read_json,
    require_folder,
    shipped_checkpoints,
)
from mg5bench.core.checkpoints import check_folder, check_safetensors
from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import sha256_folder
from mg5bench.core.sample import Sample
from mg5bench.runs.spec import GenerationConfig
from mg5bench.tasks import TaskConfig


def context_setting(task: TaskConfig) -> str:
    """The task's ``context`` protocol option (VIST: text | image | text+image); tasks without it: text+image."""
    return str(dict(task.protocol).get("context", "text+image"))


def sd2ft_text(sample: Sample, task_format: str, context: str = "text+image") -> str:
    """The text sd2-ft sees for a sample at test time: the caption-only prompt, or for VIST with context=text the
    story text so far."""
    if task_format == "vist" and context == "text":
        return " ".join(s.value for s in sample.context if s.is_text)
    return caption_prompt(sample)


def load_sd2ft(folder: Path) -> Any:
    """A packed sd2-ft folder (``sd2ft.json`` + ``sd2ft_delta.safetensors``, see
    ``mg5bench.training.finetune.pack_sd2ft``) -> a StableDiffusionPipeline (float32): the base with the delta
    applied. The base must be the one it was trained from (sha256 checked)."""
    import json

    from safetensors.torch import load_file

    from reference_model import t2i

    folder = Path(folder)
    meta = json.loads((folder / "sd2ft.json").read_text())
    base = (folder / meta["base"]).resolve()
    if not base.is_dir() or sha256_folder(base) != meta["base_sha256"]:
        raise ConfigError(f"{folder}: its base pipeline {base} is missing or changed (sha256 differs from "
                          f"{meta['base_sha256'][:12]}); retrain: mg5bench train sd2-ft")  # fmt: skip
    pipe = t2i.load_pipeline(base)
    cfg = t2i.T2IConfig.from_json((folder / "t2i_config.json").read_text())
    delta = {k: v.float() for k, v in load_file(str(folder / "sd2ft_delta.safetensors")).items()}
    text = t2i.build_text_encoder(cfg)
    text.load_state_dict({k.removeprefix("text_encoder."): v for k, v in delta.items() if k.startswith("text_")})
    unet_part = {k.removeprefix("unet."): v for k, v in delta.items() if k.startswith("unet.")}
    if set(unet_part) != t2i.cross_kv_names(pipe.unet):
        raise ConfigError(f"{folder}: the delta does not match the base UNet's cross-attention layers")
    pipe.unet.load_state_dict(unet_part, strict=False)
    pipe.text_encoder = text.eval()
    pipe.tokenizer = t2i.make_tokenizer(cfg.vocab, cfg.max_text_len)
    return pipe


class SD2(Adapter):
    """``sd2``: wraps a diffusers text-to-image pipeline (default: the shipped tiny backbone) prompted with the
    caption only (VIST: the step caption; MMDialog: the last text turn, with an empty reply text)."""

    args: ClassVar[dict[str, str]] = {"path": "a StableDiffusionPipeline folder (default: the shipped tiny backbone)",
            "size": "output side in pixels, a multiple of 8 up to 4096 (default: the pipeline's own)"}  # fmt: skip
    uses = ("guidance_scale", "num_inference_steps")
    defaults = GenerationConfig(guidance_scale=3.0, num_inference_steps=25)
    batch_size = 20  # divides 100: the usual --limit values cut no batch group
    default_checkpoints: ClassVar[dict[str, str]] = dict.fromkeys(("cc3m", "vist", "mmdialog"), "backbones/t2i")
    checkpoint_arg = "path"
    path_args = ("path",)
    hashed_args = ("path",)

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        default = shipped_checkpoints() / self.default_checkpoints[task.format]
        self.path = require_folder(Path(model_args.get("path", default)), "text-to-image pipeline")
        self.size = int_arg(model_args, "size", 8, 4096)
        if self.size is not None and self.size % 8:
            raise ConfigError(f"--model-args size must be a multiple of 8 (the autoencoder's stride), got {self.size}")
        self.pipe: Any = None
        self.check_files()

    def check_files(self) -> None:
        """A diffusers pipeline folder (model_index.json) whose safetensors files are whole, checked before anything
        loads (``mg5bench.core.checkpoints``)."""
        if not (self.path / "model_index.json").is_file():
            raise ConfigError(f"{self.path}: not a text-to-image pipeline folder (no model_index.json); pass a "
                              "diffusers StableDiffusionPipeline folder with --model-args path=")  # fmt: skip
        check_folder(self.path)

    def identity(self) -> dict[str, Any]:
        return {"adapter": self.name, "sha256": sha256_folder(self.path), "model_args": self.portable_args()}

    def load_pipe(self) -> Any:
        from reference_model.t2i import load_pipeline

        return load_pipeline(self.path)

    def load(self) -> None:
        if self.pipe is None:
            self.pipe = self.load_pipe().to(self.device)

    def prompts(self, samples: Sequence[Sample]) -> list[str]:
        return [caption_prompt(s) for s in samples]

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        import torch

        self.load()
        size = self.size or int(self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor)
        with torch.inference_mode():
            images = self.pipe(self.prompts(samples), generator=list(generators), height=size, width=size,
                               guidance_scale=config.guidance_scale, num_inference_steps=config.num_inference_steps,
                               ).images  # fmt: skip
        text: Output = [("text", "")] if self.task.format == "mmdialog" else []
        return [[*text, ("image", im)] for im in images]


class SD2FT(SD2):
    """``sd2-ft``: the backbone fine-tuned on the task's training text (``mg5bench train sd2-ft``), prompted with the
    same text it was trained on (``sd2ft_text``). ``path`` is a pipeline folder or a packed
    fine-tune (``sd2ft.json``: base + delta). On CC3M the tiny backbone was itself trained on the CC3M train
    captions, so its default is the backbone (fine-tuning would only continue the same training)."""

    args: ClassVar[dict[str, str]] = {"path": "a StableDiffusionPipeline folder or a packed sd2-ft folder (default: "
                                      "the shipped sd2-ft-<task>)", "size": SD2.args["size"],
                                      CROSS_TASK: CROSS_TASK_HELP}  # fmt: skip
    default_checkpoints: ClassVar[dict[str, str]] = {"cc3m": "backbones/t2i", "vist": "sd2-ft-vist",
                                                     "mmdialog": "sd2-ft-mmdialog"}  # fmt: skip

    def check_files(self) -> None:
        """A packed fine-tune: trained for this task (``cross_task``), its base there and its delta whole."""
        if not (self.path / "sd2ft.json").exists():
            self.model_args.pop(CROSS_TASK, None)
            return super().check_files()
        meta = read_json(self.path / "sd2ft.json", "the sd2-ft checkpoint")
        check_trained_task(meta.get("task"), self.task, self.path, self.model_args)
        base = (self.path / str(meta.get("base", ""))).resolve()
        if not base.is_dir():
            raise ConfigError(f"{self.path}: its base pipeline {base} is missing; put the backbones back (reference_"
                              "model/checkpoints/backbones/t2i) or retrain: mg5bench train sd2-ft")  # fmt: skip
        check_folder(base)
        count = meta.get("tensors") if isinstance(meta.get("tensors"), int) else None
        check_safetensors(self.path / "sd2ft_delta.safetensors", prefixes=("text_encoder.", "unet."), count=count,
                          fix="copy the checkpoint again, or retrain it: mg5bench train sd2-ft")  # fmt: skip
        return None

    def load_pipe(self) -> Any:
        if (self.path / "sd2ft.json").exists():
            return load_sd2ft(self.path)  # through load_pipeline: float32, no progress bar
        return super().load_pipe()

    def prompts(self, samples: Sequence[Sample]) -> list[str]:
        return [sd2ft_text(s, self.task.format, context_setting(self.task)) for s in samples]
