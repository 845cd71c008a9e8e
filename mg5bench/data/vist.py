"""VIST in the MiniGPT-5 layout: ``<split>_cleaned.json`` (story_id -> steps ``{caption, image_id,
sequence_index}``) and ``<split>_image_mapping.json`` (image_id -> path relative to the folder)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.data.io import Problems, atomic_write_json, check_image, read_text_utf8, resolve_inside
from mg5bench.errors import DataError


@dataclass(frozen=True)
class VistStep:
    caption: str
    image_id: str
    image: Path
    sequence_index: int


@dataclass(frozen=True)
class VistStory:
    story_id: str
    steps: tuple[VistStep, ...]


def vist_files(root: Path, split: str) -> tuple[Path, Path]:
    root = Path(root)
    return root / f"{split}_cleaned.json", root / f"{split}_image_mapping.json"


def load_json_strict(path: Path, what: str, duplicates_of: str = "key") -> Any:
    """Parse JSON with precise errors (line, column) and with duplicate top-level keys rejected."""
    text = read_text_utf8(path, what)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise DataError(str(path), f"{duplicates_of} {k}", f"duplicate key {k!r}", "keep one entry per id")
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise DataError(
            str(path), f"line {e.lineno} column {e.colno}", f"malformed JSON: {e.msg}", "fix the JSON syntax"
        ) from None


def read_vist(
    root: Path, split: str, *, problems: Problems | None = None, check_images: bool = True
) -> list[VistStory]:
    """Read one split; a story with any bad step is reported (and skipped whole with skip_bad)."""
    problems = problems if problems is not None else Problems()
    root = Path(root)
    cleaned_path, mapping_path = vist_files(root, split)
    cleaned = load_json_strict(cleaned_path, "VIST story file", "story id")
    mapping = load_json_strict(mapping_path, "VIST image mapping", "image id")
    if not isinstance(cleaned, dict):
        raise DataError(
            str(cleaned_path),
            None,
            f"top level must be an object story_id -> steps, got {type(cleaned).__name__}",
        )
    if not isinstance(mapping, dict):
        raise DataError(
            str(mapping_path),
            None,
            f"top level must be an object image_id -> path, got {type(mapping).__name__}",
        )
    stories = []
    for story_id, steps in cleaned.items():
        try:
            stories.append(_read_story(root, cleaned_path, mapping_path, str(story_id), steps, mapping, check_images))
        except DataError as e:
            problems.report(e)
    return stories


def _read_story(
    root: Path,
    path: Path,
    mapping_path: Path,
    story_id: str,
    steps: Any,
    mapping: dict[str, Any],
    check_images: bool,
) -> VistStory:
    rec = f"story {story_id}"
    if not isinstance(steps, list) or not steps:
        raise DataError(str(path), rec, "a story must be a non-empty list of steps", "list the story's steps")
    parsed = []
    for i, st in enumerate(steps):
        srec = f"{rec} step {i}"
        if not isinstance(st, dict):
            raise DataError(str(path), srec, f"a step must be an object, got {type(st).__name__}")
        missing = [k for k in ("caption", "image_id", "sequence_index") if k not in st]
        if missing:
            raise DataError(
                str(path),
                srec,
                f"missing field(s) {', '.join(missing)}",
                "give caption, image_id, sequence_index",
            )
        caption, image_id, index = st["caption"], st["image_id"], st["sequence_index"]
        if not isinstance(caption, str):
            raise DataError(str(path), srec, f"caption must be a string, got {type(caption).__name__}")
        if not isinstance(image_id, str):
            raise DataError(
                str(path), srec, f"image_id must be a string, got {type(image_id).__name__}", "quote the id"
            )
        if not isinstance(index, int) or isinstance(index, bool):
            raise DataError(str(path), srec, f"sequence_index must be an integer, got {type(index).__name__}")
        if not caption.strip():
            raise DataError(str(path), srec, "empty caption", "give the step its story sentence")
        if image_id not in mapping:
            raise DataError(
                str(path),
                srec,
                f"image_id {image_id!r} is not in {mapping_path.name}",
                "add it to the mapping",
            )
        rel = mapping[image_id]
        if not isinstance(rel, str):
            raise DataError(str(mapping_path), f"image {image_id}", f"path must be a string, got {type(rel).__name__}")
        image = resolve_inside(root, rel, mapping_path, f"{srec} (image {image_id})")
        if check_images:
            check_image(image, path, f"{srec} (image {image_id})")
        parsed.append(VistStep(caption.strip(), image_id, image, index))
    indices = sorted(s.sequence_index for s in parsed)
    if indices != list(range(len(parsed))):
        raise DataError(str(path), rec, f"sequence_index values must be 0..{len(parsed) - 1}, got {indices}")
    return VistStory(story_id, tuple(sorted(parsed, key=lambda s: s.sequence_index)))


def write_vist(
    root: Path, split: str, stories: dict[str, list[dict[str, Any]]], mapping: dict[str, str]
) -> tuple[Path, Path]:
    """Write the two JSON files atomically (the mapping first, so a reader never sees dangling ids)."""
    cleaned_path, mapping_path = vist_files(root, split)
    atomic_write_json(mapping_path, mapping)
    atomic_write_json(cleaned_path, stories)
    return cleaned_path, mapping_path
