"""The metric protocol (torchmetrics-style ``update / compute / reset``) and what metrics see.

A metric accumulates per-sample state in ``update`` and answers ``statistic(weights)``: its value(s)
when sample i counts ``weights[i]`` times. ``compute()`` is ``statistic`` with all weights 1; the
cluster bootstrap in ``mg5bench.scoring.statistics`` calls ``statistic`` with resampled story / conversation counts,
so set-level metrics (FID, conversation-level F1) get honest CIs too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


def _text_before_image(elements: list[tuple[str, str]]) -> str:
    out = []
    for kind, value in elements:
        if kind == "image":
            break
        out.append(value)
    return " ".join(out).split("[IMG0]")[0]


@dataclass
class ScoreItem:
    """One sample as the metrics see it: target vs output, plus protocol context."""

    id: str
    group: str
    gt_text: str
    gen_text: str
    gt_images: list[str]
    gen_images: list[str]
    caption: str | None  # the text an image is compared with for clip_t (caption or response text)
    gt_elements: list[tuple[str, str]] = field(default_factory=list)  # ("text"|"image", value) in order
    gen_elements: list[tuple[str, str]] = field(default_factory=list)
    scenes: list[Any] = field(default_factory=list)  # target scene records (synthetic world only)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def gt_text_before_image(self) -> str:
        """The target's text up to its first image: what the official metric.py keeps (its
        ``split('[IMG0]')[0]``), used by the ``*_minigpt5`` text variants."""
        return _text_before_image(self.gt_elements)

    @property
    def gen_text_before_image(self) -> str:
        """The output's text up to its first image (text after the image is dropped, as officially)."""
        return _text_before_image(self.gen_elements)

    @property
    def gt_image(self) -> str | None:
        return self.gt_images[0] if self.gt_images else None

    @property
    def gen_image(self) -> str | None:
        return self.gen_images[0] if self.gen_images else None


class FeatureBank:
    """Features computed once per run: raw image embeddings by path, normalised text embeddings."""

    def __init__(
        self,
        images: dict[str, np.ndarray],
        texts: dict[str, np.ndarray],
        logit_scale: float,
        dim: int,
        distribution_images: dict[str, np.ndarray] | None = None,
    ):
        self.images = images
        self.texts = texts
        self.logit_scale = logit_scale
        self.dim = dim
        # FID / KID features: Inception pool features when real Inception weights are given, else the evaluator's
        self.distribution_images = distribution_images if distribution_images is not None else images

    def distribution_raw(self, path: str) -> np.ndarray:
        return self.distribution_images[path]

    def image(self, path: str) -> np.ndarray:
        v = self.images[path]
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def text(self, text: str) -> np.ndarray:
        return self.texts[text]


@dataclass(frozen=True)
class MetricContext:
    """What a metric may need to know about the run beyond the samples (``Metric.from_context``)."""

    task_format: str
    inception: Any = None  # InceptionFeatures when real Inception weights were given
    device: str = "cpu"  # where a metric's own model (e.g. the sentence encoder) runs


class Metric:
    """Base class. Subclasses set ``name`` (the key of their main result; the catalog checks it against the
    registered name), ``higher_is_better``, ``variant``, and implement ``statistic``. What the scorer asks of a
    metric besides its values is declared here, with defaults, so nothing is probed:

    - ``needs_scenes``: it reads the synthetic world's scene records (left out on real data);
    - ``flag``: a warning that travels with every number (the official ``*_minigpt5`` variants);
    - ``ci_note``: how to read its interval (printed when the interval does not contain the point estimate);
    - ``warning``: a caveat about this particular result (e.g. FID at small N), or None;
    - ``counts()``: extra counts recorded beside the main result (e.g. FID's real and generated N).
    """

    name: str = ""
    higher_is_better: bool = True
    variant: str = "default"
    flag: str | None = None
    needs_scenes: ClassVar[bool] = False
    ci_note: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.reset()

    @classmethod
    def from_context(cls, ctx: MetricContext, **kwargs: Any) -> Metric:
        """Build one for a scoring: ``kwargs`` are the catalog entry's arguments (e.g. BLEU's order); a metric
        that needs the task, the Inception network or the device overrides this."""
        return cls(**kwargs)

    def reset(self) -> None:
        self.items: list[ScoreItem] = []

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        self.items.extend(items)

    def statistic(self, weights: np.ndarray) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        return self.statistic(np.ones(len(self.items)))

    def per_sample(self) -> dict[str, list[float | None]]:
        """Per-item values (for per_sample.jsonl); empty for set-level metrics."""
        return {}

    def higher(self, key: str) -> bool:
        """Whether a larger value of sub-result ``key`` is better (sub-results may differ)."""
        return self.higher_is_better

    def n(self) -> dict[str, int]:
        return {self.name: len(self.items)}

    @property
    def warning(self) -> str | None:
        """A caveat about this result (after ``update``), recorded and printed beside it; None when there is none."""
        return None

    def counts(self) -> dict[str, int]:
        """Extra counts recorded beside the main result in metrics.json (none by default)."""
        return {}


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Mean of the non-NaN values, weighted; NaN marks "not applicable" for that item."""
    ok = ~np.isnan(values)
    w = weights[ok]
    total = float(w.sum())
    return float((values[ok] * w).sum() / total) if total > 0 else float("nan")


def group_weighted_mean(values: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> float:
    """Mean over groups of each group's mean (NaN items ignored); groups weighted by their count."""
    ok = ~np.isnan(values)
    if not ok.any():
        return float("nan")
    g, inv = np.unique(groups[ok], return_inverse=True)
    sums = np.bincount(inv, weights=values[ok], minlength=len(g))
    counts = np.bincount(inv, minlength=len(g))
    gw = np.zeros(len(g))
    np.maximum.at(gw, inv, weights[ok])  # a group's weight = its bootstrap count
    total = gw.sum()
    return float((gw * sums / counts).sum() / total) if total > 0 else float("nan")
