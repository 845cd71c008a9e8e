"""``sd2``: the text-to-image backbone given only a caption (the paper's SD 2 baseline; not fine-tuned).
Any diffusers StableDiffusionPipeline folder works (``--model-args path=...``, e.g. a real SD-2.1-base);
the default is the shipped tiny backbone of the embedded world."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.adapters.base import Adapter, Output, folder_sha256
from mg5bench.adapters.common import caption_prompt, require_folder, shipped_checkpoints
from mg5bench.spec import GenerationConfig
from mg5bench.tasks import TaskConfig
from mg5bench.types import Sample


class SD2(Adapter):
    name = "sd2"
    description = "text-to-image backbone, caption only (VIST: the step caption; MMDialog: the last text turn)"
    args: ClassVar[dict[str, str]] = {"path": "a StableDiffusionPipeline folder (default: the shipped tiny backbone)",
            "size": "output side in pixels (default: the pipeline's native size)"}  # fmt: skip
    uses = ("guidance_scale", "num_inference_steps")
    defaults = GenerationConfig(guidance_scale=3.0, num_inference_steps=25)
    batch_size = 20  # divides 100: the usual --limit values cut no batch group
    default_checkpoints: ClassVar[dict[str, str]] = dict.fromkeys(("cc3m", "vist", "mmdialog"), "backbones/t2i")

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        default = shipped_checkpoints() / self.default_checkpoints[task.format]
        self.path = require_folder(Path(model_args.get("path", default)), "text-to-image pipeline")
        self.pipe: Any = None

    def identity(self) -> dict[str, Any]:
        return {"adapter": self.name, "path": str(self.path), "sha256": folder_sha256(self.path),
                "model_args": self.model_args}  # fmt: skip

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
        size = int(self.model_args.get("size", self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor))
        with torch.inference_mode():
            images = self.pipe(self.prompts(samples), generator=list(generators), height=size, width=size,
                               guidance_scale=config.guidance_scale, num_inference_steps=config.num_inference_steps,
                               ).images  # fmt: skip
        text: Output = [("text", "")] if self.task.format == "mmdialog" else []
        return [[*text, ("image", im)] for im in images]


class SD2FT(SD2):
    """``sd2-ft``: the backbone fine-tuned on the task's training text (``mg5bench train sd2-ft``), prompted with the
    same text it was trained on (``mg5bench.finetune.sd2ft_text``). ``path`` is a pipeline folder or a packed
    fine-tune (``sd2ft.json``: base + delta). On CC3M the tiny backbone was itself trained on the CC3M train
    captions, so its default is the backbone (fine-tuning would only continue the same training)."""

    name = "sd2-ft"
    description = "text-to-image backbone fine-tuned on the task's training text (mg5bench train sd2-ft)"
    args: ClassVar[dict[str, str]] = {"path": "a StableDiffusionPipeline folder or a packed sd2-ft folder (default: "
                                      "the shipped sd2-ft-<task>)", "size": SD2.args["size"]}  # fmt: skip
    default_checkpoints: ClassVar[dict[str, str]] = {"cc3m": "backbones/t2i", "vist": "sd2-ft-vist",
                                                     "mmdialog": "sd2-ft-mmdialog"}  # fmt: skip

    def load_pipe(self) -> Any:
        from mg5bench.finetune import load_sd2ft

        if (self.path / "sd2ft.json").exists():
            return load_sd2ft(self.path)  # through load_pipeline: float32, no progress bar
        return super().load_pipe()

    def prompts(self, samples: Sequence[Sample]) -> list[str]:
        from mg5bench.finetune import context_setting, sd2ft_text

        return [sd2ft_text(s, self.task.format, context_setting(self.task)) for s in samples]
