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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.data.io import atomic_write_bytes, nan_to_none

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
    """A plan YAML (``plan.yaml``: tasks with their limit, models, ablations), checked: every problem is one line
    naming the file and the entry."""
    from mg5bench.core.errors import DataError
    from mg5bench.core.limits import excerpt, int_problem
    from mg5bench.data.io import read_yaml

    path = Path(path or PLAN_FILE)
    plan = read_yaml(path, "plan file")
    if not isinstance(plan, dict):
        raise DataError(str(path), None, "a plan is a YAML mapping with tasks, models and ablations",
                        "see mg5bench/leaderboard/plan.yaml")  # fmt: skip
    tasks, models, ablations = plan.get("tasks") or {}, plan.get("models") or [], plan.get("ablations") or []
    if not isinstance(tasks, dict) or not isinstance(models, list) or not isinstance(ablations, list):
        raise DataError(str(path), None, "tasks must be a mapping, models and ablations lists",
                        "see mg5bench/leaderboard/plan.yaml")  # fmt: skip
    for task, opts in tasks.items():
        problem = int_problem(opts.get("limit") if isinstance(opts, dict) else None, 1)
        if problem:
            raise DataError(str(path), f"task {excerpt(task)}", f"limit {problem}", "give e.g. {limit: 200}")
    for i, a in enumerate(ablations):
        if not isinstance(a, dict) or not isinstance(a.get("axis"), str) or not isinstance(a.get("task"), str):
            raise DataError(str(path), f"ablation {i + 1}", "an ablation is {axis: NAME, task: TASK}")
        problem = int_problem(a["limit"], 1) if a.get("limit") is not None else None
        if problem:
            raise DataError(str(path), f"ablation {i + 1}", f"limit {problem}")
    if not all(isinstance(m, str) for m in models):
        raise DataError(str(path), None, "models must be a list of model names")
    return {"tasks": tasks, "models": models, "ablations": ablations}


def run_plan(plan: Mapping[str, Any], runs: Path, *, device: str, cache_dir: Path | None, progress: bool,
             evaluator: str | None = None) -> list[str]:  # fmt: skip
    """Generate what the plan needs and the store lacks, one run at a time; returns the errors of axes that
    cannot run (e.g. a checkpoint that is not shipped), which the report then shows."""
    from mg5bench.ablation import ablate
    from mg5bench.core.errors import Mg5Error
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import RunSpec
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


def find_ablations(runs: Path, limits: Mapping[str, int], left_out: list[str] | None = None) -> list[dict[str, Any]]:
    """One ablation.json per (axis, task): among those whose limit is the task's table limit and whose run folders
    all exist, the most recently computed (sorted by axis name, then task). An ablation folder that cannot be used
    (a damaged ablation.json, a folder or plot outside ``runs``) is added to ``left_out`` with the reason."""
    from mg5bench.ablation.core import read_ablation

    found: dict[tuple[str, str], tuple[float, str, dict[str, Any]]] = {}
    root = Path(runs).resolve()
    skipped = left_out if left_out is not None else []
    for path in sorted(Path(runs).glob("ablations/*/ablation.json")):
        rel = str(path.parent.relative_to(runs))
        if not path.resolve().is_relative_to(root):
            skipped.append(f"{rel}: resolves outside the runs folder (a symlink); a report publishes only what lies "
                           "inside it")  # fmt: skip
            continue
        rep = read_ablation(path)
        if not isinstance(rep, dict):
            skipped.append(f"{rel}: ablation.json {rep} (fix: rerun its 'mg5bench ablate' command: it computes the "
                           "comparison again)")  # fmt: skip
            continue
        task = rep.get("task")
        if limits.get(task) != rep.get("limit"):
            continue
        from mg5bench.ablation.core import ABLATION_VERSION

        if rep.get("version", 1) != ABLATION_VERSION:  # an older format: 'mg5bench ablate' recomputes it
            continue
        runs_of = rep.get("key", {}).get("runs", []) if isinstance(rep.get("key"), dict) else []
        if not all(isinstance(r, dict) and (Path(runs) / str(r.get("folder"))).is_dir() for r in runs_of):
            continue
        rep["_folder"] = str(path.parent)
        plot = (path.parent / "ablation.png").resolve()
        rep["_plot"] = str(plot) if plot.is_relative_to(root) and _is_png(plot) else ""
        cand = (path.stat().st_mtime, path.parent.name, rep)
        k = (rep["axis"]["name"], task)
        if k not in found or cand[:2] > found[k][:2]:
            found[k] = cand
    return [found[k][2] for k in sorted(found)]


