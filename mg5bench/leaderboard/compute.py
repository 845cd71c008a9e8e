"""What the report computes from the stored results besides the tables: the ablations it shows (the stored
ablation.json per axis and task), the machine facts from the runs' records, notes on rows that use several
checkpoints, the paper's claims beside ours (one Holm family) and the plan's axes that are missing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

PAPER_FILE = Path(__file__).resolve().parent / "paper.yaml"


def find_ablations(runs: Path, limits: Mapping[str, int], left_out: list[str] | None = None) -> list[dict[str, Any]]:
    """One ablation.json per (axis, task): among those whose limit is the task's table limit and whose run folders
    all exist, the most recently computed (sorted by axis name, then task). An ablation folder that cannot be used
    (a damaged ablation.json, a folder or plot outside ``runs``) is added to ``left_out`` with the reason."""
    from mg5bench.runs.ablations import ABLATION_VERSION, read_ablation

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


DEFAULT_CLAIM_KEYS = ("clip_i", "fid", "scene_accuracy", "scene_accuracy.objects", "scene_accuracy.colour",
                      "persistence")  # fmt: skip


def claim_keys(claim: Mapping[str, Any]) -> tuple[str, ...]:
    """The results that test a claim: its own ``results`` list in paper.yaml (e.g. MM-Relevance for the MMDialog
    claim), else the image results every image claim is read on (fixed before any result was seen)."""
    return tuple(claim["test"].get("results") or DEFAULT_CLAIM_KEYS)


def _seed_note(e: Mapping[str, Any]) -> str:
    from mg5bench.runs.ablations import seed_sd_of

    sd = e.get("seeds", {})
    n_b, n_v = sd.get("base", 1), sd.get("variant", 1)
    if n_b == 1 and n_v == 1:
        return "1 vs 1 checkpoint"
    of = seed_sd_of(sd)
    whose = f" ({of}'s)" if of in ("base", "variant") else ""
    spread = "" if sd.get("sd") is None else f", seed sd {sd['sd']:.3f}{whose}"
    return f"{n_v} vs {n_b} seeds{spread}"


def _overall(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its results' verdicts."""
    if verdicts and all(v == "too few stories" for v in verdicts):
        return "too few stories"
    if "yes" in verdicts and "opposite" in verdicts:
        return "mixed"
    if verdicts and all(v == "yes" for v in verdicts):
        return "yes"
    return "partly" if "yes" in verdicts else "opposite" if "opposite" in verdicts else "not resolved"


