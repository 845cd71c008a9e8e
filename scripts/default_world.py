"""Apply the rule that decides the embedded default world (docs/world.md, "Which level is the default"), fixed
before the level-3 set's results, to the stored VIST baselines comparison of a runs folder.

    python scripts/default_world.py [--runs runs] [--limit 500] [--json]

It reads the newest stored `mg5bench ablate baselines --task vist` result at that limit (the one the report
shows) and prints each condition with its numbers: (1) ground truth at least 0.3 above the blank image on
persistence; (2) MiniGPT-5 against each text pipeline (divter, two-stage) on persistence and per-object accuracy,
each cell resolved (Holm-adjusted p < 0.05 within these four cells, either direction) or bounded (its 95% interval
inside +-0.03). Exit status 0 when the rule picks level 3, 1 when level 1 stays the default, 2 when the
comparison is missing or lacks a cell (the output says which and how to make it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GAP = 0.3  # ground truth - blank on persistence, at least
BOUND = 0.03  # a tie worth quoting: the 95% interval inside +-BOUND
PIPELINES = ("divter", "two-stage")
RESULTS = ("persistence", "scene_accuracy.objects")


def decide(rep: dict[str, Any]) -> dict[str, Any]:
    """The rule's verdict on one baselines ablation report (ablation.json's content): each condition's numbers,
    and ``level``: 3 when both conditions hold, else 1. Raises KeyError naming a missing row or result."""
    from mg5bench.scoring.statistics import holm

    rows = {r["variant"]: r for r in rep["rows"]}

    def entry(variant: str, key: str) -> dict[str, Any]:
        if variant not in rows or key not in rows[variant].get("compare", {}):
            raise KeyError(f"{variant} / {key}")
        return rows[variant]["compare"][key]

    gap = entry("gt", "persistence")["diff"] - entry("blank", "persistence")["diff"]
    cells = [(v, k, entry(v, k)) for v in PIPELINES for k in RESULTS]
    adjusted = holm([e.get("p") for _, _, e in cells])
    out_cells = []
    for (v, k, e), p_holm in zip(cells, adjusted, strict=True):
        lo, hi = e["diff_ci"]
        resolved = p_holm is not None and p_holm < 0.05
        bounded = lo is not None and lo > -BOUND and hi < BOUND
        # the report's difference is variant - base; the rule reads MiniGPT-5 - pipeline
        out_cells.append({"pipeline": v, "result": k, "minigpt5_minus_pipeline": -e["diff"],
                          "ci": [None if hi is None else -hi, None if lo is None else -lo], "p": e.get("p"),
                          "p_holm": p_holm, "resolved": resolved, "bounded": bounded,
                          "decides": resolved or bounded, "seeds": e.get("seeds")})  # fmt: skip
    metric_works = gap >= GAP
    decides = all(c["decides"] for c in out_cells)
    return {"gt_minus_blank_persistence": gap, "metric_works": metric_works, "cells": out_cells,
            "comparison_decides": decides, "level": 3 if metric_works and decides else 1}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default runs)")
    ap.add_argument("--limit", type=int, default=500, help="the comparison's --limit (default 500)")
    ap.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = ap.parse_args(argv)
    if args.limit < 1:
        ap.error(f"--limit {args.limit}: a comparison's sample count is at least 1")
    from mg5bench.leaderboard.compute import find_ablations
    from mg5bench.scoring.statistics import format_p

    fix = (f"run: mg5bench ablate baselines --task vist --split val --limit {args.limit} --data synth:level=3 "
           f"--out {args.runs}")  # fmt: skip
    # the comparison the report shows: the newest per (axis, task) at that limit, whatever its split
    reps = [r for r in find_ablations(args.runs, {"vist": args.limit}) if r["axis"]["name"] == "baselines"]
    if not reps or reps[0].get("split") != "val":
        found = f" (the newest one is on {reps[0].get('split')})" if reps else ""
        print(f"{args.runs}: no stored VIST baselines comparison on val at --limit {args.limit}{found}; {fix}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        verdict = decide(reps[0])
    except KeyError as e:
        print(f"{reps[0]['_folder']}: the comparison lacks {e.args[0]}; {fix}", file=sys.stderr)
        return 2
    verdict["ablation"] = str(Path(reps[0]["_folder"]).relative_to(args.runs))
    if args.json:
        print(json.dumps(verdict, indent=1))
    else:
        print(f"comparison: {args.runs / verdict['ablation']}")
        print(f"1. ground truth - blank on persistence: {verdict['gt_minus_blank_persistence']:+.3f} "
              f"(needs >= {GAP}): {'holds' if verdict['metric_works'] else 'fails'}")  # fmt: skip
        print("2. MiniGPT-5 - text pipeline (Holm within these four cells):")
        for c in verdict["cells"]:
            lo, hi = c["ci"]
            ci = "" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]"
            how = "resolved" if c["resolved"] else "bounded" if c["bounded"] else "undecided"
            print(f"   vs {c['pipeline']:9s} {c['result']:22s} {c['minigpt5_minus_pipeline']:+.3f}{ci} "
                  f"p {format_p(c['p'])} Holm {format_p(c['p_holm'])}: {how}")  # fmt: skip
        print(f"   {'holds' if verdict['comparison_decides'] else 'fails'}")
        print(f"default world by the rule: level {verdict['level']}")
    return 0 if verdict["level"] == 3 else 1


if __name__ == "__main__":
    sys.exit(main())
