"""Figures as PNG bytes that are the same for the same figure (no timestamp or software metadata), so a rebuilt
report or ablation plot is byte-identical. matplotlib is imported by the caller that draws the figure."""

from __future__ import annotations

import io
from typing import Any


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes without metadata (reproducible byte for byte)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()
