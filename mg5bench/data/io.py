"""Shared file helpers: atomic writes, strict UTF-8 reads, safe relative paths, image checks, and
the ``Problems`` collector that decides whether a bad record raises or is skipped (and listed)."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.errors import DataError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_error(path: str | os.PathLike[str], e: OSError) -> DataError:
    """A failed write as a one-line error naming the file and the fix (a full disk or a file-size limit: free
    space and rerun, finished work is kept; anything else: choose a writable folder)."""
    if e.errno in FULL:
        fix = "free space on that disk (or raise the file-size limit) and rerun the same command: finished work is kept"
    else:
        fix = "choose a folder you can write to"
    return DataError(str(path), None, f"cannot write: {e.strerror or e}", fix)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file. A failed write
    (disk full, read-only folder) leaves the old file as it was and is a one-line DataError."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise write_error(path, e) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def check_output_folder(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Before any work: ``path`` must be a folder that exists or can be created, and be writable (probed with a
    temporary file in it or in its nearest existing parent, so nothing is created here). A one-line ConfigError
    otherwise; this also catches a full disk or read-only file system before hours of work are lost."""
    from mg5bench.errors import ConfigError

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder; pass a folder (it is created if missing)")
    probe_in = path
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ConfigError(f"{what} {path}: {probe_in} is a file, so the folder cannot be created; pass another path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mg5bench-probe.", dir=probe_in)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot write in {probe_in} ({e.strerror or e}); pass a folder you can "
                          "write to (with free space)") from None  # fmt: skip
    return path


def check_output_file(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Before any work: ``path`` must not be a folder, and its folder must be writable (``check_output_folder``)."""
    from mg5bench.errors import ConfigError

    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a file name")
    check_output_folder(path.parent, what)
    return path


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
        with warnings.catch_warnings():  # an image past PIL's pixel limit is refused, never decoded
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(image) as im:
                im.verify()
            with Image.open(image) as im:  # verify() does not decode pixels; load() does
                im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(
            str(path_for_error),
            record,
            f"image {image} is too large to decode safely (a decompression bomb?): {e}",
            f"use an image of at most {Image.MAX_IMAGE_PIXELS} pixels",
        ) from None
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
