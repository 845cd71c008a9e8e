"""The leaderboard (``mg5bench report``): tables, ablations, metric meta-evaluation, the paper's claims beside ours,
human ratings, an HTML page and contact sheets, all built from stored results. (``mg5bench/scoring/summary.py`` is the
plain metric table that ``run`` and ``score`` print; this package builds the whole report.)"""

from __future__ import annotations

from mg5bench.leaderboard.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
