"""The generation store: ``runs/<task>/<model>/<settings>-<hash>/``, one folder per generation key.

    run.json              what the folder is (the key and everything resolved from it) and what it holds
    samples.jsonl         one line per generated sample {"id", "output": [segments], "meta"}, in sample order
    images/               the generated images (paths in samples.jsonl are relative to the run folder)
    scores/<name>-<hash>/ one folder per scoring: metrics.json + per_sample.jsonl (see ``scoring.score_run``)
    .lock                 held (flock) by the ``mg5bench run`` working on the folder; names its pid and host
    quarantine.jsonl      lines that failed validation on resume, with where they were and why (if any)

The key covers only what changes a sample's output (model, resolved generation settings, batch size, task,
data, seed, device type), never the limit or anything about scoring: a larger ``--limit`` adds samples to the
same folder and any number of scorings sit beside one set of generations.

While generating, every finished sample is appended as one JSON line to ``samples.rank<r>.jsonl`` (flushed and
fsynced; one file per process so ranks never interleave writes) and its images are written atomically to
``images/``. A crash loses at most the sample being written. On resume (``recover``, under the lock) every line
of every file is validated: a torn, malformed or otherwise invalid line, or a sample whose image is missing, is
moved to ``quarantine.jsonl`` (one note names it) and its sample generated again; nothing valid is dropped.
``finalize`` merges everything into ``samples.jsonl`` (atomically) in sample order and removes the shards it
merged, never one that changed since it was read. A stored sample is never rewritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from mg5bench.data.io import host_name, pid_alive

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(sample_id: str) -> str:
    """A file-name-safe, collision-free form of a sample id (readable prefix + short hash)."""
    import hashlib

    stem = _SAFE.sub("_", sample_id)[:80]
    return f"{stem}-{hashlib.sha256(sample_id.encode()).hexdigest()[:8]}"


def _records(path: Path) -> tuple[list[tuple[int, bytes]], bytes]:
    """(line number, bytes) of the complete lines of a JSON-lines file, and the torn tail ('' if none)."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    lines = [(n, line) for n, line in enumerate(data[:cut].split(b"\n")[:-1], start=1)]
    return lines, data[cut:]


def check_record(line: bytes, ids: set[str] | None = None) -> tuple[dict[str, Any] | None, str]:
    """A stored sample line -> (record, "") or (None, what is wrong with it): UTF-8 JSON object with a string
    ``id`` (of the split, when ``ids`` is given) and an ``output`` list of valid segments."""
    from mg5bench.core.sample import Segment

    try:
        rec = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1})"
    except json.JSONDecodeError as e:
        return None, f"malformed JSON: {e.msg} at column {e.colno}"
    except RecursionError:
        return None, "JSON nested too deeply"
    if not isinstance(rec, dict):
        return None, f"not a JSON object ({type(rec).__name__})"
    if not isinstance(rec.get("id"), str):
        return None, "no string 'id'"
    if ids is not None and rec["id"] not in ids:
        return None, f"id {rec['id']!r} is not a sample of this run's split"
    if not isinstance(rec.get("output"), list):
        return None, "no 'output' list"
    try:
        for seg in rec["output"]:
            Segment.from_json(seg)
    except ConfigError as e:
        return None, f"bad segment: {e}"
    return rec, ""


