"""Helpers shared by adapters: shipped checkpoints, prompts from samples, and the checks every adapter makes on
its --model-args and checkpoint files when it is made (before anything is loaded)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError
from mg5bench.core.sample import Sample
from mg5bench.tasks import TaskConfig


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


TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")
CROSS_TASK = "cross_task"
CROSS_TASK_HELP = "true: run a checkpoint trained for another task anyway (default false: refused)"


def bool_arg(model_args: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """A true/false --model-args value, checked when the adapter is made (not at the first sample)."""
    value = model_args.get(name)
    if value is None:
        return default
    text = str(value).strip().lower()
    if text not in TRUE + FALSE:
        raise ConfigError(f"--model-args {name} must be true or false, got {value!r}")
    return text in TRUE


def int_arg(model_args: Mapping[str, Any], name: str, low: int = 1, high: int | None = None) -> int | None:
    """An integer --model-args value in [low, high] (None when not given), checked when the adapter is made."""
    value = model_args.get(name)
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"--model-args {name} must be an integer, got {value!r}") from None
    if number < low or (high is not None and number > high):
        within = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"--model-args {name} must be {within}, got {number}")
    return number


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A checkpoint's JSON file as an object, or a one-line ConfigError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; {what} is incomplete (copy it again, or retrain it)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ConfigError(f"{path}: unreadable ({str(e)[:80]}); {what} is damaged (copy it again, or retrain it)"
                          ) from None  # fmt: skip
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object; {what} is damaged (copy it again, or retrain it)")
    return data


def check_trained_task(trained: Any, task: TaskConfig, checkpoint: Path, model_args: dict[str, Any]) -> None:
    """Refuse a checkpoint trained for another task (a VIST-trained Divter on CC3M scores, silently, a model on
    data it never saw) unless ``cross_task=true``, which is then removed from the model args: it changes no
    output, so it is not part of the run's key."""
    allowed = bool_arg(model_args, CROSS_TASK)
    model_args.pop(CROSS_TASK, None)
    if trained and str(trained) != task.format and not allowed:
        raise ConfigError(f"{checkpoint} was trained for the {trained} task, not {task.name}; pass a {task.name} "
                          f"checkpoint, or --model-args {CROSS_TASK}=true to run it anyway")  # fmt: skip


def check_backbones(folder: Path, parts: Sequence[str] = ("lm", "vision", "t2i"), owner: Path | None = None) -> Path:
    """A backbones folder with its parts, each one's safetensors files checked (``mg5bench.core.checkpoints``)."""
    from mg5bench.core.checkpoints import check_folder

    folder = Path(folder)
    whose = f"{owner}: " if owner is not None else ""
    for sub in parts:
        if not (folder / sub).is_dir():
            raise ConfigError(f"{whose}the backbones folder {folder} has no {sub}/; pass the reference model's "
                              "backbones (reference_model/checkpoints/backbones) or copy them again")  # fmt: skip
    check_folder(folder)
    return folder.resolve()
