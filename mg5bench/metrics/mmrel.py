"""MM-Relevance for multimodal dialog, in its two incompatible definitions (metrics.md).

``feng2023`` (MMDialog paper, ACL 2023): per response, elements paired by position across
modalities, element score = cosine (not clamped); P = sum/L_gen, R = sum/L_ref, F = 2PR/(P+R); the
mean over responses. Sentinels: no generated element -> 0; P + R = 0 -> 0. The paper's demo scales
each cosine by CLIP's ``logit_scale.exp()`` (about 100; Divter's 61.85 is in those units): that number
is reported beside it as ``mm_relevance.logit_units`` (F scales linearly with the element scores).

``minigpt5`` (official "CLIP F1"): per turn a text slot and an image slot compared within their
modality with raw cosine; ground truth only -> -1, prediction only -> -2, neither -> no slot. Per
conversation: V = slots not in {-1, -2}; V empty -> F1 = 0; else P = sum V / #(S != -1),
R = sum V / #(S != -2), F1 = 2PR/(P+R). The mean over conversations (zeros included).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from mg5bench.metrics.base import FeatureBank, Metric, ScoreItem

MISSED, SPURIOUS = -1.0, -2.0


def clean_text_minigpt5(text: str) -> str:
    """Official cleaning: drop '###', keep what precedes '[IMG0]', strip; a text of punctuation characters only
    becomes '' (the release's ``all(c in string.punctuation for c in pred)``: whitespace between them is not
    punctuation, so '! ?' stays)."""
    text = text.replace("###", "").split("[IMG0]")[0].strip()
    return "" if all(c in string.punctuation for c in text) else text


def f1_feng2023(scores: Sequence[float], n_gen: int, n_ref: int) -> float:
    """One response's MM-Relevance from its aligned element scores."""
    if n_gen == 0 or n_ref == 0:
        return 0.0
    total = float(sum(scores))
    p, r = total / n_gen, total / n_ref
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def f1_minigpt5(slots: Sequence[float]) -> float:
    """One conversation's official CLIP F1 from its slots (values or the -1 / -2 sentinels)."""
    valid = [s for s in slots if s not in (MISSED, SPURIOUS)]
    if not valid:
        return 0.0
    total = float(sum(valid))
    p = total / sum(1 for s in slots if s != MISSED)
    r = total / sum(1 for s in slots if s != SPURIOUS)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


class MMRelevance(Metric):
    """MM-Relevance: ``feng2023`` (the MMDialog paper, per response: CLIP cosine of the response's text and image
    elements against the target's) or ``minigpt5`` (the official conversation-level 'CLIP F1', flagged). Higher is
    better."""

    name = "mm_relevance"

    def __init__(self, variant: str = "feng2023") -> None:
        if variant not in ("feng2023", "minigpt5"):
            raise ValueError(f"mm_relevance variant must be feng2023 or minigpt5, got {variant!r}")
        self.variant = variant
        if variant == "minigpt5":
            self.name = "mm_relevance_minigpt5"
            self.flag = (
                "compat: official conversation-level 'CLIP F1' (raw cosine), not MMDialog's per-response MM-Relevance"
            )
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.values: list[float] = []  # feng2023: per response
        self.slots: list[list[float]] = []  # minigpt5: per turn

    @staticmethod
    def _vec(kind: str, value: str, bank: FeatureBank) -> np.ndarray:
        return bank.text(value) if kind == "text" else bank.image(value)

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        self.logit_scale = bank.logit_scale
        for item in items:
            self.items.append(item)
            if self.variant == "feng2023":
                self.values.append(self._feng2023(item, bank))
            else:
                self.slots.append(self._slots(item, bank))

    def _feng2023(self, item: ScoreItem, bank: FeatureBank) -> float:
        gen = [e for e in item.gen_elements if e[0] == "image" or e[1].strip()]
        ref = [e for e in item.gt_elements if e[0] == "image" or e[1].strip()]
        scores = [float(self._vec(*g, bank) @ self._vec(*r, bank)) for g, r in zip(gen, ref, strict=False)]
        return f1_feng2023(scores, len(gen), len(ref))

    @staticmethod
    def _slots(item: ScoreItem, bank: FeatureBank) -> list[float]:
        slots = []
        gt_t = clean_text_minigpt5(item.gt_text_before_image)  # official: the text before [IMG0] only
        gen_t = clean_text_minigpt5(item.gen_text_before_image)
        pairs = (
            (bool(gt_t), bool(gen_t), lambda: float(bank.text(gt_t) @ bank.text(gen_t))),
            (
                item.gt_image is not None,
                item.gen_image is not None,
                lambda: float(bank.image(item.gt_image) @ bank.image(item.gen_image)),  # type: ignore[arg-type]
            ),
        )
        for gt_present, gen_present, sim in pairs:
            if gt_present and gen_present:
                slots.append(sim())
            elif gt_present:
                slots.append(MISSED)
            elif gen_present:
                slots.append(SPURIOUS)
        return slots

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        if self.variant == "feng2023":
            w = np.asarray(weights, dtype=float)
            v = np.asarray(self.values)
            value = float((v * w).sum() / w.sum()) if w.sum() > 0 else float("nan")
            return {self.name: value, f"{self.name}.logit_units": value * self.logit_scale}
        by: dict[str, list[float]] = {}
        gw: dict[str, float] = {}
        for item, slots, w in zip(self.items, self.slots, weights, strict=True):
            by.setdefault(item.group, []).extend(slots)
            gw[item.group] = float(w)
        den = sum(gw.values())
        num = sum(gw[g] * f1_minigpt5(s) for g, s in by.items())
        return {self.name: num / den if den > 0 else float("nan")}

    def per_sample(self) -> dict[str, list[float | None]]:
        return {self.name: list(self.values)} if self.variant == "feng2023" else {}

    def n(self) -> dict[str, int]:
        if self.variant == "feng2023":
            return {self.name: len(self.items), f"{self.name}.logit_units": len(self.items)}
        return {self.name: len({i.group for i in self.items})}
