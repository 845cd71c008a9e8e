"""Metrics, one file per family, each with ``update / compute / reset``, ``name``, ``higher_is_better``,
``variant`` and the capabilities ``Metric`` declares. Which names exist, and which class and arguments each
name builds, is written once, in ``mg5bench.catalog``; ``make_metric`` builds one from there."""

from __future__ import annotations

from mg5bench.metrics.base import FeatureBank, Metric, MetricContext, ScoreItem


def metric_class(name: str) -> type[Metric]:
    """The class registered as ``name`` (did-you-mean on typos), without building it: its declared capabilities
    (``needs_scenes``) decide what a scoring includes before anything is computed."""
    from mg5bench.catalog import METRICS

    return METRICS.get(name)  # type: ignore[no-any-return]


def make_metric(name: str, ctx: MetricContext) -> Metric:
    """A fresh metric instance for ``name``, built with the catalog entry's arguments."""
    from mg5bench.catalog import METRICS

    metric = metric_class(name).from_context(ctx, **METRICS.entry(name).meta)
    if metric.name != name:  # pragma: no cover - a catalog entry pointing at the wrong class or arguments
        raise AssertionError(f"catalog entry {name!r} builds a metric named {metric.name!r}; fix mg5bench/catalog.py")
    return metric


__all__ = ["FeatureBank", "Metric", "MetricContext", "ScoreItem", "make_metric", "metric_class"]
