"""Run folders: ``runs/<task>/<model>/<name>-<hash>/`` with run.json, samples.jsonl, images/, metrics.json,
per_sample.jsonl. A run is complete only when all of them exist and run.json says so.

While generating, every finished sample is appended as one JSON line to ``samples.rank<r>.jsonl`` (flushed
and fsynced, one file per process so ranks never interleave writes) and its images are written atomically
to ``images/``. A crash loses at most the sample being written; a torn last line is detected and dropped
on resume. ``finalize`` merges the shards into ``samples.jsonl`` in sample order.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mg5bench.data.io import atomic_write_bytes, atomic_write_json, atomic_write_text

RUN_FILES = ("run.json", "samples.jsonl", "metrics.json", "per_sample.jsonl")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(sample_id: str) -> str:
    """A file-name-safe, collision-free form of a sample id (readable prefix + short hash)."""
    import hashlib

    stem = _SAFE.sub("_", sample_id)[:80]
    return f"{stem}-{hashlib.sha256(sample_id.encode()).hexdigest()[:8]}"


class RunStore:
    """One run folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.images = self.root / "images"

    # --- state -----------------------------------------------------------------------------

    def is_complete(self) -> bool:
        if not all((self.root / f).exists() for f in RUN_FILES) or not self.images.is_dir():
            return False
        try:
            return bool(json.loads((self.root / "run.json").read_text()).get("complete"))
        except (OSError, ValueError):
            return False

    def shard_path(self, rank: int) -> Path:
        return self.root / f"samples.rank{rank}.jsonl"

    def done(self) -> dict[str, dict[str, Any]]:
        """Finished samples from every shard (and a previous merged file), by id. A torn final line
        (the process died mid-write) is cut off so later appends start on a clean line."""
        out: dict[str, dict[str, Any]] = {}
        paths = sorted(self.root.glob("samples.rank*.jsonl"))
        if (self.root / "samples.jsonl").exists():
            paths.insert(0, self.root / "samples.jsonl")
        for path in paths:
            data = path.read_bytes()
            good = data[: data.rfind(b"\n") + 1]
            if len(good) != len(data):
                with open(path, "r+b") as f:
                    f.truncate(len(good))
            for line in good.decode("utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    out[str(rec["id"])] = rec
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
        """Append one finished sample to this rank's shard (flush + fsync: it survives a crash)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.shard_path(rank), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finalize(self, order: Iterable[str]) -> Path:
        """Merge the shards into samples.jsonl in sample order (atomic), then remove the shards."""
        done = self.done()
        order = list(order)
        missing = [i for i in order if i not in done]
        if missing:
            raise RuntimeError(f"{self.root}: {len(missing)} sample(s) not generated yet, e.g. {missing[:3]}")
        atomic_write_text(self.root / "samples.jsonl", "".join(json.dumps(done[i], ensure_ascii=False) + "\n"
                                                             for i in order))  # fmt: skip
        for shard in self.root.glob("samples.rank*.jsonl"):
            shard.unlink()
        return self.root / "samples.jsonl"

    def write_run_json(self, info: Mapping[str, Any]) -> None:
        atomic_write_json(self.root / "run.json", dict(info))
