#!/usr/bin/env bash
# Regenerate the committed reports/ (the embedded default's leaderboard) in one command: generate what the plan
# (mg5bench/leaderboard/plan.yaml: every model on every task, then the ablation axes) lacks, one run at a time with
# one thread (stored runs are reused, never regenerated), then build reports/ from the stored results, and take the
# page's screenshot (docs/leaderboard-report.png) when chromium and playwright are there.
#   scripts/make_reports.sh [RUNS_DIR] [OUT_DIR]        (default: runs reports)
# From an empty runs folder this generates every seed of every planned variant (84 runs in the committed report, most of 250 VIST
# samples): a few hours on 2 CPU cores, one run at a time; from stored runs a few minutes (scoring and figures).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs}
OUT=${2:-reports}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # part of the generation key on a CPU: keep it fixed
$PY -m mg5bench report --rebuild --runs "$RUNS" --out "$OUT" --quiet
if command -v chromium >/dev/null 2>&1 && $PY -c "import playwright" 2>/dev/null; then
  $PY scripts/report_screenshot.py --page "$OUT/leaderboard.html" --out docs/leaderboard-report.png
fi
