"""``mg5bench report``: the leaderboard built from stored results (never a generation): per task a table of every
stored run scored on the same samples, the ablations found under ``<runs>/ablations/``, the metric
meta-evaluation, the paper's claims beside ours, human ratings when a database is given, and a contact sheet in
every run folder. Outputs in ``--out``: ``leaderboard.md``, ``leaderboard.csv``, ``ablations.csv``,
``leaderboard.html`` (self-contained), ``figures/*.png`` and ``report.json``; the same runs give the same bytes.

``--rebuild`` first runs the plan (``plan.yaml``: every model on every task, then the ablation axes), generating
only what the store lacks, so regenerating the committed ``reports/`` is one command."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.data.io import atomic_write_bytes, atomic_write_json, atomic_write_text, nan_to_none

PLAN_FILE = Path(__file__).resolve().parent / "plan.yaml"
PAPER_FILE = Path(__file__).resolve().parent / "paper.yaml"
REPORT_VERSION = 1


@dataclass
class ReportResult:
    out: Path
    files: list[Path]
    tables: int
    runs_used: int
    left_out: list[str] = field(default_factory=list)
    plan_errors: list[str] = field(default_factory=list)


def load_plan(path: Path | None = None) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(Path(path or PLAN_FILE).read_text())


def run_plan(plan: Mapping[str, Any], runs: Path, *, device: str, cache_dir: Path | None, progress: bool,
             evaluator: str | None = None) -> list[str]:  # fmt: skip
    """Generate what the plan needs and the store lacks, one run at a time; returns the errors of axes that
    cannot run (e.g. a checkpoint that is not shipped), which the report then shows."""
    from mg5bench.ablation import ablate
    from mg5bench.errors import Mg5Error
    from mg5bench.runner import run
    from mg5bench.spec import RunSpec
    from mg5bench.tasks import get_task

    errors: list[str] = []
    for task, opts in plan.get("tasks", {}).items():
        split = get_task(task).default_split
        for model in plan.get("models", []):
            if progress:
                print(f"[rebuild] {task} {model} (first {opts['limit']} samples)", flush=True)
            run(RunSpec(task=task, model=model, split=split, limit=int(opts["limit"])), runs, device=device,
                evaluator=evaluator, cache_dir=cache_dir, progress=progress)  # fmt: skip
    for a in plan.get("ablations", []):
        limit = int(a.get("limit") or plan.get("tasks", {}).get(a["task"], {}).get("limit", 100))
        if progress:
            print(f"[rebuild] ablation {a['axis']} on {a['task']} (first {limit} samples)", flush=True)
        try:
            ablate(a["axis"], task=a["task"], limit=limit, out=runs, device=device, cache_dir=cache_dir,
                   evaluator=evaluator, progress=progress)  # fmt: skip
        except Mg5Error as e:
            errors.append(f"{a['axis']} ({a['task']}): {e}")
    return errors


def find_ablations(runs: Path, limits: Mapping[str, int]) -> list[dict[str, Any]]:
    """One ablation.json per (axis, task): among those whose limit is the task's table limit and whose run folders
    all exist, the most recently computed (sorted by axis name, then task)."""
    found: dict[tuple[str, str], tuple[float, str, dict[str, Any]]] = {}
    for path in sorted(Path(runs).glob("ablations/*/ablation.json")):
        try:
            rep = json.loads(path.read_text())
        except ValueError:
            continue
        task = rep.get("task")
        if limits.get(task) != rep.get("limit"):
            continue
        if not all(Path(r["folder"]).is_dir() for r in rep.get("key", {}).get("runs", [])):
            continue
        rep["_folder"] = str(path.parent)
        rep["_plot"] = str(path.parent / "ablation.png")
        cand = (path.stat().st_mtime, path.parent.name, rep)
        k = (rep["axis"]["name"], task)
        if k not in found or cand[:2] > found[k][:2]:
            found[k] = cand
    return [found[k][2] for k in sorted(found)]


def environment() -> list[str]:
    """Package versions and the machine, stated once (deterministic on one machine)."""
    from importlib.metadata import PackageNotFoundError, version

    pkgs = []
    for p in ("mg5bench", "torch", "torchmetrics", "open_clip_torch", "diffusers", "transformers", "numpy", "scipy",
              "pandas", "matplotlib", "pillow", "nltk", "rouge-score", "rouge"):  # fmt: skip
        try:
            pkgs.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            pkgs.append(f"{p} (not installed)")
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs" + (f" ({cpu})" if cpu else "")
    return [f"Python {platform.python_version()}; " + ", ".join(pkgs), f"Machine: {machine}"]


def _verdict(entry: Mapping[str, Any] | None, expect: str) -> str:
    """Whether a paired difference supports a claim: "yes" when its CI excludes 0 and its p-value is below 0.05 in
    the direction the claim predicts, "opposite" when both say the other way, else "not resolved"."""
    if entry is None or entry.get("diff") is None or entry["diff_ci"][0] is None:
        return "n/a"
    lo, hi = entry["diff_ci"]
    p = entry.get("p")
    if not (lo > 0 or hi < 0) or (p is not None and p >= 0.05):
        return "not resolved"
    variant_better = (entry["diff"] > 0) == bool(entry["higher_is_better"])
    return "yes" if variant_better == (expect == "variant better") else "opposite"


CLAIM_KEYS = ("clip_i", "fid", "scene_accuracy", "scene_accuracy.colour")


def paper_section(ablations: Sequence[Mapping[str, Any]], plan_errors: Sequence[str], human: str | None) -> tuple[
        str, list[dict[str, Any]]]:  # fmt: skip
    import yaml

    from mg5bench.ablation.compare import format_p

    paper = yaml.safe_load(PAPER_FILE.read_text())
    lines = [f"Protocol differences: {' '.join(paper['protocol'].split())}", ""]
    lines += ["| claim | paper | test | " + " | ".join(CLAIM_KEYS) + " | reproduced? |",
              "|---|---|---|" + "---|" * len(CLAIM_KEYS) + "---|"]  # fmt: skip
    rows = []
    for c in paper["claims"]:
        t = c["test"]
        pv = c.get("paper_value") or "not checked"
        if t.get("ratings"):
            lines.append(f"| {c['claim']} | {pv} | human ratings | " + " | ".join("" for _ in CLAIM_KEYS)
                         + f" | {'see Human evaluation' if human else 'no ratings given'} |")  # fmt: skip
            rows.append({"claim": c["id"], "verdict": "ratings" if human else "not run"})
            continue
        rep = next((a for a in ablations if a["axis"]["name"] == t["axis"] and a["task"] == t["task"]), None)
        test = f"{t['axis']}: {t['variant']} vs base"
        if rep is None:
            why = next((e for e in plan_errors if e.startswith(f"{t['axis']} ")), "no ablation stored")
            lines.append(f"| {c['claim']} | {pv} | {test} | " + " | ".join("" for _ in CLAIM_KEYS)
                         + f" | not run: {why.split(': ', 1)[-1][:160]} |")  # fmt: skip
            rows.append({"claim": c["id"], "verdict": "not run"})
            continue
        row = next((r for r in rep["rows"] if r["variant"] == t["variant"]), None)
        cells, verdicts = [], []
        for k in CLAIM_KEYS:
            e = (row or {}).get("compare", {}).get(k)
            if e is None or e.get("diff") is None:
                cells.append("n/a")
                continue
            lo, hi = e["diff_ci"]
            v = _verdict(e, t["expect"])
            verdicts.append(v)
            ci = "" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]"
            cells.append(f"{e['diff']:+.3f}{ci} p {format_p(e['p'])} ({v})")
        overall = ("mixed" if "yes" in verdicts and "opposite" in verdicts else
                   "yes" if verdicts and all(v == "yes" for v in verdicts) else "partly" if "yes" in verdicts else
                   "opposite" if "opposite" in verdicts else "not resolved")  # fmt: skip
        lines.append(f"| {c['claim']} | {pv} | {test} (variant - base) | " + " | ".join(cells) + f" | {overall} |")
        rows.append({"claim": c["id"], "verdict": overall, "cells": dict(zip(CLAIM_KEYS, cells, strict=True))})
    lines += ["", "A cell is the paired difference variant - base on the same samples with its 95% cluster-bootstrap "
              "CI and paired permutation p-value; 'yes' when the CI excludes 0 and p < 0.05 in the direction the claim "
              "predicts, 'opposite' when both say the other way, 'not resolved' otherwise. Reproduced: 'yes' on every "
              "result, 'partly' on some (the others not resolved), 'mixed' when results disagree."]  # fmt: skip
    return "\n".join(lines), rows


def ablation_markdown(rep: Mapping[str, Any]) -> str:
    """An ablation as a Markdown table: per variant, its value and its paired difference from the base per
    headline result."""
    from mg5bench.ablation.compare import format_p
    from mg5bench.leaderboard.tables import display, fmt

    keys = rep["headline"]
    base = next(r for r in rep["rows"] if r.get("base"))
    head = ["variant", "n"] + [display(k) + (" ↑" if base["own"].get(k, {}).get("higher_is_better", True) else " ↓")
                               for k in keys]  # fmt: skip
    lines = [f"{rep['axis']['description']} Base: **{base['variant']}** ({base['label']}); first {rep['limit']} "
             f"samples of {rep['task']} {rep['split']}. Cells: value, then (variant - base) [95% CI] and p.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    for r in rep["rows"]:
        cells = []
        for k in keys:
            d = 2 if k.startswith("fid") else 3
            if r.get("base"):
                e = r["own"].get(k)
                cells.append("n/a" if e is None else fmt(e["value"], d))
                continue
            e = r["compare"].get(k)
            if e is None:
                cells.append("n/a")
                continue
            lo, hi = e["diff_ci"]
            ci = "" if lo is None else f" [{lo:+.{d}f}, {hi:+.{d}f}]"
            diff = "n/a" if e["diff"] is None else f"{e['diff']:+.{d}f}"
            cells.append(f"{fmt(e['value'], d)} ({diff}{ci}, p {format_p(e['p'])})")
        n = r["n_run"] if r.get("base") else r["n_paired"]
        lines.append(f"| {r['variant']} ({r['label']}) | {n} | " + " | ".join(cells) + " |")
    notes = [f"- {r['variant']} is compared on {r['paired_on']}" for r in rep["rows"]
             if not r.get("base") and r["n_paired"] != base["n_run"]]  # fmt: skip
    return "\n".join(lines + (["", *notes] if notes else []))


def overview_png(table: Any, df: Any) -> bytes:
    """Per headline result, each row's value with its CI (horizontal error bars), the bounds in grey."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mg5bench.ablation.plot import figure_png
    from mg5bench.leaderboard.tables import columns_for, display

    cols = [k for k in columns_for(table) if not k.endswith("image_rate")]
    ncols = min(3, max(1, len(cols)))
    nrows = max(1, math.ceil(len(cols) / ncols))
    labels = [df[df["order"] == o]["label"].iloc[0] for o in sorted(set(df["order"]))]
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 0.28 * len(labels) * nrows + 1.2 * nrows),
                             squeeze=False)  # fmt: skip
    for i, k in enumerate(cols):
        ax = axes[i // ncols][i % ncols]
        sub = df[df["metric"] == k].sort_values("order")
        for y, (_, r) in enumerate(sub.iterrows()):
            if r["value"] is None or r["value"] != r["value"]:
                continue
            err = None
            if r["ci_low"] is not None and r["ci_low"] == r["ci_low"]:
                err = [[max(0.0, r["value"] - r["ci_low"])], [max(0.0, r["ci_high"] - r["value"])]]
            colour = "#999999" if r["bound"] else ("#2ca02c" if r["best"] else "#1f77b4")
            ax.errorbar([r["value"]], [y], xerr=err, fmt="o", color=colour, capsize=2, markersize=4)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels if i % ncols == 0 else [""] * len(labels), fontsize=7)
        ax.invert_yaxis()
        up = bool(sub["higher_is_better"].iloc[0]) if len(sub) else True
        ax.set_title(f"{display(k)} ({'higher' if up else 'lower'} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for j in range(len(cols), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    fig.suptitle(f"{table.title}: value and 95% cluster-bootstrap CI (green = best, grey = bounds)", fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def build_report(
    runs: Path = Path("runs"),
    out: Path = Path("reports"),
    *,
    ratings: Path | None = None,
    limit: int | None = None,
    evaluator: str | None = None,
    resamples: int = 1000,
    device: str = "auto",
    cache_dir: Path | None = None,
    gallery: int = 5,
    contact: int = 20,
    contact_sheets: bool = True,
    rebuild: bool = False,
    plan: Path | None = None,
    progress: bool = True,
    command: str = "mg5bench report",
) -> ReportResult:
    """Build the report (module docstring). ``limit``: samples per table (default: each task's most common
    completed --limit, or the plan's with ``rebuild``)."""
    from tqdm.auto import tqdm

    from mg5bench.devices import resolve_device
    from mg5bench.leaderboard import collect, meta, tables
    from mg5bench.leaderboard.contact import write_contact_sheet

    dev = resolve_device(device)
    runs, out = Path(runs), Path(out)
    plan_data = load_plan(plan)
    plan_errors: list[str] = []
    if rebuild:
        plan_errors = run_plan(plan_data, runs, device=dev, cache_dir=cache_dir, progress=progress,
                               evaluator=evaluator)  # fmt: skip
    records = collect.find_runs(runs)
    if not records:
        from mg5bench.errors import ConfigError

        raise ConfigError(f"no run folders under {runs}: generate some first ('mg5bench run ...'), or pass --rebuild "
                          "to generate the plan's runs, or --runs pointing at your runs folder")  # fmt: skip
    tasks = sorted({r.task for r in records}, key=lambda t: (["vist", "mmdialog", "cc3m", t]).index(t))
    limits: dict[str, int] = {}
    all_tables: list[Any] = []
    left_out: list[str] = []
    for task in tasks:
        recs = [r for r in records if r.task == task]
        n = limit or (int(plan_data["tasks"][task]["limit"]) if rebuild and task in plan_data.get("tasks", {}) else
                      collect.choose_limit(recs))  # fmt: skip
        limits[task] = n
        collect.score_records(recs, n, evaluator=evaluator, resamples=resamples, device=dev, cache_dir=cache_dir,
                              progress=progress)  # fmt: skip
        ts = collect.group_tables(recs, n)
        # runs that completed a smaller --limit (e.g. GILL's last-step protocol, paired with the first stories):
        # their own tables at that N, runs over the same samples together
        by_n: dict[int, list[Any]] = {}
        for r in recs:
            if r.skipped and 0 < r.complete_for < n and r.stored_prefix >= r.complete_for:
                by_n.setdefault(r.complete_for, []).append(r)
        for n2, group in sorted(by_n.items(), reverse=True):
            for r in group:
                r.skipped = ""
            collect.score_records(group, n2, evaluator=evaluator, resamples=resamples, device=dev,
                                  cache_dir=cache_dir, progress=progress)  # fmt: skip
            ts += collect.group_tables(group, n2)
        for t in ts:
            collect.label_runs(t.rows)
            collect.mark_defaults(t.rows, runs, n, cache_dir)
            t.rows.sort(key=collect.row_order)
        all_tables += ts
        left_out += [f"{r.rel}: {r.skipped}" for r in recs if r.skipped]
    used = [r for t in all_tables for r in t.rows]
    frames = [tables.frame(t) for t in all_tables]
    ablations = find_ablations(runs, limits)
    plan_errors += _missing_axes(plan_data, ablations, plan_errors)
    main_vist = next((t for t in all_tables if t.task == "vist" and not t.protocol), None)
    meta_res: dict[str, Any] = {"note": "no VIST table"}
    scored = [r.score for r in used if r.score]
    ev = scored[0]["evaluator"] if scored else {"name": "n/a", "weights_sha256": "n/a"}
    if main_vist is not None:
        meta_res = meta.meta_evaluate(main_vist.rows, main_vist.n, evaluator=_ev_spec(ev), resamples=resamples,
                                      device=dev, cache_dir=cache_dir, progress=progress)  # fmt: skip
    human_text = None
    if ratings is not None:
        from mg5bench.human import stats as hstats
        from mg5bench.human.store import RatingStore

        human_text = hstats.format_report(hstats.report(RatingStore(Path(ratings), create=False)))
    paper_md, paper_rows = paper_section(ablations, plan_errors, human_text)
    if contact_sheets:
        _contact_sheets(used, contact, cache_dir, progress, write_contact_sheet, tqdm)

    # --- the document: Markdown blocks, tables, plots and galleries, rendered to .md and .html ---
    blocks: list[tuple[str, Any]] = []
    md = blocks.append
    env = environment()
    n_desc = ", ".join(f"{t} first {n}" for t, n in limits.items())
    md(("md", "# mg5bench leaderboard\n\n"
        f"Built by `{command}` from the runs under `{runs}` ({n_desc} samples; nothing is generated by the report). "
        "Regenerate everything, generating only what is missing, with `scripts/make_reports.sh` "
        f"(`mg5bench report --rebuild --runs {runs} --out {out}`)."))  # fmt: skip
    md(("md", "## How to read it\n\n"
        f"- Evaluator: `{ev['name']}`, weights sha256 `{ev['weights_sha256']}`; FID and KID on its image embedding "
        "(not Inception-v3), so they rank models but are not the FID papers report.\n"
        f"- Each cell: value [95% CI] from a cluster bootstrap ({resamples} resamples over stories on VIST, "
        "conversations on MMDialog, samples on CC3M); n = samples scored. **Bold** = best in its column (the bounds "
        "gt and blank excluded); ↑ higher is better, ↓ lower is better; † = official-compat variant.\n"
        "- A missing image scores 0 on CLIP-I and CLIP-T: read the image rate beside them (a model that draws "
        "nothing can outrank one that draws a wrong image; see docs/metrics.md).\n"
        "- FID at these N is biased upward and its bootstrap interval can lie above the value; compare FIDs only at "
        "equal N and read KID beside it. KID's std is not applicable here (every subset is the whole set).\n"
        "- The shipped tiny checkpoints are weak (see their model cards): these tables show what the suite measures, "
        "not what MiniGPT-5 can do at scale.\n"
        f"- {env[0]}\n- {env[1]}; generation with OMP_NUM_THREADS=1, one run at a time."))  # fmt: skip
    md(("md", "## Checkpoints used\n\n" + _checkpoints_md(used, runs)))
    for t, df in zip(all_tables, frames, strict=True):
        md(("md", f"## {t.title}"))
        md(("table", (t, df)))
        md(("plot", (f"overview-{t.task}{'-last' if t.protocol else ''}", overview_png(t, df))))
        if gallery and not t.protocol:
            md(("gallery", (t, gallery)))
    md(("md", "### Columns\n\n" + tables.schema_markdown(sorted({k for t in all_tables for k in
                                                                  tables.columns_for(t)}))))  # fmt: skip
    if left_out:
        md(("md", "### Runs left out\n\n" + "\n".join(f"- `{x}`" for x in left_out)))
    md(("md", "## Ablations\n\nEach variant against its axis's base on the same samples (`mg5bench ablate AXIS`); "
        "the plot shows each variant's value with its 95% CI (red = base)."))  # fmt: skip
    for rep in ablations:
        md(("md", f"### {rep['axis']['name']}: {rep['axis']['title']} ({rep['task']})\n\n" + ablation_markdown(rep)))
        plot = Path(rep["_plot"])
        if plot.is_file():
            md(("plot", (f"ablation-{rep['axis']['name']}-{rep['task']}", plot.read_bytes())))
    for e in plan_errors:
        md(("md", f"### not run: {e.split(':', 1)[0]}\n\n{e.split(': ', 1)[1] if ': ' in e else e}"))
    md(("md", "## Metric meta-evaluation (VIST)\n\n" + meta.markdown(meta_res)))
    md(("md", "## Paper vs ours\n\n" + paper_md))
    md(("md", "## Human evaluation\n\n" + (f"```\n{human_text}\n```" if human_text else
        "No ratings database was given (`mg5bench report --ratings ratings.sqlite`; ratings come from "
        "`mg5bench annotate`, see docs/human-eval.md).")))  # fmt: skip

    md_text = _render_md(blocks)
    html_text = _render_html(blocks, runs, frames)
    files = []
    out.mkdir(parents=True, exist_ok=True)
    for kind, payload in blocks:
        if kind == "plot":
            name, png = payload
            atomic_write_bytes(out / "figures" / f"{name}.png", png)
            files.append(out / "figures" / f"{name}.png")
    from mg5bench.ablation.core import to_csv

    abl_csv = _prefix_csv(ablations, to_csv)
    atomic_write_text(out / "leaderboard.md", md_text)
    atomic_write_text(out / "leaderboard.csv", tables.csv_text(frames))
    atomic_write_text(out / "ablations.csv", abl_csv)
    atomic_write_text(out / "leaderboard.html", html_text)
    atomic_write_json(out / "report.json", nan_to_none({
        "version": REPORT_VERSION, "runs": str(runs), "limits": limits, "evaluator": ev,
        "tables": [{"title": t.title, "rows": [r.rel for r in t.rows]} for t in all_tables],
        "left_out": left_out, "ablations": [r["_folder"] for r in ablations], "plan_errors": plan_errors,
        "meta_evaluation": meta_res, "paper": paper_rows,
    }))  # fmt: skip
    files += [out / f for f in ("leaderboard.md", "leaderboard.csv", "ablations.csv", "leaderboard.html",
                                "report.json")]  # fmt: skip
    return ReportResult(out, files, len(all_tables), len(used), left_out, plan_errors)


