"""The registries of models and metrics. Entries are lazy ``"module:attr"`` strings, so
``mg5bench ls`` lists them without importing torch. Tasks come from the cards (``tasks.py``)."""

from __future__ import annotations

from mg5bench.registry import Registry

MODELS: Registry[object] = Registry("model")
METRICS: Registry[object] = Registry("metric")
