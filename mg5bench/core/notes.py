"""One-line notes on stderr for what the suite repaired on its own (a cache rebuilt, bad lines quarantined, a
stale lock taken over): the work goes on, and the user learns what happened and where."""

from __future__ import annotations

import sys


def note(message: str) -> None:
    """Print ``mg5bench: note: <message>`` as one line on stderr (newlines in the message are flattened)."""
    text = " ".join(str(message).split())
    print(f"mg5bench: note: {text}", file=sys.stderr, flush=True)
