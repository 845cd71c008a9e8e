"""Every content hash the suite keys things by, in one place, so that two modules never hash the same thing in
two ways: files (weights, predictions), checkpoint folders, whole trees (a synthetic world) and specs (canonical
JSON of a run or a scoring key). Standard library only: hashing never imports torch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

CHECKPOINT_PATTERNS = ("*.safetensors", "*.json", "*.txt", "*.model")


def sha256_bytes(data: bytes | str) -> str:
    """Hex sha256 of bytes (a str is hashed as UTF-8)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, memoised on (path, size, mtime): weights are hashed once per process."""
    st = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def sha256_folder(path: str | Path, patterns: Sequence[str] = CHECKPOINT_PATTERNS) -> str:
    """Hash of a checkpoint folder: its weight and config files (``patterns``, README.md left out so a re-written
    model card does not change the model's identity), as sorted relative paths + each file's sha256."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted({f for p in patterns for f in path.rglob(p) if f.is_file() and f.name != "README.md"})
    for f in files:
        h.update(str(f.relative_to(path)).encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def sha256_tree(root: str | Path, exclude: Sequence[str] = ()) -> str:
    """Hash of every file under ``root`` (relative POSIX path + bytes, sorted): a whole data tree such as a
    synthetic world, whatever the file types."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in exclude):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def data_fingerprint(files: Sequence[Path], images: Sequence[str | Path]) -> str:
    """What a split was read from: the annotation files' names and bytes, and each referenced image's name and
    size (hashing every image's bytes would make each run read the whole data set)."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).name.encode() + b"\0" + hashlib.sha256(Path(f).read_bytes()).digest())
    for img in sorted({str(p) for p in images}):
        p = Path(img)
        h.update(p.name.encode() + b"\0" + str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace, no NaN) of a spec: equal specs give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(obj: Any, length: int = 12) -> str:
    """Short hash of a spec's canonical JSON: the ``-<hash>`` of run and score folder names."""
    return sha256_bytes(canonical_json(obj))[:length]
