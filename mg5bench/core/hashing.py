"""Every content hash the suite keys things by, in one place, so that two modules never hash the same thing in
two ways: files (weights, predictions), checkpoint folders, whole trees (a synthetic world), data sets (content
fingerprints through the on-disk ``HashCache``) and specs (canonical JSON of a run or a scoring key). Standard
library only (platformdirs for the cache folder): hashing never imports torch."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

CHECKPOINT_PATTERNS = ("*.safetensors", "*.json", "*.txt", "*.model")
# written beside the weights by the model-card tools; they describe a checkpoint, they are not part of it
NOT_IDENTITY = frozenset({"README.md", "eval_val.json"})


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
    """Hash of a checkpoint folder: its weight and config files (``patterns``; the model card and its evaluation,
    ``NOT_IDENTITY``, left out so re-writing a card does not change the model's identity and with it every stored
    run's key), as sorted relative paths + each file's sha256."""
    path = Path(path)
    h = hashlib.sha256()
    # os.walk follows linked subfolders (Path.rglob does not before Python 3.13), so a part that is a symlink
    # (a candidate set linking the shipped t2i/) is hashed by its content like a copy of it, not left out
    found = (Path(d) / n for d, _, names in os.walk(path, followlinks=True) for n in names
             if n not in NOT_IDENTITY and any(fnmatch.fnmatch(n, p) for p in patterns))  # fmt: skip
    for f in sorted({f for f in found if f.is_file()}):
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


def user_cache_dir() -> Path:
    """The user cache root (``platformdirs``, honouring XDG_CACHE_HOME): worlds, feature and hash caches."""
    from platformdirs import user_cache_dir as _dir

    return Path(_dir("mg5bench"))


def _stream_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# A cached hash is trusted only while (size, mtime_ns, inode) are unchanged; a file whose mtime is this close to
# the moment it was hashed is not cached at all (on a file system with coarse timestamps a second write within the
# same tick would keep the mtime: git's "racy clean" problem).
RACY_NS = 2_000_000_000
_LOADED: dict[str, tuple[tuple[int, int, int], dict[str, list[Any]]]] = {}  # in-process copy of each cache file


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class HashCache:
    """Content sha256 of files, cached on disk per directory (``<cache>/hashes/<hash of the folder>.json``) by
    (path, size, mtime_ns, inode): a re-run stats unchanged files instead of reading them, and any change to one
    of the four re-reads the file. A cache file that fails to load is deleted with a one-line note and rebuilt;
    a cache that cannot be written (read-only cache folder) only costs time."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.root = (Path(cache_dir) if cache_dir is not None else user_cache_dir()) / "hashes"
        self._dirs: dict[str, dict[str, list[Any]]] = {}
        self._dirty: set[str] = set()
        self.hashed = 0  # files read (cache misses)
        self.cached = 0  # files answered from the cache

    def _file(self, folder: str) -> Path:
        return self.root / f"{sha256_bytes(folder)[:24]}.json"

    def _entries(self, folder: str) -> dict[str, list[Any]]:
        if folder in self._dirs:
            return self._dirs[folder]
        path = self._file(folder)
        entries: dict[str, list[Any]] = {}
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is not None:
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            hit = _LOADED.get(str(path))
            if hit is not None and hit[0] == key:
                entries = dict(hit[1])
            else:
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    ok = isinstance(data, dict) and data.get("dir") == folder and isinstance(data.get("files"), dict)
                    if not ok:
                        raise ValueError("not a hash cache of this folder")
                    entries = {k: v for k, v in data["files"].items()
                               if isinstance(v, list) and len(v) == 4 and isinstance(v[3], str)}  # fmt: skip
                    _LOADED[str(path)] = (key, dict(entries))
                except (OSError, ValueError, RecursionError) as e:
                    from mg5bench.core.notes import note

                    note(f"{path}: hash cache unreadable ({str(e)[:80]}); deleted, the files are hashed again")
                    path.unlink(missing_ok=True)
                    entries = {}
        self._dirs[folder] = entries
        return entries

    def sha256(self, path: str | Path) -> str:
        """Content sha256 of ``path`` (a symlink is followed: its target's bytes and identity count). An absolute
        ``str`` is taken as it is (callers pass normalised paths; this runs once per file of a data set)."""
        full = path if isinstance(path, str) and path.startswith("/") else os.path.abspath(path)
        folder, name = os.path.split(full)
        entries = self._entries(folder)
        key = _stat_key(os.stat(full))
        hit = entries.get(name)
        if hit is not None and hit[:3] == key:
            self.cached += 1
            return str(hit[3])
        digest = _stream_sha256(full)
        self.hashed += 1
        after = os.stat(full)
        if _stat_key(after) == key and time.time_ns() - after.st_mtime_ns > RACY_NS:
            entries[name] = [*key, digest]
            self._dirty.add(folder)
        elif name in entries:
            del entries[name]
            self._dirty.add(folder)
        return digest

    def many(self, paths: Iterable[str | Path]) -> dict[str, str]:
        """{str(path): sha256} for every path, then the cache saved."""
        out = {str(p): self.sha256(p) for p in paths}
        self.save()
        return out

    def save(self) -> None:
        """Write the changed per-folder caches atomically (a failure to write is ignored: it only costs time)."""
        for folder in sorted(self._dirty):
            path = self._file(folder)
            if not path.exists():
                self._prune()
            text = json.dumps({"dir": folder, "files": self._dirs[folder]}, separators=(",", ":"))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, path)
                st = path.stat()
                _LOADED[str(path)] = ((st.st_size, st.st_mtime_ns, st.st_ino), dict(self._dirs[folder]))
            except OSError:
                with contextlib.suppress(OSError, UnboundLocalError):
                    os.unlink(tmp)
        self._dirty.clear()

    def _prune(self, keep: int = 256) -> None:
        """Past ``keep`` cache files, drop those of folders that no longer exist (temporary data folders)."""
        try:
            files = list(self.root.glob("*.json"))
        except OSError:
            return
        if len(files) <= keep:
            return
        for f in files:
            try:
                with open(f, encoding="utf-8") as fh:
                    head = fh.read(4096)
                folder = json.loads(head[: head.index(',"files":')] + "}")["dir"]
                if not os.path.isdir(folder):
                    f.unlink()
            except (OSError, ValueError, KeyError, TypeError):
                f.unlink(missing_ok=True)


FINGERPRINT_VERSION = "content-v2"


def data_fingerprint(files: Sequence[Path], images: Sequence[str | Path], cache_dir: str | Path | None = None) -> str:
    """What a split was read from: the annotation files' names and bytes, and each referenced image's name and
    content sha256 (through ``HashCache``: unchanged files are not read again). Replacing or swapping images of
    the same size changes it; moving the data folder does not."""
    h = hashlib.sha256(FINGERPRINT_VERSION.encode() + b"\0")
    for f in files:
        h.update(Path(f).name.encode() + b"\0" + hashlib.sha256(Path(f).read_bytes()).digest())
    unique = sorted({str(p) for p in images})
    digests = HashCache(cache_dir).many(unique)
    for img in unique:
        h.update(os.path.basename(img).encode() + b"\0" + digests[img].encode())
    return h.hexdigest()[:16]


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace, no NaN) of a spec: equal specs give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(obj: Any, length: int = 12) -> str:
    """Short hash of a spec's canonical JSON: the ``-<hash>`` of run and score folder names."""
    return sha256_bytes(canonical_json(obj))[:length]
