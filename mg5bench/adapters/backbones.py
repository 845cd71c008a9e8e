"""The shipped backbones as the ``divter`` and ``two-stage`` adapters (and the Divter trainer) use them: the
tokenizer and LM, the vision path (which with the LM is the captioner, MiniGPT-4 style) and the text-to-image
pipeline. One class, so both pipelines caption and draw the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError


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
        """The text-to-image pipeline, loaded on first use (captioning alone never needs it)."""
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
        """One image per prompt at the pipeline's native size, each from its own generator."""
        import torch

        pipe = self.t2i()
        side = pipe.unet.config.sample_size * pipe.vae_scale_factor
        with torch.inference_mode():
            return list(pipe(list(prompts), generator=list(generators), height=side, width=side,
                             guidance_scale=guidance, num_inference_steps=steps).images)  # fmt: skip
