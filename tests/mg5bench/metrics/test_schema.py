"""A metric's direction is declared twice, on its class (``higher_is_better``, ``higher(key)``: what the scorer
records) and in ``metric_schema.yaml`` (what tables, plots and the best-per-column marks read): they must agree for
every result key, and every registered metric's results must be described in the schema."""

from __future__ import annotations

from mg5bench.catalog import METRICS, make_metric, metric_class
from mg5bench.metrics import Metric, MetricContext
from mg5bench.metrics.schema import metric_schema


def _metric(name: str) -> Metric:
    if name == "inception_score":  # needs Inception weights to be built; its directions are class attributes
        cls = metric_class(name)
        return cls.__new__(cls)
    return make_metric(name, MetricContext("vist"))


def test_every_schema_key_has_its_metrics_direction() -> None:
    disagree, unknown = [], []
    for key, entry in metric_schema().items():
        name = key.split(".")[0]
        if name not in METRICS:
            unknown.append(key)
            continue
        if _metric(name).higher(key) != (entry["direction"] == "higher"):
            disagree.append((key, entry["direction"]))
    assert unknown == [] and disagree == []


def test_every_registered_metric_is_in_the_schema() -> None:
    schema = metric_schema()
    assert [n for n in METRICS.names() if not any(k == n or k.startswith(n + ".") for k in schema)] == []
