"""The report as documents: Markdown blocks (prose, tables, plots, galleries) rendered once to leaderboard.md and
once to the self-contained leaderboard.html, the CSV files and report.json, and ``publish``, which moves a complete
set of files into the output folder (a failed build leaves the previous report as it was)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mg5bench.core.files import atomic_write_bytes
from mg5bench.data.io import nan_to_none


def ablation_markdown(rep: Mapping[str, Any]) -> str:
    """An ablation as a Markdown table: per variant, its value and its paired difference from the base per
    headline result, with p and the ablation's Benjamini-Hochberg q-value."""
    from mg5bench.core.escaping import md_text
    from mg5bench.leaderboard.tables import display, fmt
    from mg5bench.scoring.statistics import format_p

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

    from mg5bench.core.figures import figure_png
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


def safe_name(name: str, taken: set[str]) -> str:
    """A figure's file name: letters, digits, '.', '_' and '-' only, and not one already taken by this report."""
    import re

    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "figure"
    out, k = base, 2
    while out in taken:
        out, k = f"{base}-{k}", k + 1
    taken.add(out)
    return out


def figure_name(table: Any, taken: set[str]) -> str:
    """The overview plot of a table: overview-<task>, -last for GILL's protocol, and -n<N> when another table of
    the task already has that name; never the name of another table's plot."""
    name = f"overview-{table.task}{'-last' if table.protocol else ''}"
    return safe_name(name if name not in taken else f"{name}-n{table.n}", taken)


FIGURE = r"figures/[A-Za-z0-9_-][A-Za-z0-9._-]*\.png"  # a figure file the report writes (and may remove)


def publish(out: Path, contents: Mapping[str, bytes]) -> list[Path]:
    """Write a report's files (relative path -> bytes) into ``out``: first all of them into a temporary folder in
    ``out`` (each fsynced), then each moved into place with an atomic rename, report.json last; then the figures the
    previous report listed and this one does not are removed. Until the renames every file of the previous report
    is untouched, so a build that fails (a full disk, an error) leaves it as it was."""
    import re
    import shutil
    import tempfile

    from mg5bench.core.files import write_error

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


def prefix_csv(ablations: Sequence[Mapping[str, Any]], to_csv: Any) -> str:
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


def checkpoints_md(used: Sequence[Any], runs: Path) -> str:
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


def render_md(blocks: Sequence[tuple[str, Any]]) -> str:
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


def render_html(blocks: Sequence[tuple[str, Any]]) -> str:
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


def _gallery_html(table: Any, k: int, sample_set: Callable[[Any], Any]) -> str:
    """The first ``k`` samples: context and ground truth, then each model's default run (else its first row).
    ``sample_set(record)``: a run's sample set (from the report's sample cache)."""
    from mg5bench.leaderboard import html
    from mg5bench.runs.store import RunStore
    from mg5bench.scoring.predictions import output_roots, stored_images

    picked: dict[str, Any] = {}
    for r in table.rows:
        if r.model in ("gt",):
            continue
        if r.model not in picked or (r.default and not picked[r.model].default):
            picked[r.model] = r
    rows = list(picked.values())
    if not rows:
        return ""
    sset = sample_set(rows[0])
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


REPORT_VERSION = 1


