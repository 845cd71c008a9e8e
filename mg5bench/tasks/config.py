"""Task definitions (``definitions/<task>.yaml``, each with its ``definitions/<task>/README.md``) parsed into frozen
``TaskConfig``s, and the registry of task names. A task's protocol options (VIST ``round_range`` and ``context``,
MMDialog history windows and ``first_media_only``) are settings of its TaskConfig: ``--task-args`` overrides them and
every run's key holds them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError
from mg5bench.core.registry import Registry

FORMATS = ("cc3m", "vist", "mmdialog")
VIST_STEPS = 5  # a VIST story is five photos and five sentences (definitions/vist/README.md); the protocols assume it
# a task format's clusters (the unit the intervals and permutation tests resample, and what a card counts), plural
# and singular
CLUSTER_UNITS = {"vist": ("stories", "story"), "mmdialog": ("conversations", "conversation"),
                 "cc3m": ("captions", "caption")}  # fmt: skip


def cluster_unit(fmt: str) -> tuple[str, str]:
    """(plural, singular) of a format's cluster; a format not listed: each sample its own."""
    return CLUSTER_UNITS.get(fmt, ("samples", "sample"))


# Options each format understands, with their allowed values (a tuple) or type.
PROTOCOL_OPTIONS: dict[str, dict[str, Any]] = {
    "cc3m": {},
    "vist": {"round_range": ("all", "last"), "context": ("text", "image", "text+image"),
             "instruction": ("fixed", "random"), "instruction_seed": int},
    "mmdialog": {"history_assistant": int, "history_human": int, "first_media_only": bool},
}  # fmt: skip
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "cc3m": {},
    "vist": {"round_range": "all", "context": "text+image", "instruction": "fixed", "instruction_seed": 0},
    "mmdialog": {"history_assistant": 3, "history_human": 2, "first_media_only": True},
}
# Options a protocol records only when they differ from their default: a run stored before the option existed was
# made at its default, and its key (which hashes the protocol) stays the same.
RECORDED_IF_SET: dict[str, dict[str, Any]] = {"vist": {"instruction": "fixed", "instruction_seed": 0}}


DEFINITIONS = Path(__file__).resolve().parent / "definitions"


def definitions_dir() -> Path:
    """The folder of the task definitions (``<task>.yaml`` + ``<task>/README.md``), shipped inside the package."""
    if not any(DEFINITIONS.glob("*.yaml")):
        raise ConfigError(f"no task definitions in {DEFINITIONS}; reinstall mg5bench")
    return DEFINITIONS


def _coerce(fmt: str, key: str, value: Any, where: str) -> Any:
    options = PROTOCOL_OPTIONS[fmt]
    if key not in options:
        known = ", ".join(sorted(options)) or "(none)"
        raise ConfigError(f"{where}: unknown {fmt} protocol option {key!r}; known: {known}")
    allowed = options[key]
    if isinstance(allowed, tuple):
        if value not in allowed:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
        return value
    if allowed is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if allowed is int:
        try:
            ivalue = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or ivalue < 0 or str(ivalue) != str(value).strip():
            raise ConfigError(f"{where}: {key} must be a non-negative integer, got {value!r}")
        return ivalue
    raise AssertionError(allowed)  # pragma: no cover


@dataclass(frozen=True)
class TaskConfig:
    """A parsed task definition (``card``: its file name). ``protocol`` is a sorted tuple of (option, value) pairs."""

    name: str
    version: int
    description: str
    format: str
    source: str
    default_split: str
    metrics: tuple[str, ...]
    protocol: tuple[tuple[str, Any], ...]
    card: str = ""

    def option(self, key: str) -> Any:
        return dict(self.protocol)[key]

    def with_args(self, args: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> TaskConfig:
        """A copy with protocol options overridden (``--task-args round_range=last``), validated."""
        items = args.items() if isinstance(args, Mapping) else args
        proto = dict(self.protocol)
        for k, v in items:
            proto[k] = _coerce(self.format, k, v, f"task {self.name}")
        return dataclasses.replace(self, protocol=tuple(sorted(proto.items())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "format": self.format,
            "protocol": {k: v for k, v in self.protocol if RECORDED_IF_SET.get(self.format, {}).get(k, ...) != v},
            "metrics": list(self.metrics),
            "card": self.card,
        }


def parse_definition(path: Path) -> TaskConfig:
    """Parse and validate one ``definitions/<name>.yaml``."""
    import yaml

    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{where}: cannot read task definition ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a task definition must be a mapping")
    required = ("name", "version", "description", "format", "default_split", "metrics")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")
    known = {*required, "source", "protocol"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    fmt = raw["format"]
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(raw["version"], int):
        raise ConfigError(f"{where}: version must be an integer")
    metrics = raw["metrics"]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{where}: metrics must be a list of metric names")
    proto = dict(PROTOCOL_DEFAULTS[fmt])
    for k, v in (raw.get("protocol") or {}).items():
        proto[k] = _coerce(fmt, k, v, where)
    return TaskConfig(
        name=str(raw["name"]),
        version=raw["version"],
        description=str(raw["description"]),
        format=fmt,
        source=str(raw.get("source", "")),
        default_split=str(raw["default_split"]),
        metrics=tuple(metrics),
        protocol=tuple(sorted(proto.items())),
        card=path.name,
    )


def _task_registry() -> Registry[TaskConfig]:
    reg: Registry[TaskConfig] = Registry("task")
    for path in sorted(definitions_dir().glob("*.yaml")):
        reg.register(path.stem, lambda p=path: parse_definition(p), _description(path), definition=str(path))
    return reg


def _description(path: Path) -> str:
    """The definition's description line, read without a YAML parser (keeps ``ls`` fast)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("description:"):
            return line.partition(":")[2].strip()
    return ""


_TASKS: Registry[TaskConfig] | None = None


def task_registry() -> Registry[TaskConfig]:
    global _TASKS
    if _TASKS is None:
        _TASKS = _task_registry()
    return _TASKS


def get_task(name: str, args: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()) -> TaskConfig:
    """The task ``name`` (did-you-mean on typos), with protocol overrides applied."""
    task = task_registry().get(name)
    return task.with_args(args) if args else task