def _is_png(path: Path) -> bool:
    """A PNG file within the pixel limit (by its header): the only kind of plot the report embeds."""
    from mg5bench.data.io import image_too_large

    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
        return image_too_large(path) is None
    except OSError:
        return False


def environment(used: Sequence[Any]) -> list[str]:
    """The environment facts of the report, each from the runs' own records: how every run was generated (device,
    CPU threads per process, torch; run.json) and scored (package versions; metrics.json). Where runs differ, one
    line per group naming its runs."""
    gen: dict[str, list[str]] = {}
    for r in used:
        dev = r.info.get("device") or {}
        threads = dev.get("threads") or r.info.get("key", {}).get("cpu_threads")
        where = f"{dev.get('type', '?')} ({dev.get('name', '?')})"
        if dev.get("type") == "cpu" and threads:
            where += f" with {threads} thread{'s' if threads != 1 else ''} per process"
        gen.setdefault(f"{where}, torch {dev.get('torch', '?')}", []).append(r.label or r.rel)
    scored: dict[str, list[str]] = {}
    for r in used:
        versions = (r.score or {}).get("versions") or {}
        text = ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "not recorded"
        scored.setdefault(text, []).append(r.label or r.rel)
    lines = []
    for what, groups in (("generated on", gen), ("scored with", scored)):
        if len(groups) == 1:
            lines.append(f"Every run {what} {next(iter(groups))} (from the runs' records).")
            continue
        for text, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            lines.append(f"{len(names)} run(s) {what} {text}: {shown}.")
    return lines


def checkpoint_notes(tables: Sequence[Any]) -> list[str]:
    """One note per table and model whose rows use several checkpoints (training seeds, ablations): a reader
    should not take them for one model. Names each checkpoint."""
    notes = []
    for t in tables:
        by_model: dict[str, set[str]] = {}
        for r in t.rows:
            if r.sha256:
                by_model.setdefault(r.model, set()).add(r.checkpoint or r.sha256[:12])
        for model, names in sorted(by_model.items()):
            if len(names) > 1:
                notes.append(f"{t.title}: {model} appears with {len(names)} checkpoints ({', '.join(sorted(names))}); "
                             "each row names its checkpoint, and --shipped-only keeps each model's shipped "
                             "default")  # fmt: skip
    return notes


def _verdict(entry: Mapping[str, Any] | None, expect: str, p_adjusted: float | None) -> str:
    """Whether a paired difference supports a claim, from its family-wise (Holm) adjusted p-value: "yes" when it is
    below 0.05 and the difference goes the way the claim predicts, "opposite" when below 0.05 the other way, "too few
    stories" under the minimum cluster count (no verdict is drawn), else "not resolved"."""
    if entry is None or entry.get("diff") is None or p_adjusted is None:
        return "n/a"
    if entry.get("too_few_clusters"):
        return "too few stories"
    if p_adjusted >= 0.05 or entry["diff"] == 0:
        return "not resolved"
    variant_better = (entry["diff"] > 0) == bool(entry["higher_is_better"])
    return "yes" if variant_better == (expect == "variant better") else "opposite"


CLAIM_KEYS = ("clip_i", "fid", "scene_accuracy", "scene_accuracy.colour")


def _seed_note(e: Mapping[str, Any]) -> str:
    sd = e.get("seeds", {})
    n_b, n_v = sd.get("base", 1), sd.get("variant", 1)
    if n_b == 1 and n_v == 1:
        return "1 vs 1 checkpoint"
    spread = "" if sd.get("sd") is None else f", seed sd {sd['sd']:.3f}"
    return f"{n_v} vs {n_b} seeds{spread}"