def document(facts: Mapping[str, Any], left_out: list[str], sample_set: Callable[[Any], Any]) -> list[tuple[str, Any]]:
    """The report as blocks (``("md", text)``, ``("table", (table, frame))``, ``("plot", (name, png))``,
    ``("gallery", (table, k, sample_set))``) in reading order. ``facts``: what the build collected and computed
    (tables, frames, ablations, limits, ...). An ablation.json that parses but does not render (hand-edited) is
    left out and added to ``left_out`` with the reason."""
    from mg5bench.core.escaping import md_code, md_fence, md_text
    from mg5bench.leaderboard import meta, tables
    from mg5bench.leaderboard.compute import checkpoint_notes, environment

    runs, out, all_tables, frames = facts["runs"], facts["out"], facts["tables"], facts["frames"]
    abl_md: list[tuple[Mapping[str, Any], str]] = []
    for rep in facts["ablations"]:
        try:
            abl_md.append((rep, ablation_markdown(rep)))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            left_out.append(f"{Path(rep['_folder']).relative_to(runs)}: ablation.json has unexpected content "
                            f"({type(e).__name__}: {str(e)[:60]}) (fix: rerun its 'mg5bench ablate' command with "
                            "--force)")  # fmt: skip
    facts["ablations"][:] = [rep for rep, _ in abl_md]
    blocks: list[tuple[str, Any]] = []
    md = blocks.append
    ev = facts["evaluator"]
    n_desc = ", ".join(f"{t} first {n}" for t, n in facts["limits"].items())
    md(("md", "# mg5bench leaderboard\n\n"
        f"Built by {md_code(facts['command'])} from the runs under {md_code(runs)} ({md_text(n_desc)} samples; nothing "
        "is generated by the report). Regenerate everything, generating only what is missing, with "
        f"`scripts/make_reports.sh` ({md_code(f'mg5bench report --rebuild --runs {runs} --out {out}')})."))  # fmt: skip
    md(("md", "## How to read it\n\n"
        f"- Evaluator: {md_code(ev['name'])}, weights sha256 {md_code(ev['weights_sha256'])}; FID and KID on its "
        "image embedding "
        "(not Inception-v3), so they rank models but are not the FID papers report.\n"
        f"- Each cell: value [95% CI] from a cluster bootstrap ({facts['resamples']} resamples over stories on VIST, "
        "conversations on MMDialog, samples on CC3M); n = samples scored. **Bold** = best in its column (the bounds "
        "gt and blank excluded); ↑ higher is better, ↓ lower is better; † = official-compat variant.\n"
        "- A missing image scores 0 on CLIP-I and CLIP-T: read the image rate beside them (a model that draws "
        "nothing can outrank one that draws a wrong image; see docs/metrics.md).\n"
        "- FID at these N is biased upward and its bootstrap interval can lie above the value; compare FIDs only at "
        "equal N and read KID beside it. KID's std is not applicable here (every subset is the whole set).\n"
        "- The shipped tiny checkpoints are weak (see their model cards): these tables show what the suite measures, "
        "not what MiniGPT-5 can do at scale.\n"
        + "".join(f"- {md_text(line)}\n" for line in [*environment(facts["used"]),
                                                       *checkpoint_notes(all_tables)])))  # fmt: skip
    md(("md", "## Checkpoints used\n\n" + checkpoints_md(facts["used"], runs)))
    figure_names: set[str] = set()
    for t, df in zip(all_tables, frames, strict=True):
        md(("md", f"## {md_text(t.title)}"))
        md(("table", (t, df)))
        md(("plot", (figure_name(t, figure_names), overview_png(t, df))))
        if facts["gallery"] and not t.protocol:
            md(("gallery", (t, facts["gallery"], sample_set)))
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
            name = safe_name(f"ablation-{rep['axis']['name']}-{rep['task']}", figure_names)
            md(("plot", (name, Path(rep["_plot"]).read_bytes())))
    for e in facts["plan_errors"]:
        md(("md", f"### not run: {md_text(e.split(':', 1)[0])}\n\n{md_text(e.split(': ', 1)[1] if ': ' in e else e)}"))
    md(("md", "## Metric meta-evaluation (VIST)\n\n" + meta.markdown(facts["meta"])))
    md(("md", "## Paper vs ours\n\n" + facts["paper_md"]))
    human = facts["human"]
    md(("md", "## Human evaluation\n\n" + (md_fence(human) if human else
        "No ratings database was given (`mg5bench report --ratings ratings.sqlite`; ratings come from "
        "`mg5bench annotate`, see docs/human-eval.md).")))  # fmt: skip
    return blocks


def report_files(
    blocks: Sequence[tuple[str, Any]], facts: Mapping[str, Any], left_out: Sequence[str]
) -> dict[str, bytes]:
    """Every file of the report (relative path -> bytes): the figures, leaderboard.md, .csv and .html,
    ablations.csv and report.json (which lists them)."""
    from mg5bench.leaderboard import tables
    from mg5bench.runs.ablations import to_csv

    all_tables, ablations = facts["tables"], facts["ablations"]
    contents: dict[str, bytes] = {}
    for kind, payload in blocks:
        if kind == "plot":
            contents[f"figures/{payload[0]}.png"] = payload[1]
    contents["leaderboard.md"] = render_md(blocks).encode()
    contents["leaderboard.csv"] = tables.csv_text(facts["frames"]).encode()
    contents["ablations.csv"] = prefix_csv(ablations, to_csv).encode()
    contents["leaderboard.html"] = render_html(blocks).encode()
    contents["report.json"] = (json.dumps(nan_to_none({
        "version": REPORT_VERSION, "runs": str(facts["runs"]), "limits": facts["limits"],
        "evaluator": facts["evaluator"],
        "tables": [{"title": t.title, "rows": [r.rel for r in t.rows]} for t in all_tables],
        "left_out": list(left_out), "ablations": [r["_folder"] for r in ablations],
        "plan_errors": facts["plan_errors"], "meta_evaluation": facts["meta"], "paper": facts["paper_rows"],
        "files": sorted([*contents, "report.json"]),
    }), indent=2, ensure_ascii=False) + "\n").encode()  # fmt: skip
    return contents
