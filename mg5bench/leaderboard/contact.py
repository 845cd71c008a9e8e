"""``contact_sheet.png`` in a run folder: per sample, its context (images and the last text), the target and the
output side by side, every image enlarged (nearest neighbour, so 48-pixel scenes stay crisp), so a reader sees what
a run drew without opening its files one by one. Drawn with Pillow's built-in font: the same run gives the same
bytes."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CELL = 144  # pixels per enlarged image
PAD = 6
TEXT_W = 220


def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default()


def _thumb(path: str | None, size: int = CELL) -> Any:
    from PIL import Image

    if path is None or not Path(path).is_file():
        im = Image.new("RGB", (size, size), (235, 235, 235))
        from PIL import ImageDraw

        d = ImageDraw.Draw(im)
        d.line([(0, 0), (size, size)], fill=(200, 80, 80), width=2)
        d.text((6, size // 2 - 6), "no image", fill=(120, 0, 0), font=_font())
        return im
    from mg5bench.data.io import open_image

    with open_image(path) as src:  # refused by its header when too large to decode
        return src.convert("RGB").resize((size, size), Image.NEAREST)


def _text_block(draw: Any, xy: tuple[int, int], text: str, width_chars: int = 34, max_lines: int = 9) -> None:
    lines = textwrap.wrap(text, width_chars)[:max_lines] or [""]
    for i, line in enumerate(lines):
        draw.text((xy[0], xy[1] + 13 * i), line, fill=(20, 20, 20), font=_font())


def contact_sheet(rows: Sequence[dict[str, Any]], title: str) -> bytes:
    """``rows``: per sample {"id", "context_images": [paths], "context_text", "target_image", "target_text",
    "output_image", "output_text"}. Returns PNG bytes."""
    from PIL import Image, ImageDraw

    n_ctx = max([len(r["context_images"]) for r in rows] + [0])
    small = CELL // 2
    ctx_w = max(n_ctx * (small + 2), 0)
    col_x = [PAD, PAD + ctx_w + TEXT_W + PAD, PAD + ctx_w + TEXT_W + PAD + CELL + TEXT_W + PAD]
    width = col_x[2] + CELL + TEXT_W + PAD
    head = 40
    row_h = CELL + 2 * PAD
    sheet = Image.new("RGB", (width, head + row_h * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 6), title, fill=(0, 0, 0), font=_font())
    for x, label in zip(col_x, ("context (images, then the current text)", "target", "output"), strict=True):
        draw.text((x, 24), label, fill=(90, 90, 90), font=_font())
    for i, r in enumerate(rows):
        y = head + i * row_h + PAD
        if i % 2:
            draw.rectangle([0, y - PAD, width, y - PAD + row_h], fill=(247, 247, 247))
        for k, p in enumerate(r["context_images"]):
            sheet.paste(_thumb(p, small), (col_x[0] + k * (small + 2), y))
        draw.text((col_x[0], y + small + 4), r["id"], fill=(90, 90, 90), font=_font())
        _text_block(draw, (col_x[0] + ctx_w + 4, y), r["context_text"], 34, 10)
        sheet.paste(_thumb(r["target_image"]), (col_x[1], y))
        _text_block(draw, (col_x[1] + CELL + 4, y), r["target_text"])
        sheet.paste(_thumb(r["output_image"]), (col_x[2], y))
        _text_block(draw, (col_x[2] + CELL + 4, y), r["output_text"] or "(no text)")
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def sample_rows(folder: Path, sset: Any, n: int, images: Mapping[str, Sequence[Path]] | None = None
                ) -> list[dict[str, Any]]:  # fmt: skip
    """The first ``n`` stored samples of a run folder as contact-sheet rows (image paths absolute). Output images
    are ``images`` (checked by the report, ``scoring.stored_images``) or else checked here the same way: only files
    inside the run folder and the data folder are drawn."""
    from mg5bench.runs.store import RunStore
    from mg5bench.scoring.predictions import output_roots, stored_images

    store = RunStore(Path(folder))
    done = store.done()
    ids = [s.id for s in sset.samples[:n] if s.id in done]
    if images is None or any(i not in images for i in ids):
        images = stored_images(store.root, ids, output_roots(store.root, sset))
    rows = []
    for s in sset.samples[:n]:
        rec = done.get(s.id)
        if rec is None:
            break
        out = rec["output"]
        img = str(images[s.id][0]) if images[s.id] else None
        texts = [seg.value for seg in s.context if seg.is_text]
        rows.append({
            "id": s.id,
            "context_images": [seg.value for seg in s.context if seg.is_image],
            "context_text": texts[-1] if texts else "",
            "target_image": next((seg.value for seg in s.target if seg.is_image), None),
            "target_text": " ".join(seg.value for seg in s.target if seg.is_text) or str(s.meta.get("caption") or ""),
            "output_image": img,
            "output_text": " ".join(seg.get("text", "") for seg in out if "text" in seg).strip(),
        })  # fmt: skip
    return rows


def write_contact_sheet(record: Any, sset: Any, n: int = 20) -> Path:
    """Write ``contact_sheet.png`` (the first ``n`` samples) into the run folder, atomically."""
    from mg5bench.core.files import atomic_write_bytes

    rows = sample_rows(record.folder, sset, n, record.images or None)
    title = f"{record.label or record.model}: {record.task} {record.split}, first {len(rows)} samples ({record.rel})"
    path = Path(record.folder) / "contact_sheet.png"
    atomic_write_bytes(path, contact_sheet(rows, title))
    return path
