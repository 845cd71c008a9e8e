"""`mg5bench annotate` and `mg5bench human report|export` through the CLI entry point (in-process: each
subprocess start would cost a second), with one subprocess check of the one-line error."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from human_fixtures import VIST_IDS, ablated_runs, make_run, vist_fingerprint

from mg5bench.cli import main
from mg5bench.human.assignment import GOLD_GT
from mg5bench.human.ratings import RatingStore


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse: a bad flag value, exit status 2 after its one-line message
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    fp = vist_fingerprint()
    make_run(tmp_path / "runs", "alpha", (255, 0, 0), fingerprint=fp)
    make_run(tmp_path / "runs", "beta", (0, 0, 255), fingerprint=fp)
    return tmp_path / "runs"


def test_annotate_creates_a_study_invites_and_reports(runs: Path, tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.sqlite")
    code, out, err = run_cli(capsys, "annotate", "--invite", "alice", "--db", db)
    assert code == 0, err
    token = out.split("token: ")[1].split()[0]
    assert RatingStore(db).authenticate("alice", token) == "rater"
    base = ["annotate", "--task", "vist", "--models", "alpha,beta", "--split", "val", "--runs", str(runs), "--db", db]
    code, out, err = run_cli(capsys, *base, "--raters", "1", "--overlap", "1", "--no-serve")
    assert code == 0, err
    assert "created study 1" in out and "alpha vs beta on vist val" in out and "raters: alice" in out
    code, out, _ = run_cli(capsys, *base, "--no-serve")
    assert code == 0 and "study 1" in out and "already pairs these runs" in out
    store = RatingStore(db)
    assert len(store.studies()) == 1
    while (it := store.next_item(1, "alice")) is not None:
        x_side = "A" if it.left_model in ("alpha", GOLD_GT) else "B"  # alpha everywhere; the truth on gold items
        store.submit("alice", it.item_id, dict.fromkeys(it.aspects, x_side), it.left_model, it.right_model, 3.0)
    code, out, err = run_cli(capsys, "human", "report", "--db", db)
    assert code == 0, err
    assert "study 1: alpha (X) vs beta (Y), vist val: 5 items, 1 of 1 raters kept" in out
    assert "X better 5, tie leaning X 0, tie leaning Y 0, Y better 0, both bad 0" in out
    code, out, _ = run_cli(capsys, "human", "report", "--db", db, "--json")
    rep = json.loads(out)  # valid JSON: undefined values (alpha with one rater) are null, not NaN
    assert code == 0 and rep["studies"][0]["aspects"]["image"]["alpha"] is None
    assert rep["studies"][0]["aspects"]["image"]["rates"]["dropped"]["rate"] == 1.0
    code, out, _ = run_cli(capsys, "human", "export", "--db", db, "--out", str(tmp_path / "v.csv"))

    # per item: language, image and multimodal (both runs write text), and visual consistency from a story's second
    # step on (the first has no earlier image); the gold item (the truth against a blank image) has no text
    def n_questions(q: dict) -> int:
        first_step = q["item_id"].endswith("_0")
        return (2 if q["kind"] == "gold" else 3) + (0 if first_step else 1)

    queue = store.queue(1, "alice")
    assert sorted(q["kind"] for q in queue) == ["gold", "pair", "pair", "pair", "pair", "pair", "repeat"]
    assert code == 0 and f"wrote {sum(n_questions(q) for q in queue)} votes" in out


def test_annotate_errors_are_one_line(runs: Path, tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.sqlite")
    make_run(tmp_path / "short", "beta", (1, 2, 3), ids=VIST_IDS[:2])
    cases = [
        (["--task", "vist", "--models", "alpha,gamma", "--split", "val", "--runs", str(runs)],
         "no complete run of gamma on vist val"),
        (["--task", "vist", "--models", "alpha", "--split", "val", "--runs", str(runs)], "two models"),
        (["--task", "vist"], "--task and --models go together"),
        (["--run-a", str(next((runs / "vist" / "alpha").iterdir()))], "give both --run-a and --run-b"),
        (["--run-a", str(next((runs / "vist" / "alpha").iterdir())),
          "--run-b", str(next((tmp_path / "short" / "vist" / "beta").iterdir()))], "do not cover the same samples"),
        (["--invite", "bob", "--task", "vist"], "--invite only creates a token"),
        (["--organiser"], "--organiser goes with --invite"),
        (["--invite", "../bob"], "is not valid"),
        (["--task", "vist", "--models", "alpha,beta", "--split", "val", "--runs", str(runs), "--items", "-1"],
         "argument --items: must be >= 0"),
        (["--task", "vist", "--models", "alpha,beta", "--split", "val", "--runs", str(runs), "--raters", "2",
          "--overlap", "3"], "need raters >= 1 and 1 <= overlap <= raters"),
    ]  # fmt: skip
    for args, needle in cases:
        code, _, err = run_cli(capsys, "annotate", *args, "--db", db, "--no-serve")
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0], (args, err)
    code, _, err = run_cli(capsys, "human", "report", "--db", str(tmp_path / "none.sqlite"))
    assert code == 2 and "rating database not found" in err
    proc = subprocess.run([sys.executable, "-m", "mg5bench", "annotate", "--db", str(tmp_path / "absent.sqlite")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "mg5bench: error: give the runs (--task/--models or --run-a/--run-b), or the --db of an existing study"
    ]


@pytest.fixture(scope="module")
def ablated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ablated_runs(tmp_path_factory.mktemp("ablated") / "runs")


def test_annotate_after_ablate_picks_the_shipped_runs_or_the_ones_given(ablated, tmp_path: Path, capsys) -> None:
    runs = str(ablated["default"].parents[2])
    db = tmp_path / "r.sqlite"
    base = ["annotate", "--task", "vist", "--split", "val", "--runs", runs, "--db", str(db), "--no-serve"]
    code, out, err = run_cli(capsys, *base, "--models", "minigpt5,sd2-ft")
    assert code == 0, err
    assert "study 1: minigpt5 vs sd2-ft on vist val" in out
    assert f"run X: minigpt5: stage2-vist (shipped), default settings in {ablated['default']}" in out
    assert f"run Y: sd2-ft: sd2-ft-vist (shipped), default settings in {ablated['sd2-ft']}" in out
    # the shipped model against its no-CFG ablation: --run-b narrows the second model, by folder name
    code, out, err = run_cli(capsys, *base, "--models", "minigpt5,minigpt5", "--run-b", ablated["no-cfg"].name)
    assert code == 0, err
    assert "study 2: minigpt5 vs minigpt5 (stage2-vist-no-cfg) on vist val" in out
    # a run given must be of the task and model it stands for; nothing is written then
    for args, needle in (
        (["--models", "minigpt5,sd2-ft", "--run-a", str(ablated["sd2-ft"])],
         f"--run-a {ablated['sd2-ft']} is a run of sd2-ft on vist val, not of model minigpt5"),
        (["--models", "sd2-ft,minigpt5", "--run-b", str(ablated["default"]), "--split", "test"],
         "not of split test: pass a run folder of minigpt5 on vist test, or drop --run-b"),
    ):  # fmt: skip
        before = db.stat().st_mtime_ns
        code, _, err = run_cli(capsys, *base, *args)
        assert code == 2 and err.count("\n") == 1 and needle in err, err
        assert db.stat().st_mtime_ns == before and len(RatingStore(db).studies()) == 2
    code, out, err = run_cli(capsys, *base, "--models", "minigpt5,sd2-ft", "--list-runs")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(rows) == 8 and sum(line.startswith("  *") for line in rows) == 2
    assert "  * stage2-vist (shipped), default settings" in out and ablated["gs1"].name in out


def test_annotate_says_how_to_install_streamlit(runs: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    db = str(tmp_path / "r.sqlite")
    base = ["annotate", "--task", "vist", "--models", "alpha,beta", "--split", "val", "--runs", str(runs), "--db", db]
    monkeypatch.setitem(sys.modules, "streamlit", None)  # what an environment without Streamlit looks like
    code, _, err = run_cli(capsys, *base)
    assert code == 2 and "pip install 'streamlit>=1.38'" in err


def test_the_app_is_found_in_the_source_tree() -> None:
    from conftest import REPO

    from mg5bench.human import app_path

    assert app_path() == REPO / "human_eval" / "app.py"


def test_help_has_examples(capsys) -> None:
    for cmd in (["annotate"], ["human"], ["human", "report"]):
        with pytest.raises(SystemExit):
            main([*cmd, "--help"])
        out = capsys.readouterr().out
        assert "examples:" in out and "mg5bench human report --db ratings.sqlite" in out


def test_no_help_text_shows_a_doubled_percent_sign(capsys) -> None:
    """Descriptions are printed as written (RawDescriptionHelpFormatter): a "%%" there reaches the reader."""
    from mg5bench.cli import build_parser

    def walk(parser, path):
        yield path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])

    paths = list(walk(build_parser(), []))
    assert ["human", "report"] in paths and ["annotate"] in paths
    for path in paths:
        with pytest.raises(SystemExit):
            main([*path, "--help"])
        out = capsys.readouterr().out
        assert "%%" not in out, path
