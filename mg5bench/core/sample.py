"""The one sample type every task, adapter and metric speaks: ordered text/image segments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mg5bench.core.errors import ConfigError

SegmentKind = Literal["text", "image"]


@dataclass(frozen=True)
class Segment:
    """One element of an interleaved sequence: a text or an image (an absolute file path).

    ``role`` names the speaker in dialog tasks ("human" / "assistant"); None elsewhere.
    """

    kind: SegmentKind
    value: str
    role: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("text", "image"):
            raise ConfigError(f"segment kind must be 'text' or 'image', got {self.kind!r}")
        if not isinstance(self.value, str):
            raise ConfigError(f"segment {self.kind} must be a string, got {type(self.value).__name__}")

    @classmethod
    def text(cls, value: str, role: str | None = None) -> Segment:
        return cls("text", value, role)

    @classmethod
    def image(cls, path: str, role: str | None = None) -> Segment:
        return cls("image", path, role)

    @property
    def is_text(self) -> bool:
        return self.kind == "text"

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def to_json(self) -> dict[str, str]:
        out = {self.kind: self.value}
        if self.role is not None:
            out["role"] = self.role
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Segment:
        """Parse ``{"text": str}`` or ``{"image": path}`` (optionally with ``"role"``)."""
        if not isinstance(obj, Mapping):
            raise ConfigError(f"a segment must be an object like {{'text': ...}}, got {type(obj).__name__}")
        kinds = [k for k in ("text", "image") if k in obj]
        extra = set(obj) - {"text", "image", "role"}
        if len(kinds) != 1 or extra:
            raise ConfigError(
                f"a segment must have exactly one of 'text' or 'image' (and optionally 'role'), got keys {sorted(obj)}"
            )
        role = obj.get("role")
        if role is not None and not isinstance(role, str):
            raise ConfigError(f"segment role must be a string, got {type(role).__name__}")
        return cls(kinds[0], obj[kinds[0]], role)  # type: ignore[arg-type]


def segments_to_json(segments: Iterable[Segment]) -> list[dict[str, str]]:
    return [s.to_json() for s in segments]


@dataclass(frozen=True)
class Sample:
    """A protocol instance: what the model sees (context) and what it should produce (target).

    ``group`` is the cluster for bootstrap resampling (story or conversation id); ``meta`` holds
    protocol details (step index, caption, target scene record for the synthetic world).
    """

    id: str
    context: tuple[Segment, ...]
    target: tuple[Segment, ...]
    group: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target_text(self) -> str:
        return " ".join(s.value for s in self.target if s.is_text)

    @property
    def target_images(self) -> list[str]:
        return [s.value for s in self.target if s.is_image]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "context": segments_to_json(self.context),
            "target": segments_to_json(self.target),
            "group": self.group,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Sample:
        return cls(
            id=str(obj["id"]),
            context=tuple(Segment.from_json(s) for s in obj["context"]),
            target=tuple(Segment.from_json(s) for s in obj["target"]),
            group=str(obj.get("group", obj["id"])),
            meta=dict(obj.get("meta", {})),
        )
