"""Pairwise human evaluation, one consumer of the run store: what a study asks and who rates what
(``assignment``), the rating database (``schema``: its tables and migrations; ``ratings``: ``RatingStore``), pairing
two stored runs into a study (``runs``), the analysis (``analysis``) and what the app shows (``view``). The
Streamlit app in ``human_eval/app.py`` is a thin view over these.

May import: ``mg5bench.core``, ``mg5bench.data``, the task definitions and the catalog (to label a run by its model's
defaults); never the runner, scoring or the report. Kept import-light (no pandas, numpy or torch at import time):
the CLI imports it lazily and the app on every rerun.
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
