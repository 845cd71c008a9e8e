"""The ablation plot: one panel per headline result, each variant's value with its 95% cluster-bootstrap CI as an
error bar, the base in its own colour, variants in the axis's order. PNG bytes are deterministic (no timestamp or
software metadata), so a rebuilt report is byte-identical."""

from __future__ import annotations

import io
import math
from typing import Any

BASE_COLOUR = "#d62728"
VARIANT_COLOUR = "#1f77b4"


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes without metadata (reproducible byte for byte)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def plot_png(report: dict[str, Any], rows: list[dict[str, Any]]) -> bytes:
    """``rows``: the flat table rows (``core.table_rows``) of the ablation ``report``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in report["headline"] if any(r["metric"] == k for r in rows)]
    ncols = min(3, max(1, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    variants = [r["variant"] for r in report["rows"]]
    for i, key in enumerate(keys):
        ax = axes[i // ncols][i % ncols]
        sel = {r["variant"]: r for r in rows if r["metric"] == key}
        for x, name in enumerate(variants):
            r = sel.get(name)
            if r is None or r["value"] is None:
                continue
            lo, hi = r["value_ci_low"], r["value_ci_high"]
            err = None
            if lo is not None and hi is not None:
                err = [[max(0.0, r["value"] - lo)], [max(0.0, hi - r["value"])]]
            colour = BASE_COLOUR if r["test"] == "base" else VARIANT_COLOUR
            ax.errorbar([x], [r["value"]], yerr=err, fmt="o", color=colour, capsize=3)
        arrow = "higher is better" if next(iter(sel.values()))["higher_is_better"] else "lower is better"
        ax.set_title(f"{key} ({arrow})", fontsize=9)
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(variants, rotation=35, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for j in range(len(keys), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    ax0 = report["axis"]
    fig.suptitle(f"{ax0['name']}: {ax0['title']} ({report['task']} {report['split']}, first {report['limit']} "
                 f"samples; red = base {ax0['base']}; bars = 95% cluster-bootstrap CI)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return figure_png(fig)
