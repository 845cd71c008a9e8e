"""Helpers shared by adapters: shipped checkpoints, prompts from samples."""

from __future__ import annotations

from pathlib import Path

from mg5bench.errors import ConfigError
from mg5bench.types import Sample


def shipped_checkpoints() -> Path:
    """reference_model/checkpoints (inside the installed package, or the source tree)."""
    import reference_model

    return Path(reference_model.__file__).resolve().parent / "checkpoints"


def require_folder(path: Path, what: str, arg: str = "path") -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{what} not found at {path}; pass --model-args {arg}=<folder> (or retrain the shipped "
                          "checkpoints with scripts/train_reference.sh)")  # fmt: skip
    return path.resolve()


def caption_prompt(sample: Sample) -> str:
    """The text a caption-only model sees: the current caption (CC3M, VIST: the last context text) or, in a
    dialog, the last text turn of the context."""
    texts = [s.value for s in sample.context if s.is_text]
    return str(sample.meta.get("caption") or (texts[-1] if texts else ""))
