"""Ablation studies (``mg5bench ablate``): an axis file lists variants of one base run; each variant's run is
generated once (or found in the store) and compared with the base on the same samples, with a paired
cluster-bootstrap CI and a paired cluster permutation p-value. See docs/ablations-and-reports.md."""

from __future__ import annotations

from mg5bench.ablation.axis import Axis, Variant, list_axes, load_axis
from mg5bench.ablation.core import AblationResult, ablate, format_report

__all__ = ["AblationResult", "Axis", "Variant", "ablate", "format_report", "list_axes", "load_axis"]
