"""Metrics, one file per family, each with ``update / compute / reset``, ``name``, ``higher_is_better``,
``variant`` and the capabilities ``Metric`` declares (``base``). The names the metrics answer to, and which class
and arguments each name builds, are written in ``mg5bench.catalog`` (``make_metric``); what a reader needs of each
result key (display name, direction, units) in ``metric_schema.yaml`` (``schema``), kept equal to the classes'
directions by a test.

May import: ``mg5bench.core`` and the scene oracle (``mg5bench.data.oracle``); nothing from the catalog, the runs,
scoring or the API: the scorer feeds them items and features, and they compute.
"""

from __future__ import annotations

from mg5bench.metrics.base import FeatureBank, Metric, MetricContext, ScoreItem

__all__ = ["FeatureBank", "Metric", "MetricContext", "ScoreItem"]
