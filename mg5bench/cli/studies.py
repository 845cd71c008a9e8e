"""``mg5bench ablate`` (an axis of variants of one run, compared with paired statistics) and ``mg5bench report``
(the leaderboard over stored results). The parsers use the standard library only; the handlers call the API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mg5bench.core.devices import DEVICE_HELP
from mg5bench.core.limits import GALLERY, PERMUTATIONS, POSITIVE, RESAMPLES, SHEET_SAMPLES

ABLATE_EXAMPLES = """\
examples:
  mg5bench ablate cfg --task vist                     # guidance sweep + the model trained without CFG
  mg5bench ablate stages                              # two-stage vs single-stage training
  mg5bench ablate context --limit 50                  # text / image / image+text context, GILL's last-step protocol
  mg5bench ablate vokens                              # one-line error: the 4/16-voken checkpoints, how to train them
  mg5bench ablate --axis-file my_axis.yaml            # your own axis (copy mg5bench/ablation/axes/cfg.yaml)
  mg5bench ablate cfg --no-generate                   # only what is stored; a missing run is an error
  mg5bench ablate caption-loss --seeds 1              # the shipped checkpoints only (no seed spread)
  mg5bench ablate --list
"""

REPORT_EXAMPLES = """\
examples:
  mg5bench report                                     # runs/ -> runs/report/leaderboard.{md,csv,html}
  mg5bench report --runs runs/ --out my-report/ --ratings ratings.sqlite
  mg5bench report --shipped-only                      # tables of the shipped checkpoints only
  mg5bench report --rebuild                           # generate what the plan lacks, then build (make_reports.sh)
  mg5bench report --limit 50 --no-contact-sheets