def _missing_axes(plan: Mapping[str, Any], found: Sequence[Mapping[str, Any]], known: Sequence[str]) -> list[str]:
    """The plan's axes with no stored ablation: why (a missing checkpoint and the command that makes it), or the
    command that runs them, so the report says what it lacks with or without --rebuild."""
    from mg5bench.ablation import load_axis
    from mg5bench.errors import Mg5Error

    have = {(a["axis"]["name"], a["task"]) for a in found}
    out = []
    for a in plan.get("ablations", []):
        if (a["axis"], a["task"]) in have or any(e.startswith(f"{a['axis']} ({a['task']})") for e in known):
            continue
        try:
            load_axis(a["axis"]).check_checkpoints()
            why = f"not stored yet: run 'mg5bench ablate {a['axis']} --task {a['task']}' (or scripts/make_reports.sh)"
        except Mg5Error as e:
            why = str(e)
        out.append(f"{a['axis']} ({a['task']}): {why}")
    return out


def _ev_spec(ev: Mapping[str, Any]) -> str:
    """The --evaluator spec of a scoring's evaluator entry (the embedded one by its name)."""
    name = str(ev.get("name", "embedded"))
    return "embedded" if name.startswith("embedded") else str(ev.get("spec", name))


def _prefix_csv(ablations: Sequence[Mapping[str, Any]], to_csv: Any) -> str:
    """Every ablation's CSV rows in one file, with the axis and task as leading columns."""
    out: list[str] = []
    for i, rep in enumerate(ablations):
        lines = to_csv(rep).splitlines()
        if i == 0:
            out.append("axis,task," + lines[0])
        out += [f"{rep['axis']['name']},{rep['task']},{line}" for line in lines[1:]]
    return "\n".join(out) + ("\n" if out else "")


