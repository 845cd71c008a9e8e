"""Measurements that keep the synthetic world honest.

- ``oracle_accuracy``: how well the oracle reads freshly rendered scenes, clean and degraded.
- ``caption_determinacy``: on the VIST-like split, how often caption k alone determines the step-k
  scene, measured as the accuracy of the best caption-only predictor (the most frequent scene for each
  caption on the fit split, scored on another split). Context must matter: for steps 2-5 it must be low.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.data.oracle import ATTRIBUTES, compare_scene, parse_image
from mg5bench.data.scenes import BACKGROUND, Geometry, place, render, scene_key
from mg5bench.data.world import random_scene_objects

DEGRADATIONS: dict[str, dict[str, float]] = {
    "clean": {},
    "blur": {"radius": 0.8},
    "noise": {"sigma": 12.0},
    "jpeg": {"quality": 75},
}


def degrade(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur (PIL), additive Gaussian noise, or a JPEG round trip (4:2:0 chroma)."""
    from PIL import Image, ImageFilter

    params = DEGRADATIONS[kind]
    if kind == "clean":
        return img
    if kind == "blur":
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(params["radius"])))
    if kind == "noise":
        return np.clip(img + rng.normal(0, params["sigma"], img.shape), 0, 255).astype(np.uint8)
    if kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(params["quality"]))
        return np.asarray(Image.open(buf).convert("RGB"))
    raise ValueError(f"unknown degradation {kind!r}")


def oracle_accuracy(
    n: int = 1000, *, level: int = 1, kind: str = "clean", seed: int = 1234, image_size: int = 48
) -> dict[str, Any]:
    """Per-attribute and exact-scene accuracy of the oracle on ``n`` fresh random scenes."""
    rng = np.random.default_rng(seed)
    geom = Geometry(image_size)
    correct = dict.fromkeys(ATTRIBUTES, 0)
    n_obj = exact = 0
    for _ in range(n):
        k = 1 if level == 1 else int(rng.integers(1, 3)) if level == 2 else int(rng.integers(2, 4))
        scene = {
            "background": list(BACKGROUND),
            "objects": [place(o, geom, rng) for o in random_scene_objects(rng, k)],
        }
        img = degrade(render(scene, image_size), kind, rng)
        r = compare_scene(scene["objects"], parse_image(img))
        for a in ATTRIBUTES:
            correct[a] += r["correct"][a]
        n_obj += r["n_objects"]
        exact += r["exact"]
    return {
        "kind": kind,
        "params": DEGRADATIONS[kind],
        "level": level,
        "n_scenes": n,
        "attributes": {a: correct[a] / n_obj for a in ATTRIBUTES},
        "exact": exact / n,
    }


def _vist_steps(world_root: Path, split: str) -> list[tuple[int, str, tuple[Any, ...]]]:
    """(step, caption, discrete scene) for every story step of a split of a world."""
    vist = world_root / "VIST"
    stories = json.loads((vist / f"{split}_cleaned.json").read_text())
    mapping = json.loads((vist / f"{split}_image_mapping.json").read_text())
    scenes = {}
    with open(world_root / "scenes.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            scenes[rec["image"]] = rec["scene"]
    out = []
    for steps in stories.values():
        for st in steps:
            scene = scenes["VIST/" + mapping[st["image_id"]]]
            out.append((int(st["sequence_index"]), st["caption"], scene_key(scene)))
    return out


def caption_determinacy(world_root: Path, *, fit_split: str = "train", eval_split: str = "val") -> dict[str, Any]:
    """Accuracy of the best caption-only predictor of the step scene, per step (1-based).

    The predictor maps each caption to its most frequent scene on ``fit_split``; a caption never seen
    there counts as wrong. ``steps_2_5`` pools the four later steps: it must stay under 0.5.
    """
    by_caption: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
    for _, caption, key in _vist_steps(Path(world_root), fit_split):
        by_caption[caption][key] += 1
    best = {c: counts.most_common(1)[0][0] for c, counts in by_caption.items()}
    hits: dict[int, list[bool]] = defaultdict(list)
    for step, caption, key in _vist_steps(Path(world_root), eval_split):
        hits[step + 1].append(best.get(caption) == key)
    per_step = {k: float(np.mean(v)) for k, v in sorted(hits.items())}
    later = [h for k, v in hits.items() if k >= 2 for h in v]
    return {
        "fit_split": fit_split,
        "eval_split": eval_split,
        "per_step": per_step,
        "steps_2_5": float(np.mean(later)),
        "n": {k: len(v) for k, v in sorted(hits.items())},
    }
