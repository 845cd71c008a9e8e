"""Deprecated entry point, kept so that existing commands keep working: the model-card evaluation moved to
``mg5bench.cards.reference`` (same arguments). ``python -m mg5bench.eval_reference ...`` forwards there."""

from __future__ import annotations

import sys

from mg5bench.adapters.minigpt5 import interleave as _interleave
from mg5bench.cards.reference import evaluate, main, write_backbones_card, write_card
from mg5bench.data.oracle import accuracy as _score

# the old module's names, for scripts written against it; new code imports them from where they live
__all__ = ["_interleave", "_score", "evaluate", "main", "write_backbones_card", "write_card"]

if __name__ == "__main__":
    print("note: 'python -m mg5bench.eval_reference' is deprecated; use 'python -m mg5bench.cards.reference'",
          file=sys.stderr)  # fmt: skip
    main()
