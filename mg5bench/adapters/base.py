"""The adapter interface: every model family turns samples into interleaved outputs the same way.

    adapter = AdapterClass(task, model_args)     # loads weights; unknown model args are an error
    adapter.identity()                           # what it is (checkpoint path + sha256, preset ...): hashed into
                                                 # the run folder name, so a changed checkpoint never reuses a run
    adapter.generate(samples, config, generators) -> [[("text", str) | ("image", PIL.Image | path)], ...]

One ``torch.Generator`` per sample, seeded by the runner from (run seed, sample id): an adapter must draw
all of a sample's randomness from its own generator, so results do not depend on batching, order,
resume or process count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.errors import ConfigError
from mg5bench.evaluators import sha256_file as file_sha256
from mg5bench.spec import GenerationConfig
from mg5bench.tasks import TaskConfig
from mg5bench.types import Sample

Output = list[tuple[str, Any]]


def folder_sha256(path: Path, patterns: Sequence[str] = ("*.safetensors", "*.json", "*.txt", "*.model")) -> str:
    """Content hash of a checkpoint folder's weight and config files (sorted relative paths + bytes)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted({f for p in patterns for f in path.rglob(p) if f.is_file() and f.name != "README.md"})
    for f in files:
        h.update(str(f.relative_to(path)).encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()


class Adapter:
    """Base class: subclasses set ``name``, ``description``, ``tasks``, ``args`` and implement ``generate``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("cc3m", "vist", "mmdialog")
    args: ClassVar[Mapping[str, str]] = {}  # accepted --model-args and what they mean
    defaults: ClassVar[GenerationConfig] = GenerationConfig()
    # task format -> default checkpoint folder, relative to reference_model/checkpoints ("" = none needed)
    default_checkpoints: ClassVar[Mapping[str, str]] = {}

    def __init__(self, task: TaskConfig, model_args: Mapping[str, Any]) -> None:
        unknown = set(model_args) - set(self.args)
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in self.args.items()) or "none"
            raise ConfigError(f"model {self.name!r} does not take --model-args {sorted(unknown)}; it takes: {known}")
        if task.format not in self.tasks:
            raise ConfigError(f"model {self.name!r} does not support task format {task.format!r}")
        self.task = task
        self.model_args = dict(model_args)

    def identity(self) -> dict[str, Any]:
        """What determines this model's outputs besides the sample, config and generator."""
        return {"adapter": self.name, "model_args": self.model_args}

    def generate(
        self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]
    ) -> list[Output]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (optional)."""
