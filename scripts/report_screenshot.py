"""Screenshot the HTML leaderboard as a reader sees it (docs/leaderboard-report.png) with headless Chromium.

Needs chromium and playwright (scripts/setup_browser_test.sh).

.venv/bin/python scripts/report_screenshot.py [--page reports/leaderboard.html] [--out docs/leaderboard-report.png]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--page", type=Path, default=Path("reports/leaderboard.html"))
    ap.add_argument("--out", type=Path, default=Path("docs/leaderboard-report.png"))
    ap.add_argument("--width", type=int, default=1300)
    ap.add_argument("--height", type=int, default=1700, help="the top of the page that is captured")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: run scripts/setup_browser_test.sh")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.page.resolve().as_uri())
        page.wait_for_load_state("load")
        section = page.locator("h2").nth(2)  # the first task table, below "How to read it" and the checkpoints
        section.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -10)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