def _checkpoints_md(used: Sequence[Any], runs: Path) -> str:
    seen: dict[tuple[str, str, str], set[str]] = {}
    for r in used:
        if r.sha256:
            seen.setdefault((r.model, r.checkpoint, r.sha256), set()).add(r.task)
    lines = ["Checkpoint folders relative to `reference_model/checkpoints/`; sha256 of the folder's weight and config "
             "files (MiniGPT-5: `folder : frozen LM, T2I, vision parts`).", "",
             "| model | checkpoint | tasks | sha256 |", "|---|---|---|---|"]  # fmt: skip
    for (model, ckpt, sha), tasks in sorted(seen.items()):
        lines.append(f"| {model} | {ckpt or '-'} | {', '.join(sorted(tasks))} | `{sha}` |")
    return "\n".join(lines)


def _contact_sheets(used: Sequence[Any], n: int, cache_dir: Path | None, progress: bool, write: Any, tqdm: Any) -> None:
    from mg5bench.tasks import build_samples, get_task

    ssets: dict[str, Any] = {}
    for r in tqdm(used, desc="contact sheets", disable=not progress, leave=False):
        spec = r.info["spec"]
        k = json.dumps([r.task, r.split, spec.get("data"), sorted((spec.get("task_args") or {}).items())])
        if k not in ssets:
            ssets[k] = build_samples(get_task(r.task, spec.get("task_args") or {}), spec.get("data"), r.split,
                                     cache_dir=cache_dir, progress=False)  # fmt: skip
        write(r, ssets[k], n)


