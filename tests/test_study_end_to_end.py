"""A whole study as a new user lives it, in a copy of the repository made as a clone would be (its tracked files,
committed), through the real CLI in subprocesses: two models run, the cfg axis ablated, the report built, a rating
study set up both ways of choosing its runs, a rater's votes, the human report. Afterwards the copy's tracked files
are unchanged and nothing untracked is left outside what .gitignore covers (`git status --porcelain` is empty)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

DATA = ["--data", "synth:size=small", "--split", "val"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tracked files (as they are in this working tree), committed into a fresh repository."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    root = tmp_path_factory.mktemp("study") / "mg5bench"
    for rel in _git(REPO, "ls-files", "-z").split("\0"):
        src = REPO / rel
        if rel and src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone")
    return root


def mg5(clone: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m mg5bench ARGS` in the copy (its own package first on the path), with a user cache of its own."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(clone)}
    proc = subprocess.run([sys.executable, "-m", "mg5bench", *args], cwd=clone, capture_output=True, text=True,
                          env=env, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, f"mg5bench {' '.join(args)}:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    return proc


def test_a_study_end_to_end_leaves_the_repository_clean(clone: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for model in ("minigpt5", "sd2-ft"):
        mg5(clone, cache, "run", "--task", "vist", "--model", model, *DATA, "--limit", "10", "--quiet")
    abl = mg5(clone, cache, "ablate", "cfg", "--task", "vist", *DATA, "--limit", "10", "--seeds", "1", "--quiet")
    assert "WARNING: only 2 stories" in abl.stdout and "no-cfg" in abl.stdout
    rep = mg5(clone, cache, "report", "--quiet", "--no-contact-sheets")
    assert (clone / "runs" / "report" / "leaderboard.html").is_file()
    assert "report/leaderboard.md" in rep.stdout
    # a study of the shipped checkpoints at default settings, picked among the ablation's runs by --models
    first = mg5(clone, cache, "annotate", "--task", "vist", "--models", "minigpt5,sd2-ft", *DATA[2:], "--no-serve")
    assert "stage2-vist" in first.stdout and "study" in first.stdout
    # another study, its minigpt5 run named by folder (the no-CFG ablation's), narrowing --task/--models
    runs = clone / "runs" / "vist" / "minigpt5"
    listed = mg5(clone, cache, "annotate", "--task", "vist", "--models", "minigpt5,sd2-ft", *DATA[2:],
                 "--list-runs")  # fmt: skip
    no_cfg = next(line for line in listed.stdout.splitlines() if "no-cfg" in line)
    folder = next(p.name for p in runs.iterdir() if p.name in no_cfg)
    mg5(clone, cache, "annotate", "--task", "vist", "--models", "minigpt5,sd2-ft", *DATA[2:], "--run-a", folder,
        "--db", "runs/ablation-study.sqlite", "--no-serve")  # fmt: skip
    # one rater answers their first items (as the app does, through the store), then the human report
    from mg5bench.human.ratings import RatingStore

    store = RatingStore(clone / "ratings.sqlite", create=False)
    store.invite("alice")
    study = int(store.study()["id"])
    for _ in range(3):
        item = store.next_item(study, "alice")
        assert item is not None
        store.submit("alice", item.item_id, dict.fromkeys(item.aspects, "A"), item.left_model, item.right_model, 2.0)
    human = mg5(clone, cache, "human", "report", "--db", "ratings.sqlite")
    assert "minigpt5" in human.stdout and "sd2-ft" in human.stdout
    assert _git(clone, "status", "--porcelain") == ""