def paper_section(ablations: Sequence[Mapping[str, Any]], plan_errors: Sequence[str], human: str | None) -> tuple[
        str, list[dict[str, Any]]]:  # fmt: skip
    """The paper's claims beside ours. Every tested cell (claim x result) is one family: Holm-adjusted p-values,
    and each verdict is read from its adjusted value."""
    import yaml

    from mg5bench.ablation.compare import format_p
    from mg5bench.core.escaping import md_text
    from mg5bench.scoring.statistics import MIN_CLUSTERS, holm

    paper = yaml.safe_load(PAPER_FILE.read_text())
    found: dict[str, tuple[Mapping[str, Any] | None, dict[str, Any], str]] = {}
    cells: list[tuple[str, str, Mapping[str, Any]]] = []
    for c in paper["claims"]:
        t = c["test"]
        if t.get("ratings"):
            continue
        rep = next((a for a in ablations if a["axis"]["name"] == t["axis"] and a["task"] == t["task"]), None)
        row = None if rep is None else next((r for r in rep["rows"] if r["variant"] == t["variant"]), None)
        entries = {k: e for k in CLAIM_KEYS if (e := (row or {}).get("compare", {}).get(k)) is not None
                   and e.get("diff") is not None}  # fmt: skip
        found[c["id"]] = (rep, entries, t["expect"])
        cells += [(c["id"], k, e) for k, e in entries.items()]
    adjusted = dict(zip([(cid, k) for cid, k, _ in cells], holm([e.get("p") for _, _, e in cells]), strict=True))
    family = sum(1 for _, _, e in cells if e.get("p") is not None)
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
        rep, entries, expect = found[c["id"]]
        test = f"{t['axis']}: {t['variant']} vs base"
        if rep is None:
            why = next((e for e in plan_errors if e.startswith(f"{t['axis']} ")), "no ablation stored")
            lines.append(f"| {c['claim']} | {pv} | {test} | " + " | ".join("" for _ in CLAIM_KEYS)
                         + f" | not run: {md_text(_problem(why))} (the full reason and fix under \"not run\" in "
                         "Ablations) |")  # fmt: skip
            rows.append({"claim": c["id"], "verdict": "not run"})
            continue
        texts, verdicts, detail = [], [], {}
        for k in CLAIM_KEYS:
            e = entries.get(k)
            if e is None:
                texts.append("n/a")
                continue
            adj = adjusted.get((c["id"], k))
            v = _verdict(e, expect, adj)
            verdicts.append(v)
            lo, hi = e["diff_ci"]
            ci = "" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]"
            texts.append(f"{e['diff']:+.3f}{ci} ({_seed_note(e)}) p {format_p(e.get('p'))}, Holm {format_p(adj)} "
                         f"({v})")  # fmt: skip
            detail[k] = {"diff": e["diff"], "ci": [lo, hi], "p": e.get("p"), "p_holm": adj, "verdict": v,
                         "seeds": e.get("seeds"), "clusters": e.get("clusters"), "test": e.get("test")}  # fmt: skip
        overall = ("too few stories" if verdicts and all(v == "too few stories" for v in verdicts) else
                   "mixed" if "yes" in verdicts and "opposite" in verdicts else
                   "yes" if verdicts and all(v == "yes" for v in verdicts) else "partly" if "yes" in verdicts else
                   "opposite" if "opposite" in verdicts else "not resolved")  # fmt: skip
        lines.append(f"| {c['claim']} | {pv} | {test} (variant - base) | " + " | ".join(texts) + f" | {overall} |")
        rows.append({"claim": c["id"], "verdict": overall, "cells": dict(zip(CLAIM_KEYS, texts, strict=False)),
                     "results": detail})  # fmt: skip
    lines += ["", f"A cell is the difference variant - base on the same samples: with several training seeds per "
              "variant the difference of seed means, its 95% interval adding the spread between seeds to the spread "
              "between stories (two-level t), and the seeds' standard deviation; with one checkpoint per side the "
              "paired t-interval over stories and the paired cluster permutation p. **Family:** the "
              f"{family} p-values of this table are one family; 'Holm' is Holm's family-wise adjusted p, and the "
              "verdict reads it: 'yes' when below 0.05 in the direction the claim predicts, 'opposite' when below "
              f"0.05 the other way, 'not resolved' otherwise, 'too few stories' (no verdict) below {MIN_CLUSTERS} "
              "stories. Reproduced: 'yes' on every result, 'partly' on some (the others not resolved), 'mixed' when "
              "results disagree. The CIs are not adjusted for the family."]  # fmt: skip
    return "\n".join(lines), rows


