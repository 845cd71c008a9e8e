"""Contamination check (``mg5bench data overlap``): how much of a test split a training source already holds.

Images are compared by a perceptual hash (``imagehash.phash``: 64 bits from the low frequencies of a 32x32
grayscale DCT) and by their decoded pixels; texts by word n-grams after the text metrics' tokenisation. Counts are
over the target's items: a target image or text counts once however many source items it matches.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.core.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Hamming distance (of 64 bits) up to which two images count as near-duplicates: on photographs, JPEG at quality 50
# and resizing move a phash by 0-2 bits while distinct photographs lie 20 or more bits apart (docs/world.md).
MAX_DISTANCE = 8
NGRAM = 8  # word n-gram length; a text shorter than this counts as contaminated only when duplicated whole
_TASK_SPLIT = re.compile(r"^(cc3m|vist|mmdialog)(?::([A-Za-z0-9_.-]+))?$")


@dataclass
class Side:
    """One side of the comparison: its images (id, path) and texts (id, text), ids relative to its root."""

    spec: str
    root: Path
    images: list[tuple[str, Path]]
    texts: list[tuple[str, str]]


def is_task_split(text: str) -> bool:
    """``vist``, ``vist:test``, ``cc3m:train``: a task split rather than a folder."""
    return bool(_TASK_SPLIT.match(text))


def read_task_split(spec: str, data: str | None, *, cache_dir: Path | None = None, progress: bool = True) -> Side:
    """Every image and text of one split of a task's data (``data`` as ``--data`` takes it; None = the embedded
    world), read with the format's reader: CC3M captions, VIST step narrations, MMDialog turn texts."""
    from mg5bench.tasks import get_task, present_splits, resolve_data, resolve_split

    m = _TASK_SPLIT.match(spec)
    if not m:
        raise ConfigError(f"{spec!r} is not a task split; use TASK[:SPLIT] with TASK one of cc3m, vist, mmdialog "
                          "(e.g. vist:test), or an existing folder")  # fmt: skip
    task = get_task(m[1])
    source = resolve_data(task, data, cache_dir=cache_dir, progress=progress)
    present = present_splits(task, source.root)
    if m[2] is not None and present and m[2] not in present:
        raise ConfigError(f"{spec}: {data or 'the embedded world'} has no {task.name} split {m[2]!r}; it has "
                          f"{', '.join(present)} (e.g. {task.name}:{present[0]})")  # fmt: skip
    split = resolve_split(task, source, m[2])
    root = source.root
    images: dict[str, Path] = {}
    texts: list[tuple[str, str]] = []
    for rid, text, paths in _records(task.format, root, split):
        if text.strip():
            texts.append((rid, text))
        for p in paths:
            images.setdefault(_rel(p, root), p)
    return Side(f"{task.name}:{split} of {data or 'synth'}", root, sorted(images.items()), texts)


def _records(fmt: str, root: Path, split: str) -> list[tuple[str, str, list[Path]]]:
    """(record id, text, image paths) of every record of a split."""
    if fmt == "cc3m":
        from mg5bench.data.cc3m import read_cc3m

        return [(r.id, r.caption, [r.image]) for r in read_cc3m(root, split)]
    if fmt == "vist":
        from mg5bench.data.vist import read_vist

        return [(f"{s.story_id}_{k}", st.caption, [st.image])
                for s in read_vist(root, split) for k, st in enumerate(s.steps)]  # fmt: skip
    from mg5bench.data.mmdialog import read_mmdialog

    return [(f"{c.conversation_id}_{i}", t.text, [Path(p) for p in t.images])
            for c in read_mmdialog(root, split) for i, t in enumerate(c.turns)]  # fmt: skip


