"""CC3M in the MiniGPT-5 layout: ``cc3m_<split>.tsv`` with header ``caption<TAB>image_path``,
image paths relative to the TSV's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mg5bench.data.io import Problems, atomic_write_text, check_image, read_text_utf8, resolve_inside
from mg5bench.errors import DataError

HEADER = "caption\timage_path"


@dataclass(frozen=True)
class CC3MRecord:
    """One caption-image pair. ``id`` is the image path without extension ("val/000007775")."""

    id: str
    caption: str
    image: Path
    line: int


def cc3m_file(root: Path, split: str) -> Path:
    return Path(root) / f"cc3m_{split}.tsv"


def read_cc3m(
    root: Path, split: str, *, problems: Problems | None = None, check_images: bool = True
) -> list[CC3MRecord]:
    """Read one split. File-level problems raise; bad rows go through ``problems``."""
    problems = problems if problems is not None else Problems()
    root = Path(root)
    tsv = cc3m_file(root, split)
    text = read_text_utf8(tsv, "CC3M TSV")
    lines = text.splitlines()
    if not lines or lines[0].rstrip("\r") != HEADER:
        got = lines[0][:60] if lines else "an empty file"
        raise DataError(str(tsv), "line 1", f"header must be 'caption<TAB>image_path', got {got!r}", "add the header")
    records: list[CC3MRecord] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        record = f"line {n}"
        fields = line.split("\t")
        if len(fields) != 2:
            problems.report(
                DataError(str(tsv), record, f"expected 2 tab-separated fields, got {len(fields)}",
                          "write 'caption<TAB>image_path' with no tab inside the caption")
            )  # fmt: skip
            continue
        caption, rel = fields[0].strip(), fields[1].strip()
        if not caption:
            problems.report(
                DataError(str(tsv), record, "empty caption", "give every image a caption or remove the row")
            )
            continue
        try:
            image = resolve_inside(root, rel, tsv, record)
            if check_images:
                check_image(image, tsv, record)
        except DataError as e:
            problems.report(e)
            continue
        rid = str(PurePosixPath(*Path(rel).parts).with_suffix(""))
        if rid in seen:
            problems.report(
                DataError(str(tsv), record, f"duplicate id {rid!r} (image already used on line {seen[rid]})",
                          "remove the repeated row")
            )  # fmt: skip
            continue
        seen[rid] = n
        records.append(CC3MRecord(rid, caption, image, n))
    return records


def write_cc3m(root: Path, split: str, rows: list[tuple[str, str]]) -> Path:
    """Write (caption, relative image path) rows atomically."""
    out = [HEADER]
    for caption, rel in rows:
        if "\t" in caption or "\n" in caption or "\r" in caption:
            raise ValueError(f"caption must not contain tabs or newlines: {caption!r}")
        out.append(f"{caption}\t{rel}")
    path = cc3m_file(root, split)
    atomic_write_text(path, "\n".join(out) + "\n")
    return path
