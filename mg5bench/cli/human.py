"""``mg5bench annotate`` (start or serve a pairwise human study of two stored runs, invite raters) and
``mg5bench human`` (report, export). The parsers use the standard library only; the handlers import
``mg5bench.human`` lazily."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mg5bench.cli.common import default_split
from mg5bench.core.limits import COUNT, PORT, POSITIVE, RESAMPLES, SEED

ANNOTATE_EXAMPLES = """\
examples:
  mg5bench annotate --invite alice                      # prints alice's access token (stored hashed)
  mg5bench annotate --invite bob --organiser            # bob also sees progress and agreement
  mg5bench annotate --task vist --models minigpt5,sd2-ft             # serves http://127.0.0.1:8501
  mg5bench annotate --task vist --models minigpt5,sd2-ft --split val --raters 3 --overlap 2 --items 100
  mg5bench annotate --task vist --models minigpt5,sd2-ft --list-runs   # every run with its checkpoint, settings
  mg5bench annotate --task vist --models minigpt5,minigpt5 --run-b <folder of the no-CFG ablation>
  mg5bench annotate --run-a runs/vist/minigpt5/<folder> --run-b runs/vist/two-stage/<folder> --db study.sqlite
  mg5bench annotate --db ratings.sqlite                 # serve the latest study again (raters resume)
  mg5bench human report --db ratings.sqlite
"""

HUMAN_EXAMPLES = """\
examples:
  mg5bench human report --db ratings.sqlite
  mg5bench human report --db ratings.sqlite --study 2 --resamples 2000 --json
  mg5bench human export --db ratings.sqlite --out votes.csv
