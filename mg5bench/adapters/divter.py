"""``divter``: the Divter-style pipeline (``mg5bench.divter``): captioner -> text-only LM (LoRA) writes the
response text and an image description -> the text-to-image backbone draws it.

Model args: ``checkpoint=<folder>`` (default: the shipped ``divter-<task>``), ``backbones=<folder>`` (default:
the folder recorded in the checkpoint, checked by sha256).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.adapters.base import Adapter, Output, folder_sha256
from mg5bench.adapters.common import require_folder, shipped_checkpoints
from mg5bench.spec import GenerationConfig
from mg5bench.tasks import TaskConfig
from mg5bench.types import Sample


class DivterAdapter(Adapter):
    name = "divter"
    description = "Divter-style: captions of context images -> text LM writes reply + image description -> T2I"
    args: ClassVar[dict[str, str]] = {
        "checkpoint": "a folder from 'mg5bench train divter' (default: the shipped divter-<task>)",
        "backbones": "backbones folder with lm/, vision/, t2i/ (default: the one the checkpoint records)",
    }
    uses = ("guidance_scale", "num_inference_steps", "max_new_tokens")
    defaults = GenerationConfig(guidance_scale=3.0, num_inference_steps=25)  # max_new_tokens: the checkpoint's
    batch_size = 20  # divides 100: the usual --limit values cut no batch group
    default_checkpoints: ClassVar[dict[str, str]] = {t: f"divter-{t}" for t in ("cc3m", "vist", "mmdialog")}

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        default = shipped_checkpoints() / self.default_checkpoints[task.format]
        self.path = require_folder(Path(model_args.get("checkpoint", default)), "Divter checkpoint", "checkpoint")
        self.backbones = Path(model_args["backbones"]).expanduser() if "backbones" in model_args else None
        self.model: Any = None

    def documented_defaults(self) -> GenerationConfig:
        """guidance 3, 25 steps; the reply + description length the LoRA was trained with (divter_config.json)."""
        import dataclasses
        import json

        trained = json.loads((self.path / "divter_config.json").read_text()).get("max_new_tokens", 40)
        return dataclasses.replace(self.defaults, max_new_tokens=int(trained))

    def identity(self) -> dict[str, Any]:
        import json

        recorded = json.loads((self.path / "divter_config.json").read_text())["backbones_sha256"]
        return {"adapter": self.name, "path": str(self.path), "sha256": folder_sha256(self.path),
                "backbones_sha256": recorded, "model_args": self.model_args}  # fmt: skip

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        from mg5bench.divter import Divter, context_text

        if self.model is None:
            self.model = Divter(self.path, self.backbones, self.device)
        parts = self.model.parts
        paths = [seg.value for s in samples for seg in s.context if seg.is_image]
        caption_of = dict(zip(paths, parts.captions(paths), strict=True))
        written = self.model.write([context_text(s, self.task.format, caption_of) for s in samples],
                                   config.max_new_tokens)  # fmt: skip
        drawn = [i for i, (_, desc) in enumerate(written) if desc]
        images = parts.render([written[i][1] or "" for i in drawn], [generators[i] for i in drawn],
                              config.guidance_scale, config.num_inference_steps) if drawn else []  # fmt: skip
        image_of = dict(zip(drawn, images, strict=True))
        outs: list[Output] = []
        for i, (text, _) in enumerate(written):
            out: Output = [("text", text)] if self.task.format == "mmdialog" else []
            if i in image_of:
                out.append(("image", image_of[i]))
            outs.append(out)
        return outs