def _problem(message: str) -> str:
    """The problem part of a plan error, for a table cell (its fix, e.g. a long training command, stays in the
    'not run' section): the text after the axis name and up to the first '; '."""
    body = message.split(": ", 1)[-1]
    return body.split("; ", 1)[0]


def ablation_markdown(rep: Mapping[str, Any]) -> str:
    """An ablation as a Markdown table: per variant, its value and its paired difference from the base per
    headline result, with p and the ablation's Benjamini-Hochberg q-value."""
    from mg5bench.ablation.compare import format_p
    from mg5bench.core.escaping import md_text
    from mg5bench.leaderboard.tables import display, fmt

    keys = rep["headline"]
    base = next(r for r in rep["rows"] if r.get("base"))
    head = ["variant", "n", "seeds"] + [md_text(display(k)) + (" ↑" if base["own"].get(k, {}).get("higher_is_better",
                                                                                                   True) else " ↓")
                                        for k in keys]  # fmt: skip
    warn = "".join(f" **{md_text(w)}**" for w in rep.get("warnings", []))
    lines = [f"{md_text(rep['axis']['description'])} Base: **{md_text(base['variant'])}** ({md_text(base['label'])}); "
             f"first {int(rep['limit'])} samples of {md_text(rep['task'])} {md_text(rep['split'])}. Cells: value, then "
             "(variant - base) [95% CI], seed sd where a side has several seeds, p and q (Benjamini-Hochberg within "
             "this ablation: an exploratory family)." + warn, "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
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
            sd = e.get("seeds", {}).get("sd")
            sd_text = "" if sd is None else f", sd {sd:.{d}f}"
            cells.append(f"{fmt(e['value'], d)} ({diff}{ci}{sd_text}, p {format_p(e['p'])}, q "
                         f"{format_p(e.get('q'))})")  # fmt: skip
        n = r["n_run"] if r.get("base") else r["n_paired"]
        lines.append(f"| {md_text(r['variant'])} ({md_text(r['label'])}) | {int(n)} | {len(r.get('seeds', [])) or 1} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    notes = [f"- {md_text(r['variant'])} is compared on {md_text(r['paired_on'])}" for r in rep["rows"]
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
    out: Path | None = None,
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
    shipped_only: bool = False,
) -> ReportResult:
    """Build the report (module docstring). ``out``: default ``<runs>/report`` (the user's own folder, never the
    repository's committed ``reports/``, which ``scripts/make_reports.sh`` rebuilds). ``limit``: samples per table
    (default: each task's most common completed --limit, or the plan's with ``rebuild``). ``shipped_only``: only
    each model's shipped default checkpoint (training seeds and ablation checkpoints left out of the tables). Every
    setting, the output folder and the ratings database are checked before any work; the files are written into a
    temporary folder and moved into ``out`` only when all of them are built, so a failed build leaves the previous
    report as it was."""
    from tqdm.auto import tqdm

    from mg5bench.core.devices import resolve_device
    from mg5bench.core.errors import ConfigError
    from mg5bench.core.limits import MAX_GALLERY, MAX_SHEET_SAMPLES, check_int, check_resamples
    from mg5bench.data.io import check_output_folder
    from mg5bench.leaderboard import collect, meta, tables
    from mg5bench.leaderboard.contact import write_contact_sheet

    if limit is not None:
        check_int("--limit", limit, 1)
    check_resamples(resamples)
    check_int("--gallery", gallery, 0, MAX_GALLERY)
    check_int("--contact-samples", contact, 1, MAX_SHEET_SAMPLES)
    runs = Path(runs)
    out = Path(out) if out is not None else runs / "report"
    check_output_folder(out)
    if rebuild:
        check_output_folder(runs, "--runs")  # the plan's runs are generated into it
    elif not runs.is_dir():
        raise ConfigError(f"--runs {runs} is not a folder: pass the runs folder of 'mg5bench run' (default ./runs)")
    rating_store = None
    if ratings is not None:  # a damaged database is refused now, not after the scoring
        from mg5bench.human.store import RatingStore

        rating_store = RatingStore(Path(ratings), create=False)
    dev = resolve_device(device)
    plan_data = load_plan(plan)
    plan_errors: list[str] = []
    if rebuild:
        plan_errors = run_plan(plan_data, runs, device=dev, cache_dir=cache_dir, progress=progress,
                               evaluator=evaluator)  # fmt: skip
    records, left_out = collect.find_runs(runs)
    if shipped_only:
        kept = [r for r in records if r.checkpoint == collect.default_checkpoint_name(r.model, r.info)]
        left_out += [f"{r.rel}: checkpoint {r.checkpoint or '?'} is not {r.model}'s shipped default (--shipped-only)"
                     for r in records if r not in kept]  # fmt: skip
        records = kept
    if not records:
        found = f" ({len(left_out)} left out: {left_out[0]})" if left_out else ""
        raise ConfigError(f"no usable run folders under {runs}{found}: generate some first ('mg5bench run ...'), "
                          "or pass --rebuild to generate the plan's runs, or --runs pointing at your runs "
                          "folder")  # fmt: skip
    order = ["vist", "mmdialog", "cc3m"]
    tasks = sorted({r.task for r in records}, key=lambda t: (order.index(t) if t in order else len(order), t))
    limits: dict[str, int] = {}
    all_tables: list[Any] = []
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
    ablations = find_ablations(runs, limits, left_out)
    plan_errors += _missing_axes(plan_data, ablations, plan_errors)
    main_vist = next((t for t in all_tables if t.task == "vist" and not t.protocol), None)
    meta_res: dict[str, Any] = {"note": "no VIST table"}
    scored = [r.score for r in used if r.score]
    ev = scored[0]["evaluator"] if scored else {"name": "n/a", "weights_sha256": "n/a"}
    if main_vist is not None:
        meta_res = meta.meta_evaluate(main_vist.rows, main_vist.n, evaluator=_ev_spec(ev), resamples=resamples,
                                      device=dev, cache_dir=cache_dir, progress=progress)  # fmt: skip
    human_text = None
    if rating_store is not None:
        from mg5bench.human import stats as hstats

        human_text = hstats.format_report(hstats.report(rating_store))
    paper_md, paper_rows = paper_section(ablations, plan_errors, human_text)
    if contact_sheets:
        _contact_sheets(used, contact, cache_dir, progress, write_contact_sheet, tqdm)

    # --- the document: Markdown blocks, tables, plots and galleries, rendered to .md and .html ---
    from mg5bench.core.escaping import md_code, md_fence, md_text

    abl_md: list[tuple[Mapping[str, Any], str]] = []
    for rep in ablations:  # a hand-edited ablation.json that parses but does not render is left out, with the reason
        try:
            abl_md.append((rep, ablation_markdown(rep)))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            left_out.append(f"{Path(rep['_folder']).relative_to(runs)}: ablation.json has unexpected content "
                            f"({type(e).__name__}: {str(e)[:60]}) (fix: rerun its 'mg5bench ablate' command with "
                            "--force)")  # fmt: skip
    ablations = [rep for rep, _ in abl_md]
    blocks: list[tuple[str, Any]] = []
    md = blocks.append
    env = environment(used)
    n_desc = ", ".join(f"{t} first {n}" for t, n in limits.items())
    md(("md", "# mg5bench leaderboard\n\n"
        f"Built by {md_code(command)} from the runs under {md_code(runs)} ({md_text(n_desc)} samples; nothing is "
        "generated by the report). Regenerate everything, generating only what is missing, with "
        f"`scripts/make_reports.sh` ({md_code(f'mg5bench report --rebuild --runs {runs} --out {out}')})."))  # fmt: skip
    md(("md", "## How to read it\n\n"
        f"- Evaluator: {md_code(ev['name'])}, weights sha256 {md_code(ev['weights_sha256'])}; FID and KID on its "
        "image embedding "
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
        + "".join(f"- {md_text(line)}\n" for line in [*env, *checkpoint_notes(all_tables)])))  # fmt: skip
    md(("md", "## Checkpoints used\n\n" + _checkpoints_md(used, runs)))
    figure_names: set[str] = set()
    for t, df in zip(all_tables, frames, strict=True):
        md(("md", f"## {md_text(t.title)}"))
        md(("table", (t, df)))
        md(("plot", (_figure_name(t, figure_names), overview_png(t, df))))
        if gallery and not t.protocol:
            md(("gallery", (t, gallery)))
    md(("md", "### Columns\n\n" + tables.schema_markdown(sorted({k for t in all_tables for k in
                                                                  tables.columns_for(t)}))))  # fmt: skip
    if left_out:
        md(("md", "### Runs left out\n\n" + "\n".join(f"- {md_code(x)}" for x in left_out)))
    md(("md", "## Ablations\n\nEach variant against its axis's base on the same samples (`mg5bench ablate AXIS`); "
        "the plot shows each variant's paired difference from the base with its 95% interval above, and the values "
        "below (red = base)."))  # fmt: skip
    for rep, text in abl_md:
        md(("md", f"### {md_text(rep['axis']['name'])}: {md_text(rep['axis']['title'])} ({md_text(rep['task'])})\n\n"
            + text))  # fmt: skip
        if rep["_plot"]:
            name = _safe_name(f"ablation-{rep['axis']['name']}-{rep['task']}", figure_names)
            md(("plot", (name, Path(rep["_plot"]).read_bytes())))
    for e in plan_errors:
        md(("md", f"### not run: {md_text(e.split(':', 1)[0])}\n\n{md_text(e.split(': ', 1)[1] if ': ' in e else e)}"))
    md(("md", "## Metric meta-evaluation (VIST)\n\n" + meta.markdown(meta_res)))
    md(("md", "## Paper vs ours\n\n" + paper_md))
    md(("md", "## Human evaluation\n\n" + (md_fence(human_text) if human_text else
        "No ratings database was given (`mg5bench report --ratings ratings.sqlite`; ratings come from "
        "`mg5bench annotate`, see docs/human-eval.md).")))  # fmt: skip

    from mg5bench.ablation.core import to_csv

    contents: dict[str, bytes] = {}
    for kind, payload in blocks:
        if kind == "plot":
            contents[f"figures/{payload[0]}.png"] = payload[1]
    contents["leaderboard.md"] = _render_md(blocks).encode()
    contents["leaderboard.csv"] = tables.csv_text(frames).encode()
    contents["ablations.csv"] = _prefix_csv(ablations, to_csv).encode()
    contents["leaderboard.html"] = _render_html(blocks, runs, frames).encode()
    contents["report.json"] = (json.dumps(nan_to_none({
        "version": REPORT_VERSION, "runs": str(runs), "limits": limits, "evaluator": ev,
        "tables": [{"title": t.title, "rows": [r.rel for r in t.rows]} for t in all_tables],
        "left_out": left_out, "ablations": [r["_folder"] for r in ablations], "plan_errors": plan_errors,
        "meta_evaluation": meta_res, "paper": paper_rows, "files": sorted([*contents, "report.json"]),
    }), indent=2, ensure_ascii=False) + "\n").encode()  # fmt: skip
    files = publish(out, contents)
    return ReportResult(out, files, len(all_tables), len(used), left_out, plan_errors)


def _safe_name(name: str, taken: set[str]) -> str:
    """A figure's file name: letters, digits, '.', '_' and '-' only, and not one already taken by this report."""
    import re

    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "figure"
    out, k = base, 2
    while out in taken:
        out, k = f"{base}-{k}", k + 1
    taken.add(out)
    return out


def _figure_name(table: Any, taken: set[str]) -> str:
    """The overview plot of a table: overview-<task>, -last for GILL's protocol, and -n<N> when another table of
    the task already has that name; never the name of another table's plot."""
    name = f"overview-{table.task}{'-last' if table.protocol else ''}"
    return _safe_name(name if name not in taken else f"{name}-n{table.n}", taken)


FIGURE = r"figures/[A-Za-z0-9_-][A-Za-z0-9._-]*\.png"  # a figure file the report writes (and may remove)


def publish(out: Path, contents: Mapping[str, bytes]) -> list[Path]:
    """Write a report's files (relative path -> bytes) into ``out``: first all of them into a temporary folder in
    ``out`` (each fsynced), then each moved into place with an atomic rename, report.json last; then the figures the
    previous report listed and this one does not are removed. Until the renames every file of the previous report
    is untouched, so a build that fails (a full disk, an error) leaves it as it was."""
    import re
    import shutil
    import tempfile

    from mg5bench.data.io import write_error

    out.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    except OSError as e:
        raise write_error(out, e) from None
    try:
        for rel, data in contents.items():
            atomic_write_bytes(tmp / rel, data)
        previous: list[str] = []
        try:
            listed = json.loads((out / "report.json").read_text(encoding="utf-8")).get("files", [])
            previous = [f for f in listed if isinstance(f, str) and re.fullmatch(FIGURE, f)]
        except (OSError, ValueError, AttributeError, RecursionError):
            pass  # no previous report, or one that listed no files: nothing to remove
        order = sorted(contents, key=lambda rel: (rel == "report.json", not rel.startswith("figures/"), rel))
        try:
            (out / "figures").mkdir(exist_ok=True)
            for rel in order:
                os.replace(tmp / rel, out / rel)
        except OSError as e:
            raise write_error(out / rel, e) from None
        for rel in previous:
            if rel not in contents:
                (out / rel).unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / rel for rel in contents]