def _render_md(blocks: Sequence[tuple[str, Any]]) -> str:
    from mg5bench.leaderboard.tables import markdown_table

    parts = []
    for kind, payload in blocks:
        if kind == "md":
            parts.append(payload)
        elif kind == "table":
            parts.append(markdown_table(*payload))
        elif kind == "plot":
            parts.append(f"![{payload[0]}](figures/{payload[0]}.png)")
        elif kind == "gallery":
            parts.append("A gallery of samples next to the ground truth is in `leaderboard.html`; every run folder "
                         "has a `contact_sheet.png`.")  # fmt: skip
    return "\n\n".join(parts).rstrip() + "\n"


def _render_html(blocks: Sequence[tuple[str, Any]], runs: Path, frames: Sequence[Any]) -> str:
    from mg5bench.leaderboard import html

    parts = []
    for kind, payload in blocks:
        if kind == "md":
            parts.append(html.markdown_to_html(payload))
        elif kind == "table":
            parts.append(html.leaderboard_table(*payload))
        elif kind == "plot":
            parts.append(f"<p><img class='plot' alt='{html.esc(payload[0])}' src='{html.data_uri(payload[1])}'></p>")
        elif kind == "gallery":
            parts.append(_gallery_html(*payload))
    return html.page("mg5bench leaderboard", "\n".join(parts))


