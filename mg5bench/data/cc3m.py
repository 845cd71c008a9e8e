"""CC3M in the MiniGPT-5 layout: ``cc3m_<split>.tsv`` with header ``caption<TAB>image_path``,
image paths relative to the TSV's folder."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from mg5bench.core.errors import DataError
from mg5bench.core.files import atomic_write_text
from mg5bench.data.io import Problems, check_image, check_text, read_text_utf8, resolve_inside

HEADER = "caption\timage_path"


@dataclass(frozen=True)
class CC3MRecord:
    """One caption-image pair. ``id`` is the image path without extension ("val/000007775")."""

    id: str
    caption: str
    image: Path
    line: int


def cc3m_file(root: Path, split: str) -> Path:
    """Where a split lives, so callers never rebuild the name themselves."""
    return Path(root) / f"cc3m_{split}.tsv"


def split_lines(text: str) -> list[str]:
    """Split on '\\n' only (dropping a '\\r' before it): ``str.splitlines`` would also cut at U+2028,
    U+0085 and other characters that may legitimately appear inside a caption or a JSON string."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _record_id(rel: str) -> str:
    """The id is the normalised relative path without extension, so two spellings of one image
    ("val/a.jpg", "val/./a.jpg") are recognised as the same record."""
    norm = posixpath.normpath(rel.replace("\\", "/"))
    root, ext = posixpath.splitext(norm)
    return root if ext else norm


def read_cc3m(
    root: Path, split: str, *, problems: Problems | None = None, check_images: bool = True
) -> list[CC3MRecord]:
    """Read one split. File-level problems (missing, not UTF-8, bad header) always raise; bad rows go
    through ``problems`` (raise by default, or skipped and listed with ``skip_bad``)."""
    problems = problems if problems is not None else Problems()
    root = Path(root)
    tsv = cc3m_file(root, split)
    text = read_text_utf8(tsv, "CC3M TSV").removeprefix("\ufeff")
    lines = split_lines(text)
    if lines[0] != HEADER:
        got = repr(lines[0][:60]) if lines[0] else "an empty line"
        raise DataError(
            str(tsv),
            "line 1",
            f"header must be 'caption<TAB>image_path', got {got}",
            "make the first line the header",
        )
    records: list[CC3MRecord] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines[1:], start=2):
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
            check_text(caption, tsv, record, "caption")
            image = resolve_inside(root, rel, tsv, record)
            rid = _record_id(rel)
            if rid in seen:
                raise DataError(
                    str(tsv), record, f"duplicate id {rid!r} (already used on line {seen[rid]})",
                    "name each image once",
                )  # fmt: skip
            if check_images:
                check_image(image, tsv, record)
        except DataError as e:
            problems.report(e)
            continue
        seen[rid] = n
        records.append(CC3MRecord(rid, caption, image, n))
    return records


def write_cc3m(root: Path, split: str, rows: list[tuple[str, str]]) -> Path:
    """Write (caption, relative image path) rows atomically; refuse what the format cannot hold."""
    out = [HEADER]
    for caption, rel in rows:
        for what, value in (("caption", caption), ("image path", rel)):
            if "\t" in value or "\n" in value or "\r" in value:
                raise ValueError(f"{what} must not contain tabs or newlines: {value!r}")
        out.append(f"{caption}\t{rel}")
    path = cc3m_file(root, split)
    atomic_write_text(path, "\n".join(out) + "\n")
    return path