"""


def add_ablate(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = sub.add_parser(
        "ablate",
        help="expand a base run along an axis (cfg, stages, caption-loss, vokens, context, baselines) and compare",
        description="Expand one base run along an axis (a YAML table of variants: mg5bench/ablation/axes/<axis>.yaml "
        "or --axis-file), generate only the runs the store lacks (one at a time; a stored run is never regenerated), "
        "and print for every variant against the base the paired difference on the same samples with its 95% interval, "
        "p-value and Benjamini-Hochberg q-value (the ablation's headline cells are one family). A trained variant runs "
        "every training seed of its checkpoint (the folder and its NAME-seed<k> siblings; --seeds limits them): the "
        "difference is between seed means, its interval adds the spread between seeds to the spread between stories, "
        "and the seed spread is printed beside it. With one checkpoint per side the p-value is the paired cluster "
        "permutation test (sign flips of per-story mean differences; for FID and KID the two runs' outputs swapped "
        "within stories), with seeds the two-level t-test. Below 20 stories (conversations) the table warns and the "
        "report draws no verdict. Writes ablation.json, ablation.csv and ablation.png under "
        "OUT/ablations/<axis>-<task>-<hash>/; a second call with the same arguments prints them without computing "
        "anything. A variant whose checkpoint is missing stops the axis before anything runs, naming the checkpoint "
        "and the command that makes it.",
        epilog=ABLATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("axis", nargs="?", help="a built-in axis (see --list) or a YAML file")
    a.add_argument("--axis-file", type=Path, help="an axis YAML file (instead of a built-in AXIS)")
    a.add_argument("--list", action="store_true", help="list the built-in axes and exit")
    a.add_argument("--task", help="task (default: the axis's first task, e.g. vist)")
    a.add_argument("--split", help="split (default: the task's default_split)")
    a.add_argument("--data", help="real data folder or synth:... (default: the embedded world)")
    a.add_argument("--limit", type=POSITIVE, default=100, help="samples of the base run compared (default 100)")
    a.add_argument("--seed", type=int, default=0, help="run seed of every variant unless the axis sets one (default 0)")
    a.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default: ./runs)")
    a.add_argument("--metrics", help="comma-separated metric names (default: the task's list)")
    a.add_argument("--evaluator", help="the evaluator (default: embedded on the synthetic world; see 'mg5bench score "
                   "--help')")  # fmt: skip
    a.add_argument("--resamples", type=RESAMPLES, default=1000, help="bootstrap resamples (default 1000; 0 = no "
                   "intervals; at most 100000)")  # fmt: skip
    a.add_argument("--permutations", type=PERMUTATIONS, default=9999, help="random arrangements of the permutation "
                   "tests when there are too many clusters to enumerate (default 9999: p can reach 1e-4, the "
                   "Monte-Carlo error of p is printed; 100 to 100000)")  # fmt: skip
    a.add_argument("--seeds", type=POSITIVE, help="at most this many checkpoints (training seeds) per trained variant "
                   "(default: all its checkpoint has; 1 = the shipped checkpoint only)")  # fmt: skip
    a.add_argument("--checkpoints", type=Path, help="a trained set other than the shipped reference_model/checkpoints "
                   "(e.g. scripts/train_reference.sh --level 3 --dest DIR): bare checkpoint names and each model's "
                   "default resolve there (default: the shipped set)")  # fmt: skip
    a.add_argument("--batch-size", type=POSITIVE, help="generation batch size (default: each model's)")
    a.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto)")
    a.add_argument("--no-generate", action="store_true", help="never generate: a missing run is an error")
    a.add_argument("--force", action="store_true", help="recompute the comparison (never the generations)")
    a.add_argument("--json", action="store_true", help="print ablation.json instead of the table")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.add_argument("--verbose", action="store_true", help="also show the libraries' warnings")


def add_report(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser(
        "report",
        help="build the leaderboard (Markdown, CSV, self-contained HTML) from stored runs",
        description="Build the leaderboard from stored results, never generating: per task, every run under --runs "
        "scored on the same first N samples (a stored scoring is reused; a missing one is computed from the stored "
        "outputs), with value, 95% CI and N per cell and the best per column marked, each row naming its "
        "checkpoint; the ablations under RUNS/ablations/; the metric meta-evaluation (Spearman of CLIP-I, CLIP-T, "
        "FID, KID with the oracle's scene accuracy across VIST variants, over stories and over variants); the paper's "
        "claims beside ours (one Holm-corrected family); human ratings with --ratings; the machine facts each run "
        "recorded. Writes leaderboard.md, leaderboard.csv, ablations.csv, leaderboard.html (plots and a sample "
        "gallery embedded, sortable columns), figures/ and report.json into --out (default RUNS/report), and "
        "contact_sheet.png into every run folder. The same runs give the same bytes. --rebuild first generates what "
        "the plan (mg5bench/leaderboard/plan.yaml: every model on every task, then the ablations) lacks.",
        epilog=REPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default: ./runs)")
    r.add_argument("--out", type=Path, help="output folder (default: RUNS/report, beside your runs; the repository's "
                   "committed reports/ is rebuilt by scripts/make_reports.sh)")  # fmt: skip
    r.add_argument("--shipped-only", action="store_true", help="only each model's shipped default checkpoint (leave "
                   "training seeds and ablation checkpoints out of the tables; the ablations keep them)")  # fmt: skip
    r.add_argument("--ratings", type=Path, help="a rating database from 'mg5bench annotate' (default: none)")
    r.add_argument("--limit", type=POSITIVE, help="samples per table (default: each task's most common completed "
                   "--limit; with --rebuild the plan's)")  # fmt: skip
    r.add_argument("--rebuild", action="store_true", help="first generate what the plan lacks (stored runs reused)")
    r.add_argument("--plan", type=Path, help="a plan YAML for --rebuild (default: mg5bench/leaderboard/plan.yaml)")
    r.add_argument("--evaluator", help="the evaluator (default: embedded on the synthetic world)")
    r.add_argument("--resamples", type=RESAMPLES, default=1000, help="bootstrap resamples (default 1000; 0 = no "
                   "intervals; at most 100000)")  # fmt: skip
    r.add_argument("--gallery", type=GALLERY, default=5, help="samples in each task's HTML gallery (default 5; 0 = "
                   "none; at most 100)")  # fmt: skip
    r.add_argument("--contact-samples", type=SHEET_SAMPLES, default=20, help="samples per contact sheet (default 20; "
                   "at most 500)")  # fmt: skip
    r.add_argument("--no-contact-sheets", action="store_true", help="do not write contact_sheet.png into run folders")
    r.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--verbose", action="store_true", help="also show the libraries' warnings")


def cmd_ablate(args: argparse.Namespace) -> int:
    from mg5bench import api
    from mg5bench.core.errors import ConfigError

    if args.list:
        for name, title in api.ablation_axes():
            print(f"{name:<14} {title}")
        return 0
    if (args.axis is None) == (args.axis_file is None):
        raise ConfigError("give one axis: a built-in AXIS (mg5bench ablate --list) or --axis-file FILE.yaml")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    res = api.ablate(
        args.axis_file or args.axis, task=args.task, split=args.split, data=args.data, limit=args.limit,
        seed=args.seed, out=args.out, metrics=metrics, evaluator=args.evaluator, resamples=args.resamples,
        permutations=args.permutations, batch_size=args.batch_size, device=args.device,
        generate=not args.no_generate, force=args.force, progress=not args.quiet, seeds=args.seeds,
        checkpoints=args.checkpoints,
    )  # fmt: skip
    print(json.dumps(res.report, indent=2) if args.json else api.format_ablation(res.report))
    made = ", ".join(f"{k} {v}" for k, v in res.generated.items() if v) or "nothing"
    how = "stored earlier, printed without computing" if res.reused else "computed"
    print(f"ablation: {res.folder} ({how}; generated: {made}; {res.seconds:.1f} s)")
    print(f"plot: {res.folder / 'ablation.png'}  table: {res.folder / 'ablation.csv'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mg5bench import api

    res = api.report(
        args.runs, args.out, ratings=args.ratings, limit=args.limit, evaluator=args.evaluator,
        resamples=args.resamples, device=args.device, gallery=args.gallery, contact=args.contact_samples,
        contact_sheets=not args.no_contact_sheets, rebuild=args.rebuild, plan=args.plan, progress=not args.quiet,
        shipped_only=args.shipped_only,
    )  # fmt: skip
    print(f"report: {res.tables} table(s) over {res.runs_used} run(s)")
    for f in res.files:
        print(f"  wrote {f}")
    for x in res.left_out:
        print(f"left out: {x}")
    for e in res.plan_errors:
        print(f"not run: {e}")
    return 0
