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
    ap.add_argument("--height", type=int, default=2200, help="how much of the page is captured, from the first table")
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
        # from the first task table (below "How to read it" and the checkpoints): the table, its plot, the gallery
        box = page.locator("h2").nth(2).bounding_box()
        top = int(box["y"]) - 8 if box else 0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True,
                        clip={"x": 0, "y": top, "width": args.width, "height": args.height})  # fmt: skip
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
