"""Convert the official VIST story-in-sequence (SIS) release into the MiniGPT-5 VIST layout.

SIS: top-level ``annotations``, a list of one-element lists, each ``{story_id, photo_flickr_id, text,
original_text, worker_arranged_photo_order, storylet_id, album_id}``; images ``<photo_flickr_id>.jpg``
or ``.png``. Stories with a missing image are left out and listed in the report, never dropped silently.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.files import atomic_write_json
from mg5bench.data.io import Problems, check_text
from mg5bench.data.vist import JsonObject, load_json, show_id, write_vist

REQUIRED = ("story_id", "photo_flickr_id", "text", "worker_arranged_photo_order")
IMAGE_EXTENSIONS = (".jpg", ".png")


@dataclass
class ConversionReport:
    """What a conversion did: counts, stories left out for missing images, bad annotations skipped."""

    split: str
    stories_in: int = 0
    stories_written: int = 0
    images_copied: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plain_name(value: str) -> bool:
    """A photo id or split becomes a file name: no separators, no '..', nothing unprintable."""
    return bool(value) and value.isprintable() and not any(s in value for s in ("/", "\\", ".."))


def _find_image(images_dir: Path, photo_id: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        p = images_dir / f"{photo_id}{ext}"
        if p.is_file():
            return p
    return None


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard link (no extra space) or else copy, through a temp name so ``dst`` is never half written."""
    if dst.exists() and os.path.samefile(src, dst):  # re-run, or images_dir is the output folder
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _story_of(item: Any) -> str | None:
    """The story a (possibly malformed) annotation belongs to, so a bad step can drop its story."""
    ann = item[0] if isinstance(item, list) and item else item
    sid = ann.get("story_id") if isinstance(ann, dict) else None
    if isinstance(sid, int) and not isinstance(sid, bool):
        sid = str(sid)
    return sid if isinstance(sid, str) else None


def _parse_annotation(path: Path, rec: str, item: Any) -> tuple[str, int, str, str]:
    """(story_id, order, photo id, text) of one annotation, or a DataError saying what is wrong."""
    if not isinstance(item, list) or len(item) != 1 or not isinstance(item[0], dict):
        raise DataError(str(path), rec, "an annotation must be a one-element list holding an object")
    ann = item[0]
    if isinstance(ann, JsonObject) and ann.conflicts():
        raise DataError(str(path), rec, f"key(s) {ann.conflicts()} given twice with different values")
    missing = [k for k in REQUIRED if k not in ann]
    if missing:
        raise DataError(str(path), rec, f"missing field(s) {', '.join(missing)}")
    story_id, photo, text = ann["story_id"], ann["photo_flickr_id"], ann["text"]
    order = ann["worker_arranged_photo_order"]
    for name, value in (("story_id", story_id), ("photo_flickr_id", photo), ("text", text)):
        if not isinstance(value, str):
            raise DataError(str(path), rec, f"{name} must be a string, got {type(value).__name__} {value!r}"[:300])
    if not isinstance(order, int) or isinstance(order, bool):
        raise DataError(str(path), rec, f"worker_arranged_photo_order must be an integer, got {order!r}"[:300])
    if not _plain_name(photo):
        raise DataError(str(path), rec, f"photo_flickr_id {photo!r} cannot be a file name"[:300])
    if not text.strip():
        raise DataError(str(path), rec, "empty text", "every step needs its story sentence")
    check_text(text, path, rec)
    return story_id, order, photo, text.strip()


