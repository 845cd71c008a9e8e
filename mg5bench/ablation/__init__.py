"""Ablation studies (``mg5bench ablate``), one consumer of the run store: an axis file (``axes/<axis>.yaml``,
parsed by ``axis``) lists variants of one base run; ``plan`` resolves each variant's runs, ``study`` generates the
missing ones through the runner and compares each variant with the base on the same samples (``compare``: paired
cluster-bootstrap and t intervals, paired cluster permutation p-values), ``outputs`` and ``plot`` print and write
the result, whose stored form (``ablation.json``, ``ablation.csv``) is ``mg5bench.runs.ablations``. See
docs/ablations-and-reports.md.

May import: the run store and runner (``mg5bench.runs``), scoring, metrics, tasks, core and the catalog; the report
reads ablations through ``runs.ablations`` and imports nothing from here.
"""

from __future__ import annotations

from mg5bench.ablation.axis import Axis, Variant, list_axes, load_axis
from mg5bench.ablation.outputs import format_report
from mg5bench.ablation.study import AblationResult, ablate

__all__ = ["AblationResult", "Axis", "Variant", "ablate", "format_report", "list_axes", "load_axis"]
