"""Regenerate docs/human-eval-rating.png from the rating app itself: `mg5bench annotate` serves two stored runs
on a throwaway database, a rater logs in through headless Chromium (playwright), answers the items before
``--item``, picks one answer on that item (so a chosen button shows) and the page is saved.

From a fresh clone (the shipped checkpoints and the synthetic world are all it needs):

    bash scripts/setup_browser_test.sh                 # Debian's chromium + the playwright package
    .venv/bin/python scripts/human_eval_screenshot.py  # makes the two runs if --runs lacks them, then the PNG

The runs are the ones `mg5bench annotate --task vist --models minigpt5,sd2-ft` picks (each model's shipped
checkpoint at default settings); a model without a complete run under --runs is run first with `mg5bench run
--limit N` (about a minute each on two CPU cores). The script fails, rather than writing the picture, when an
answer button's label is cut short at the window's width.
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Elements inside an answer button whose text does not fit (the label, cut with an ellipsis)
TRUNCATED_JS = """() => [...document.querySelectorAll('[data-testid^=stBaseButton] [data-testid=stMarkdownContainer]')]
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


def ensure_runs(task: str, models: list[str], runs: Path, split: str | None, limit: int) -> None:
    """Run each model that has no complete run of the task and split under ``runs`` (the task's split)."""
    from mg5bench.human.runs import candidate_runs
    from mg5bench.tasks import get_task

    split = split or get_task(task).default_split
    for model in models:
        if candidate_runs(runs, task, model, split):
            continue
        print(f"no run of {model} on {task} {split} under {runs}: running it on {limit} samples", flush=True)
        cmd = [sys.executable, "-m", "mg5bench", "run", "--task", task, "--model", model, "--split", split]
        cmd += ["--limit", str(limit), "--out", str(runs), "--metrics", "clip_i", "--resamples", "0", "--quiet"]
        subprocess.run(cmd, check=True)


def open_item(store: Any, study: int, rater: str) -> tuple[list[str], bool]:
    """The keys that answer every question of the rater's open item with "tie, lean B" (3), and whether the item
    shows the page well: a pair item (not an attention check) with at least two steps of story before it."""
    item = store.next_item(study, rater)
    modifiers = {"language": "", "image": "Shift+", "multimodal": "Alt+", "consistency": "Alt+Shift+"}
    images = sum("image" in seg for seg in item.context)
    return [modifiers[a] + "3" for a in item.aspects], item.kind == "pair" and images >= 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="vist")
    ap.add_argument("--models", default="minigpt5,sd2-ft")
    ap.add_argument("--split", help="default: the task's")
    ap.add_argument("--runs", type=Path, default=REPO / "runs")
    ap.add_argument("--limit", type=int, default=5, help="samples per run made here (default 5)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "human-eval-rating.png")
    ap.add_argument("--item", type=int, default=0, help="screenshot the rater's N-th item, earlier ones answered "
                    "(default 0: the first pair item with two or more story steps before it)")  # fmt: skip
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1300, help="the app scrolls inside the window: make it tall")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        raise SystemExit("needs chromium and playwright: run 'bash scripts/setup_browser_test.sh'")
    from mg5bench.human.ratings import RatingStore

    models = [m.strip() for m in args.models.split(",")]
    ensure_runs(args.task, models, args.runs, args.split, args.limit)
    tmp = Path(tempfile.mkdtemp(prefix="mg5bench-shot-"))
    db = tmp / "ratings.sqlite"
    store = RatingStore(db)
    token = store.invite("rater1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "mg5bench", "annotate", "--task", args.task, "--models", args.models]
    cmd += ["--runs", str(args.runs), "--db", str(db), "--port", str(port), "--raters", "1", "--overlap", "1"]
    cmd += ["--split", args.split] if args.split else []
    server = subprocess.Popen(cmd, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("mg5bench annotate stopped; see its message above") from None
                if time.monotonic() > deadline:
                    raise SystemExit("the app did not come up within 120 s") from None
                time.sleep(0.25)
        study = int(store.study()["id"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_label("Rater id").fill("rater1")
            page.get_by_label("Access token").fill(token)
            page.get_by_role("button", name="Start").click()
            chosen = "document.querySelectorAll('[data-testid=stBaseButton-primary]').length === {} + 1"  # + Submit
            total = len(store.queue(study, "rater1"))
            for k in range(1, total + 1):
                page.get_by_text(f"Item {k} of").wait_for()
                page.get_by_role("button", name="Submit").wait_for()  # the shortcut keys work once it is there
                keys, shows_well = open_item(store, study, "rater1")
                last = k == args.item or (not args.item and (shows_well or k == total))
                for n, key in enumerate(keys[:1] if last else keys, start=1):
                    page.keyboard.press(key)
                    page.wait_for_function(chosen.format(n))
                if last:
                    break
                page.keyboard.press("Enter")
            page.mouse.move(args.width - 5, args.height - 5)  # no hover effect on an image or a button
            page.wait_for_timeout(500)
            cut = page.evaluate(TRUNCATED_JS)
            if cut:
                raise SystemExit(f"button labels cut short at {args.width} px: {cut}; shorten them or widen --width")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"wrote {args.out}")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the group of the server this script started
            server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
