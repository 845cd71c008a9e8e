"""Shared file helpers: atomic writes, strict UTF-8 reads, safe relative paths, image checks, and
the ``Problems`` collector that decides whether a bad record raises or is skipped (and listed)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.errors import DataError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def read_text_utf8(path: Path, what: str = "file") -> str:
    """Read a whole file as strict UTF-8; a missing file or a bad byte is a DataError."""
    if not path.exists():
        raise DataError(str(path), None, f"{what} not found", "check the path")
    if not path.is_file():
        raise DataError(str(path), None, f"{what} is not a regular file", "pass the file, not a folder")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            str(path),
            f"line {line}",
            f"text is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
            "re-encode the file as UTF-8",
        ) from None


def resolve_inside(root: Path, rel: str, path_for_error: Path, record: str) -> Path:
    """Resolve ``rel`` against ``root``; refuse anything that points outside the data folder."""
    if not isinstance(rel, str) or not rel:
        raise DataError(str(path_for_error), record, "image path is empty or not a string", "give a relative path")
    candidate = Path(rel)
    resolved = (root / candidate).resolve()
    if candidate.is_absolute() or not resolved.is_relative_to(root.resolve()):
        raise DataError(
            str(path_for_error),
            record,
            f"image path {rel!r} points outside the data folder {root}",
            "use a path relative to the data folder, without '..'",
        )
    return resolved


def check_image(image: Path, path_for_error: Path, record: str) -> None:
    """Fail with a DataError if ``image`` is missing or cannot be decoded."""
    if not image.is_file():
        raise DataError(str(path_for_error), record, f"image {image} is missing", "add the file or fix the path")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            im.verify()
        with Image.open(image) as im:  # verify() does not decode pixels; load() does
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(
            str(path_for_error),
            record,
            f"image {image} is corrupt or unreadable ({e})",
            "replace the image file",
        ) from None


@dataclass
class Problems:
    """Where bad records go. ``skip_bad=False`` raises the first one; ``True`` records and skips it.

    Nothing is dropped silently: every skip is in ``items`` and ends up in the run manifest.
    """

    skip_bad: bool = False
    items: list[DataError] = field(default_factory=list)

    def report(self, err: DataError) -> None:
        if not self.skip_bad:
            raise err
        self.items.append(err)

    def __iter__(self) -> Iterator[DataError]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_list(self) -> list[dict[str, str | None]]:
        return [e.to_dict() for e in self.items]
