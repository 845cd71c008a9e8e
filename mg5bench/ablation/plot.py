"""The ablation plot: per headline result two panels, one above the other. Above, each variant's paired
difference from the base with its 95% interval (the comparison the table tests: a bar clear of the zero line is a
difference the paired test can see, even when the absolute values' intervals overlap); below, the absolute values
with their own intervals. Panels are titled with the report's metric names. PNG bytes are deterministic (no
timestamp or software metadata), so a rebuilt report is byte-identical."""

from __future__ import annotations

import math
from typing import Any

from mg5bench.core.figures import figure_png

BASE_COLOUR = "#d62728"
VARIANT_COLOUR = "#1f77b4"


def _bar(ax: Any, x: int, value: float | None, lo: float | None, hi: float | None, colour: str) -> None:
    if value is None:
        return
    err = None
    if lo is not None and hi is not None:
        err = [[max(0.0, value - lo)], [max(0.0, hi - value)]]
    ax.errorbar([x], [value], yerr=err, fmt="o", color=colour, capsize=3)


def plot_png(report: dict[str, Any], rows: list[dict[str, Any]]) -> bytes:
    """``rows``: the flat table rows (``runs.ablations.table_rows``) of the ablation ``report``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mg5bench.metrics.schema import display

    keys = [k for k in report["headline"] if any(r["metric"] == k for r in rows)]
    ncols = min(3, max(1, len(keys)))
    groups = max(1, math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(2 * groups, ncols, figsize=(4.2 * ncols, 5.6 * groups), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2] * groups})  # fmt: skip
    variants = [r["variant"] for r in report["rows"]]
    others = [v for v in variants if v != report["axis"]["base"]]
    for i, key in enumerate(keys):
        top, bottom = axes[2 * (i // ncols)][i % ncols], axes[2 * (i // ncols) + 1][i % ncols]
        sel = {r["variant"]: r for r in rows if r["metric"] == key}
        up = next(iter(sel.values()))["higher_is_better"]
        for x, name in enumerate(others):
            r = sel.get(name)
            if r is not None:
                _bar(top, x, r["diff"], r["diff_ci_low"], r["diff_ci_high"], VARIANT_COLOUR)
        top.axhline(0.0, color=BASE_COLOUR, linewidth=1)
        top.set_title(f"{display(key)}: variant - base ({'higher' if up else 'lower'} is better)", fontsize=9)
        top.set_xticks(range(len(others)))
        top.set_xticklabels([""] * len(others))
        top.set_xlim(-0.6, len(others) - 0.4)
        for x, name in enumerate(variants):
            r = sel.get(name)
            if r is not None:
                colour = BASE_COLOUR if r["test"] == "base" else VARIANT_COLOUR
                _bar(bottom, x, r["value"], r["value_ci_low"], r["value_ci_high"], colour)
        bottom.set_title(f"{display(key)}: value", fontsize=8)
        bottom.set_xticks(range(len(variants)))
        bottom.set_xticklabels(variants, rotation=35, ha="right", fontsize=8)
        top.set_xticks(range(len(others)))
        top.set_xticklabels(others, rotation=35, ha="right", fontsize=7)
        for ax in (top, bottom):
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
    for j in range(len(keys), groups * ncols):
        axes[2 * (j // ncols)][j % ncols].axis("off")
        axes[2 * (j // ncols) + 1][j % ncols].axis("off")
    ax0 = report["axis"]
    seeds = max((len(r.get("seeds", [])) for r in report["rows"]), default=1)
    seeded = f", up to {seeds} seeds per variant" if seeds > 1 else ""
    fig.suptitle(f"{ax0['name']}: {ax0['title']} ({report['task']} {report['split']}, first {report['limit']} "
                 f"samples{seeded}). Above: paired difference from the base {ax0['base']} (red line) with its 95% "
                 "CI; below: values, base in red", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return figure_png(fig)