def paper_section(ablations: Sequence[Mapping[str, Any]], plan_errors: Sequence[str], human: str | None) -> tuple[
        str, list[dict[str, Any]]]:  # fmt: skip
    """The paper's claims beside ours: a verdict per claim, then one line per (claim, result). Every tested cell is
    one family: Holm-adjusted p-values, and each verdict is read from its adjusted value."""
    import yaml

    from mg5bench.core.escaping import md_text
    from mg5bench.metrics.schema import display
    from mg5bench.scoring.statistics import MIN_CLUSTERS, format_p, holm

    paper = yaml.safe_load(PAPER_FILE.read_text())
    found: dict[str, tuple[Mapping[str, Any] | None, dict[str, Any], str]] = {}
    cells: list[tuple[str, str, Mapping[str, Any]]] = []
    for c in paper["claims"]:
        t = c["test"]
        if t.get("ratings"):
            continue
        rep = next((a for a in ablations if a["axis"]["name"] == t["axis"] and a["task"] == t["task"]), None)
        row = None if rep is None else next((r for r in rep["rows"] if r["variant"] == t["variant"]), None)
        entries = {k: e for k in claim_keys(c) if (e := (row or {}).get("compare", {}).get(k)) is not None
                   and e.get("diff") is not None}  # fmt: skip
        found[c["id"]] = (rep, entries, t["expect"])
        cells += [(c["id"], k, e) for k, e in entries.items()]
    adjusted = dict(zip([(cid, k) for cid, k, _ in cells], holm([e.get("p") for _, _, e in cells]), strict=True))
    family = sum(1 for _, _, e in cells if e.get("p") is not None)
    summary = ["| claim | paper | test | reproduced? |", "|---|---|---|---|"]
    detail_lines = ["| claim | result | variant - base [95% CI] | seeds | p | Holm | verdict |",
                    "|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = []
    for c in paper["claims"]:
        t = c["test"]
        pv = c.get("paper_value") or "not checked"
        if t.get("ratings"):
            summary.append(f"| {c['claim']} ({c['id']}) | {pv} | human ratings | "
                           f"{'see Human evaluation' if human else 'no ratings given'} |")  # fmt: skip
            rows.append({"claim": c["id"], "verdict": "ratings" if human else "not run"})
            continue
        rep, entries, expect = found[c["id"]]
        test = f"{t['axis']} on {t['task']}: {t['variant']} vs base"
        if rep is None:
            why = next((e for e in plan_errors if e.startswith(f"{t['axis']} ")), "no ablation stored")
            summary.append(f"| {c['claim']} ({c['id']}) | {pv} | {test} | not run: {md_text(_problem(why))} (the "
                           "full reason and fix under \"not run\" in Ablations) |")  # fmt: skip
            rows.append({"claim": c["id"], "verdict": "not run"})
            continue
        texts, verdicts, detail = {}, [], {}
        for k in claim_keys(c):
            e = entries.get(k)
            if e is None:
                texts[k] = "n/a"
                continue
            adj = adjusted.get((c["id"], k))
            v = _verdict(e, expect, adj)
            verdicts.append(v)
            lo, hi = e["diff_ci"]
            ci = "" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]"
            texts[k] = f"{e['diff']:+.3f}{ci} ({_seed_note(e)}) p {format_p(e.get('p'))}, Holm {format_p(adj)} ({v})"
            detail_lines.append(f"| {c['id']} | {display(k)} | {e['diff']:+.3f}{ci} | {_seed_note(e)} | "
                                f"{format_p(e.get('p'))} | {format_p(adj)} | {v} |")  # fmt: skip
            detail[k] = {"diff": e["diff"], "ci": [lo, hi], "p": e.get("p"), "p_holm": adj, "verdict": v,
                         "seeds": e.get("seeds"), "clusters": e.get("clusters"), "test": e.get("test")}  # fmt: skip
        overall = _overall(verdicts)
        summary.append(f"| {c['claim']} ({c['id']}) | {pv} | {test} | {overall} |")
        rows.append({"claim": c["id"], "verdict": overall, "cells": texts, "results": detail})
    lines = [f"Protocol differences: {' '.join(paper['protocol'].split())}", "", *summary, "",
             "Per result (variant - base; a result the ablation does not hold is left out):", "",
             *detail_lines]  # fmt: skip
    lines += ["", f"A difference is variant - base on the same samples: with several training seeds per "
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


def shared_settings(found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The settings every stored ablation of a runs folder shares (``split``, ``limit``, ``data``, ``checkpoints``:
    the trained set, None = the shipped one), so the axes it lacks are named with the command that fits it (a
    folder of level-3 comparisons is completed on level 3's data and set, not the defaults)."""
    out: dict[str, Any] = {}
    for k in ("split", "limit", "data", "checkpoints"):
        values = {json.dumps(a.get(k)) for a in found}
        if len(values) == 1:
            out[k] = json.loads(values.pop())
    return out


def ablate_command(axis: str, task: str, runs: Path, settings: Mapping[str, Any]) -> str:
    """The 'mg5bench ablate' command that adds an axis to a runs folder with its stored ablations' settings."""
    import shlex

    parts = ["mg5bench", "ablate", axis, "--task", task]
    for k in ("split", "limit", "data", "checkpoints"):
        if settings.get(k) is not None:
            parts += [f"--{k}", str(settings[k])]
    if Path(runs) != Path("runs"):
        parts += ["--out", str(runs)]
    return shlex.join(parts)


def missing_axes(plan: Mapping[str, Any], found: Sequence[Mapping[str, Any]], known: Sequence[str],
                 axis_problem: Callable[[str, Path | None], str | None] | None = None,
                 runs: Path = Path("runs")) -> list[str]:  # fmt: skip
    """The plan's axes with no stored ablation: why (``axis_problem(axis, checkpoints)``: e.g. a missing checkpoint
    in the set the stored ablations used and how to make it, as the API finds it in the axis file), or the command
    that runs them with the stored ablations' settings (``shared_settings``), so the report says what it lacks with
    or without --rebuild."""
    have = {(a["axis"]["name"], a["task"]) for a in found}
    settings = shared_settings(found)
    if settings.get("checkpoints") is not None and not Path(settings["checkpoints"]).is_dir():
        # the set they used has moved or gone (e.g. renamed into the shipped set): name the shipped set instead
        settings = {k: v for k, v in settings.items() if k != "checkpoints"}
    root = None if settings.get("checkpoints") is None else Path(settings["checkpoints"])
    out = []
    for a in plan.get("ablations", []):
        if (a["axis"], a["task"]) in have or any(e.startswith(f"{a['axis']} ({a['task']})") for e in known):
            continue
        problem = axis_problem(a["axis"], root) if axis_problem is not None else None
        command = ablate_command(a["axis"], a["task"], runs, settings)
        why = problem or f"not stored yet: run '{command}'" + ("" if settings else " (or scripts/make_reports.sh)")
        out.append(f"{a['axis']} ({a['task']}): {why}")
    return out


def evaluator_spec(ev: Mapping[str, Any]) -> str:
    """The --evaluator spec of a scoring's evaluator entry (the embedded one by its name)."""
    name = str(ev.get("name", "embedded"))
    return "embedded" if name.startswith("embedded") else str(ev.get("spec", name))
