"""Bad files that must not leak or be overwritten: an error about a file that is not what it was passed as quotes
none of its content (at most a short excerpt, one line); a rating database cut to 0 bytes is refused by every command
that reads or writes ratings, and one in a read-only folder is named with the fix, in real processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from test_bad_inputs import cli

SECRET = "$6$" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # secrets are long


@pytest.mark.parametrize(
    "text",
    [
        "".join(f"user{i}:{SECRET}{i}:19000:0:99999:7:::\n" for i in range(30)),  # /etc/shadow-like
        f"API_TOKEN: {SECRET}\nDB_PASSWORD: {SECRET}\n",  # a .env-like YAML mapping
        f"name: x\nvariants:\n  - name: {SECRET}{'x' * 100_000}\n  - name: b\n",  # a huge bad variant name
        f"name: x\nvariants:\n  - {{name: a, model: gt, seed: '{SECRET}'}}\n  - {{name: b, model: gt}}\n",
        f"name: x\nvariants:\n  - {{name: a, model: gt, generation: {{{SECRET}: 1}}}}\n  - {{name: b, model: gt}}\n",
    ],
)
def test_errors_quote_no_file_content(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'mg5bench ablate FILE' on a file that is not an axis (or a bad one) names the problem without printing the
    file's lines: no secret of it, at most a short excerpt, one line."""
    path = tmp_path / "secrets.yaml"
    path.write_text(text)
    code, lines = cli(["ablate", str(path), "--out", str(tmp_path / "runs")], capsys)
    assert code == 2 and len(lines) == 1 and str(path) in lines[0], lines
    assert SECRET not in lines[0] and len(lines[0]) < 400, lines[0]


def _db_argvs(db: Path, tmp: Path) -> dict[str, list[str]]:
    (tmp / "runs").mkdir(exist_ok=True)
    return {
        "human report": ["human", "report", "--db", str(db)],
        "human export": ["human", "export", "--db", str(db), "--out", str(tmp / "votes.csv")],
        "report --ratings": ["report", "--runs", str(tmp / "runs"), "--out", str(tmp / "rep"), "--ratings", str(db)],
        "annotate": ["annotate", "--db", str(db), "--no-serve"],
        "annotate --invite": ["annotate", "--invite", "bob", "--db", str(db)],
    }


def test_a_truncated_rating_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A database cut to 0 bytes is damaged, not new: every command that reads or writes ratings refuses it in one
    line, and nothing is written (the file stays empty, no -wal or -shm beside it, no export, no report)."""
    db = tmp_path / "ratings.sqlite"
    db.write_bytes(b"")
    for name, argv in _db_argvs(db, tmp_path).items():
        code, lines = cli(argv, capsys)
        assert code == 2 and len(lines) == 1 and "empty (0 bytes)" in lines[0] and str(db) in lines[0], (name, lines)
        assert db.stat().st_size == 0, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.sqlite", "runs"]


def test_a_rating_database_in_a_read_only_folder(tmp_path: Path) -> None:
    """SQLite in WAL mode writes beside the database: in a read-only folder every command says so in one line, as
    real processes (root loses its override of file permissions through setpriv)."""
    import os

    from mg5bench.human.ratings import RatingStore

    folder = tmp_path / "ro"
    folder.mkdir()
    RatingStore(folder / "r.sqlite").invite("alice")
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made here")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--"]
    folder.chmod(0o555)
    try:
        argvs = _db_argvs(folder / "r.sqlite", tmp_path)
        for name in ("human report", "annotate --invite"):
            proc = subprocess.run([*prefix, sys.executable, "-m", "mg5bench", *argvs[name]], capture_output=True,
                                  text=True, cwd=REPO)  # fmt: skip
            lines = [x for x in proc.stderr.splitlines() if x.strip()]
            assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, (name, proc.stderr)
            assert "SQLite cannot use the rating database" in lines[0] and "a folder you can write to" in lines[0]
    finally:
        folder.chmod(0o755)
    assert sorted(p.name for p in folder.iterdir()) == ["r.sqlite"]
