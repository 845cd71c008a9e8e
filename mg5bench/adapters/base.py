"""The adapter interface: every model family turns samples into interleaved outputs the same way.

    adapter = AdapterClass(task, model_args)     # checks its arguments (unknown ones are an error), loads nothing
    adapter.identity()                           # what it is (checkpoint path + sha256, preset ...): hashed into
                                                 # the run folder name, so a changed checkpoint never reuses a run
    adapter.resolve(GenerationConfig(...))       # the settings it will use, every default filled in (no None
                                                 # left for a setting it uses); a setting it does not use is an
                                                 # error. The result is hashed into the run key and recorded.
    adapter.device = "cuda:0"                    # set by the runner before load / generate (default "cpu")
    adapter.load()                               # weights onto the device (once; a no-op for gt and blank)
    adapter.generate(samples, resolved config, generators) -> [[("text", str) | ("image", PIL.Image | path)], ...]
    adapter.close()                              # release the model

One ``torch.Generator`` per sample (on the run's device), seeded by the runner from (run seed, sample id): an
adapter must draw all of a sample's randomness from its own generator. Batched kernels are not invariant to
batch composition, so the runner fixes each batch by global sample index (groups of ``batch_size``): results
do not depend on order, resume, --limit or process count, but do depend on the batch size (part of the key).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from mg5bench.core.errors import ConfigError
from mg5bench.core.sample import Sample
from mg5bench.runs.spec import GenerationConfig, generation_flag
from mg5bench.tasks import TaskConfig

Output = list[tuple[str, Any]]


class Adapter(ABC):
    """The contract every model family implements (see the module docstring). Subclasses set ``args``, ``uses``,
    ``defaults``, ``batch_size`` and ``default_checkpoints``, and implement ``generate``; ``name`` comes from the
    catalog (``mg5bench.catalog``, the one place a model's name is written) when the class is looked up there."""

    name: ClassVar[str] = ""  # assigned by the catalog on lookup
    tasks: ClassVar[tuple[str, ...]] = ("cc3m", "vist", "mmdialog")
    args: ClassVar[Mapping[str, str]] = {}  # accepted --model-args and what they mean
    # the GenerationConfig fields this model reads, and their documented defaults (see ``resolve``)
    uses: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[GenerationConfig] = GenerationConfig()
    batch_size: ClassVar[int] = 10  # samples per generate() call unless --batch-size says otherwise
    # True when an output depends on the sample alone (no batched kernels, no randomness: gt, blank): the batch
    # size and the device type are then left out of the run key
    pure: ClassVar[bool] = False
    # task format -> default checkpoint folder, relative to reference_model/checkpoints ("" = none needed)
    default_checkpoints: ClassVar[Mapping[str, str]] = {}
    # the --model-args key that names the checkpoint folder: where an axis variant's or a training seed's folder goes
    checkpoint_arg: ClassVar[str] = "checkpoint"
    # --model-args that name a file or folder: a run key holds their content hash, never the path, so the same
    # checkpoint reached from another clone, through a symlink or by its path is the same run
    path_args: ClassVar[tuple[str, ...]] = ()
    # of those, the ones whose content ``identity()`` already hashes (its "sha256"): left out of the key's args
    hashed_args: ClassVar[tuple[str, ...]] = ()

    def __init__(self, task: TaskConfig, model_args: Mapping[str, Any]) -> None:
        unknown = set(model_args) - set(self.args)
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in self.args.items()) or "none"
            raise ConfigError(f"model {self.name!r} does not take --model-args {sorted(unknown)}; it takes: {known}")
        if task.format not in self.tasks:
            raise ConfigError(f"model {self.name!r} does not support task format {task.format!r}")
        self.task = task
        self.model_args = dict(model_args)
        self.device = "cpu"  # set by the runner before load() / generate()

    def identity(self) -> dict[str, Any]:
        """What determines this model's outputs besides the sample, config and generator: contents, not paths."""
        return {"adapter": self.name, "model_args": self.portable_args()}

    def portable_args(self) -> dict[str, Any]:
        """The model args as a run key holds them (``portable_args_of``)."""
        out = portable_args_of(type(self), self.model_args)
        if out is None:  # pragma: no cover - the adapter checked its paths when it was made
            raise ConfigError(f"model {self.name!r}: a --model-args path is not there")
        return out

    def settings_used(self, requested: GenerationConfig) -> tuple[str, ...]:
        """The generation settings this model reads (may depend on the task or on ``requested``)."""
        return self.uses

    def documented_defaults(self) -> GenerationConfig:
        """The value of every used setting when none is given (e.g. read from the checkpoint's config)."""
        return self.defaults

    def resolve(self, config: GenerationConfig) -> GenerationConfig:
        """``config`` with every setting this model uses filled in, and nothing else: what the run key hashes
        and run.json records. A setting the model does not use is refused (it would be hashed and ignored)."""
        used = self.settings_used(config)
        unused = [f for f in config.set_fields() if f not in used]
        if unused:
            takes = ", ".join(generation_flag(u) for u in used) or "no generation settings"
            raise ConfigError(f"model {self.name!r} does not use {', '.join(generation_flag(u) for u in unused)}; "
                              f"it uses: {takes}")  # fmt: skip
        out = config.merged(self.documented_defaults()).only(used)
        missing = [f for f in used if getattr(out, f) is None]
        if missing:  # pragma: no cover - a bug in the adapter's defaults
            raise ConfigError(f"model {self.name!r} has no default for {missing}; this is a bug in mg5bench")
        return out

    def load(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Load weights onto ``self.device`` (called once before the first ``generate``; a model with nothing to
        load keeps this no-op). Kept out of ``__init__`` so that resolving a run never loads a model."""

    @abstractmethod
    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        """One output (ordered text and image segments) per sample, all randomness from ``generators[i]``."""

    def close(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Release what ``load`` took (optional)."""


def portable_args_of(cls: type[Adapter], model_args: Mapping[str, Any]) -> dict[str, Any] | None:
    """``model_args`` with every path argument replaced by its content's sha256 (``sha256:<hex>``; a folder by
    ``sha256_folder``), the ones the identity already hashes left out; None when a path is not there."""
    from pathlib import Path

    from mg5bench.core.hashing import sha256_file, sha256_folder

    out: dict[str, Any] = {}
    for k, v in sorted(model_args.items()):
        if k in cls.hashed_args:
            continue
        if k in cls.path_args:
            path = Path(str(v)).expanduser()
            if path.is_dir():
                out[k] = "sha256:" + sha256_folder(path)
            elif path.is_file():
                out[k] = "sha256:" + sha256_file(path)
            else:
                return None
        else:
            out[k] = v
    return out
