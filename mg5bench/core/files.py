"""Files written so that a crash or a full disk never leaves half a file: atomic writes (a temporary file in the same
folder, fsynced, then renamed), a failed write as one line naming the file and the fix, and output folders and files
checked before any work starts."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mg5bench.core.errors import DataError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_error(path: str | os.PathLike[str], e: OSError) -> DataError:
    """A failed write as a one-line error naming the file and the fix (a full disk or a file-size limit: free
    space and rerun, finished work is kept; anything else: choose a writable folder)."""
    if e.errno in FULL:
        fix = "free space on that disk (or raise the file-size limit) and rerun the same command: finished work is kept"
    elif e.errno == errno.EISDIR:
        fix = "a folder is in the way of that file: move the folder away and rerun"
    elif e.errno == errno.ENOTDIR:
        fix = "a part of that path is a file, not a folder: move it away or choose another folder"
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
    from mg5bench.core.errors import ConfigError

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
    from mg5bench.core.errors import ConfigError

    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a file name")
    check_output_folder(path.parent, what)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
