"""The scene oracle: parse an image of the synthetic world back into objects, and compare scenes.

Programmatic, not learned, so the suite can check its learned metrics (CLIP score, FID) against exact
attribute accuracy. Robust to mild blur, noise and JPEG: objects are found as connected regions that
differ from the background, coloured by the nearest palette entry of their most saturated pixels, and
cut at half contrast before their shape is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from mg5bench.data.scenes import BACKGROUND, GRID, PALETTE

ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "size", "cell")
_NAMES = list(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float64)  # (6, 3)


@dataclass(frozen=True)
class OracleSettings:
    """Thresholds, in units of a 48 px canvas (scaled to the image's size)."""

    foreground_distance: float = 60.0  # RGB distance from the background that counts as "object"
    min_area_48: float = 12.0  # smaller blobs are noise
    big_side_48: float = 10.0  # bounding-box side >= this (scaled) means "big" (small=8, big=12)
    square_fill: float = 0.88  # fill ratio above which a non-triangle is a square
    triangle_taper: float = 0.62  # top-third width / bottom-third width below which it is a triangle


def _as_array(image: Any) -> np.ndarray:
    arr = image if isinstance(image, np.ndarray) else np.asarray(image.convert("RGB"))  # array or PIL
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    return arr.astype(np.float64)


def parse_image(image: Any, settings: OracleSettings = OracleSettings()) -> list[dict[str, Any]]:
    """Objects found in an RGB image (array or PIL): shape, colour, size, cell, bounding box, area."""
    arr = _as_array(image)
    h, w, _ = arr.shape
    scale = w / 48.0
    bg = np.asarray(BACKGROUND, dtype=np.float64)
    diff = arr - bg
    dist = np.sqrt((diff**2).sum(-1))
    fg = dist > settings.foreground_distance
    labels, n = ndimage.label(fg)
    objects = []
    min_area = settings.min_area_48 * scale * scale
    for idx in range(1, n + 1):
        region = labels == idx
        if region.sum() < min_area:
            continue
        # colour: nearest palette entry to the mean of the most saturated half of the region
        region_dist = dist[region]
        core = arr[region][region_dist >= np.median(region_dist)]
        mean = core.mean(0)
        colour_idx = int(np.argmin(((_RGB - mean) ** 2).sum(-1)))
        colour = _RGB[colour_idx]
        # half-contrast mask along the bg -> colour axis, inside a padded box around the region
        ys, xs = np.nonzero(region)
        y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, h)
        x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, w)
        axis = colour - bg
        alpha = (diff[y0:y1, x0:x1] @ axis) / float(axis @ axis)
        mask = (alpha > 0.5) & region[y0:y1, x0:x1]
        if mask.sum() < min_area:
            continue
        my, mx = np.nonzero(mask)
        by0, by1, bx0, bx1 = my.min(), my.max() + 1, mx.min(), mx.max() + 1
        bh, bw = by1 - by0, bx1 - bx0
        box = mask[by0:by1, bx0:bx1]
        fill = box.sum() / float(bh * bw)
        third = max(bh // 3, 1)
        top_w = box[:third].sum(1).mean()
        bottom_w = box[-third:].sum(1).mean()
        taper = top_w / max(bottom_w, 1e-9)
        if taper < settings.triangle_taper:
            shape = "triangle"
        elif fill > settings.square_fill:
            shape = "square"
        else:
            shape = "circle"
        side = max(bh, bw)
        size = "big" if side >= settings.big_side_48 * scale else "small"
        cy = y0 + by0 + bh / 2
        cx = x0 + bx0 + bw / 2
        row = min(int(cy / (h / GRID)), GRID - 1)
        col = min(int(cx / (w / GRID)), GRID - 1)
        objects.append(
            {
                "shape": shape,
                "colour": _NAMES[colour_idx],
                "size": size,
                "cell": row * GRID + col,
                "bbox": [int(x0 + bx0), int(y0 + by0), int(bw), int(bh)],
                "area": int(mask.sum()),
                "fill": round(float(fill), 3),
            }
        )
    return objects


def match_objects(intended: Sequence[dict[str, Any]], detected: Sequence[dict[str, Any]]) -> list[int | None]:
    """For each intended object, the index of the detected object it is matched to (None: unmatched): the
    Hungarian assignment with the fewest attribute mismatches, the matching ``compare_scene`` scores."""
    out: list[int | None] = [None] * len(intended)
    if intended and detected:
        cost = np.zeros((len(intended), len(detected)))
        for a, io in enumerate(intended):
            for b, do in enumerate(detected):
                cost[a, b] = sum(io[k] != do[k] for k in ATTRIBUTES)
        rows, cols = linear_sum_assignment(cost)
        for a, b in zip(rows, cols, strict=True):
            out[int(a)] = int(b)
    return out


def objects_right(intended: Sequence[dict[str, Any]], detected: Sequence[dict[str, Any]]) -> int:
    """How many intended objects were drawn with every attribute right: some detected object equals them on shape,
    colour, size and cell. Independent of the matching: a detected object can equal at most one intended object,
    since the objects of a scene have distinct colours."""
    keys = {tuple(d[k] for k in ATTRIBUTES) for d in detected}
    return sum(tuple(o[k] for k in ATTRIBUTES) in keys for o in intended)


def compare_scene(intended: Sequence[dict[str, Any]], detected: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Match intended and detected objects (Hungarian, fewest attribute mismatches).

    Returns per-attribute correct counts over intended objects (an unmatched intended object gets
    every attribute wrong), the object count, the number of spurious detections, and ``exact``:
    every attribute of every object right and nothing extra.
    """
    n_i, n_d = len(intended), len(detected)
    correct = dict.fromkeys(ATTRIBUTES, 0)
    for a, b in enumerate(match_objects(intended, detected)):
        if b is not None:
            for k in ATTRIBUTES:
                correct[k] += int(intended[a][k] == detected[b][k])
    matched_all = all(correct[k] == n_i for k in ATTRIBUTES)
    return {
        "n_objects": n_i,
        "n_detected": n_d,
        "spurious": max(n_d - n_i, 0),
        "correct": correct,
        "exact": bool(matched_all and n_d == n_i),
    }


def accuracy(images: Sequence[Any], scenes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Oracle accuracy of images (PIL or arrays; None = not produced) against their scene records: ``n``,
    ``image_rate``, each attribute (per object, averaged per image), ``objects`` (the share of an image's objects
    drawn with every attribute right, averaged per image) and ``exact``. A missing image counts as wrong
    on everything (the denominators are all images), as the ``scene_accuracy`` metric counts it. For scripts that
    call a model directly (e.g. ``scripts/probe_prompts.py``); ``mg5bench run`` scores through that metric."""
    correct = dict.fromkeys(ATTRIBUTES, 0.0)
    exact = produced = 0
    objects = 0.0
    for im, scene in zip(images, scenes, strict=True):
        if im is None:
            continue
        produced += 1
        detected = parse_image(np.asarray(im))
        res = compare_scene(scene["objects"], detected)
        exact += res["exact"]
        objects += objects_right(scene["objects"], detected) / max(res["n_objects"], 1)
        for a in ATTRIBUTES:
            correct[a] += res["correct"][a] / max(res["n_objects"], 1)
    n = max(len(scenes), 1)
    per_attribute = {a: correct[a] / n for a in ATTRIBUTES}
    return {"n": len(scenes), "image_rate": produced / n, **per_attribute, "objects": objects / n, "exact": exact / n}
