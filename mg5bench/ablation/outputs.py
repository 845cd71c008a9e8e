"""What ``mg5bench ablate`` shows and writes: the printed table (per headline result, every variant's value with its
CI and its paired difference from the base) and the files of an ablation folder (ablation.csv, ablation.png, then
ablation.json, whose presence marks a finished ablation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mg5bench.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from mg5bench.runs.ablations import table_rows, to_csv


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def format_report(report: dict[str, Any]) -> str:
    """The printed table: per headline result, every variant's value with its CI and its paired difference from
    the base with CI, the seed spread, p and the family's q-value."""
    from mg5bench.scoring.statistics import format_p

    ax = report["axis"]
    base = next(r for r in report["rows"] if r.get("base"))
    method = report["method"]
    lines = [
        f"{ax['name']} ablation ({ax['title']}) on {report['task']} {report['split']}, first {report['limit']} "
        f"samples; base: {base['variant']} ({base['label']})",
        *report.get("warnings", []),
        f"diff = variant - base on the same samples; 95% CI: {method['ci']}",
        f"p: {method['p']}; q: {method['family']}",
    ]
    rows = table_rows(report)
    for key in report["headline"]:
        sel = [r for r in rows if r["metric"] == key]
        if not sel:
            continue
        arrow = "^" if sel[0]["higher_is_better"] else "v"
        lines.append(f"{key} {arrow}")
        table = [("  variant", "n", "seeds", "value [95% CI]", "diff vs base [95% CI]", "seed sd", "p", "q")]
        for r in sel:
            val = _fmt(r["value"]) + ("" if r["value_ci_low"] is None else
                                      f" [{_fmt(r['value_ci_low'])}, {_fmt(r['value_ci_high'])}]")  # fmt: skip
            sd = "" if r["seed_sd"] is None else f"{r['seed_sd']:.4f}"
            if r["test"] != "base" and r["seed_sd_of"] in ("base", "variant"):
                sd += f" ({r['seed_sd_of']}'s)"  # one side has a single seed: the spread is the other side's
            if r["test"] == "base":
                diff, p, q = "(base)", "", ""
            else:
                ci = (
                    ""
                    if r["diff_ci_low"] is None
                    else f" [{_fmt(r['diff_ci_low'], True)}, {_fmt(r['diff_ci_high'], True)}]"
                )
                diff, p, q = _fmt(r["diff"], True) + ci, format_p(r["p"]), format_p(r["q"])
                if r["p_mc_error"] is not None and r["p"] is not None:
                    p += f" +-{r['p_mc_error']:.1g}"
            table.append((f"  {r['variant']}", str(r["n"]), str(r["seeds"]), val, diff, sd, p, q))
        widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
        lines += ["  ".join(t[i].ljust(widths[i]) for i in range(len(t))).rstrip() for t in table]
    paired = [r for r in report["rows"] if not r.get("base") and r["n_paired"] != base["n_run"]]
    for r in paired:
        lines.append(f"note: {r['variant']} is compared on {r['paired_on']}")
    seeded = [r for r in report["rows"] if len(r.get("seeds", [])) > 1]
    if seeded:
        lines.append("seeds: " + "; ".join(f"{r['variant']}: " + ", ".join(s["checkpoint"] for s in r["seeds"])
                                           for r in seeded))  # fmt: skip
    lines.append(f"evaluator: {report['evaluator']['name']} (sha256 {str(report['evaluator']['weights_sha256'])[:12]})")
    lines += report.get("notes", [])
    return "\n".join(lines)


def write_outputs(folder: Path, report: dict[str, Any]) -> None:
    """ablation.csv, ablation.png, then ablation.json (its presence marks a finished ablation), atomically."""
    from mg5bench.ablation.plot import plot_png

    atomic_write_text(folder / "ablation.csv", to_csv(report))
    atomic_write_bytes(folder / "ablation.png", plot_png(report, table_rows(report)))
    atomic_write_json(folder / "ablation.json", report)
