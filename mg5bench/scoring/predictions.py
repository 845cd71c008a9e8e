"""Outputs to be scored, read and checked: a predictions file (one JSON line per sample ``{"id": ..., "output":
[segments]}``, a segment ``{"text": ...}`` or ``{"image": path}``, relative paths resolved against the file) and a
run folder's stored outputs. Every image path must resolve (symlinks followed) inside the folders it may come from;
every problem is a one-line DataError naming the file, the record and the fix."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.sample import Segment
from mg5bench.data.io import URL_FIX, check_image, check_text, is_url
from mg5bench.tasks import SampleSet

RERUN_FIX = "rerun its 'mg5bench run' command: it regenerates a sample whose image is missing, outside or unreadable"
MEDIA_FIX = "put the images under the predictions file's folder (or pass --media-root FOLDER) and use paths inside it"


def load_predictions(path: Path, known_ids: set[str], media_roots: Sequence[Path] = ()) -> dict[str, list[Segment]]:
    """Parse and check a predictions file; every problem is a one-line DataError. Image paths must resolve
    (symlinks followed) inside the file's folder or one of ``media_roots``."""
    from mg5bench.data.io import read_text_utf8

    path = Path(path)
    text = read_text_utf8(path, "predictions file")
    base = path.resolve().parent
    roots = [base, *(Path(r).resolve() for r in media_roots)]
    out: dict[str, list[Segment]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rec = f"line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                str(path), rec, f"malformed JSON: {e.msg} at column {e.colno}", "one JSON object per line"
            ) from None
        except RecursionError:
            raise DataError(str(path), rec, "JSON is nested too deeply", "one flat JSON object per line") from None
        if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("output"), list):
            got = "no 'output'" if isinstance(obj, dict) and "id" in obj and "output" not in obj else "another shape"
            raise DataError(str(path), rec, f"expected an object {{'id': ..., 'output': [segments]}}, got {got}",
                            "give every line its id and its output list (an empty list for no output)")  # fmt: skip
        sid = str(obj["id"])
        rec = f"line {n} (id {sid})"
        if sid not in known_ids:
            close = sorted(known_ids)[:3]
            raise DataError(str(path), rec, f"unknown sample id {sid!r} for this task and split",
                            f"ids look like {', '.join(close)}; check --task, --split and --data")  # fmt: skip
        if sid in out:
            raise DataError(str(path), rec, "duplicate id", "give one line per sample")
        out[sid] = output_segments(obj["output"], base, path, rec, roots)
    return out


PREDICTION_ROOTS = "the predictions folder and the --media-root folders"


def confined_image(value: str, base: Path, path: Path, rec: str, roots: Sequence[Path] | None,
                   inside: str = PREDICTION_ROOTS, fix: str = MEDIA_FIX) -> Path:  # fmt: skip
    """An image path of a record resolved against ``base`` (symlinks followed); with ``roots`` it must lie inside one
    of them. The refusal is the same words whether or not the file outside exists, so a record cannot probe the
    disk. A URL is refused: images are local files."""
    if is_url(value):
        raise DataError(str(path), rec, f"image path {value[:80]!r} is a URL", URL_FIX)
    img = Path(value)
    img = (img if img.is_absolute() else base / img).resolve()
    if roots is not None and not any(img.is_relative_to(r) for r in roots):
        raise DataError(str(path), rec, f"image path {value[:200]!r} is outside {inside}", fix)
    return img


def output_segments(output: Sequence[Any], base: Path, path: Path, rec: str,
                    roots: Sequence[Path] | None = None) -> list[Segment]:  # fmt: skip
    """One prediction's segments, image paths resolved against ``base`` and checked (``confined_image``, then
    ``check_image``), texts checked (``check_text``); errors name path + rec."""
    segs = []
    for seg in output:
        try:
            s = Segment.from_json(seg)
        except ConfigError as e:
            raise DataError(str(path), rec, str(e)) from None
        if s.is_text:
            check_text(s.value, path, rec)
        if s.is_image:
            img = confined_image(s.value, base, path, rec, roots)
            check_image(img, path, rec)
            s = Segment.image(str(img), s.role)
        segs.append(s)
    return segs


def output_roots(folder: Path, sset: SampleSet) -> list[Path]:
    """Where a run's stored images may lie: its own folder and the data folder (the gt model points at the ground
    truth), symlinks resolved."""
    return [Path(folder).resolve(), Path(sset.source.root).resolve()]


def stored_images(folder: Path, ids: Sequence[str], roots: Sequence[Path]) -> dict[str, list[Path]]:
    """The image files of a run folder's stored outputs of ``ids``, each confined to ``roots``, present and within
    the pixel limit by its header (nothing decoded): what a report may show of a run whose scoring was stored
    earlier, since a record or a symlink may have changed since. A problem is a one-line DataError."""
    from mg5bench.data.io import image_too_large
    from mg5bench.runs.store import RunStore

    store = RunStore(Path(folder))
    records = store.done()
    out: dict[str, list[Path]] = {}
    for sid in ids:
        rec = records.get(sid)
        if rec is None:
            raise DataError(str(store.samples), f"id {sid}", "not stored", "rerun its 'mg5bench run' command")
        paths = []
        for seg in rec["output"]:
            if isinstance(seg, dict) and isinstance(seg.get("image"), str):
                img = confined_image(seg["image"], store.root, store.samples, f"id {sid}", roots,
                                     "the run folder and the data folder", RERUN_FIX)  # fmt: skip
                shown = repr(seg["image"][:200])
                if not img.is_file():
                    raise DataError(str(store.samples), f"id {sid}", f"image {shown} is missing", RERUN_FIX)
                try:
                    too_large = image_too_large(img)
                except OSError as e:  # PIL's UnidentifiedImageError is an OSError
                    raise DataError(str(store.samples), f"id {sid}", f"image {shown} is unreadable ({e})"[:300],
                                    RERUN_FIX) from None  # fmt: skip
                if too_large:
                    raise DataError(str(store.samples), f"id {sid}", f"image {shown}: {too_large}", RERUN_FIX)
                paths.append(img)
        out[sid] = paths
    return out
