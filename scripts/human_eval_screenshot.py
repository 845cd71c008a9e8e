"""Screenshot the rating page as a rater sees it (docs/human-eval-rating.png): serves two stored runs with
`mg5bench annotate` on a throwaway database, logs a rater in with headless Chromium and saves the page.

Needs chromium and playwright (scripts/setup_browser_test.sh).

.venv/bin/python scripts/human_eval_screenshot.py --task vist --models minigpt5,sd2-ft [--runs runs/] \
    [--out docs/human-eval-rating.png] [--item 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="vist")
    ap.add_argument("--models", default="minigpt5,sd2-ft")
    ap.add_argument("--split", help="default: the task card's")
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--out", type=Path, default=Path("docs/human-eval-rating.png"))
    ap.add_argument("--item", type=int, default=1, help="screenshot the rater's N-th item (earlier ones answered)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1400, help="the app scrolls inside the window: make it tall")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from mg5bench.human.store import RatingStore

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: run scripts/setup_browser_test.sh")
    tmp = Path(tempfile.mkdtemp(prefix="mg5bench-shot-"))
    db = tmp / "ratings.sqlite"
    token = RatingStore(db).invite("rater1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "mg5bench", "annotate", "--task", args.task, "--models", args.models]
    cmd += ["--runs", str(args.runs), "--db", str(db), "--port", str(port)]
    cmd += ["--split", args.split] if args.split else []
    server = subprocess.Popen(cmd, start_new_session=True)
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("mg5bench annotate stopped; see its message above") from None
                time.sleep(0.25)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_label("Rater id").fill("rater1")
            page.get_by_label("Access token").fill(token)
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Item 1 of").wait_for()
            page.get_by_role("button", name="Submit").wait_for()  # the shortcut keys work once it is there
            chosen = "document.querySelectorAll('[data-testid=stBaseButton-primary]').length === {} + 1"
            for k in range(1, args.item):  # earlier items: every question "tie, leaning B"
                for n, key in enumerate(("3", "Shift+3", "Alt+3"), start=1):
                    page.keyboard.press(key)
                    page.wait_for_function(chosen.format(n))
                page.keyboard.press("Enter")
                page.get_by_text(f"Item {k + 1} of").wait_for()
                page.get_by_role("button", name="Submit").wait_for()
            page.keyboard.press("1")  # one question answered, as mid-way through an item
            page.wait_for_function(chosen.format(1))
            page.wait_for_timeout(500)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"wrote {args.out}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
