"""Scenes of the synthetic world: objects on a grid, their rendering, and their captions.

A scene is plain JSON-able data so that every image can carry its ground-truth record:
``{"background": [r, g, b], "objects": [{"shape", "colour", "size", "cell", "box": [x0, y0, side]}]}``.
The oracle (``oracle.py``) parses rendered or generated images back into this form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Pure, well separated colours: every pair is > 150 apart in RGB, every colour > 150 from the background.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 20),
    "purple": (140, 40, 180),
    "orange": (245, 130, 20),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SIZES: tuple[str, ...] = ("small", "big")
BACKGROUND: tuple[int, int, int] = (200, 200, 200)
GRID = 3
# How a caption says "in cell c".
CELL_PHRASES: tuple[str, ...] = (
    "at the top left", "at the top", "at the top right",
    "on the left", "in the middle", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
)  # fmt: skip


@dataclass(frozen=True)
class Geometry:
    """Pixel sizes for a canvas: objects must stay inside their cell with a gap to the next one."""

    image_size: int = 48

    @property
    def cell(self) -> float:
        return self.image_size / GRID

    def side(self, size: str) -> int:
        # 48 px canvas: small 8 px, big 12 px (docs/world.md: >= 8 and >= 12 px learn and parse reliably)
        return round(self.image_size * (1 / 6 if size == "small" else 1 / 4))

    @property
    def jitter(self) -> int:
        return max(1, round(self.image_size / 48))


def object_key(obj: dict[str, Any]) -> tuple[str, str, str, int]:
    """The discrete identity of an object (what the oracle must recover), without jitter."""
    return (obj["shape"], obj["colour"], obj["size"], int(obj["cell"]))


def scene_key(scene: dict[str, Any]) -> tuple[tuple[str, str, str, int], ...]:
    """Order-free discrete identity of a scene."""
    return tuple(sorted(object_key(o) for o in scene["objects"]))


def place(obj: dict[str, Any], geom: Geometry, rng: np.random.Generator) -> dict[str, Any]:
    """Give an object a pixel box: centred in its cell, jittered, clamped to the canvas."""
    side = geom.side(obj["size"])
    row, col = divmod(int(obj["cell"]), GRID)
    x0 = round(col * geom.cell + (geom.cell - side) / 2) + int(rng.integers(-geom.jitter, geom.jitter + 1))
    y0 = round(row * geom.cell + (geom.cell - side) / 2) + int(rng.integers(-geom.jitter, geom.jitter + 1))
    x0 = min(max(x0, 0), geom.image_size - side)
    y0 = min(max(y0, 0), geom.image_size - side)
    return {**obj, "box": [x0, y0, side]}


def shape_mask(shape: str, side: int) -> np.ndarray:
    """A side x side boolean mask of the shape (no antialiasing: colours stay pure)."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "circle":
        r = side / 2
        return (xx - r) ** 2 + (yy - r) ** 2 <= r * r
    if shape == "triangle":
        # isosceles, apex up: half-width grows linearly from the apex row to the base row
        half = (yy / side) * (side / 2)
        return np.abs(xx - side / 2) <= half + 1e-9
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: dict[str, Any], image_size: int) -> np.ndarray:
    """Render a placed scene to an (H, W, 3) uint8 array."""
    img = np.empty((image_size, image_size, 3), dtype=np.uint8)
    img[:] = np.asarray(scene.get("background", BACKGROUND), dtype=np.uint8)
    for obj in scene["objects"]:
        x0, y0, side = obj["box"]
        mask = shape_mask(obj["shape"], side)
        region = img[y0 : y0 + side, x0 : x0 + side]
        region[mask] = PALETTE[obj["colour"]]
    return img


def describe(obj: dict[str, Any]) -> str:
    """'a big red circle at the top left' (no final period)."""
    return f"a {obj['size']} {obj['colour']} {obj['shape']} {CELL_PHRASES[int(obj['cell'])]}"


def scene_caption(scene: dict[str, Any], template: int = 0) -> str:
    """CC3M-style caption: lower case, space-tokenised, ending with ' .' like the real data."""
    body = " and ".join(describe(o) for o in scene["objects"])
    templates = ("{body} .", "there is {body} .", "a picture of {body} .")
    return templates[template % len(templates)].format(body=body)
