"""Consistency across the steps of a story (VIST-format tasks): does step k's generated image keep what the story
kept from step k-1? Both metrics pair each sample at step k >= 1 with the sample at step k-1 of the same story
(``meta["step"]``, ``group``), so they read the model's own previous output, not the ground truth the context held.

- ``persistence`` (synthetic world only): over the target objects the story did not change between k-1 and k,
  the share drawn the same in generated image k as in generated image k-1 (consistency), and, as
  ``persistence.correct``, the share drawn as in target k (correctness).
- ``consistency_gap`` (any data): cos(gen_k, gen_{k-1}) - cos(gt_k, gt_{k-1}) on the evaluator's image features.

Samples at step 0, and samples whose previous step is not among the scored samples, are not applicable (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mg5bench.data.oracle import ATTRIBUTES, match_objects, parse_image
from mg5bench.metrics.base import FeatureBank, Metric, ScoreItem, weighted_mean


def _key(obj: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(obj[a] for a in ATTRIBUTES)


def _previous(items: Sequence[ScoreItem]) -> list[int | None]:
    """For each item, the index of the item one story step before it (same group, meta step - 1), if scored."""
    where = {(it.group, it.meta.get("step")): i for i, it in enumerate(items) if isinstance(it.meta.get("step"), int)}
    out: list[int | None] = []
    for it in items:
        step = it.meta.get("step")
        out.append(where.get((it.group, step - 1)) if isinstance(step, int) and step >= 1 else None)
    return out


def _steps(items: Sequence[ScoreItem]) -> list[int]:
    """The story steps k >= 1 present among the items, in order."""
    steps = (it.meta.get("step") for it in items)
    return sorted({int(k) for k in steps if isinstance(k, int) and k >= 1})


class _StepMetric(Metric):
    """Per-item values, NaN where not applicable; the value over all steps and one per step k (``<name>.step<k>``,
    k as in the sample id ``<story>_<k>``, so step 0 has none)."""

    keys: tuple[str, ...] = ()  # the per-item series, the first one being the metric's main value
    per_step_keys: tuple[str, ...] = ()  # the series also reported per step

    def reset(self) -> None:
        super().reset()
        self.values: dict[str, np.ndarray] = {k: np.zeros(0) for k in self.keys}
        self.step = np.zeros(0, dtype=np.int64)

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        self.items.extend(items)  # pairs may span update calls: recompute over everything seen
        series = self._series(self.items, bank)
        self.values = {k: np.asarray(series[k], dtype=np.float64) for k in self.keys}
        self.step = np.asarray([it.meta.get("step", -1) if isinstance(it.meta.get("step"), int) else -1
                                for it in self.items], dtype=np.int64)  # fmt: skip

    def _series(self, items: Sequence[ScoreItem], bank: FeatureBank) -> dict[str, list[float]]:  # pragma: no cover
        raise NotImplementedError

    def _stats(self) -> list[tuple[str, np.ndarray]]:
        out = []
        for key in self.keys:
            v = self.values[key]
            out.append((key, v))
            if key in self.per_step_keys:
                for k in _steps(self.items):
                    out.append((f"{key}.step{k}", np.where(self.step == k, v, np.nan)))
        return out

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        w = np.asarray(weights, dtype=np.float64)
        return {key: weighted_mean(v, w) for key, v in self._stats()}

    def per_sample(self) -> dict[str, list[float | None]]:
        return {k: [None if np.isnan(x) else float(x) for x in self.values[k]] for k in self.keys}

    def n(self) -> dict[str, int]:
        return {key: int((~np.isnan(v)).sum()) for key, v in self._stats()}


class Persistence(_StepMetric):
    """Oracle persistence: what the story kept, does the model keep? An object "the story did not change" between
    steps k-1 and k is an object of target k equal on all four attributes to an object of target k-1 (at level 3:
    the background objects). Its drawing in a generated image is the detected object the Hungarian matching of
    ``compare_scene`` pairs it with; consistent = matched in both generated images and drawn the same in both."""

    name = "persistence"
    variant = (
        "objects unchanged by the story from step k-1 to k: share drawn the same in generated k as in generated k-1 "
        "(oracle; .correct: as in target k); mean over samples at steps k >= 1"
    )
    needs_scenes = True
    keys = ("persistence", "persistence.correct")
    per_step_keys = keys

    def _series(self, items: Sequence[ScoreItem], bank: FeatureBank) -> dict[str, list[float]]:
        from PIL import Image

        parsed: dict[str | None, list[dict[str, Any]]] = {None: []}  # no image: nothing drawn

        def detect(path: str | None) -> list[dict[str, Any]]:
            if path not in parsed:
                with Image.open(path) as im:
                    parsed[path] = parse_image(im.convert("RGB"))
            return parsed[path]

        consistent: list[float] = []
        correct: list[float] = []
        for item, j in zip(items, _previous(items), strict=True):
            prev = items[j] if j is not None else None
            if prev is None or not item.scenes or not prev.scenes or item.scenes[0] is None or prev.scenes[0] is None:
                consistent.append(float("nan"))
                correct.append(float("nan"))
                continue
            target, target_prev = item.scenes[0]["objects"], prev.scenes[0]["objects"]
            before = {_key(o): a for a, o in enumerate(target_prev)}
            kept = [(a, before[_key(o)]) for a, o in enumerate(target) if _key(o) in before]
            if not kept:  # every object changed, appeared or left (always at level 1): nothing to keep
                consistent.append(float("nan"))
                correct.append(float("nan"))
                continue
            drawn, drawn_prev = detect(item.gen_image), detect(prev.gen_image)
            match, match_prev = match_objects(target, drawn), match_objects(target_prev, drawn_prev)
            same = right = 0
            for a, b in kept:
                d, d_prev = match[a], match_prev[b]
                same += int(d is not None and d_prev is not None and _key(drawn[d]) == _key(drawn_prev[d_prev]))
                right += int(d is not None and _key(drawn[d]) == _key(target[a]))
            consistent.append(same / len(kept))
            correct.append(right / len(kept))
        return {"persistence": consistent, "persistence.correct": correct}


class ConsistencyGap(_StepMetric):
    """How much consecutive generated images resemble each other, relative to how much the ground truth's do. A
    missing image (at k or k-1) counts as cosine 0, as in ``clip_i``. The ideal is 0: negative = less alike than the
    truth (the story's look is lost), positive = more alike (a static output; a blank image at every step is
    maximally "consistent"), so read it with ``clip_i`` or ``persistence.correct``."""

    name = "consistency_gap"
    variant = (
        "cos(gen_k, gen_k-1) - cos(gt_k, gt_k-1) on evaluator image features, steps k >= 1; missing image = cos 0; "
        "0 = as alike as the ground truth"
    )
    keys = ("consistency_gap", "consistency_gap.generated", "consistency_gap.ground_truth")
    per_step_keys = ("consistency_gap",)

    def _series(self, items: Sequence[ScoreItem], bank: FeatureBank) -> dict[str, list[float]]:
        gap: list[float] = []
        gen: list[float] = []
        gt: list[float] = []
        for item, j in zip(items, _previous(items), strict=True):
            prev = items[j] if j is not None else None
            if prev is None or item.gt_image is None or prev.gt_image is None:
                gap.append(float("nan"))
                gen.append(float("nan"))
                gt.append(float("nan"))
                continue
            c_gt = float(bank.image(item.gt_image) @ bank.image(prev.gt_image))
            c_gen = 0.0
            if item.gen_image is not None and prev.gen_image is not None:
                c_gen = float(bank.image(item.gen_image) @ bank.image(prev.gen_image))
            gap.append(c_gen - c_gt)
            gen.append(c_gen)
            gt.append(c_gt)
        return {"consistency_gap": gap, "consistency_gap.generated": gen, "consistency_gap.ground_truth": gt}

    @property
    def warning(self) -> str | None:
        value = weighted_mean(self.values.get(self.name, np.zeros(0)), np.ones(len(self.items)))
        if value > 0:
            return ("positive: consecutive outputs are more alike than the ground truth's (a static or blank output "
                    "does this); read it with clip_i")  # fmt: skip
        return None
