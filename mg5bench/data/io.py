"""Shared reading helpers: strict UTF-8 reads, size-capped YAML, safe relative paths, image checks, and the
``Problems`` collector that decides whether a bad record raises or is skipped (and listed). Writing files
(atomically, into checked output folders) is ``mg5bench.core.files``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.core.errors import DataError


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


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    """A small YAML configuration file (an axis, a plan), read safely: at most ``limits.MAX_CONFIG_BYTES``, strict
    UTF-8, ``yaml.SafeLoader`` (no Python objects) and no aliases (``*name``): a 500-byte file of nested aliases
    would otherwise expand into gigabytes. Every problem is a one-line DataError that quotes no line of the file."""
    import yaml

    from mg5bench.core.limits import MAX_CONFIG_BYTES

    class NoAliasLoader(yaml.SafeLoader):
        """PyYAML's safe loader refusing aliases (``*name``): a small file of nested aliases cannot expand in memory."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here", mark)
            return super().compose_node(parent, index)

    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
        raise DataError(str(path), None, f"{what} is {path.stat().st_size} bytes, more than the {MAX_CONFIG_BYTES} "
                        f"a {what} may have", f"pass the {what} itself, not another file")  # fmt: skip
    text = read_text_utf8(path, what)
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(e, "problem", None) or type(e).__name__
        raise DataError(str(path), where, f"malformed YAML: {problem}"[:200], f"write the {what} as YAML") from None


def is_url(text: str) -> bool:
    """Whether an image path is a URL (``http://...``, ``file:///...``, ``data:...``): images are local files."""
    import re

    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.\-]+://", text) or text[:5].lower() == "data:")


URL_FIX = "download the image and give its local path (URLs are not supported)"


def resolve_inside(root: Path, rel: str, path_for_error: Path, record: str) -> Path:
    """Resolve ``rel`` against ``root``; refuse anything that points outside the data folder."""
    if not isinstance(rel, str) or not rel:
        raise DataError(str(path_for_error), record, "image path is empty or not a string", "give a relative path")
    if is_url(rel):
        raise DataError(str(path_for_error), record, f"image path {rel[:80]!r} is a URL", URL_FIX)
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


def image_too_large(image: Path) -> str | None:
    """Why ``image`` must not be decoded (its header claims more than ``limits.MAX_IMAGE_PIXELS`` pixels), or None.
    Reads the header only: a 1 MB PNG can claim 64 million pixels, which would take gigabytes once decoded."""
    from PIL import Image

    from mg5bench.core.limits import MAX_IMAGE_PIXELS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged here by our own, lower limit
        try:
            with Image.open(image) as im:
                w, h = im.size
        except Image.DecompressionBombError:
            return "its header claims more pixels than even Pillow decodes (a decompression bomb?)"
    if w * h > MAX_IMAGE_PIXELS:
        return f"it is {w}x{h} = {w * h} pixels, more than the {MAX_IMAGE_PIXELS} an image may have"
    return None


def open_image(image: str | os.PathLike[str]) -> Any:
    """``PIL.Image.open`` for an image from a record or a data folder, refused (a DataError) before decoding when
    its header claims more than ``limits.MAX_IMAGE_PIXELS`` pixels. Use it as a context manager."""
    from PIL import Image

    from mg5bench.core.limits import MAX_IMAGE_PIXELS

    too_large = image_too_large(Path(image))
    if too_large:
        raise DataError(str(image), None, f"image is too large to decode safely: {too_large}",
                        f"use an image of at most {MAX_IMAGE_PIXELS} pixels (e.g. 4096x4096)")  # fmt: skip
    return Image.open(image)


def check_image(image: Path, path_for_error: Path, record: str) -> None:
    """Fail with a DataError if ``image`` is missing, too large (by its header, before decoding) or cannot be
    decoded."""
    if not image.is_file():
        raise DataError(str(path_for_error), record, f"image {image} is missing", "add the file or fix the path")
    from PIL import Image, UnidentifiedImageError

    from mg5bench.core.limits import MAX_IMAGE_PIXELS

    fix = f"use an image of at most {MAX_IMAGE_PIXELS} pixels (e.g. 4096x4096)"
    try:
        too_large = image_too_large(image)
        if too_large:
            raise DataError(str(path_for_error), record, f"image {image} is too large to decode safely: {too_large}",
                            fix)  # fmt: skip
        with warnings.catch_warnings():  # an image past PIL's pixel limit is refused, never decoded
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(image) as im:
                im.verify()
            with Image.open(image) as im:  # verify() does not decode pixels; load() does
                im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(str(path_for_error), record, f"image {image} is too large to decode safely (a "
                        f"decompression bomb?): {e}", fix) from None  # fmt: skip
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(
            str(path_for_error),
            record,
            f"image {image} is corrupt or unreadable ({e})",
            "replace the image file",
        ) from None


def check_text(text: str, path_for_error: str | os.PathLike[str], record: str | None, what: str = "text") -> str:
    """A text from a record, refused (one-line DataError) when it is longer than ``limits.MAX_TEXT_CHARS`` or
    holds a lone surrogate (JSON's ``\\ud800`` escapes decode to one; no encoder can write it, and the metrics'
    tokenizers fail on it). Returns ``text``."""
    from mg5bench.core.limits import MAX_TEXT_CHARS

    if len(text) > MAX_TEXT_CHARS:
        raise DataError(
            str(path_for_error),
            record,
            f"{what} is {len(text)} characters long, more than the {MAX_TEXT_CHARS} a text may have",
            f"shorten it to at most {MAX_TEXT_CHARS} characters",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(str(path_for_error), record, f"{what} holds a lone surrogate (U+{ord(text[e.start]):04X} at "
                        f"character {e.start}), which is not Unicode text", "write the text as valid UTF-8 (a "
                        "surrogate pair, or the character itself)") from None  # fmt: skip
    return text


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


def host_name() -> str:
    """This machine's name, recorded in lock and marker files so a stale one can be told from a live one."""
    import socket

    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is still running (a lock or marker holder)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def nan_to_none(obj: Any) -> Any:
    """NaN floats -> None, recursively (JSON has no NaN; a not-applicable value is written as null)."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {str(k): nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj
