"""The generation store: ``runs/<task>/<model>/<settings>-<hash>/``, one folder per generation key.

    run.json              what the folder is (the key and everything resolved from it) and what it holds
    samples.jsonl         one line per generated sample {"id", "output": [segments], "meta"}, in sample order
    images/               the generated images (paths in samples.jsonl are relative to the run folder)
    scores/<name>-<hash>/ one folder per scoring: metrics.json + per_sample.jsonl (see ``scoring.score_run``)

The key covers only what changes a sample's output (model, resolved generation settings, batch size, task,
data, seed, device type), never the limit or anything about scoring: a larger ``--limit`` adds samples to the
same folder and any number of scorings sit beside one set of generations.

While generating, every finished sample is appended as one JSON line to ``samples.rank<r>.jsonl`` (flushed and
fsynced; one file per process so ranks never interleave writes) and its images are written atomically to
``images/``. A crash loses at most the sample being written; a torn last line is ignored when reading and cut
off before that rank appends again. ``finalize`` merges everything into ``samples.jsonl`` (atomically) in sample
order and removes the shards. A stored sample is never rewritten.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mg5bench.data.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from mg5bench.errors import DataError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(sample_id: str) -> str:
    """A file-name-safe, collision-free form of a sample id (readable prefix + short hash)."""
    import hashlib

    stem = _SAFE.sub("_", sample_id)[:80]
    return f"{stem}-{hashlib.sha256(sample_id.encode()).hexdigest()[:8]}"


def _complete_lines(path: Path) -> list[str]:
    """The complete (newline-terminated) lines of a JSON-lines file; a torn last line is left out."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()


class RunStore:
    """One run folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.images = self.root / "images"
        self.scores = self.root / "scores"
        self.run_json = self.root / "run.json"
        self.samples = self.root / "samples.jsonl"

    # --- reading -----------------------------------------------------------------------------

    def read_info(self) -> dict[str, Any]:
        """run.json, or a one-line error saying this is not a run folder."""
        if not self.run_json.is_file():
            fix = "pass a folder printed by 'mg5bench run', e.g. runs/vist/minigpt5/<settings>-<hash>"
            raise DataError(str(self.root), None, "not a run folder (no run.json)", fix)
        try:
            return json.loads(self.run_json.read_text())
        except ValueError as e:
            raise DataError(str(self.run_json), None, f"malformed JSON: {e}", "rerun the same 'mg5bench run'") from None

    def shard_path(self, rank: int) -> Path:
        return self.root / f"samples.rank{rank}.jsonl"

    def done(self) -> dict[str, dict[str, Any]]:
        """Every stored sample (merged file and any shards), by id. The first record of an id wins: a stored
        sample is never replaced."""
        out: dict[str, dict[str, Any]] = {}
        paths = sorted(self.root.glob("samples.rank*.jsonl"))
        if self.samples.exists():
            paths.insert(0, self.samples)
        for path in paths:
            for n, line in enumerate(_complete_lines(path), start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    fix = "delete the line (its sample is regenerated) or rerun with --force"
                    raise DataError(str(path), f"line {n}", f"malformed JSON: {e}", fix) from None
                out.setdefault(str(rec["id"]), rec)
        return out

    def stored_ids(self) -> set[str]:
        return set(self.done())

    # --- writing -----------------------------------------------------------------------------

    def save_image(self, sample_id: str, index: int, image: Any) -> Path:
        """PIL image -> images/<safe id>_<index>.png, atomically. Returns the absolute path."""
        import io

        buf = io.BytesIO()
        image.save(buf, format="PNG")
        path = (self.images / f"{safe_name(sample_id)}_{index}.png").resolve()
        atomic_write_bytes(path, buf.getvalue())
        return path

    def open_shard(self, rank: int) -> None:
        """Before this rank appends: cut a torn last line (a write cut short by a crash) off its own shard."""
        path = self.shard_path(rank)
        if path.exists():
            data = path.read_bytes()
            good = data.rfind(b"\n") + 1
            if good != len(data):
                with open(path, "r+b") as f:
                    f.truncate(good)

    def append(self, rank: int, record: Mapping[str, Any]) -> None:
        """Append one finished sample to this rank's shard (flush + fsync: it survives a crash)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.shard_path(rank), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finalize(self, order: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Merge the merged file and the shards into samples.jsonl in ``order`` (the split's sample order;
        atomic), then remove the shards. Returns the stored records by id."""
        done = self.done()
        order = [i for i in order if i in done]
        if len(order) != len(done):  # pragma: no cover - ids outside the split cannot be generated
            raise DataError(str(self.root), None, "holds samples that are not in this split", "rerun with --force")
        atomic_write_text(self.samples, "".join(json.dumps(done[i], ensure_ascii=False) + "\n" for i in order))
        for shard in self.root.glob("samples.rank*.jsonl"):
            shard.unlink()
        return done

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
