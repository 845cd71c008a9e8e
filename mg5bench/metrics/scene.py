"""Scene accuracy (synthetic world only): the oracle parses each generated image and compares it
with the target's scene record. ``scene_accuracy`` is the exact-scene match rate; the sub-results
``.shape``, ``.colour``, ``.size``, ``.cell`` are per-object attribute accuracies (an undrawn object
gets every attribute wrong; a missing image scores 0), and ``.objects`` is the share of target objects
drawn with all four right, the partial credit that exact-scene match hides when scenes hold several objects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mg5bench.data.oracle import ATTRIBUTES, compare_scene, objects_right, parse_image
from mg5bench.metrics.base import FeatureBank, Metric, ScoreItem, weighted_mean


class SceneAccuracy(Metric):
    """Scene accuracy by the oracle: the generated image parsed into objects and matched (Hungarian) to the target's
    scene record; exact scene, per-object and per-attribute accuracy. Synthetic world only. Higher is better."""

    name = "scene_accuracy"
    variant = (
        "oracle exact-scene match; per-object (all four attributes) and per-attribute accuracy over target "
        "objects (Hungarian matching)"
    )
    needs_scenes = True

    def reset(self) -> None:
        super().reset()
        self.values: dict[str, list[float]] = {
            self.name: [],
            f"{self.name}.objects": [],
            **{f"{self.name}.{a}": [] for a in ATTRIBUTES},
        }

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        from PIL import Image

        for item in items:
            self.items.append(item)
            scene = item.scenes[0] if item.scenes else None
            if scene is None:
                for v in self.values.values():
                    v.append(float("nan"))
                continue
            objects = scene["objects"]
            if item.gen_image is None:
                detected: list = []
            else:
                with Image.open(item.gen_image) as im:
                    detected = parse_image(im.convert("RGB"))
            r = compare_scene(objects, detected)
            self.values[self.name].append(float(r["exact"]))
            self.values[f"{self.name}.objects"].append(objects_right(objects, detected) / max(r["n_objects"], 1))
            for a in ATTRIBUTES:
                self.values[f"{self.name}.{a}"].append(r["correct"][a] / max(r["n_objects"], 1))

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        return {k: weighted_mean(np.asarray(v), np.asarray(weights)) for k, v in self.values.items()}

    def per_sample(self) -> dict[str, list[float | None]]:
        return {k: [None if np.isnan(x) else x for x in v] for k, v in self.values.items()}

    def n(self) -> dict[str, int]:
        return {k: int((~np.isnan(np.asarray(v))).sum()) for k, v in self.values.items()}