"""


def add_annotate(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "annotate",
        help="pairwise human rating of two stored runs: invite raters, start the rating app",
        description="Blinded pairwise human evaluation (the MiniGPT-5 study: language coherence, image quality, "
        "multimodal coherence, and visual consistency with the context's images; each asked where it applies to "
        "what both outputs show; A / B / tie leaning A / tie "
        "leaning B / both bad). Pairs two complete runs over the "
        "same samples (--task/--models/--split pick each model's shipped checkpoint at default settings under --runs; "
        "--run-a/--run-b pick other run folders, or narrow --models), stores the study in "
        "--db (SQLite) and serves the Streamlit rating app on --host:--port (localhost unless --host is given). "
        "Each item is rated by --overlap of the --raters raters; attention checks (a repeated item with sides "
        "swapped, a gold item: ground truth vs a blank image) are mixed in every --check-every items. Raters enter "
        "with a token from --invite. Rerunning the same command serves the same study; raters resume.",
        epilog=ANNOTATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", help="task of the two runs (cc3m, vist, mmdialog)")
    p.add_argument("--models", metavar="A,B", help="the two models, e.g. minigpt5,sd2-ft")
    p.add_argument("--split", help="split of the runs (default: the task's default_split)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where 'mg5bench run' stored them (default runs/)")
    p.add_argument("--run-a", type=Path, help="first run folder; with --task/--models it must be a run of the "
                   "first model (default then: its shipped checkpoint at default settings)")  # fmt: skip
    p.add_argument("--run-b", type=Path, help="second run folder (likewise for the second model)")
    p.add_argument("--list-runs", action="store_true", help="list the complete runs of --task (of --models, or of "
                   "every model) with their checkpoint and settings, mark the default, and stop")  # fmt: skip
    p.add_argument("--db", type=Path, default=Path("ratings.sqlite"), help="rating database (default ratings.sqlite)")
    p.add_argument("--study", type=POSITIVE, help="serve this study of --db (default: the one of the runs, else the "
                   "latest)")  # fmt: skip
    p.add_argument("--raters", type=POSITIVE, default=3, help="rater slots of a new study (default 3)")
    p.add_argument("--overlap", type=POSITIVE, default=2, help="raters per item, for agreement (default 2)")
    p.add_argument("--items", type=COUNT, default=0, help="rate a seeded random subset of N samples (default 0 = all)")
    p.add_argument(
        "--check-every",
        type=COUNT,
        default=20,
        help="one repeat and one gold check per N items, at least one each (default 20; 0 = none)",
    )
    p.add_argument("--seed", type=SEED, default=0, help="seed of the assignment, order and sides (default 0)")
    p.add_argument("--invite", metavar="NAME", help="create (or renew) NAME's access token and print it")
    p.add_argument("--organiser", action="store_true", help="with --invite: NAME may also see the organiser page")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=PORT, default=8501, help="port, 1 to 65535 (default 8501)")
    p.add_argument("--no-serve", action="store_true", help="create or check the study, print it, do not serve")


def add_human(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    h = sub.add_parser(
        "human",
        help="analyse pairwise human ratings (report, export)",
        description="Analyse a rating database from 'mg5bench annotate'.",
        epilog=HUMAN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hsub = h.add_subparsers(dest="human_command", metavar="HUMAN_COMMAND")
    r = hsub.add_parser(
        "report",
        help="win/tie/loss with Wilson CIs under four tie conventions, sign test, position bias, alpha, BT",
        description="Per study and aspect: X vs Y counts; X's preference rate with a 95% Wilson interval with ties "
        "dropped, split half, counted by lean and counted against; the exact sign test (ties dropped); the share of "
        "preferences that went to the left output; Krippendorff's alpha (nominal); the raters excluded by the "
        "attention checks (any failed gold item, or under half of the repeated items consistent). With more than "
        "two models rated in the database: Bradley-Terry strengths with bootstrap CIs over items.",
        epilog=HUMAN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--db", type=Path, default=Path("ratings.sqlite"), help="rating database (default ratings.sqlite)")
    r.add_argument("--study", type=POSITIVE, help="only this study (default: all)")
    r.add_argument("--resamples", type=RESAMPLES, default=1000, help="Bradley-Terry bootstrap resamples (default 1000; "
                   "at most 100000)")  # fmt: skip
    r.add_argument("--seed", type=SEED, default=0, help="bootstrap seed (default 0)")
    r.add_argument("--keep-all", action="store_true", help="keep raters who failed the attention checks")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    e = hsub.add_parser(
        "export",
        help="write every vote to a .jsonl or .csv file",
        epilog=HUMAN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--db", type=Path, default=Path("ratings.sqlite"), help="rating database (default ratings.sqlite)")
    e.add_argument("--out", type=Path, required=True, help="output file: .jsonl or .csv")


def cmd_annotate(args: argparse.Namespace) -> int:
    """``--invite``: a rater's token; ``--list-runs``: the runs to pick from; else the study of the two runs (created
    on first use) or of ``--db``, printed and served."""
    from mg5bench.core.errors import ConfigError
    from mg5bench.human.ratings import RatingStore

    if args.invite:
        return _invite(args)
    if args.organiser:
        raise ConfigError("--organiser goes with --invite NAME")
    by_models = args.task is not None or args.models is not None
    by_folders = args.run_a is not None or args.run_b is not None
    if args.list_runs:
        return _list_runs(args)
    if by_models and (args.task is None or args.models is None):
        raise ConfigError("--task and --models go together, e.g. --task vist --models minigpt5,sd2-ft")
    if by_folders and not by_models and (args.run_a is None or args.run_b is None):
        raise ConfigError("give both --run-a and --run-b, or --task/--models to pick the other one")
    if by_models or by_folders:
        store, study_id = _study_of_runs(args, by_models)
    else:
        if not args.db.exists():
            raise ConfigError("give the runs (--task/--models or --run-a/--run-b), or the --db of an existing study")
        store = RatingStore(args.db, create=False)
        study_id = args.study
    study = store.study(args.study if args.study is not None else study_id)
    _print_study(args, store, study)
    if args.no_serve:
        return 0
    return _serve(args, study)


def _invite(args: argparse.Namespace) -> int:
    from mg5bench.core.errors import ConfigError
    from mg5bench.human.ratings import RatingStore

    given = [f"--{n.replace('_', '-')}" for n in ("task", "models", "run_a", "run_b") if getattr(args, n)]
    if given:
        raise ConfigError(f"--invite only creates a token; drop {', '.join(given)}")
    store = RatingStore(args.db)
    token = store.invite(args.invite, "organiser" if args.organiser else "rater")
    print(f"rater: {args.invite}\ntoken: {token}")
    print(
        f"(shown once; {args.db} stores only its hash. The rater opens the app that 'mg5bench annotate "
        f"--db {args.db}' serves and enters both. Inviting {args.invite} again replaces the token.)"
    )
    return 0


def _study_of_runs(args: argparse.Namespace, by_models: bool) -> tuple[Any, int | None]:
    """The rating store and the study in it pairing the two runs (``--task/--models``, narrowed by
    ``--run-a/--run-b``, or the two folders), created when there is none yet. The store is opened once the runs are
    found."""
    from mg5bench.human.ratings import RatingStore
    from mg5bench.human.runs import build_plan, check_run, describe_run, find_run

    if by_models:
        models = _two_models(args.models)
        given = []
        for flag, model, folder in zip(("--run-a", "--run-b"), models, (args.run_a, args.run_b), strict=True):
            if folder is not None:  # narrowed by --task/--models: it must be a run of them
                if not folder.exists() and (args.runs / args.task / model / folder).is_dir():
                    folder = args.runs / args.task / model / folder  # a folder name from a candidate list
                run = describe_run(folder)
                check_run(run, flag, args.task, model, args.split)
                folder = run.folder
            given.append(folder)
        split = args.split or next((describe_run(f).split for f in given if f is not None), None)
        split = split or default_split(args.task, None)
        run_a, run_b = (
            f if f is not None else find_run(args.runs, args.task, m, split, flag)
            for f, m, flag in zip(given, models, ("--run-a", "--run-b"), strict=True)
        )
    else:
        run_a, run_b = args.run_a, args.run_b
    store = RatingStore(args.db)
    runs = {"x": str(Path(run_a).expanduser().resolve()), "y": str(Path(run_b).expanduser().resolve())}
    study_id = store.find_study(runs)
    if study_id is None:
        plan = build_plan(run_a, run_b, items=args.items or None, seed=args.seed)
        study_id = store.create_study(
            plan, raters=args.raters, overlap=args.overlap, seed=args.seed, check_every=args.check_every
        )
        print(f"created study {study_id} in {args.db}")
    else:
        print(f"study {study_id} in {args.db} already pairs these runs: serving it as stored (raters resume)")
    return store, study_id


def _print_study(args: argparse.Namespace, store: Any, study: dict[str, Any]) -> None:
    cfg = study["config"]
    progress = store.progress(int(study["id"]))
    totals = sorted({p["total"] for p in progress})
    print(
        f"study {study['id']}: {study['model_x']} vs {study['model_y']} on {study['task']} {study['split']}; "
        f"{cfg['raters']} rater slots, overlap {cfg['overlap']}, {'-'.join(map(str, totals))} items per rater "
        "(attention checks included); model names hidden from raters"
    )
    for side in ("x", "y"):
        label = cfg.get("labels", {}).get(side)
        print(f"  run {side.upper()}: {label + ' in ' if label else ''}{cfg['runs'][side]}")
    print(
        f"  raters: {', '.join(r['rater'] for r in store.raters()) or 'none yet'} "
        f"(invite: mg5bench annotate --invite NAME --db {args.db})"
    )


def _serve(args: argparse.Namespace, study: dict[str, Any]) -> int:
    """Hand this process over to the Streamlit server of the rating app (exit 2 when Streamlit is missing)."""
    import os

    from mg5bench.human import app_path

    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("mg5bench: error: the rating app needs Streamlit: pip install 'streamlit>=1.38'", file=sys.stderr)
        return 2
    env = dict(os.environ, MG5BENCH_HUMAN_DB=str(args.db.resolve()), MG5BENCH_HUMAN_STUDY=str(study["id"]))
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.headless",
        "true",
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: reachable from other machines, over plain HTTP", file=sys.stderr)
    print(f"serving http://{args.host}:{args.port} (Ctrl+C stops)", flush=True)
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)  # the server takes this process over: signals reach it directly
    return 0  # pragma: no cover - not reached


def _two_models(text: str) -> list[str]:
    from mg5bench.core.errors import ConfigError

    models = [m.strip() for m in text.split(",") if m.strip()]
    if len(models) != 2:
        raise ConfigError(f"--models takes two models separated by a comma, got {text!r}")
    return models


def _list_runs(args: argparse.Namespace) -> int:
    """``annotate --list-runs``: each model's complete runs on the task with their labels; * marks the one
    ``--models`` picks by default."""
    from mg5bench.core.errors import ConfigError
    from mg5bench.human.runs import candidate_runs

    if args.task is None:
        raise ConfigError("--list-runs needs --task (and optionally --models A,B)")
    split = args.split or default_split(args.task, None)
    base = args.runs / args.task
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        models = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if not models:
        print(f"no runs of {args.task} under {base}")
    for model in models:
        found = candidate_runs(args.runs, args.task, model, split)
        print(f"{model} on {args.task} {split}: {len(found)} complete run(s) under {base / model}")
        width = max((len(r.settings) for r in found), default=0)
        for r in found:
            print(f"  {'*' if r.default else ' '} {r.settings:<{width}}  {base / model / r.folder.name}")
    print("* = picked by --models (the shipped checkpoint at default settings); pick another with --run-a / --run-b")
    return 0


def cmd_human(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mg5bench.human import analysis
    from mg5bench.human.ratings import RatingStore

    if args.human_command is None:
        parser.parse_args(["human", "--help"])
        return 2
    store = RatingStore(args.db, create=False)
    if args.human_command == "export":
        n = store.export(args.out)
        print(f"wrote {n} votes to {args.out}")
        return 0
    rep = analysis.report(store, study=args.study, resamples=args.resamples, seed=args.seed, exclude=not args.keep_all)
    from mg5bench.data.io import nan_to_none

    print(json.dumps(nan_to_none(rep), indent=2) if args.json else analysis.format_report(rep))
    return 0
