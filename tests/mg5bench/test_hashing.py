"""Content hashes and their per-file cache: a file is read once while its (path, size, mtime_ns, inode)
stay the same, and read again when any of them changes; a data fingerprint follows the bytes of the images, not
their names and sizes; a damaged cache file is deleted and rebuilt with a note."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mg5bench.core.hashing import RACY_NS, HashCache, data_fingerprint, sha256_bytes


def _old(path: Path, data: bytes, age_s: float = 30) -> Path:
    """Write ``data`` and date the file ``age_s`` seconds back (older than the racy window: cacheable)."""
    path.write_bytes(data)
    t = time.time_ns() - int(age_s * 1e9)
    os.utime(path, ns=(t, t))
    return path


def test_a_file_is_read_once_until_its_size_mtime_or_inode_changes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    f = _old(tmp_path / "a.png", b"abcd")
    first = HashCache(cache)
    assert first.many([f]) == {str(f): sha256_bytes(b"abcd")} and first.hashed == 1
    again = HashCache(cache)
    assert again.sha256(f) == sha256_bytes(b"abcd") and (again.hashed, again.cached) == (0, 1)
    # same size, same mtime, but another file put in its place (a new inode): read again
    st = f.stat()
    other = _old(tmp_path / "b.tmp", b"wxyz")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, f)
    third = HashCache(cache)
    assert third.sha256(f) == sha256_bytes(b"wxyz") and third.hashed == 1
    third.save()
    # rewritten in place (same inode, same size): the mtime moved, so it is read again
    with open(f, "r+b") as fh:
        fh.write(b"WXYZ")
    t = f.stat().st_mtime_ns - RACY_NS * 5
    os.utime(f, ns=(t, t))
    assert HashCache(cache).sha256(f) == sha256_bytes(b"WXYZ")


def test_a_just_written_file_is_not_cached(tmp_path: Path) -> None:
    """Within the racy window a second write could keep the mtime on a coarse-clock file system: never cached."""
    f = tmp_path / "fresh.png"
    f.write_bytes(b"x")
    hc = HashCache(tmp_path / "cache")
    hc.many([f])
    assert HashCache(tmp_path / "cache").many([f]) and not list((tmp_path / "cache" / "hashes").glob("*.json"))


def test_a_damaged_cache_file_is_deleted_and_rebuilt(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    f = _old(tmp_path / "a.png", b"abcd")
    HashCache(tmp_path / "cache").many([f])
    (cache_file,) = (tmp_path / "cache" / "hashes").glob("*.json")
    cache_file.write_text('{"dir": "' + str(tmp_path) + '", "files": ')  # cut short
    capfd.readouterr()
    hc = HashCache(tmp_path / "cache")
    assert hc.many([f]) == {str(f): sha256_bytes(b"abcd")} and hc.hashed == 1
    err = capfd.readouterr().err.strip()
    assert err.startswith("mg5bench: note: ") and "hash cache unreadable" in err and "\n" not in err
    assert json.loads(cache_file.read_text())["files"]["a.png"][3] == sha256_bytes(b"abcd")  # rebuilt


def test_the_fingerprint_follows_contents_not_names_and_sizes(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    ann = data / "ann.json"
    ann.write_text("{}")
    a, b = _old(data / "a.png", b"AAAA"), _old(data / "b.png", b"BBBB")
    cache = tmp_path / "cache"
    before = data_fingerprint([ann], [a, b], cache)
    os.replace(a, data / "t")  # swapped by renames: names, sizes and mtimes all as before
    os.replace(b, a)
    os.replace(data / "t", b)
    swapped = data_fingerprint([ann], [a, b], cache)
    assert swapped != before
    moved = tmp_path / "moved"
    os.replace(data, moved)  # the same files elsewhere: the same fingerprint
    assert data_fingerprint([moved / "ann.json"], [moved / "a.png", moved / "b.png"], cache) == swapped


def test_a_linked_subfolder_is_hashed_by_its_content_like_a_copy(tmp_path: Path) -> None:
    """A checkpoint folder whose part is a symlink (a candidate set linking the shipped t2i/) hashes like the same
    folder holding a copy; the linked part's bytes count, and README.md never does."""
    import hashlib
    import shutil

    from mg5bench.core.hashing import sha256_folder

    part = tmp_path / "shared" / "t2i"
    part.mkdir(parents=True)
    (part / "model.safetensors").write_bytes(b"weights")
    for name in ("copy", "link"):
        (tmp_path / name / "lm").mkdir(parents=True)
        (tmp_path / name / "lm" / "config.json").write_text("{}")
        (tmp_path / name / "README.md").write_text(name)
    shutil.copytree(part, tmp_path / "copy" / "t2i")
    (tmp_path / "link" / "t2i").symlink_to(part, target_is_directory=True)
    want = hashlib.sha256()
    for rel, data in (("lm/config.json", b"{}"), ("t2i/model.safetensors", b"weights")):
        want.update(rel.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode())
    assert sha256_folder(tmp_path / "copy") == sha256_folder(tmp_path / "link") == want.hexdigest()
    # a model card's evaluation written beside the weights (mg5bench.modelcards) is not part of the model either
    (tmp_path / "copy" / "eval_val.json").write_text('{"exact": 0.4}')
    assert sha256_folder(tmp_path / "copy") == want.hexdigest()
    (part / "model.safetensors").write_bytes(b"other weights")
    assert sha256_folder(tmp_path / "link") != want.hexdigest()
