"""The rating app in a real headless Chromium: `mg5bench annotate` serves it on localhost, a rater logs in,
answers by clicking and by keyboard shortcuts, submits, and the vote is in SQLite.

Needs Debian's chromium and the `playwright` package (`bash scripts/setup_browser_test.sh` installs both);
skipped with a message where either is missing (CI installs only `.[dev]`). Playwright drives the system
Chromium (`executable_path`): its own browser download is not used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from human_fixtures import make_run, vist_fingerprint

from mg5bench.human.assignment import ASPECTS
from mg5bench.human.ratings import RatingStore

# Button labels whose text does not fit their button (Streamlit cuts them with an ellipsis)
TRUNCATED_JS = """() => [...document.querySelectorAll('[data-testid^=stBaseButton] [data-testid=stMarkdownContainer]')]
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`mg5bench annotate ...` in its own process group (it execs the Streamlit server), stopped afterwards."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mg5bench", "annotate", *args, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the app did not come up:\n{log.read_text(errors='replace')}")
            time.sleep(0.25)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group of the process this test started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_vote_cast_in_chromium_lands_in_the_database(tmp_path: Path, chromium: Any) -> None:
    fp = vist_fingerprint()
    runs = tmp_path / "runs"
    make_run(runs, "alpha", (255, 0, 0), fingerprint=fp, word="red")
    make_run(runs, "beta", (0, 0, 255), fingerprint=fp, word="blue")
    db = tmp_path / "ratings.sqlite"
    token = RatingStore(db).invite("alice")
    port = _free_port()
    args = ["--task", "vist", "--models", "alpha,beta", "--split", "val", "--runs", str(runs), "--db", str(db)]
    with serve(args, port, tmp_path / "server.log"):
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_label("Access token").wait_for()
            assert page.get_by_text("Context").count() == 0  # nothing before a valid token
            page.get_by_label("Rater id").fill("alice")
            page.get_by_label("Access token").fill("mg5-wrong")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Unknown rater id or token").wait_for()
            page.get_by_label("Access token").fill(token)
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Item 1 of").wait_for()
            page.get_by_role("button", name="Submit").wait_for()  # the shortcut keys work once the page is whole
            assert page.get_by_text("alpha").count() == 0 and page.get_by_text("beta").count() == 0
            # every answer label whole: on one line at this width, wrapped (not cut to "Tie, le...") when narrow
            for width in (1280, 760):
                page.set_viewport_size({"width": width, "height": 1400})
                page.wait_for_timeout(300)
                assert page.evaluate(TRUNCATED_JS) == [], width
            store = RatingStore(db)
            first = store.queue(1, "alice")[0]
            chosen = "document.querySelectorAll('[data-testid=stBaseButton-primary]').length === {} + 1"  # + Submit
            # item 1: two questions by their keys, the third by clicking its button, submit by clicking
            page.keyboard.press("1")  # language coherence: A is better
            page.wait_for_function(chosen.format(1))
            page.keyboard.press("Shift+4")  # image quality: B is better
            page.wait_for_function(chosen.format(2))
            page.get_by_role("button", name="Both bad").nth(2).click()  # multimodal coherence
            page.wait_for_function(chosen.format(3))
            if "consistency" in first["aspects"]:  # the story's second step or later
                page.keyboard.press("Alt+Shift+2")  # visual consistency: tie, leaning A
                page.wait_for_function(chosen.format(4))
            page.get_by_role("button", name="Submit").click()
            page.get_by_text("Item 2 of").wait_for()
            page.get_by_role("button", name="Submit").wait_for()
            # item 2: keyboard only
            second = store.queue(1, "alice")[1]
            keys = {"language": "2", "image": "Shift+3", "multimodal": "Alt+5", "consistency": "Alt+Shift+1"}
            for n, aspect in enumerate(second["aspects"], start=1):
                page.keyboard.press(keys[aspect])
                page.wait_for_function(chosen.format(n))
            page.keyboard.press("Enter")
            page.get_by_text("Item 3 of").wait_for()
            page.screenshot(path=str(tmp_path / "rating.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)  # what the browser showed
            print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
            raise
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rater, item_id, aspect, label, left_model, right_model, seconds FROM votes "
                            "ORDER BY id").fetchall()  # fmt: skip
    expected = []
    for item, labels in ((first, ("A", "B", "both_bad", "tie_a")), (second, ("tie_a", "tie_b", "both_bad", "A"))):
        answer = dict(zip(ASPECTS, labels, strict=True))
        expected += [("alice", item["item_id"], a, answer[a], item["left_model"], item["right_model"])
                     for a in item["aspects"]]  # fmt: skip
    assert [r[:6] for r in rows] == expected
    assert rows[0][6] > 0 and rows[len(first["aspects"])][6] > 0
