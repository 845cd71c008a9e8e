"""Metrics, one file per family, each with ``update / compute / reset``, ``name``,
``higher_is_better`` and ``variant``. ``make_metric`` builds one by its registered name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mg5bench.errors import ConfigError
from mg5bench.metrics.base import FeatureBank, Metric, ScoreItem


@dataclass(frozen=True)
class MetricContext:
    """What a metric may need to know about the run beyond the samples."""

    task_format: str
    inception: Any = None  # InceptionFeatures when real Inception weights were given
    device: str = "cpu"  # where a metric's own model (e.g. the sentence encoder) runs


def make_metric(name: str, ctx: MetricContext) -> Metric:
    """A fresh metric instance for ``name`` (did-you-mean on typos)."""
    from mg5bench.catalog import METRICS

    factory = METRICS.get(name)
    return factory(ctx)


def _factories() -> dict[str, Any]:
    from mg5bench.metrics import clip, distribution, mmrel, scene, text

    def inception_score(ctx: MetricContext) -> Metric:
        if ctx.inception is None:
            from mg5bench.evaluators import INCEPTION_HELP

            raise ConfigError(f"inception_score needs real Inception-v3 weights. {INCEPTION_HELP}")
        return distribution.InceptionScore(ctx.inception)

    return {
        "clip_i": lambda ctx: clip.ClipI(),
        "clip_t": lambda ctx: clip.ClipT(),
        "clip_t_minigpt5": lambda ctx: clip.ClipTMiniGPT5(ctx.task_format),
        "fid": lambda ctx: distribution.FID(),
        "kid": lambda ctx: distribution.KID(),
        "inception_score": inception_score,
        "fid_per_story_minigpt5": lambda ctx: distribution.FIDPerStoryMiniGPT5(),
        "mm_relevance": lambda ctx: mmrel.MMRelevance("feng2023"),
        "mm_relevance_minigpt5": lambda ctx: mmrel.MMRelevance("minigpt5"),
        "bleu1": lambda ctx: text.Bleu(1),
        "bleu2": lambda ctx: text.Bleu(2),
        "bleu_char_minigpt5": lambda ctx: text.BleuCharMiniGPT5(),
        "rouge_l": lambda ctx: text.RougeL(),
        "sbert": lambda ctx: text.SBert(ctx.device),
        "scene_accuracy": lambda ctx: scene.SceneAccuracy(),
    }


FACTORIES: dict[str, Any] = {}


def factory(name: str) -> Any:
    if not FACTORIES:
        FACTORIES.update(_factories())
    return FACTORIES[name]


__all__ = ["FeatureBank", "Metric", "MetricContext", "ScoreItem", "factory", "make_metric"]
