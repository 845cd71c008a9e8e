"""Tasks: the first stage of the flow, task -> samples. A task is defined once, in ``definitions/<task>.yaml`` with
its ``definitions/<task>/README.md`` (source, protocol settings, validity checklist, changelog); ``config`` parses it
into a frozen ``TaskConfig``, ``source`` resolves the data it reads (the synthetic world or a real folder, and the
split) and ``samples`` builds its protocol's ``Sample``s from the records ``mg5bench.data`` reads.

May import: ``mg5bench.core`` and ``mg5bench.data``. Everything after the samples (adapters, runs, scoring) imports
this package; it imports none of them.
"""

from __future__ import annotations

from mg5bench.tasks.config import (
    CLUSTER_UNITS,
    FORMATS,
    VIST_STEPS,
    TaskConfig,
    cluster_unit,
    definitions_dir,
    get_task,
    parse_definition,
    task_registry,
)
from mg5bench.tasks.samples import SampleCache, SampleSet, build_samples, instruction_draw
from mg5bench.tasks.source import DataSource, check_world, present_splits, resolve_data, resolve_split

__all__ = ["CLUSTER_UNITS", "FORMATS", "VIST_STEPS", "DataSource", "SampleCache", "SampleSet", "TaskConfig",
           "build_samples", "check_world", "cluster_unit", "definitions_dir", "get_task", "instruction_draw",
           "parse_definition", "present_splits", "resolve_data", "resolve_split", "task_registry"]  # fmt: skip
