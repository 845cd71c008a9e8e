"""mg5bench report on a fixture runs folder (the gt and blank bounds and a known-output model on the small world):
the expected table (cells from each run's metrics.json, best per column among non-bounds), CSV, the
byte-identical rebuild, contact sheets, the meta-evaluation against scipy, the sections that say what is
missing (no ratings, an axis not run), and the HTML page in a real headless Chromium: it opens from a file without
console errors or failed requests, its embedded images decode, and a click on a column header sorts the rows.

The browser test needs Debian's chromium and the `playwright` package (`bash scripts/setup_browser_test.sh`
installs both) and is skipped with a message where either is missing; Playwright drives the system Chromium."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from test_ablation import Known

from mg5bench.catalog import MODELS
from mg5bench.runs.runner import run
from mg5bench.runs.spec import RunSpec

LIMIT = 10


@pytest.fixture(scope="module")
def runs(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    MODELS.register("known", lambda: Known, "test adapter with known outputs", overwrite=True)
    root = tmp_path_factory.mktemp("report") / "runs"
    for model, args in (("gt", {}), ("blank", {}), ("known", {"mode": "blank-odd"}), ("known", {"mode": "none-odd"}),
                        ("known", {"mode": "gt"})):  # fmt: skip
        spec = RunSpec(task="vist", model=model, split="test", data=str(small_world), limit=LIMIT, model_args=args)
        run(spec, root, device="cpu", resamples=50, progress=False)
    return root


def _build(runs: Path, out: Path, **kw: Any) -> Any:
    from mg5bench import api

    return api.report(runs, out, resamples=50, device="cpu", gallery=2, contact=3, progress=False, **kw)


@pytest.fixture(scope="module")
def built(runs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("reports")
    return out, _build(runs, out)


def _metrics(runs: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(runs.glob("vist/*/*/scores/*/metrics.json")):
        run_folder = f.parents[2]
        info = json.loads((run_folder / "run.json").read_text())
        key = info["spec"]["model"] + ":" + info["spec"]["model_args"].get("mode", "")
        out[key] = json.loads(f.read_text())["metrics"]
    return out


def test_the_table_holds_each_runs_scored_values(runs: Path, built: tuple[Path, Any]) -> None:
    import pandas as pd

    out, res = built
    assert res.tables == 1 and res.runs_used == 5 and not res.left_out
    df = pd.read_csv(out / "leaderboard.csv")
    assert set(df["metric"]) >= {"clip_i", "clip_i.image_rate", "clip_t", "fid", "kid", "scene_accuracy"}
    m = _metrics(runs)
    for _, row in df.iterrows():
        key = row["model"] + ":" + (row["label"].split("mode=")[1].rstrip(")") if "mode=" in row["label"] else "")
        expected = m[key][row["metric"]]
        if expected["value"] is None:  # not applicable (persistence on a level-1 world): an empty cell
            assert pd.isna(row["value"])
        else:
            assert row["value"] == pytest.approx(expected["value"], rel=1e-5, abs=1e-9)
        assert row["n"] == expected["n"] and row["n_samples"] == LIMIT
    # best per column among the non-bounds: the gt-mode known model everywhere (it draws the targets)
    best = df[df["best"]]
    assert set(best["bound"]) == {False}
    scene = df[df["metric"] == "scene_accuracy"].set_index("label")["value"]
    assert scene["gt"] == 1.0 and scene["blank"] == 0.0 and scene["known (mode=blank-odd)"] == pytest.approx(0.6)
    assert df[(df["metric"] == "scene_accuracy") & df["best"]]["label"].tolist() == ["known (mode=gt)"]
    # the image rate sits right after CLIP-I in the Markdown table; cells are "value [lo, hi]", the best in bold
    md = (out / "leaderboard.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| model | n | CLIP-I"))
    assert header.split(" | ")[3].startswith("image rate")
    gt_row = next(line for line in md.splitlines() if line.startswith("| gt *(bound)*"))
    e = m["gt:"]["scene_accuracy"]
    assert f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]" in gt_row and "**" not in gt_row
    known_row = next(line for line in md.splitlines() if line.startswith("| known (mode=gt)"))
    assert "**1.000**" in known_row
    assert "No ratings database was given" in md and "## Checkpoints used" in md


def test_rebuilding_from_the_same_runs_gives_the_same_bytes(runs: Path, built: tuple[Path, Any]) -> None:
    out, _ = built
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert {Path("leaderboard.md"), Path("leaderboard.csv"), Path("leaderboard.html")} <= set(before)
    _build(runs, out)
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after.keys() == before.keys()
    for name, data in before.items():
        assert after[name] == data, name


def test_contact_sheets_and_html(runs: Path, built: tuple[Path, Any]) -> None:
    from PIL import Image

    out, _ = built
    sheets = sorted(runs.glob("vist/*/*/contact_sheet.png"))
    assert len(sheets) == 5
    with Image.open(sheets[0]) as im:
        assert im.width > 3 * 144 and im.height > 3 * 144  # 3 samples, images enlarged to 144 px
    html = (out / "leaderboard.html").read_text()
    assert "<table class='sortable'>" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html and "src='/" not in html  # self-contained
    assert html.count("class='gallery'") == 1


def test_meta_evaluation_is_scipys_spearman(runs: Path, built: tuple[Path, Any]) -> None:
    from scipy.stats import spearmanr

    out, _ = built
    meta = json.loads((out / "report.json").read_text())["meta_evaluation"]
    assert len(meta["variants"]) == 3  # the bounds are left out
    vals = meta["values"]
    names = meta["variants"]
    for metric in ("clip_i", "fid"):
        rho = spearmanr([vals[n][metric] for n in names], [vals[n]["scene_accuracy"] for n in names]).statistic
        assert meta["rho"][f"{metric}~scene_accuracy"]["rho"] == pytest.approx(rho)


def test_an_ablation_and_a_missing_axis_appear(runs: Path, small_world: Path, tmp_path: Path) -> None:
    from test_ablation import AXIS, _ablate

    axis = tmp_path / "known.yaml"
    axis.write_text(AXIS.split("  - name: last")[0])
    _ablate(axis, small_world, runs, limit=LIMIT)
    plan = tmp_path / "plan.yaml"
    plan.write_text("tasks: {}\nmodels: []\nablations:\n  - {axis: vokens, task: vist, limit: 10}\n")
    res = _build(runs, tmp_path / "out", rebuild=True, plan=plan, contact_sheets=False)
    md = (res.out / "leaderboard.md").read_text()
    assert "### known: known outputs (vist)" in md and "![ablation-known-vist](figures/ablation-known-vist.png)" in md
    assert res.plan_errors and "stage2-vist-vokens4" in res.plan_errors[0]
    assert "### not run: vokens (vist)" in md and "--num-vokens 4" in md
    claim = "| 16 generative vokens work better than 8 (vokens) | not checked | vokens on vist: vokens-16 vs base |"
    assert claim + " not run:" in md
    rows = list(io.StringIO((res.out / "ablations.csv").read_text()))
    assert rows[0].startswith("axis,task,variant,label,metric") and all(r.startswith("known,vist,") for r in rows[1:])


def test_the_report_page_renders_and_sorts_in_chromium(built: tuple[Path, Any], tmp_path: Path, chromium: Any) -> None:
    out, _ = built
    errors: list[str] = []
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto((out / "leaderboard.html").resolve().as_uri())
    page.wait_for_load_state("load")
    # every image (plots, gallery) decoded from its embedded data
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                           ".length")  # fmt: skip
    assert broken == 0 and page.evaluate("document.images.length") > 5
    table = page.locator("table.sortable").first
    header = [h.strip() for h in table.locator("th").all_inner_texts()]
    col = next(i for i, h in enumerate(header) if h.startswith("scene exact"))

    def column() -> list[float]:
        cells = table.locator(f"tbody tr td:nth-child({col + 1})")
        return [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.v)")]

    table.locator("th").nth(col).click()
    assert column() == sorted(column())
    table.locator("th").nth(col).click()
    values = column()
    assert values == sorted(values, reverse=True) and values[0] == 1.0
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
    assert errors == []
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("diff", "ci", "p", "higher", "expect", "verdict"),
    [
        (-0.1, [-0.2, -0.05], 0.01, True, "base better", "yes"),  # the variant is worse, as claimed
        (0.1, [0.05, 0.2], 0.01, True, "base better", "opposite"),
        (5.0, [1.0, 9.0], 0.01, False, "base better", "yes"),  # FID up = worse
        (-5.0, [-9.0, -1.0], 0.01, False, "base better", "opposite"),
        (0.01, [-6.8, 6.7], 0.9, False, "base better", "not resolved"),
        (-0.07, [-0.13, -0.01], 0.07, True, "base better", "not resolved"),  # raw p < 0.05 would not do: adjusted
        (0.2, [0.1, 0.3], 0.001, True, "variant better", "yes"),
    ],
)  # fmt: skip
def test_claim_verdicts(diff: float, ci: list[float], p: float, higher: bool, expect: str, verdict: str) -> None:
    """The verdict reads the family-wise adjusted p (passed as the third argument); below the minimum number of
    stories there is none."""
    from mg5bench.leaderboard.compute import _verdict

    entry = {"diff": diff, "diff_ci": ci, "p": p / 4, "higher_is_better": higher}
    assert _verdict(entry, expect, p) == verdict
    assert _verdict({**entry, "too_few_clusters": True}, expect, p) == "too few stories"


def test_claims_are_one_holm_family() -> None:
    """Two claims with two results each: four p-values, adjusted together by Holm (statsmodels as reference)."""
    from statsmodels.stats.multitest import multipletests

    from mg5bench.leaderboard.compute import paper_section

    def entry(diff: float, p: float) -> dict[str, Any]:
        return {"diff": diff, "diff_ci": [diff - 0.01, diff + 0.01], "p": p, "higher_is_better": True,
                "too_few_clusters": False, "clusters": 100, "seeds": {"base": 3, "variant": 3, "sd": 0.02}}  # fmt: skip

    reps = [
        {"axis": {"name": "cfg"}, "task": "vist", "rows": [{"variant": "no-cfg", "compare": {
            "scene_accuracy": entry(-0.1, 0.004), "clip_i": entry(-0.02, 0.03)}}]},
        {"axis": {"name": "stages"}, "task": "vist", "rows": [{"variant": "single-stage", "compare": {
            "scene_accuracy": entry(0.2, 0.0001), "clip_i": entry(0.01, 0.026)}}]},
    ]  # fmt: skip
    _, rows = paper_section(reps, [], None)
    by = {r["claim"]: r for r in rows}
    holm = multipletests([0.03, 0.004, 0.026, 0.0001], method="holm")[1]
    assert by["cfg"]["results"]["clip_i"]["p_holm"] == pytest.approx(holm[0])
    assert by["cfg"]["results"]["scene_accuracy"]["p_holm"] == pytest.approx(holm[1])
    assert by["stages"]["results"]["scene_accuracy"]["p_holm"] == pytest.approx(holm[3])
    # raw p 0.03 and 0.02 are not enough once the family is adjusted (0.06, 0.06)
    assert by["cfg"]["results"]["clip_i"]["verdict"] == "not resolved"
    assert by["cfg"]["results"]["scene_accuracy"]["verdict"] == "yes"  # no-cfg worse, as claimed
    assert by["stages"]["results"]["scene_accuracy"]["verdict"] == "opposite"
    assert by["cfg"]["verdict"] == "partly" and by["stages"]["verdict"] == "opposite"


def test_a_claim_is_read_on_its_own_results() -> None:
    """The MMDialog claim is read on the results paper.yaml names for it (MM-Relevance ...), not on the image
    results: an ablation result outside a claim's list adds no p-value to the family; a listed one the ablation
    lacks is left out (n/a), and the family is every listed result found."""
    from statsmodels.stats.multitest import multipletests

    from mg5bench.leaderboard.compute import claim_keys, paper_section

    def entry(diff: float, p: float) -> dict[str, Any]:
        return {"diff": diff, "diff_ci": [diff - 0.01, diff + 0.01], "p": p, "higher_is_better": True,
                "too_few_clusters": False, "clusters": 60, "seeds": {"base": 3, "variant": 3, "sd": 0.01}}  # fmt: skip

    reps = [
        {"axis": {"name": "baselines"}, "task": "mmdialog", "rows": [{"variant": "divter", "compare": {
            "mm_relevance": entry(-0.05, 0.001), "clip_i": entry(-0.3, 1e-9), "persistence": entry(-0.2, 1e-9)}}]},
        {"axis": {"name": "baselines"}, "task": "vist", "rows": [{"variant": "two-stage", "compare": {
            "persistence": entry(-0.1, 0.002), "mm_relevance": entry(-0.3, 1e-9)}}]},
    ]  # fmt: skip
    md, rows = paper_section(reps, [], None)
    by = {r["claim"]: r for r in rows}
    assert "mm_relevance" in claim_keys({"test": {"results": ["mm_relevance"]}})
    assert set(by["divter"]["results"]) == {"mm_relevance"}  # clip_i and persistence are not the claim's results
    assert set(by["two-stage"]["results"]) == {"persistence"}  # mm_relevance is not an image claim's result
    holm = multipletests([0.001, 0.002], method="holm")[1]
    assert by["divter"]["results"]["mm_relevance"]["p_holm"] == pytest.approx(holm[0])
    assert by["two-stage"]["results"]["persistence"]["p_holm"] == pytest.approx(holm[1])
    assert by["divter"]["verdict"] == "yes" and by["two-stage"]["verdict"] == "yes"
    assert by["divter"]["cells"]["bleu1"] == "n/a"
    assert "the 2 p-values of this table are one family" in md
    assert by["cfg"]["verdict"] == "not run"


def test_a_gap_to_the_truth_is_best_closest_to_zero() -> None:
    """context_consistency is best at 0 (the schema's best: zero): a run closer to the context image than the truth
    (positive: copying the context) is not better than one as close as the truth, though its value is higher."""
    from mg5bench.leaderboard.collect import RunRecord, TaskTable
    from mg5bench.leaderboard.tables import frame

    def row(model: str, gap: float) -> RunRecord:
        entry = {"value": gap, "ci_low": None, "ci_high": None, "n": 64, "higher_is_better": True}
        score = {"task": {"format": "vist", "metrics": ["context_consistency"]},
                 "metrics": {"context_consistency": entry}}  # fmt: skip
        return RunRecord(Path(model), model, {}, "vist", model, "test", 80, 80, label=model, score=score)

    table = TaskTable("vist", "test", 80, {}, [row("a", -0.3), row("b", 0.05), row("c", 0.2), row("blank", 0.4)])
    df = frame(table)
    assert df[df["best"]]["label"].tolist() == ["b"]


def test_a_runs_checkpoint_is_read_from_the_argument_its_adapter_declares() -> None:
    """The label names the folder given by the adapter's own checkpoint argument (sd2: path, two-stage: backbones,
    minigpt5: checkpoint or official), not an argument of another model that happens to be set."""
    from mg5bench.catalog import MODELS
    from mg5bench.leaderboard.collect import RunRecord

    def record(model: str, args: dict[str, str]) -> RunRecord:
        info = {"spec": {"model_args": args}, "key": {"task": {"format": "vist"}}}
        return RunRecord(Path("r"), "r", info, "vist", model, "val", 5, 5)

    for model in ("sd2", "two-stage", "minigpt5", "divter"):
        arg = MODELS.get(model).checkpoint_arg
        assert record(model, {arg: "/x/reference_model/checkpoints/stage2-vist"}).checkpoint == "stage2-vist"
    assert record("minigpt5", {"official": "/ckpts/minigpt5_vist.ckpt"}).checkpoint == "minigpt5_vist.ckpt"
    # divter's backbones argument names the LM it sits on, not its weights: the label is its default checkpoint
    divter = record("divter", {"backbones": "/x/other-backbones"}).checkpoint
    assert divter == MODELS.get("divter").default_checkpoints["vist"] and divter != "other-backbones"


def _baselines_ablation(
    runs: Path, cells: dict[tuple[str, str], tuple[float, float, float, float]], split: str = "val"
) -> None:
    """A stored VIST baselines comparison on val (limit 500) holding ``cells``: (variant, result) -> diff, CI low,
    CI high, p (variant - base, as mg5bench ablate stores it)."""
    from mg5bench.runs.ablations import ABLATION_VERSION

    (runs / "minigpt5-run").mkdir(parents=True)
    rows: dict[str, dict[str, Any]] = {"minigpt5": {"variant": "minigpt5", "label": "m", "base": True, "own": {}}}
    for (variant, key), (diff, lo, hi, p) in cells.items():
        row = rows.setdefault(variant, {"variant": variant, "label": variant, "compare": {}})
        row["compare"][key] = {"diff": diff, "diff_ci": [lo, hi], "p": p, "higher_is_better": True}
    rep = {"version": ABLATION_VERSION, "axis": {"name": "baselines", "title": "t", "description": "d"},
           "task": "vist", "split": split, "limit": 500, "headline": ["persistence"], "rows": list(rows.values()),
           "method": {}, "evaluator": {}, "key": {"runs": [{"folder": "minigpt5-run"}]}}  # fmt: skip
    (runs / "ablations" / "baselines-vist-x").mkdir(parents=True)
    (runs / "ablations" / "baselines-vist-x" / "ablation.json").write_text(json.dumps(rep))


def test_the_default_world_rule_reads_the_stored_comparison(tmp_path: Path) -> None:
    """scripts/default_world.py applies docs/world.md's rule: ground truth >= 0.3 above blank on persistence, and
    each MiniGPT-5 - pipeline cell resolved (Holm over the four cells, statsmodels as reference) or bounded by
    +-0.03. Exit 0 (level 3), 1 (level 1 stays), 2 (no comparison, with the command that makes it)."""
    import subprocess
    import sys

    from statsmodels.stats.multitest import multipletests

    script = Path(__file__).resolve().parents[2] / "scripts" / "default_world.py"

    def call(runs: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), "--runs", str(runs), "--json"], capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    cells = {("gt", "persistence"): (0.30, 0.25, 0.35, 1e-6), ("blank", "persistence"): (-0.45, -0.5, -0.4, 1e-6),
             ("divter", "persistence"): (-0.08, -0.12, -0.04, 0.004),  # MiniGPT-5 ahead, resolved
             ("divter", "scene_accuracy.objects"): (0.01, -0.02, 0.025, 0.6),  # bounded tie
             ("two-stage", "persistence"): (-0.05, -0.09, -0.01, 0.012),  # Holm x3 -> 0.036: resolved
             ("two-stage", "scene_accuracy.objects"): (0.02, -0.01, 0.028, 0.2)}  # fmt: skip
    _baselines_ablation(tmp_path / "a", cells)
    out = call(tmp_path / "a")
    assert out.returncode == 0, out.stderr
    verdict = json.loads(out.stdout)
    assert verdict["gt_minus_blank_persistence"] == pytest.approx(0.75)
    holm = multipletests([0.004, 0.6, 0.012, 0.2], method="holm")[1]
    assert [c["p_holm"] for c in verdict["cells"]] == pytest.approx(list(holm))
    assert verdict["cells"][0]["minigpt5_minus_pipeline"] == pytest.approx(0.08)
    assert verdict["cells"][0]["ci"] == pytest.approx([0.04, 0.12])
    assert [c["decides"] for c in verdict["cells"]] == [True, True, True, True] and verdict["level"] == 3

    # one cell neither resolved nor bounded: level 1 stays
    _baselines_ablation(tmp_path / "b", {**cells, ("two-stage", "scene_accuracy.objects"): (0.02, -0.01, 0.05, 0.2)})
    out = call(tmp_path / "b")
    assert out.returncode == 1 and json.loads(out.stdout)["level"] == 1
    # the metric does not separate the truth from a blank image: level 1 stays
    _baselines_ablation(tmp_path / "c", {**cells, ("gt", "persistence"): (-0.2, -0.25, -0.15, 1e-6)})
    out = call(tmp_path / "c")
    assert out.returncode == 1 and not json.loads(out.stdout)["metric_works"]
    # no comparison, or one without the two-stage pipeline: exit 2 naming what to run
    out = call(tmp_path / "none")
    assert out.returncode == 2 and "mg5bench ablate baselines --task vist" in out.stderr
    _baselines_ablation(tmp_path / "d", {k: v for k, v in cells.items() if k[0] != "two-stage"})
    out = call(tmp_path / "d")
    assert out.returncode == 2 and "two-stage / persistence" in out.stderr
    # the newest comparison at that limit is on another split: not read as the val one
    _baselines_ablation(tmp_path / "e", cells, split="test")
    out = call(tmp_path / "e")
    assert out.returncode == 2 and "(the newest one is on test)" in out.stderr
    # a sample count below 1 is refused before anything is read
    bad = subprocess.run([sys.executable, str(script), "--runs", str(tmp_path / "a"), "--limit", "0"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--limit 0" in bad.stderr


def test_an_axis_a_runs_folder_lacks_is_named_with_its_stored_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of comparisons on another world and set (level 3) is completed with that world and set: the report's
    'not run' line carries the split, limit, data and checkpoints its stored ablations share, and checks the axis's
    checkpoints in that set, not in the shipped one."""
    from mg5bench.api import _axis_problem
    from mg5bench.leaderboard.compute import missing_axes, shared_settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / "set3").mkdir()
    stored = [{"axis": {"name": "baselines"}, "task": t, "split": "val", "limit": 500, "data": "synth:level=3",
               "checkpoints": "set3"} for t in ("vist", "mmdialog")]  # fmt: skip
    plan = {"ablations": [{"axis": "baselines", "task": "vist"}, {"axis": "cfg", "task": "vist"}]}
    (line,) = missing_axes(plan, stored, [], None, Path("runs-level3"))
    assert line == ("cfg (vist): not stored yet: run 'mg5bench ablate cfg --task vist --split val --limit 500 "
                    "--data synth:level=3 --checkpoints set3 --out runs-level3'")  # fmt: skip
    (line,) = missing_axes(plan, stored, [], _axis_problem, Path("runs-level3"))
    assert line.startswith("cfg (vist): axis cfg: variant ") and "needs the checkpoint set3/" in line
    assert "export it into set3" in line
    # a set that has moved since (renamed into the shipped set): the line names the shipped set, not a gone folder
    gone = [{**a, "checkpoints": "set-moved"} for a in stored]
    (line,) = missing_axes(plan, gone, [], None, Path("runs-level3"))
    assert line == ("cfg (vist): not stored yet: run 'mg5bench ablate cfg --task vist --split val --limit 500 "
                    "--data synth:level=3 --out runs-level3'")  # fmt: skip
    # settings the stored ablations disagree on are left out; none stored: the plain command
    assert shared_settings([*stored, {**stored[0], "limit": 250}]) == {"split": "val", "data": "synth:level=3",
                                                                       "checkpoints": "set3"}  # fmt: skip
    (line,) = missing_axes({"ablations": [{"axis": "cfg", "task": "vist"}]}, [], [], None)
    assert line == "cfg (vist): not stored yet: run 'mg5bench ablate cfg --task vist' (or scripts/make_reports.sh)"
