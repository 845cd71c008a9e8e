"""One catalog: every model, metric, evaluator scheme and trainer is named once there, and what it names carries
that name; the adapter contract and the metric capabilities are declared, not probed."""

from __future__ import annotations

import pytest

from mg5bench.adapters.base import Adapter
from mg5bench.catalog import EVALUATORS, METRICS, MODELS, TRAINERS, make_metric, metric_class
from mg5bench.core.errors import ConfigError
from mg5bench.metrics import MetricContext
from mg5bench.metrics.base import Metric


def test_models_are_adapters_named_by_the_catalog() -> None:
    assert {"blank", "divter", "gt", "minigpt5", "sd2", "sd2-ft", "two-stage"} <= set(MODELS.names())
    for name in MODELS.names():
        cls = MODELS.get(name)
        assert issubclass(cls, Adapter) and cls.name == name
        assert cls.batch_size >= 1 and set(cls.default_checkpoints) <= set(cls.tasks)


def test_the_adapter_contract_is_declared() -> None:
    class NoGenerate(Adapter):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoGenerate.__call__  # noqa: B018 - the class exists; building it is what fails
        NoGenerate(None, {})  # type: ignore[arg-type]
    for method in ("load", "generate", "close", "resolve", "identity"):
        assert callable(getattr(Adapter, method))


def test_metrics_build_from_the_catalog_with_their_arguments() -> None:
    ctx = MetricContext("vist")
    for name in METRICS.names():
        if name == "inception_score":
            with pytest.raises(ConfigError, match="--inception"):
                make_metric(name, ctx)
            continue
        metric = make_metric(name, ctx)
        assert isinstance(metric, Metric) and metric.name == name
    assert make_metric("bleu2", ctx).order == 2 and make_metric("mm_relevance_minigpt5", ctx).flag
    assert [n for n in METRICS.names() if metric_class(n).needs_scenes] == ["persistence", "scene_accuracy"]
    with pytest.raises(ConfigError, match=r"did you mean .*'clip_i'"):
        make_metric("clip_j", ctx)


def test_evaluators_are_chosen_through_the_catalog() -> None:
    from mg5bench.scoring.evaluators import evaluator_identity

    assert {"embedded", "hf-clip", "open_clip"} <= set(EVALUATORS.names())
    assert evaluator_identity("embedded")["name"] == "embedded:world-clip"
    with pytest.raises(ConfigError, match=r"unknown evaluator 'clip:x'; use .*open_clip:<model>:<weights file>"):
        evaluator_identity("clip:x")


def test_trainers_take_their_own_options_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mg5bench import api

    assert {"divter", "sd2-ft"} <= set(TRAINERS.names())
    with pytest.raises(ConfigError, match="trainer 'divter' does not take unet; it takes: data, base"):
        api.train("divter", "vist", tmp_path, 1, unet="all")
    with pytest.raises(ConfigError, match="did you mean 'sd2-ft'"):
        api.train("sd2ft", "vist", tmp_path, 1)