def read_folder(folder: Path) -> Side:
    """A training source given as a folder: every image file below it, and the texts of every CC3M, VIST or
    MMDialog data file in it (all their splits; a world folder's three data sets included)."""
    from mg5bench.data.world_content import FOLDERS
    from mg5bench.tasks import get_task, present_splits

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(str(folder), None, "source folder not found" if not folder.exists() else "not a folder",
                        "pass an existing folder, or a task split such as cc3m:train")  # fmt: skip
    root = folder.resolve()
    images = sorted((_rel(p, root), p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    texts: list[tuple[str, str]] = []
    for base in [root, *(root / sub for sub in FOLDERS.values() if (root / sub).is_dir())]:
        for fmt in FOLDERS:
            for split in present_splits(get_task(fmt), base):
                prefix = _rel(base, root)
                for rid, text, _ in _records(fmt, base, split):
                    if text.strip():
                        texts.append((f"{prefix}:{fmt}:{split}:{rid}", text))
    return Side(str(folder), root, images, texts)


def _rel(path: Path, root: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def image_fingerprints(images: Sequence[tuple[str, Path]], *, desc: str = "hashing images",
                       progress: bool = True) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """(64-bit perceptual hashes as uint64, sha256 of each image's decoded RGB pixels and size) per image."""
    import imagehash
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    from mg5bench.data.io import open_image

    hashes = np.zeros(len(images), dtype=np.uint64)
    pixels: list[str] = []
    for i, (rid, path) in enumerate(tqdm(images, desc=desc, unit="image", disable=not progress, leave=False)):
        try:
            with open_image(path) as im:  # refused by its header when too large to decode
                rgb = im.convert("RGB")
        except DataError as e:
            raise DataError(str(path), rid, e.problem, e.fix) from None
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise DataError(str(path), rid, f"not a readable image ({e})", "replace the file or remove it") from None
        bits = imagehash.phash(rgb).hash.flatten()  # 8x8 booleans, row by row: the bits of str(hash), in order
        hashes[i] = np.packbits(bits).view(">u8")[0]
        pixels.append(hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest())
    return hashes, pixels


def nearest(target: np.ndarray, source: np.ndarray, chunk: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """For each target hash, the smallest Hamming distance to a source hash and the first source index at it."""
    best = np.full(len(target), 65, dtype=np.int64)
    where = np.full(len(target), -1, dtype=np.int64)
    for start in range(0, len(source), chunk):
        d = np.bitwise_count(target[:, None] ^ source[None, start : start + chunk]).astype(np.int64)
        if d.shape[1] == 0:
            continue
        j = d.argmin(1)
        dj = d[np.arange(len(target)), j]
        better = dj < best
        best[better], where[better] = dj[better], j[better] + start
    return best, where


def tokens(text: str) -> tuple[str, ...]:
    """Lower-cased words and single punctuation marks, as the text metrics tokenise (``metrics.text.word_tokens``)."""
    from mg5bench.metrics.text import word_tokens

    return tuple(word_tokens(text))


def ngrams(toks: tuple[str, ...], n: int) -> set[tuple[str, ...]]:
    return {toks[i : i + n] for i in range(len(toks) - n + 1)}


def overlap(
    source: Side, target: Side, *, max_distance: int = MAX_DISTANCE, n: int = NGRAM, examples: int = 5,
    progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Count the target's images and texts found in the source (see the module docstring); JSON-able."""
    if not 0 <= max_distance <= 64:
        raise ConfigError(f"--max-distance must be between 0 and 64 bits, got {max_distance}")
    if n < 1:
        raise ConfigError(f"--ngram must be at least 1, got {n}")
    s_hash, s_pix = image_fingerprints(source.images, desc="hashing source images", progress=progress)
    t_hash, t_pix = image_fingerprints(target.images, desc="hashing target images", progress=progress)
    dist, idx = nearest(t_hash, s_hash) if len(source.images) else (np.full(len(t_hash), 65), np.full(len(t_hash), -1))
    pix_index: dict[str, int] = {}
    for j, digest in enumerate(s_pix):
        pix_index.setdefault(digest, j)
    exact = [pix_index.get(d) for d in t_pix]
    near = dist <= max_distance
    image_examples = [
        {"target": target.images[i][0], "source": source.images[int(idx[i])][0], "distance": int(dist[i]),
         "pixel_identical": exact[i] is not None}
        for i in np.flatnonzero(near)[:examples]
    ]  # fmt: skip
    # texts: whole duplicates (after tokenisation) and shared n-grams
    s_tokens = [tokens(t) for _, t in source.texts]
    whole: dict[tuple[str, ...], int] = {}
    grams: dict[tuple[str, ...], int] = {}
    for j, toks in enumerate(s_tokens):
        whole.setdefault(toks, j)
        for g in ngrams(toks, n):
            grams.setdefault(g, j)
    dup = ngram_hit = 0
    text_examples = []
    for rid, text in target.texts:
        toks = tokens(text)
        j_whole = whole.get(toks)
        j_gram = j_whole if len(toks) < n else next((grams[g] for g in sorted(ngrams(toks, n)) if g in grams), None)
        dup += j_whole is not None
        ngram_hit += j_gram is not None
        if j_gram is not None and len(text_examples) < examples:
            text_examples.append({"target": rid, "text": text, "source": source.texts[j_gram][0],
                                  "source_text": source.texts[j_gram][1], "whole": j_whole is not None})  # fmt: skip

    def share(count: int, total: int) -> float | None:
        return count / total if total else None

    n_img, n_txt = len(target.images), len(target.texts)
    n_exact, n_near = sum(e is not None for e in exact), int(near.sum())
    return {
        "source": {"spec": source.spec, "root": str(source.root), "images": len(source.images),
                   "texts": len(source.texts)},
        "target": {"spec": target.spec, "root": str(target.root), "images": n_img, "texts": n_txt},
        "settings": {"image_hash": "imagehash.phash, 64 bits", "max_distance": max_distance,
                     "text_tokens": "mg5bench.metrics.text.word_tokens", "ngram": n},
        "images": {
            "pixel_identical": {"count": n_exact, "share": share(n_exact, n_img)},
            "near_duplicate": {"count": n_near, "share": share(n_near, n_img)},
            "distance_histogram": {str(d): int((dist == d).sum()) for d in range(max_distance + 1)},
            "examples": image_examples,
        },
        "texts": {
            "duplicate": {"count": dup, "share": share(dup, n_txt)},
            "ngram": {"count": ngram_hit, "share": share(ngram_hit, n_txt)},
            "examples": text_examples,
        },
    }  # fmt: skip


def format_overlap(report: dict[str, Any]) -> str:
    """The printed summary: counts, shares and a few examples."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    s, t, im, tx, cfg = (report[k] for k in ("source", "target", "images", "texts", "settings"))
    lines = [
        f"source: {s['spec']} ({s['images']} images, {s['texts']} texts)",
        f"target: {t['spec']} ({t['images']} images, {t['texts']} texts)",
        f"images: {im['pixel_identical']['count']} of {t['images']} ({pct(im['pixel_identical']['share'])}) "
        f"pixel-identical to a source image; {im['near_duplicate']['count']} "
        f"({pct(im['near_duplicate']['share'])}) near-duplicates (phash Hamming distance <= {cfg['max_distance']} "
        "of 64 bits)",
    ]
    lines += [f"  e.g. {e['target']} ~ {e['source']} (distance {e['distance']})" for e in im["examples"]]
    lines.append(
        f"texts: {tx['duplicate']['count']} of {t['texts']} ({pct(tx['duplicate']['share'])}) duplicated whole in "
        f"the source; {tx['ngram']['count']} ({pct(tx['ngram']['share'])}) share a word {cfg['ngram']}-gram with it "
        f"(texts under {cfg['ngram']} tokens: whole duplicates)"
    )
    lines += [f"  e.g. {e['target']}: {_clip(e['text'])!r} ~ {e['source']}" for e in tx["examples"]]
    return "\n".join(lines)


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