def _gallery_html(table: Any, k: int) -> str:
    """The first ``k`` samples: context and ground truth, then each model's default run (else its first row)."""
    from mg5bench.leaderboard import html
    from mg5bench.scoring import output_roots, stored_images
    from mg5bench.store import RunStore
    from mg5bench.tasks import build_samples, get_task

    picked: dict[str, Any] = {}
    for r in table.rows:
        if r.model in ("gt",):
            continue
        if r.model not in picked or (r.default and not picked[r.model].default):
            picked[r.model] = r
    rows = list(picked.values())
    if not rows:
        return ""
    spec = rows[0].info["spec"]
    sset = build_samples(get_task(rows[0].task, spec.get("task_args") or {}), spec.get("data"), rows[0].split,
                         progress=False)  # fmt: skip
    samples = sset.samples[:k]
    columns = []
    for r in rows:
        store = RunStore(r.folder)
        done = store.done()
        ids = [s.id for s in samples if s.id in done]
        images = r.images if all(i in r.images for i in ids) else stored_images(r.folder, ids, output_roots(
            r.folder, sset))  # only images inside the run and data folders (checked again if not yet)  # fmt: skip
        outs = {}
        for sid in ids:
            rec = done[sid]
            img = str(images[sid][0]) if images[sid] else None
            outs[sid] = {"image": img, "text": " ".join(seg.get("text", "") for seg in rec["output"]).strip()}
        columns.append((r.label, outs))
    return "<h3>Gallery</h3>" + html.gallery(samples, columns)