class RunLock:
    """``<run>/.lock``: an exclusive ``flock`` held while one ``mg5bench run`` works on the folder, with the
    holder's pid, host and start time written in it for the messages. The kernel drops the flock when the holder
    dies (even by kill -9), so a lock left by a dead process is stale by construction: it is taken over with a
    note. Where flock is not supported (some network file systems) the recorded pid decides, on the same host."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self.fd: int | None = None

    def holder(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError, RecursionError):
            return {}

    @staticmethod
    def describe(h: Mapping[str, Any]) -> str:
        if not h:
            return "another process"
        return f"pid {h.get('pid')} on host {h.get('host')} (since {h.get('started')})"

    def _try(self, fd: int) -> bool:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:  # no flock here (ENOLCK, EOPNOTSUPP): the recorded pid decides
            h = self.holder()
            if not h.get("pid") or h.get("pid") == os.getpid():
                return True
            return h.get("host") == host_name() and not pid_alive(int(h["pid"]))

    def acquire(self, wait: bool = True, poll: float = 0.25) -> None:
        """Take the lock; held by a live process: wait for it (a one-line note first) or, with ``wait=False``, a
        one-line ConfigError naming the holder and the fix."""
        from mg5bench.core.notes import note

        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        noted = False
        try:
            while not self._try(fd):
                h = self.holder()
                if not wait:
                    raise ConfigError(f"{self.folder}: another 'mg5bench run' is generating this run ("
                                      f"{self.describe(h)}, lock file {self.path}); wait for it to finish and rerun "
                                      "the same command (without --no-wait it waits)")  # fmt: skip
                if not noted:
                    note(f"{self.folder}: another 'mg5bench run' is generating this run ({self.describe(h)}); "
                         "waiting for it to finish (what it stores is reused)")  # fmt: skip
                    noted = True
                time.sleep(poll)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        stale = self.holder()
        if stale.get("pid") and stale.get("pid") != os.getpid():
            note(f"{self.path}: took over a stale lock left by {self.describe(stale)}, which is gone")
        info = {"pid": os.getpid(), "host": host_name(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)

    def release(self) -> None:
        """Empty the file (a clean exit leaves no holder named) and drop the flock. The file stays: removing it
        would let a waiter hold a lock on a file that is gone."""
        if self.fd is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunStore:
    """One run folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.images = self.root / "images"
        self.scores = self.root / "scores"
        self.run_json = self.root / "run.json"
        self.samples = self.root / "samples.jsonl"
        self.quarantine = self.root / "quarantine.jsonl"
        self._read: dict[Path, tuple[int, int, int]] = {}  # shard -> (size, mtime_ns, inode) when last read
        self.invalid: list[str] = []  # what ``done`` left out: "<file> line <n>: <problem>"

    # --- reading -----------------------------------------------------------------------------

    def read_info(self) -> dict[str, Any]:
        """run.json, or a one-line error saying this is not a run folder."""
        if self.run_json.exists() and not self.run_json.is_file():
            raise DataError(str(self.run_json), None, "is a folder, not the run's description file",
                            "move it away and rerun the same 'mg5bench run' (its samples are kept)")  # fmt: skip
        if not self.run_json.is_file():
            fix = "pass a folder printed by 'mg5bench run', e.g. runs/vist/minigpt5/<settings>-<hash>"
            raise DataError(str(self.root), None, "not a run folder (no run.json)", fix)
        try:
            info = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as e:
            raise DataError(str(self.run_json), None, f"malformed JSON: {str(e)[:80]}",
                            "rerun the same 'mg5bench run' (its samples are kept)") from None  # fmt: skip
        spec, key = (info.get("spec"), info.get("key")) if isinstance(info, dict) else (None, None)
        ok = isinstance(spec, dict) and isinstance(key, dict) and isinstance(key.get("data_fingerprint"), str)
        if not ok or not all(isinstance(spec.get(k), str) for k in ("task", "split")):
            raise DataError(str(self.run_json), None, "not a run description (spec task/split or key missing)",
                            "rerun the same 'mg5bench run' (its samples are kept)")  # fmt: skip
        return info

    def shard_path(self, rank: int) -> Path:
        return self.root / f"samples.rank{rank}.jsonl"

    def _files(self) -> list[Path]:
        paths = sorted(self.root.glob("samples.rank*.jsonl"))
        return [self.samples, *paths] if self.samples.exists() else paths

    def done(self) -> dict[str, dict[str, Any]]:
        """Every stored sample (merged file and any shards), by id, read without changing anything: a line that
        fails ``check_record`` (torn by a crash, or damaged) is not a stored sample. The first record of an id
        wins: a stored sample is never replaced."""
        out: dict[str, dict[str, Any]] = {}
        self._read = {}
        self.invalid = []
        for path in self._files():
            try:
                st = path.stat()
                lines, _ = _records(path)
            except FileNotFoundError:  # merged away by a finishing run meanwhile
                continue
            self._read[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
            for n, line in lines:
                rec, problem = check_record(line)
                if rec is not None:
                    out.setdefault(rec["id"], rec)
                else:
                    self.invalid.append(f"{path.name} line {n}: {problem}")
        return out

    def stored_ids(self) -> set[str]:
        return set(self.done())

    def _image_missing(self, rec: Mapping[str, Any]) -> str:
        for seg in rec["output"]:
            if "image" in seg:
                p = Path(seg["image"])
                if not (p if p.is_absolute() else self.root / p).is_file():
                    return f"its image {seg['image']} is missing"
        return ""

    def recover(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Under the run's lock, before generating: validate every line of every file; move each bad line (torn,
        malformed, not a sample of ``ids``, an invalid segment, or a sample whose image is missing) to
        quarantine.jsonl with its file, line number and problem, rewrite that file without it (atomically) and
        say so in one note. Their samples count as not stored, so they are generated again. Returns the stored
        samples by id."""
        from mg5bench.core.notes import note

        known = set(ids)
        out: dict[str, dict[str, Any]] = {}
        moved: list[dict[str, Any]] = []
        rewrite: dict[Path, list[bytes]] = {}
        for path in self._files():
            lines, torn = _records(path)
            keep: list[bytes] = []
            bad = 0
            for n, line in lines:
                rec, problem = check_record(line, known)
                if rec is not None:
                    problem = self._image_missing(rec)
                if problem:
                    bad += 1
                    moved.append({"file": path.name, "line": n, "problem": problem,
                                  "text": line.decode("utf-8", errors="replace")})  # fmt: skip
                    continue
                keep.append(line + b"\n")
                if rec is not None:
                    out.setdefault(rec["id"], rec)
            if torn:
                bad += 1
                moved.append({"file": path.name, "line": len(lines) + 1, "problem": "torn last line (a write cut "
                              "short)", "text": torn.decode("utf-8", errors="replace")})  # fmt: skip
            if bad:
                rewrite[path] = keep
        if moved:
            with open(self.quarantine, "a", encoding="utf-8") as f:
                for m in moved:
                    f.write(json.dumps({**m, "moved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            for path, keep in rewrite.items():
                atomic_write_bytes(path, b"".join(keep))
            where = ", ".join(sorted({f"{m['file']} line {m['line']}" for m in moved})[:3])
            more = f" and {len(moved) - 3} more" if len(moved) > 3 else ""
            note(f"{self.root}: {len(moved)} stored line(s) failed validation ({where}{more}: {moved[0]['problem']}); "
                 f"moved to {self.quarantine}, their samples are generated again")  # fmt: skip
        for tmp in self.images.glob(".*.tmp") if self.images.is_dir() else ():
            tmp.unlink(missing_ok=True)  # an image write cut short by a crash (never renamed into place)
        return out

    # --- writing -----------------------------------------------------------------------------

    def save_image(self, sample_id: str, index: int, image: Any) -> Path:
        """PIL image -> images/<safe id>_<index>.png, atomically. Returns the absolute path."""
        import io

        buf = io.BytesIO()
        image.save(buf, format="PNG")
        path = (self.images / f"{safe_name(sample_id)}_{index}.png").resolve()
        atomic_write_bytes(path, buf.getvalue())
        return path

    def append(self, rank: int, record: Mapping[str, Any]) -> None:
        """Append one finished sample to this rank's shard (flush + fsync: it survives a crash). A failed write
        (disk full) is a one-line error; the torn line it may leave is quarantined on the next run."""
        from mg5bench.core.files import write_error

        path = self.shard_path(rank)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise write_error(path, e) from None

    def finalize(self, order: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Merge the merged file and the shards into samples.jsonl in ``order`` (the split's sample order;
        atomic), then remove each shard that is unchanged since it was read (one that grew meanwhile keeps its
        new lines for the next merge). Call it holding the run's lock. Returns the stored records by id."""
        done = self.done()
        read = dict(self._read)
        listed = set(order)
        order = [i for i in order if i in done]
        extra = sorted(set(done) - listed)
        if extra:
            fix = "rerun the same 'mg5bench run' command: it moves such lines to quarantine.jsonl"
            raise DataError(str(self.root), f"id {extra[0]}", "a stored sample is not in this split", fix)
        self._write_merged("".join(json.dumps(done[i], ensure_ascii=False) + "\n" for i in order))
        for shard, seen in read.items():
            if shard == self.samples:
                continue
            try:
                st = shard.stat()
            except FileNotFoundError:
                continue
            if (st.st_size, st.st_mtime_ns, st.st_ino) == seen:
                shard.unlink()
        return done

    def _write_merged(self, text: str) -> None:
        atomic_write_text(self.samples, text)

    def write_info(self, info: Mapping[str, Any]) -> None:
        atomic_write_json(self.run_json, dict(info))


def stored_prefix(order: Iterable[str], stored: set[str]) -> int:
    """How many samples from the start of ``order`` are all stored: the largest --limit the store covers."""
    n = 0
    for sid in order:
        if sid not in stored:
            break
        n += 1
    return n
