"""Checkpoint files checked before anything is loaded: a ``.safetensors`` header is read (8 bytes of length, then
JSON) and every tensor's dtype, shape and byte range is checked against the file's size, so a file cut short by
an interrupted copy is a one-line error naming the file in milliseconds, not a traceback from deep inside a
loader half a minute later. Standard library only."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mg5bench.core.errors import DataError

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}  # fmt: skip
MAX_HEADER = 100 * 1024 * 1024  # the format's own limit


def safetensors_header(path: str | Path, fix: str = "copy the file again, or retrain it") -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file ({name: {dtype, shape, data_offsets}}, metadata left out), checked
    against the file: a header that parses, known dtypes, byte ranges that match the shapes, lie inside the file,
    do not overlap and leave no byte unaccounted for. Any failure is a DataError naming the file and ``fix``."""
    path = Path(path)

    def bad(problem: str) -> DataError:
        return DataError(str(path), None, problem, fix)

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise bad(f"not a safetensors file: {size} bytes, shorter than its 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER or 8 + n > size:
                raise bad(f"damaged or cut short: its header claims {n} bytes, the file has {size}")
            raw = f.read(n)
    except OSError as e:
        raise bad(f"cannot read ({e.strerror or e})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("damaged: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise bad("damaged: its header is not a JSON object")
    data = size - 8 - n
    spans = []
    tensors: dict[str, Any] = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(t, dict) and t.get("dtype") in DTYPE_BYTES and isinstance(t.get("shape"), list)
        ok = ok and all(isinstance(d, int) and d >= 0 for d in t["shape"]) and isinstance(t.get("data_offsets"), list)
        if not ok or len(t["data_offsets"]) != 2 or not all(isinstance(o, int) for o in t["data_offsets"]):
            raise bad(f"damaged: tensor {name!r} has a malformed header entry")
        start, end = t["data_offsets"]
        need = math.prod(t["shape"]) * DTYPE_BYTES[t["dtype"]]
        if end - start != need or start < 0:
            raise bad(f"damaged: tensor {name!r} of shape {t['shape']} {t['dtype']} needs {need} bytes, its header "
                      f"gives {end - start}")  # fmt: skip
        if end > data:
            raise bad(f"cut short: tensor {name!r} ends at byte {end} of the data, the file holds {data} bytes of "
                      "tensor data")  # fmt: skip
        spans.append((start, end))
        tensors[name] = t
    spans.sort()
    at = 0
    for start, end in spans:
        if start != at:
            raise bad("damaged: its tensors overlap or leave gaps")
        at = end
    if at != data:
        raise bad(f"damaged: {data - at} bytes after the last tensor")
    return tensors


def check_safetensors(
    path: str | Path,
    *,
    required: Iterable[str] = (),
    prefixes: Iterable[str] = (),
    count: int | None = None,
    fix: str = "copy the file again, or retrain it",
) -> dict[str, Any]:
    """``safetensors_header`` plus the keys a loader expects: every name in ``required``, at least one name
    starting with each of ``prefixes``, and exactly ``count`` tensors when given."""
    tensors = safetensors_header(path, fix)
    missing = [k for k in required if k not in tensors]
    missing += [f"{p}*" for p in prefixes if not any(k.startswith(p) for k in tensors)]
    if missing:
        raise DataError(str(path), None, f"not the expected checkpoint: no tensor {', '.join(missing[:3])}", fix)
    if count is not None and len(tensors) != count:
        raise DataError(str(path), None, f"holds {len(tensors)} tensors, its config says {count}", fix)
    return tensors


def check_folder(folder: str | Path, fix: str = "copy the folder again, or retrain it") -> int:
    """``safetensors_header`` of every ``.safetensors`` file under ``folder``; returns how many were checked."""
    files = sorted(Path(folder).rglob("*.safetensors"))
    for f in files:
        safetensors_header(f, fix)
    return len(files)
