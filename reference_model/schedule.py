"""The learning-rate schedule every tiny backbone uses: linear warmup, then cosine decay to 0."""

from __future__ import annotations

import math


def warmup_cosine(step: int, steps: int, base: float, warmup: int) -> float:
    """Learning rate at 0-based ``step`` of ``steps``."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(steps - warmup, 1), 1.0)))
