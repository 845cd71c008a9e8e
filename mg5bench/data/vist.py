"""VIST in the MiniGPT-5 layout: ``<split>_cleaned.json`` (story_id -> steps ``{caption, image_id,
sequence_index}``) and ``<split>_image_mapping.json`` (image_id -> path relative to the folder)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import DataError
from mg5bench.core.files import atomic_write_json
from mg5bench.data.io import Problems, check_image, check_text, read_text_utf8, resolve_inside

STEP_KEYS = ("caption", "image_id", "sequence_index")


@dataclass(frozen=True)
class VistStep:
    """One step of a VIST story: its caption, its image id and resolved image file, its place in the story."""

    caption: str
    image_id: str
    image: Path
    sequence_index: int


@dataclass(frozen=True)
class VistStory:
    """One VIST story: its id and its steps in order."""

    story_id: str
    steps: tuple[VistStep, ...]


def vist_files(root: Path, split: str) -> tuple[Path, Path]:
    """(stories file, image mapping file) of a split, so callers never rebuild the names."""
    root = Path(root)
    return root / f"{split}_cleaned.json", root / f"{split}_image_mapping.json"


class JsonObject(dict):  # type: ignore[type-arg]
    """A parsed JSON object that remembers keys given more than once (``json`` keeps only the last),
    so that a repeated story id or image id is reported instead of silently overwritten."""

    duplicates: dict[str, list[Any]]

    def conflicts(self) -> list[str]:
        """Keys given more than once with different values (exact repeats are harmless)."""
        return [k for k, vs in self.duplicates.items() if any(v != vs[0] for v in vs)]


def _pairs(items: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject()
    dups: dict[str, list[Any]] = {}
    for k, v in items:
        if k in obj:
            dups.setdefault(k, [obj[k]]).append(v)
        obj[k] = v
    obj.duplicates = dups
    return obj


def load_json(path: Path, what: str) -> Any:
    """Parse a JSON file strictly (UTF-8, line/column on syntax errors); objects come back as
    ``JsonObject`` so duplicate keys stay visible."""
    text = read_text_utf8(path, what)
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        raise DataError(
            str(path), f"line {e.lineno} column {e.colno}", f"malformed JSON: {e.msg}", "fix the JSON syntax"
        ) from None
    except RecursionError:
        raise DataError(str(path), None, "JSON is nested too deeply", "check that this is the right file") from None


def show_id(value: str) -> str:
    """An id as it can appear inside a one-line message (quoted if it holds odd characters)."""
    return value if value and value.isprintable() else repr(value)


def read_vist(
    root: Path, split: str, *, problems: Problems | None = None, check_images: bool = True, steps: int | None = None
) -> list[VistStory]:
    """Read one split in file order. File-level problems raise; a story with any bad step (or, with ``steps``,
    another number of steps) goes through ``problems`` (raise by default, or skipped whole and listed with
    ``skip_bad``)."""
    problems = problems if problems is not None else Problems()
    root = Path(root)
    cleaned_path, mapping_path = vist_files(root, split)
    cleaned = load_json(cleaned_path, "VIST story file")
    mapping = load_json(mapping_path, "VIST image mapping")
    if not isinstance(cleaned, dict):
        raise DataError(
            str(cleaned_path),
            None,
            f"top level must be an object story_id -> steps, got {type(cleaned).__name__}",
            "pass the <split>_cleaned.json of the MiniGPT-5 VIST layout",
        )
    if not isinstance(mapping, dict):
        raise DataError(
            str(mapping_path),
            None,
            f"top level must be an object image_id -> path, got {type(mapping).__name__}",
            "pass the <split>_image_mapping.json of the MiniGPT-5 VIST layout",
        )
    ambiguous = set(mapping.conflicts())
    stories = []
    for story_id, story_steps in cleaned.items():
        if story_id in cleaned.duplicates:
            times = len(cleaned.duplicates[story_id])
            problems.report(
                DataError(
                    str(cleaned_path),
                    f"story {show_id(story_id)}",
                    f"duplicate story id (given {times} times)",
                    "give each story its own id",
                )
            )
            continue
        try:
            story = _read_story(root, (cleaned_path, mapping_path), story_id, story_steps, mapping, ambiguous,
                                check_images)  # fmt: skip
            if steps is not None and len(story.steps) != steps:
                raise DataError(str(cleaned_path), f"story {show_id(story_id)}", f"{len(story.steps)} steps, "
                                f"but a VIST story has {steps} (the task's protocol counts on it)",
                                f"give the story all {steps} steps, or leave it out (--skip-bad lists it)")  # fmt: skip
            stories.append(story)
        except DataError as e:
            problems.report(e)
    return stories


def _read_story(
    root: Path,
    files: tuple[Path, Path],
    story_id: str,
    steps: Any,
    mapping: dict[str, Any],
    ambiguous: set[str],
    check_images: bool,
) -> VistStory:
    path, mapping_path = files
    rec = f"story {show_id(story_id)}"
    if not isinstance(steps, list) or not steps:
        got = "an empty list" if isinstance(steps, list) else type(steps).__name__
        raise DataError(str(path), rec, f"a story must be a non-empty list of steps, got {got}")
    parsed = []
    for i, st in enumerate(steps):
        srec = f"{rec} step {i}"
        if not isinstance(st, dict):
            raise DataError(str(path), srec, f"a step must be an object, got {type(st).__name__}")
        if isinstance(st, JsonObject) and st.conflicts():
            raise DataError(str(path), srec, f"key(s) {st.conflicts()} given twice with different values")
        missing = [k for k in STEP_KEYS if k not in st]
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
                str(path), srec, f"image_id must be a string, got {type(image_id).__name__} {image_id!r}",
                "write the id in quotes, as in the image mapping",
            )  # fmt: skip
        if not isinstance(index, int) or isinstance(index, bool):
            raise DataError(str(path), srec, f"sequence_index must be an integer, got {type(index).__name__} {index!r}")
        if not caption.strip():
            raise DataError(str(path), srec, "empty caption", "give the step its story sentence")
        check_text(caption, path, srec, "caption")
        irec = f"{srec} (image {show_id(image_id)})"
        if image_id not in mapping:
            raise DataError(str(path), irec, f"image_id is not in {mapping_path.name}", "add it to the mapping")
        if image_id in ambiguous:
            raise DataError(str(mapping_path), irec, "image_id is given twice with different paths", "keep one")
        rel = mapping[image_id]
        if not isinstance(rel, str):
            raise DataError(str(mapping_path), irec, f"image path must be a string, got {type(rel).__name__}")
        image = resolve_inside(root, rel, mapping_path, irec)
        if check_images:
            check_image(image, path, irec)
        parsed.append(VistStep(caption.strip(), image_id, image, index))
    indices = sorted(s.sequence_index for s in parsed)
    if indices != list(range(len(parsed))):
        raise DataError(
            str(path), rec, f"sequence_index values must be 0..{len(parsed) - 1} once each, got {indices}",
            "number the steps from 0",
        )  # fmt: skip
    return VistStory(story_id, tuple(sorted(parsed, key=lambda s: s.sequence_index)))


def write_vist(
    root: Path, split: str, stories: dict[str, list[dict[str, Any]]], mapping: dict[str, str]
) -> tuple[Path, Path]:
    """Write the two JSON files atomically (the mapping first, so a reader never sees dangling ids)."""
    cleaned_path, mapping_path = vist_files(root, split)
    atomic_write_json(mapping_path, mapping)
    atomic_write_json(cleaned_path, stories)
    return cleaned_path, mapping_path
