"""Untrusted and damaged results read back: a report over run folders whose run.json is damaged, that a symlink
brings in from outside or again, whose records or images changed after scoring; model names that are Markdown, HTML
and a spreadsheet formula at once; a report build that fails (a full disk) leaving the previous report; a damaged
ablation.json; and pickles where only tensors belong (every torch.load reads weights only; a crafted resume state
runs no code). Each ends in a finished result that leaves the damaged part out with its reason, or a one-line error
naming the fix."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import faultlib
import pytest
from conftest import REPO

INJECT = '=HYPERLINK("http://evil.example","x")|**b**<img src=x onerror=alert(1)>[l](http://e.example)`c`'


@pytest.fixture(scope="module")
def report_runs(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder: the gt and blank bounds over the first 5 VIST test samples, and gt with another seed over the
    first 3 (a second table of the same task). Tests copy it before changing anything."""
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import RunSpec

    root = tmp_path_factory.mktemp("report") / "runs"
    for model, limit, seed, batch in (("gt", 5, 0, None), ("blank", 5, 0, None), ("gt", 3, 1, 1)):
        spec = RunSpec(task="vist", model=model, split="test", data=str(small_world), limit=limit, seed=seed)
        run(spec, root, device="cpu", resamples=20, progress=False, batch_size=batch)  # batch 1: 3 samples stored
    return root


def _report(runs: Path, out: Path, **kw: Any) -> Any:
    from mg5bench import api

    return api.report(runs, out, resamples=20, device="cpu", gallery=2, contact=2, progress=False, **kw)


def _copy_runs(src: Path, tmp: Path) -> Path:
    dst = tmp / "runs"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _folder(runs: Path, model: str, seed: int = 0) -> Path:
    return next(f for f in sorted((runs / "vist" / model).iterdir()) if f"seed{seed}-" in f.name)


def test_a_report_lists_every_run_it_leaves_out(report_runs: Path, tmp_path: Path) -> None:
    """Damaged run.json files (cut short, not UTF-8, a JSON list, a folder), a run folder linked in from outside the
    runs folder and the runs folder linked into itself: the report completes, each is listed as left out with its
    reason, every run is a row once, and the two tables of one task have their own figure files."""
    runs = _copy_runs(report_runs, tmp_path)
    gt = _folder(runs, "gt")
    damaged = {"cut": b'{"spec": {"task": "vi', "latin1": '{"spec": "caf\xe9"}'.encode("latin-1"), "list": b"[1, 2]"}
    for name, data in damaged.items():
        shutil.copytree(gt, gt.parent / name)
        (gt.parent / name / "run.json").write_bytes(data)
    shutil.copytree(gt, gt.parent / "folder")
    (gt.parent / "folder" / "run.json").unlink()
    (gt.parent / "folder" / "run.json").mkdir()
    outside = tmp_path / "elsewhere"
    shutil.copytree(_folder(runs, "blank"), outside / "blank-copy")
    (runs / "vist" / "blank" / "linked").symlink_to(outside / "blank-copy")
    (runs / "vist2").symlink_to(runs / "vist")  # the whole task folder again
    res = _report(runs, tmp_path / "out", contact_sheets=False)
    why = {x.split(": ", 1)[0]: x.split(": ", 1)[1] for x in res.left_out}
    assert why["vist/gt/cut"].startswith("run.json is not valid JSON")
    assert why["vist/gt/latin1"].startswith("run.json is not UTF-8 text")
    assert why["vist/gt/list"].startswith("run.json is not a run description (a JSON list")
    assert why["vist/gt/folder"].startswith("run.json is a folder")
    assert why["vist/blank/linked"].startswith("resolves outside the runs folder")
    assert sum(k.startswith("vist2/") for k in why) == 3 + 5  # the three runs and the five damaged ones, again
    assert all(why[f"vist2/{r.relative_to(runs / 'vist')}"].startswith("the same run folder as vist/")
               for r in (gt, _folder(runs, "blank"), _folder(runs, "gt", 1)))  # fmt: skip
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = [r for t in report["tables"] for r in t["rows"]]
    assert sorted(rows) == sorted(
        str(f.relative_to(runs)) for f in (gt, _folder(runs, "blank"), _folder(runs, "gt", 1))
    )
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    figures = [line[line.index("(") + 1 : -1] for line in md.splitlines() if line.startswith("![overview-vist")]
    assert figures == ["figures/overview-vist.png", "figures/overview-vist-n3.png"]
    assert (tmp_path / "out" / figures[0]).read_bytes() != (tmp_path / "out" / figures[1]).read_bytes()
    assert "vist/gt/latin1" in md and "### Runs left out" in md


