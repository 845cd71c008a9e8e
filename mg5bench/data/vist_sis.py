"""Convert the official VIST story-in-sequence (SIS) release into the MiniGPT-5 VIST layout.

SIS: top-level ``annotations``, a list of one-element lists, each ``{story_id, photo_flickr_id, text,
original_text, worker_arranged_photo_order, storylet_id, album_id}``; images ``<photo_flickr_id>.jpg``
or ``.png``. Stories with a missing image are left out and listed in the report, never dropped silently.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.data.io import Problems, atomic_write_json
from mg5bench.data.vist import load_json_strict, write_vist
from mg5bench.errors import DataError

REQUIRED = ("story_id", "photo_flickr_id", "text", "worker_arranged_photo_order")


@dataclass
class ConversionReport:
    split: str
    stories_in: int = 0
    stories_written: int = 0
    images_copied: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _find_image(images_dir: Path, photo_id: str) -> Path | None:
    for ext in (".jpg", ".png"):
        p = images_dir / f"{photo_id}{ext}"
        if p.is_file():
            return p
    return None


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def convert_vist_sis(
    src_json: Path, images_dir: Path, dst: Path, split: str | None = None, *, problems: Problems | None = None
) -> ConversionReport:
    """Group SIS annotations into stories, copy their images, write the MiniGPT-5 files + a report."""
    problems = problems if problems is not None else Problems()
    src_json, images_dir, dst = Path(src_json), Path(images_dir), Path(dst)
    split = split or src_json.name.split(".")[0]
    data = load_json_strict(src_json, "VIST SIS file", "key")
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataError(str(src_json), None, "expected a top-level object with an 'annotations' list",
                        "pass the story-in-sequence JSON of the official VIST release")  # fmt: skip
    stories: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    bad_stories: set[str] = set()
    for i, item in enumerate(data["annotations"]):
        rec = f"annotation {i}"
        try:
            if not isinstance(item, list) or len(item) != 1 or not isinstance(item[0], dict):
                raise DataError(str(src_json), rec, "each annotation must be a one-element list holding an object")
            ann = item[0]
            missing = [k for k in REQUIRED if k not in ann]
            if missing:
                raise DataError(str(src_json), rec, f"missing field(s) {', '.join(missing)}")
            story_id, photo, text = ann["story_id"], ann["photo_flickr_id"], ann["text"]
            order = ann["worker_arranged_photo_order"]
            rec = f"annotation {i} (story {story_id})"
            if not all(isinstance(v, str) for v in (story_id, photo, text)):
                raise DataError(str(src_json), rec, "story_id, photo_flickr_id and text must be strings")
            if not isinstance(order, int) or isinstance(order, bool):
                raise DataError(str(src_json), rec, f"worker_arranged_photo_order must be an integer, got {order!r}")
            if not text.strip():
                raise DataError(str(src_json), rec, "empty text", "every step needs its story sentence")
            if order in stories[story_id]:
                raise DataError(str(src_json), rec, f"duplicate step {order} in story {story_id}")
            stories[story_id][order] = {"photo": photo, "text": text.strip()}
        except DataError as e:
            problems.report(e)
            if (
                isinstance(item, list)
                and item
                and isinstance(item[0], dict)
                and isinstance(item[0].get("story_id"), str)
            ):
                bad_stories.add(item[0]["story_id"])
    report = ConversionReport(split=split, stories_in=len(stories))
    report.skipped = problems.to_list()
    cleaned: dict[str, list[dict[str, Any]]] = {}
    mapping: dict[str, str] = {}
    for story_id, steps in stories.items():
        if story_id in bad_stories:
            continue
        ordered = [steps[k] for k in sorted(steps)]
        found = {s["photo"]: _find_image(images_dir, s["photo"]) for s in ordered}
        lost = [p for p, f in found.items() if f is None]
        if lost:
            report.missing.append({"story_id": story_id, "missing": lost})
            continue
        for p, f in found.items():
            if p not in mapping:
                assert f is not None
                rel = f"{split}_images/{p}{f.suffix}"
                _link_or_copy(f, dst / rel)
                mapping[p] = rel
                report.images_copied += 1
        cleaned[story_id] = [
            {"caption": s["text"], "image_id": s["photo"], "sequence_index": k} for k, s in enumerate(ordered)
        ]
    dst.mkdir(parents=True, exist_ok=True)
    write_vist(dst, split, cleaned, mapping)
    report.stories_written = len(cleaned)
    atomic_write_json(dst / f"{split}_conversion_report.json", report.to_dict())
    return report
