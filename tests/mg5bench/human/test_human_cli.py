"""`mg5bench annotate` and `mg5bench human report|export` through the CLI entry point (in-process: each
subprocess start would cost a second), with one subprocess check of the one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from human_fixtures import VIST_IDS, make_run, vist_fingerprint

from mg5bench.cli import main
from mg5bench.human.store import ASPECTS, GOLD_GT, RatingStore


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
        store.submit("alice", it.item_id, dict.fromkeys(ASPECTS, x_side), it.left_model, it.right_model, 3.0)
    code, out, err = run_cli(capsys, "human", "report", "--db", db)
    assert code == 0, err
    assert "study 1: alpha (X) vs beta (Y), vist val: 5 items, 1 of 1 raters kept" in out
    assert "X better 5, tie leaning X 0, tie leaning Y 0, Y better 0, both bad 0" in out
    code, out, _ = run_cli(capsys, "human", "report", "--db", db, "--json")
    rep = json.loads(out)  # valid JSON: undefined values (alpha with one rater) are null, not NaN
    assert code == 0 and rep["studies"][0]["aspects"]["image"]["alpha"] is None
    assert rep["studies"][0]["aspects"]["image"]["rates"]["dropped"]["rate"] == 1.0
    code, out, _ = run_cli(capsys, "human", "export", "--db", db, "--out", str(tmp_path / "v.csv"))
    assert code == 0 and "wrote 21 votes" in out  # 5 items + 1 repeat + 1 gold, three aspects each


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
