"""CLIP similarities (metrics.md, "CLIP similarities").

- ``clip_i``: cosine of L2-normalised image features, ground truth vs generated. A sample that
  produced no image scores 0 (counted, not dropped); ``clip_i.image_rate`` and
  ``clip_i.produced_only`` (the official mean over produced images) are reported beside it.
- ``clip_t``: cosine of the ground-truth caption and the generated image, same missing-image rule.
- ``clip_t_minigpt5``: the official behaviour, flagged: on VIST it compares the image with the voken
  string ``[IMG0]...[IMG7] ###`` (a bug), and samples without an image are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mg5bench.metrics.base import FeatureBank, Metric, MetricContext, ScoreItem, weighted_mean

VOKEN_STRING = "".join(f"[IMG{i}]" for i in range(8)) + " ###"


class _PairCosine(Metric):
    """Cosine per item between a reference feature and the generated image's feature."""

    def reset(self) -> None:
        super().reset()
        self.values: list[float] = []  # NaN: no reference (not applicable)
        self.produced: list[float] = []  # 1 if an image was produced (for applicable items)

    def _reference(self, item: ScoreItem, bank: FeatureBank) -> np.ndarray | None:  # pragma: no cover
        raise NotImplementedError

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        for item in items:
            ref = self._reference(item, bank)
            self.items.append(item)
            if ref is None:
                self.values.append(float("nan"))
                self.produced.append(float("nan"))
            elif item.gen_image is None:
                self.values.append(0.0)
                self.produced.append(0.0)
            else:
                self.values.append(float(ref @ bank.image(item.gen_image)))
                self.produced.append(1.0)

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        v, p = np.asarray(self.values), np.asarray(self.produced)
        produced_only = np.where(p == 1.0, v, np.nan)
        return {
            self.name: weighted_mean(v, weights),
            f"{self.name}.image_rate": weighted_mean(p, weights),
            f"{self.name}.produced_only": weighted_mean(produced_only, weights),
        }

    def per_sample(self) -> dict[str, list[float | None]]:
        return {self.name: [None if np.isnan(x) else x for x in self.values]}

    def n(self) -> dict[str, int]:
        v, p = np.asarray(self.values), np.asarray(self.produced)
        return {
            self.name: int((~np.isnan(v)).sum()),
            f"{self.name}.image_rate": int((~np.isnan(p)).sum()),
            f"{self.name}.produced_only": int((p == 1.0).sum()),
        }


class ClipI(_PairCosine):
    """CLIP-I: cosine of the evaluator's image embeddings of the target and the generated image, per sample; a
    missing image scores 0 (the image rate and the drawn-only mean are recorded beside it). Higher is better."""

    name = "clip_i"
    variant = "cosine; missing image = 0"

    def _reference(self, item: ScoreItem, bank: FeatureBank) -> np.ndarray | None:
        return bank.image(item.gt_image) if item.gt_image else None


class ClipT(_PairCosine):
    """CLIP-T: cosine of the evaluator's embeddings of the ground-truth caption and the generated image, per sample;
    a missing image scores 0. Higher is better."""

    name = "clip_t"
    variant = "cosine with the ground-truth caption; missing image = 0"

    def _reference(self, item: ScoreItem, bank: FeatureBank) -> np.ndarray | None:
        return bank.text(item.caption) if item.caption else None


class ClipTMiniGPT5(Metric):
    """The official metric.py's CLIP-T, flagged: on VIST it compares the image with the voken string, and a missing
    image is dropped. Higher is better."""

    name = "clip_t_minigpt5"
    variant = "official metric.py: VIST text = voken string; images missing = dropped"
    flag = "compat: on VIST this compares images with '[IMG0]...[IMG7] ###', not a caption (meaningless)"

    def __init__(self, task_format: str = "vist") -> None:
        self.task_format = task_format
        super().__init__()

    @classmethod
    def from_context(cls, ctx: MetricContext, **kwargs: object) -> Metric:
        """The official behaviour differs by task (the voken string is VIST's text), so it needs the format."""
        return cls(ctx.task_format)

    def reset(self) -> None:
        super().reset()
        self.values: list[float] = []

    def text_for(self, item: ScoreItem) -> str | None:
        return VOKEN_STRING if self.task_format == "vist" else item.caption

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        for item in items:
            self.items.append(item)
            text = self.text_for(item)
            ok = text is not None and item.gen_image is not None
            self.values.append(float(bank.text(text) @ bank.image(item.gen_image)) if ok else float("nan"))

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        return {self.name: weighted_mean(np.asarray(self.values), weights)}

    def n(self) -> dict[str, int]:
        return {self.name: int((~np.isnan(np.asarray(self.values))).sum())}
