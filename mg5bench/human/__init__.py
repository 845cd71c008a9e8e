"""Pairwise human evaluation: the rating store (``store``), pairing two stored runs into a study (``runs``)
and the analysis (``stats``). The Streamlit app in ``human_eval/app.py`` is a thin view over these.

Kept import-light (no pandas, numpy or torch at import time): the CLI imports it lazily and the app on
every rerun.
"""

from __future__ import annotations

from pathlib import Path

from mg5bench.core.errors import ConfigError


def app_path() -> Path:
    """The Streamlit app: inside the wheel (``mg5bench/_human_eval``) or the source tree (``human_eval``)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_human_eval" / "app.py", here.parent / "human_eval" / "app.py"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"the rating app (human_eval/app.py) was not found next to {here}; reinstall mg5bench")
