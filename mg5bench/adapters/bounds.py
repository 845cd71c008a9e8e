"""The bounds every table needs: ``gt`` returns the ground truth (upper bound), ``blank`` returns empty
text and a blank image (lower bound)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from mg5bench.adapters.base import Adapter, Output
from mg5bench.adapters.common import int_arg
from mg5bench.core.sample import Sample
from mg5bench.runs.spec import GenerationConfig
from mg5bench.tasks import TaskConfig


class GroundTruth(Adapter):
    """``gt``: returns each sample's ground-truth target as its output, the upper bound of every metric; pure (its
    output depends on the sample alone, so no batch size or device in its run key)."""

    pure = True

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        return [[(s.kind, s.value) for s in sample.target] for sample in samples]


class Blank(Adapter):
    """``blank``: an empty text and a white image per sample (of the target's size, or ``size``), the lower bound;
    pure."""

    pure = True
    args: ClassVar[dict[str, str]] = {
        "size": "side of the blank image in pixels, 1-4096 (default: the target image's size, else 512)"
    }

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        self.size = int_arg(model_args, "size", 1, 4096)

    def identity(self) -> dict[str, Any]:
        return {"adapter": self.name, "model_args": self.portable_args(), "colour": [255, 255, 255]}

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        from PIL import Image

        outs: list[Output] = []
        for sample in samples:
            size = self.size
            if size is None and sample.target_images:
                with Image.open(sample.target_images[0]) as im:
                    size = im.size[0]
            side = int(size or 512)
            out: Output = [("text", "")] if self.task.format == "mmdialog" else []
            out.append(("image", Image.new("RGB", (side, side), (255, 255, 255))))
            outs.append(out)
        return outs