def convert_vist_sis(
    src_json: Path, images_dir: Path, dst: Path, split: str | None = None, *, problems: Problems | None = None
) -> ConversionReport:
    """Group SIS annotations into stories, link/copy their images, write the MiniGPT-5 files and a report
    (``<split>_conversion_report.json``), so the benchmark can run on data from the official release. A story with
    another number of steps than a VIST story has goes through ``problems`` like a bad annotation; a conversion
    that would write no story at all is an error and writes nothing."""
    from mg5bench.tasks import VIST_STEPS

    problems = problems if problems is not None else Problems()
    first_problem = len(problems)
    src_json, images_dir, dst = Path(src_json), Path(images_dir), Path(dst)
    split = split if split is not None else src_json.name.split(".")[0]
    if not _plain_name(split):
        raise ConfigError(f"split name {split!r} cannot be used in file names; pass --split")
    if not images_dir.is_dir():
        raise DataError(str(images_dir), None, "images folder not found", "pass the folder of <photo id>.jpg files")
    data = load_json(src_json, "VIST SIS file")
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataError(str(src_json), None, "expected a top-level object with an 'annotations' list",
                        "pass the story-in-sequence JSON of the official VIST release")  # fmt: skip
    if "annotations" in data.conflicts():
        raise DataError(str(src_json), None, "'annotations' is given twice", "keep one list")

    stories: dict[str, dict[int, tuple[str, str]]] = {}  # story -> order -> (photo, text), first-seen order
    bad_stories: set[str] = set()
    for i, item in enumerate(data["annotations"]):
        sid = _story_of(item)
        rec = f"annotation {i}" + (f" (story {show_id(sid)})" if sid is not None else "")
        try:
            story_id, order, photo, text = _parse_annotation(src_json, rec, item)
            steps = stories.setdefault(story_id, {})
            if order in steps:
                raise DataError(str(src_json), rec, f"duplicate worker_arranged_photo_order {order}",
                                "each photo of a story needs its own position")  # fmt: skip
            steps[order] = (photo, text)
        except DataError as e:
            problems.report(e)
            if sid is not None:  # the story is left out whole rather than written with a gap
                stories.setdefault(sid, {})
                bad_stories.add(sid)

    for story_id, steps in stories.items():
        if story_id not in bad_stories and len(steps) != VIST_STEPS:
            problems.report(DataError(str(src_json), f"story {show_id(story_id)}", f"{len(steps)} steps, but a VIST "
                                      f"story has {VIST_STEPS}", f"give the story all {VIST_STEPS} annotations, or "
                                      "leave it out (--skip-bad lists it)"))  # fmt: skip
            bad_stories.add(story_id)
    report = ConversionReport(split=split, stories_in=len(stories))
    report.skipped = [e.to_dict() for e in problems.items[first_problem:]]
    cleaned: dict[str, list[dict[str, Any]]] = {}
    mapping: dict[str, str] = {}
    found: dict[str, Path | None] = {}
    for story_id, steps in stories.items():
        if story_id in bad_stories:
            continue
        ordered = [steps[k] for k in sorted(steps)]
        for photo, _ in ordered:
            if photo not in found:
                found[photo] = _find_image(images_dir, photo)
        lost = sorted({photo for photo, _ in ordered if found[photo] is None})
        if lost:
            report.missing.append({"story_id": story_id, "missing": lost})
            continue
        for photo, _ in ordered:
            src = found[photo]
            if photo not in mapping and src is not None:
                rel = f"{split}_images/{photo}{src.suffix}"
                _link_or_copy(src, dst / rel)
                mapping[photo] = rel
                report.images_copied += 1
        cleaned[story_id] = [
            {"caption": text, "image_id": photo, "sequence_index": k} for k, (photo, text) in enumerate(ordered)
        ]
    if not cleaned:
        why = (f"every story misses an image (e.g. story {show_id(report.missing[0]['story_id'])}: "
               f"{', '.join(report.missing[0]['missing'][:3])} not in {images_dir})" if report.missing and
               len(report.missing) == len(stories) - len(bad_stories) else "every story was left out")  # fmt: skip
        raise DataError(str(src_json), None, f"no story to write: 0 of {len(stories)} ({why}; {len(bad_stories)} "
                        "malformed)", "check IMAGES_DIR holds <photo id>.jpg files and the annotations are the "
                        "story-in-sequence release")  # fmt: skip
    write_vist(dst, split, cleaned, mapping)
    report.stories_written = len(cleaned)
    atomic_write_json(dst / f"{split}_conversion_report.json", report.to_dict())
    return report