def _missing_axes(plan: Mapping[str, Any], found: Sequence[Mapping[str, Any]], known: Sequence[str]) -> list[str]:
    """The plan's axes with no stored ablation: why (a missing checkpoint and the command that makes it), or the
    command that runs them, so the report says what it lacks with or without --rebuild."""
    from mg5bench.ablation import load_axis
    from mg5bench.core.errors import Mg5Error

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
    """Every ablation's CSV rows in one file, with the axis and task as leading columns (quoted as the csv module
    quotes, formula-like text neutralised as in every CSV the suite writes)."""
    import csv
    import io

    from mg5bench.core.escaping import csv_cell

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for i, rep in enumerate(ablations):
        rows = list(csv.reader(io.StringIO(to_csv(rep))))
        if i == 0:
            w.writerow(["axis", "task", *rows[0]])
        w.writerows([csv_cell(str(rep["axis"]["name"])), csv_cell(str(rep["task"])), *row] for row in rows[1:])
    return buf.getvalue()


def _checkpoints_md(used: Sequence[Any], runs: Path) -> str:
    from mg5bench.core.escaping import md_code, md_text

    seen: dict[tuple[str, str, str], set[str]] = {}
    for r in used:
        if r.sha256:
            seen.setdefault((r.model, r.checkpoint, r.sha256), set()).add(r.task)
    lines = ["Checkpoint folders relative to `reference_model/checkpoints/`; sha256 of the folder's weight and config "
             "files (MiniGPT-5: `folder : frozen LM, T2I, vision parts`).", "",
             "| model | checkpoint | tasks | sha256 |", "|---|---|---|---|"]  # fmt: skip
    for (model, ckpt, sha), tasks in sorted(seen.items()):
        lines.append(f"| {md_text(model)} | {md_text(ckpt or '-')} | {md_text(', '.join(sorted(tasks)))} | "
                     f"{md_code(sha, table=True)} |")  # fmt: skip
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
    from mg5bench.runs.store import RunStore
    from mg5bench.scoring.predictions import output_roots, stored_images
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
