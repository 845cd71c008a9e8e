"""Run specifications: frozen, JSON round-trippable, with a canonical name and a content hash.

Every setting that can change a number lives here (or in what the runner resolves from it:
checkpoint hash, data fingerprint, task version), never in environment variables.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import content_hash


def _check_keys(cls: type, data: Mapping[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        from mg5bench.core.limits import keys_excerpt

        raise ConfigError(f"{cls.__name__}: unknown field(s) {keys_excerpt(unknown)}; known: {sorted(names)}")


def _pairs(value: Mapping[str, Any] | tuple[tuple[str, Any], ...] | None) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    out = []
    for k, v in items:
        if not isinstance(k, str):
            raise ConfigError(f"argument names must be strings, got {k!r}")
        if isinstance(v, (dict, list)):
            raise ConfigError(f"argument {k!r} must be a scalar, got {type(v).__name__}")
        out.append((k, v))
    return tuple(sorted(out))


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding and sampling settings; None means "the adapter's documented default"."""

    guidance_scale: float | None = None
    num_inference_steps: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    do_sample: bool | None = None

    def __post_init__(self) -> None:
        """Every setting checked by type and range (shared with the command line's flags, ``mg5bench.core.limits``), so
        an axis file's or a caller's NaN, string or 10**9 steps stops here, before any model is loaded."""
        from mg5bench.core.limits import MAX_INFERENCE_STEPS, MAX_NEW_TOKENS, excerpt, int_problem, number_problem

        problems = {
            "guidance_scale": number_problem(self.guidance_scale, 0),
            "num_inference_steps": int_problem(self.num_inference_steps, 1, MAX_INFERENCE_STEPS),
            "max_new_tokens": int_problem(self.max_new_tokens, 1, MAX_NEW_TOKENS),
            "temperature": number_problem(self.temperature, 0, strict=True),
            "top_p": number_problem(self.top_p, 0, 1, strict=True),
            "repetition_penalty": number_problem(self.repetition_penalty, 0, strict=True),
        }
        for name, problem in problems.items():
            if getattr(self, name) is not None and problem:
                raise ConfigError(f"{name} {problem}" if problem.startswith("must") else f"{name}: {problem}")
        if self.do_sample is not None and not isinstance(self.do_sample, bool):
            raise ConfigError(f"do_sample must be true or false, got {excerpt(self.do_sample)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationConfig:
        _check_keys(cls, data)
        return cls(**data)

    def merged(self, defaults: GenerationConfig) -> GenerationConfig:
        """Fill unset fields from an adapter's defaults (explicit settings win)."""
        return GenerationConfig(
            **{
                f.name: getattr(self, f.name) if getattr(self, f.name) is not None else getattr(defaults, f.name)
                for f in dataclasses.fields(self)
            }
        )

    def set_fields(self) -> list[str]:
        """The settings given explicitly (not None), in field order."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def only(self, names: tuple[str, ...] | list[str]) -> GenerationConfig:
        """A copy with every setting outside ``names`` cleared: a setting a model does not use is not hashed."""
        return GenerationConfig(**{f.name: getattr(self, f.name) if f.name in names else None
                                   for f in dataclasses.fields(self)})  # fmt: skip


def generation_flag(name: str) -> str:
    """The command-line spelling of a GenerationConfig field (the same on every command)."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class RunSpec:
    """What to run: task + data + split + model + generation settings (as given; the adapter resolves its
    defaults) + seed, and ``limit``, which only selects the first N samples."""

    task: str
    model: str
    split: str = "test"
    data: str | None = None
    limit: int | None = None
    seed: int = 0
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    model_args: tuple[tuple[str, Any], ...] = ()
    task_args: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.task or not self.model:
            raise ConfigError("a run needs a task and a model")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"limit must be a positive integer, got {self.limit!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        object.__setattr__(self, "model_args", _pairs(self.model_args))
        object.__setattr__(self, "task_args", _pairs(self.task_args))
        if isinstance(self.generation, Mapping):
            object.__setattr__(self, "generation", GenerationConfig.from_dict(self.generation))

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "split": self.split,
            "data": self.data,
            "limit": self.limit,
            "seed": self.seed,
            "generation": self.generation.to_dict(),
            "model_args": dict(self.model_args),
            "task_args": dict(self.task_args),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        _check_keys(cls, data)
        kw = dict(data)
        kw["generation"] = GenerationConfig.from_dict(kw.get("generation") or {})
        kw["model_args"] = _pairs(kw.get("model_args"))
        kw["task_args"] = _pairs(kw.get("task_args"))
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        return cls.from_dict(json.loads(text))

    @property
    def hash(self) -> str:
        """Content hash of every setting of the request (canonical JSON, the limit included); equal specs hash
        equal. Run folders are keyed differently: by what changes an output (``runs.keys.generation_key``)."""
        return content_hash(self.to_dict())

    @property
    def name(self) -> str:
        """Human-readable name of the request (settings as given, limit included) with its hash."""
        g = self.generation
        parts = [self.split, f"seed{self.seed}"]
        if g.guidance_scale is not None:
            parts.append(f"gs{g.guidance_scale:g}")
        if g.num_inference_steps is not None:
            parts.append(f"steps{g.num_inference_steps}")
        parts.append(f"n{self.limit}" if self.limit is not None else "all")
        return "-".join(parts) + f"-{self.hash}"
