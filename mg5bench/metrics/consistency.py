"""Consistency across the steps of a story (VIST-format tasks): does step k's generated image keep what the story
kept from step k-1? Each metric pairs a sample at step k >= 1 with the sample at step k-1 of the same story
(``meta["step"]``, ``group``).

- ``persistence`` (synthetic world only): over every (object, attribute) the story did not change between k-1 and
  k, the share drawn in generated image k both unchanged from generated image k-1 and as in target k (consistent
  and correct); ``.previous`` and ``.target`` are the two halves alone.
- ``context_consistency`` (any data): cos(gen_k, gt_{k-1}) - cos(gt_k, gt_{k-1}) on the evaluator's image
  features: how close the generated image stays to the context image the model was given, relative to the true
  next image. The ranked CLIP consistency result.
- ``consistency_gap`` (any data, diagnostic): cos(gen_k, gen_{k-1}) - cos(gt_k, gt_{k-1}), consistency alone (a
  blank image at every step is perfectly consistent, another story's images as consistent as the truth).

Samples at step 0, and samples whose previous step is not among the scored samples, are not applicable (NaN).
"""

from __future__ import annotations

from collections import defaultdict
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


def kept_attributes(target: list[dict[str, Any]], target_prev: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """The (object of target k, its object in target k-1, attribute) triples the story did not change from step k-1
    to k. Objects are paired across the two scene records as the world's stories allow (one event per step changes
    at most one object): objects equal on all four attributes first, then the rest by the Hungarian matching on
    differing attributes, so a changed object is paired with what it was; an object that appeared or disappeared
    has no pair. A pair's attributes with equal values are the kept ones."""
    pairs: list[tuple[int, int]] = []
    free: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for b, o in enumerate(target_prev):
        free[_key(o)].append(b)
    rest = []
    for a, o in enumerate(target):
        if free[_key(o)]:
            pairs.append((a, free[_key(o)].pop(0)))
        else:
            rest.append(a)
    rest_prev = sorted(b for bs in free.values() for b in bs)
    matched = match_objects([target[a] for a in rest], [target_prev[b] for b in rest_prev])
    pairs += [(rest[i], rest_prev[m]) for i, m in enumerate(matched) if m is not None]
    return [(a, b, attr) for a, b in sorted(pairs) for attr in ATTRIBUTES if target[a][attr] == target_prev[b][attr]]


class Persistence(_StepMetric):
    """Oracle persistence: what the story kept, does the model keep, and keep right? For each (object, attribute)
    the story did not change from step k-1 to k (``kept_attributes``: at level 3 every attribute of the background
    objects and the protagonist's untouched ones), the object's drawing in a generated image is the detected
    object the Hungarian matching of ``compare_scene`` pairs it with. The main value counts an attribute when it is
    drawn in generated k as in generated k-1 and as in target k: a model that is consistent but wrong, or right at
    k but not at k-1, does not get it. ``.previous`` (as in generated k-1) and ``.target`` (as in target k) are
    the two conditions alone. An object not drawn gets its attributes wrong."""

    name = "persistence"
    variant = (
        "(object, attribute) pairs unchanged by the story from step k-1 to k: share drawn in generated k both as in "
        "generated k-1 and as in target k (oracle; .previous, .target: each condition alone); mean over samples at "
        "steps k >= 1"
    )
    needs_scenes = True
    keys = ("persistence", "persistence.previous", "persistence.target")
    per_step_keys = keys

    def _series(self, items: Sequence[ScoreItem], bank: FeatureBank) -> dict[str, list[float]]:
        from PIL import Image

        parsed: dict[str | None, list[dict[str, Any]]] = {None: []}  # no image: nothing drawn

        def detect(path: str | None) -> list[dict[str, Any]]:
            if path not in parsed:
                with Image.open(path) as im:
                    parsed[path] = parse_image(im.convert("RGB"))
            return parsed[path]

        out: dict[str, list[float]] = {k: [] for k in self.keys}
        for item, j in zip(items, _previous(items), strict=True):
            prev = items[j] if j is not None else None
            scene = item.scenes[0] if item.scenes else None
            scene_prev = prev.scenes[0] if prev is not None and prev.scenes else None
            kept = (
                []
                if prev is None or not scene or not scene_prev
                else kept_attributes(scene["objects"], scene_prev["objects"])
            )
            if prev is None or not scene or not scene_prev or not kept:  # no previous step, or nothing kept
                for k in self.keys:
                    out[k].append(float("nan"))
                continue
            target, target_prev = scene["objects"], scene_prev["objects"]
            drawn, drawn_prev = detect(item.gen_image), detect(prev.gen_image)
            match, match_prev = match_objects(target, drawn), match_objects(target_prev, drawn_prev)
            both = same = right = 0
            for a, b, attr in kept:
                d, d_prev = match[a], match_prev[b]
                as_target = d is not None and drawn[d][attr] == target[a][attr]
                as_previous = d is not None and d_prev is not None and drawn[d][attr] == drawn_prev[d_prev][attr]
                both += int(as_target and as_previous)
                same += int(as_previous)
                right += int(as_target)
            out["persistence"].append(both / len(kept))
            out["persistence.previous"].append(same / len(kept))
            out["persistence.target"].append(right / len(kept))
        return out


class ContextConsistency(_StepMetric):
    """How close the generated image of step k stays to the context image of step k-1 (the ground truth the VIST
    protocol gives the model), relative to how close the true image of step k is: cos(gen_k, gt_{k-1}) -
    cos(gt_k, gt_{k-1}). 0 = as close as the truth; negative = drifts away from the story's look (another story's
    image, a blank); positive = closer than the truth, which copying the context image does, so the best value is
    0. A missing image counts as cosine 0, as in ``clip_i``. Anchored on the ground-truth context, it ranks by
    consistency with the story the model was shown, which ``consistency_gap`` (generated vs generated) cannot."""

    name = "context_consistency"
    variant = (
        "cos(gen_k, gt_k-1) - cos(gt_k, gt_k-1) on evaluator image features, steps k >= 1; missing image = cos 0; "
        "0 = as close to the context image as the ground truth"
    )
    keys = ("context_consistency", "context_consistency.generated", "context_consistency.ground_truth")
    per_step_keys = ("context_consistency",)

    def _series(self, items: Sequence[ScoreItem], bank: FeatureBank) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {k: [] for k in self.keys}
        for item, j in zip(items, _previous(items), strict=True):
            context = items[j].gt_image if j is not None else None
            if context is None or item.gt_image is None:
                for k in self.keys:
                    out[k].append(float("nan"))
                continue
            c_gt = float(bank.image(item.gt_image) @ bank.image(context))
            c_gen = 0.0 if item.gen_image is None else float(bank.image(item.gen_image) @ bank.image(context))
            out["context_consistency"].append(c_gen - c_gt)
            out["context_consistency.generated"].append(c_gen)
            out["context_consistency.ground_truth"].append(c_gt)
        return out

    @property
    def warning(self) -> str | None:
        value = weighted_mean(self.values.get(self.name, np.zeros(0)), np.ones(len(self.items)))
        if value > 0:
            return ("positive: outputs are closer to the context image than the true next image is (copying the "
                    "context does this); read it with clip_i")  # fmt: skip
        return None


class ConsistencyGap(_StepMetric):
    """A diagnostic: how much consecutive generated images resemble each other, relative to how much the ground
    truth's do. A missing image (at k or k-1) counts as cosine 0, as in ``clip_i``. It measures consistency alone:
    a blank image at every step is maximally "consistent" (positive), another story's images are on average exactly
    as consistent as the truth (0). ``context_consistency`` is the ranked result."""

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