def test_names_printed_to_a_terminal_carry_no_control_sequences(
    report_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared runs folder whose damaged run folder is named with terminal escape sequences (clear the screen,
    retitle the window, a right-to-left override, a carriage return): 'mg5bench report' lists it as left out with
    every control character printed as an escape, and nothing else of the line is lost."""
    from mg5bench.cli import main

    runs = _copy_runs(report_runs, tmp_path)
    gt = _folder(runs, "gt")
    name = "bad\x1b[2J\x1b]0;owned\x07\u202eevil\rname"
    shutil.copytree(gt, gt.parent / name)
    (gt.parent / name / "run.json").write_bytes(b"[1, 2]")
    capsys.readouterr()
    code = main(["report", "--runs", str(runs), "--out", str(tmp_path / "out"), "--resamples", "20", "--device",
                 "cpu", "--gallery", "2", "--no-contact-sheets", "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out)  # only tab and newline left
    (line,) = [x for x in out.splitlines() if x.startswith("left out: ") and "bad" in x]
    assert "vist/gt/bad\\x1b[2J\\x1b]0;owned\\x07\\u202eevil\\x0dname: run.json is not a run description" in line


def test_a_run_changed_after_scoring_is_confined_again(report_runs: Path, tmp_path: Path) -> None:
    """After a report, one run's image is replaced by a symlink to a file outside, another run's record points at
    an absolute path outside: their stored scorings are reused, but the report leaves both out (naming the record)
    and no byte of the outside image reaches the HTML page or a contact sheet."""
    from PIL import Image

    from mg5bench.leaderboard.html import image_uri

    runs = _copy_runs(report_runs, tmp_path)
    first = _report(runs, tmp_path / "out")
    assert not first.left_out and first.runs_used == 3
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (48, 48), (1, 2, 3)).save(secret)
    blank = _folder(runs, "blank")
    victim = sorted((blank / "images").iterdir())[0]
    victim.unlink()
    victim.symlink_to(secret)
    gt1 = _folder(runs, "gt", 1)
    lines = (gt1 / "samples.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["output"] = [{"image": str(secret)}]
    (gt1 / "samples.jsonl").write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    sheets = {f: (f / "contact_sheet.png").read_bytes() for f in (blank, gt1)}
    res = _report(runs, tmp_path / "out")
    why = dict(x.split(": ", 1) for x in res.left_out)
    assert "is outside the run folder and the data folder" in why[str(blank.relative_to(runs))]
    assert f"id {rec['id']}" in why[str(gt1.relative_to(runs))] and str(secret) in why[str(gt1.relative_to(runs))]
    assert res.runs_used == 1
    html = (tmp_path / "out" / "leaderboard.html").read_text()
    uri = image_uri(secret)
    assert uri is not None and uri not in html
    assert {f: (f / "contact_sheet.png").read_bytes() for f in sheets} == sheets  # not redrawn with the secret


def test_report_text_is_escaped_in_markdown_and_csv(report_runs: Path, tmp_path: Path) -> None:
    """A run whose model name is Markdown, HTML and a spreadsheet formula at once: in leaderboard.md (rendered by
    markdown-it, an independent CommonMark parser) its label is one table cell of literal text, no tag or link;
    in leaderboard.csv no text cell starts like a formula; the HTML page shows it escaped."""
    import csv
    import html as html_lib
    from html.parser import HTMLParser

    markdown_it = pytest.importorskip("markdown_it")
    runs = _copy_runs(report_runs, tmp_path)
    blank = _folder(runs, "blank")
    shutil.copytree(blank, blank.parent / "injected")
    info = json.loads((blank.parent / "injected" / "run.json").read_text())
    info["spec"]["model"] = INJECT
    (blank.parent / "injected" / "run.json").write_text(json.dumps(info))
    res = _report(runs, tmp_path / "out", contact_sheets=False)
    assert not res.left_out
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render((tmp_path / "out" / "leaderboard.md")
                                                                             .read_text())  # fmt: skip
    assert "<a " not in rendered and "<img src=x" not in rendered  # no link, no tag from the label
    assert all(tag.startswith('<img src="figures/') for tag in re.findall(r"<img[^>]*>", rendered))  # the plots only

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.cells: list[str] = []
            self.inside = False

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            if tag == "td":
                self.inside, self.cells = True, [*self.cells, ""]

        def handle_endtag(self, tag: str) -> None:
            self.inside = self.inside and tag != "td"

        def handle_data(self, data: str) -> None:
            if self.inside:
                self.cells[-1] += data

    cells = Cells()
    cells.feed(rendered)
    assert INJECT in cells.cells  # one cell, the literal text
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    assert not [v for r in rows for v in r.values() if v[:1] in ("=", "+", "-", "@") and not _number(v)]
    assert {(r["model"], r["label"]) for r in rows if "HYPERLINK" in r["label"]} == {("'" + INJECT, "'" + INJECT)}
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "<img src=x" not in page and html_lib.escape(INJECT) in page


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_a_failed_report_build_leaves_the_previous_report(report_runs: Path, tmp_path: Path) -> None:
    """A report rebuilt under a file-size limit (a full disk) stops with one line naming the file that could not be
    written; the previous report is byte for byte as it was and no temporary folder is left."""
    runs = _copy_runs(report_runs, tmp_path)
    out = tmp_path / "out"
    _report(runs, out, contact_sheets=False)
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    argv = ["report", "--runs", str(runs), "--out", str(out), "--resamples", "20", "--device", "cpu", "--gallery", "2",
            "--no-contact-sheets", "--quiet"]  # fmt: skip
    import matplotlib

    _report(runs, tmp_path / "warm", contact_sheets=False)  # matplotlib's font cache exists before the limit
    env = {**faultlib.child_env(), "XDG_CACHE_HOME": str(tmp_path / "cache"), "MPLCONFIGDIR": matplotlib.get_cachedir()}
    proc = subprocess.run([sys.executable, "-m", "mg5bench", *argv], capture_output=True, text=True, env=env,
                          cwd=REPO, preexec_fn=faultlib.fsize_limit(20_000))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = faultlib.one_line(proc.stderr)
    assert "cannot write: File too large" in line and "/.report-" in line
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before and not list(out.glob(".report-*"))


def test_a_damaged_ablation_json_is_computed_again(small_world: Path, tmp_path: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """ablation.json emptied, cut short or replaced by a list: the next 'ablate' says so in one note and computes
    the same comparison again; a report meanwhile lists the damaged one as left out. Labels that look like
    formulas are neutralised in ablation.csv."""
    from test_ablation import Known

    from mg5bench.ablation import ablate
    from mg5bench.catalog import MODELS

    MODELS.register("known", lambda: Known, "test adapter with known outputs", overwrite=True)
    axis = tmp_path / "k.yaml"
    odd = f"  - {{name: blank-odd, label: {json.dumps(INJECT)}, model_args: {{mode: blank-odd}}}}\n"
    axis.write_text("name: k\ntitle: known\ntasks: [vist]\nmodel: known\nbase: gt\nvariants:\n"
                    "  - {name: gt, model_args: {mode: gt}}\n" + odd)  # fmt: skip
    kw: dict[str, Any] = {"task": "vist", "split": "test", "data": str(small_world), "limit": 5, "out": tmp_path,
                          "resamples": 0, "permutations": 100, "device": "cpu", "progress": False}  # fmt: skip
    first = ablate(axis, **kw)
    rows = list(csv.DictReader(io.StringIO((first.folder / "ablation.csv").read_text())))
    assert {r["label"] for r in rows if r["variant"] == "blank-odd"} == {"'" + INJECT}
    path = first.folder / "ablation.json"
    for damage in (b"", path.read_bytes()[:100], b"[]"):
        path.write_bytes(damage)
        if damage == b"[]":
            res = _report_ablations(tmp_path)
            assert any("ablation.json not an ablation report" in x for x in res)
        capfd.readouterr()
        again = ablate(axis, **kw)
        note = faultlib.one_line(capfd.readouterr().err)
        assert str(path) in note and "computing the comparison again" in note
        assert not again.reused and again.folder == first.folder and again.report == first.report
    assert ablate(axis, **kw).reused


def _report_ablations(runs: Path) -> list[str]:
    from mg5bench.leaderboard.compute import find_ablations

    left_out: list[str] = []
    find_ablations(runs, {"vist": 5}, left_out)
    return left_out


def test_torch_load_reads_weights_only_everywhere() -> None:
    """Every torch.load in the package and the reference model passes weights_only=True, except the converter of
    official checkpoints, which unpickles only behind its explicit --allow-pickle."""
    import ast

    loose = []
    for path in [*(REPO / "mg5bench").rglob("*.py"), *(REPO / "reference_model").rglob("*.py")]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                if kw.get("weights_only") != "True":
                    guard = "if not allow_pickle:" in "\n".join(lines[max(0, node.lineno - 8) : node.lineno])
                    loose.append((str(path.relative_to(REPO)), guard))
    assert loose == [("reference_model/convert_official.py", True)]


def test_a_crafted_resume_state_runs_no_code(small_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:  # fmt: skip
    """'train divter --out X' with a pickle in X/divter_state.pt that would run a command when unpickled: refused
    in one line naming the file and the fix; the command never ran. The reference model's resume files go through
    the same loader."""
    import pickle

    from mg5bench.cli import main
    from reference_model.state import StateFileError, load_state

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    import torch

    out = tmp_path / "divter"
    out.mkdir()
    torch.save({"step": 1, "model": Payload()}, out / "divter_state.pt")  # the format the trainer writes
    capsys.readouterr()
    code = main(["train", "divter", "--task", "vist", "--data", str(small_world), "--out", str(out), "--steps", "1",
                 "--device", "cpu", "--quiet"])  # fmt: skip
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1, err  # refused before the backbones are loaded
    assert "divter_state.pt: refused to load" in err[0] and "(it names posix.system)" in err[0]
    assert f"fix: delete {out / 'divter_state.pt'}" in err[0]
    assert not marker.exists() and not (out / "adapter_model.safetensors").exists()
    crafted = tmp_path / "lm_state.pt"  # as reference_model/{lm,vision,t2i,train}.py read theirs
    for data in (pickle.dumps({"step": 2, "evil": Payload()}, protocol=2), pickle.dumps([Payload()], protocol=2)):
        crafted.write_bytes(data)
        with pytest.raises(StateFileError, match="refused to load"):
            load_state(crafted)
        assert not marker.exists()
    torch.save({"step": 3, "log": [0.5], "opt": {"state": {}, "param_groups": [{"lr": 0.1}]}}, tmp_path / "ok.pt")
    assert load_state(tmp_path / "ok.pt")["step"] == 3
