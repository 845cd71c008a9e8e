#!/usr/bin/env bash
# Installs what the real-browser test of the rating app (tests/mg5bench/human/test_human_browser.py) needs: Debian's chromium
# and the playwright package (which drives that chromium; Playwright's own browser download is not used).
# Without them the test is skipped with a message; CI installs only '.[dev]'.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q chromium
fi
.venv/bin/pip install -q -c constraints.txt -e '.[dev,e2e]'
echo "ready: $(command -v chromium) and playwright $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))')"
