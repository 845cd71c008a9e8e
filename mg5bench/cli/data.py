"""``mg5bench ls`` (every registered name) and ``mg5bench data`` (synthesise, validate, export, convert data and
check a split for contamination)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mg5bench.cli.common import EXAMPLES, MAX_LISTED, add_task_args, one_line
from mg5bench.core.limits import COUNT, POSITIVE, SEED, int_type


def add_ls(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p_ls = sub.add_parser("ls", help="list registered tasks, models, metrics, evaluators or trainers")
    p_ls.add_argument("what", choices=["tasks", "models", "metrics", "evaluators", "trainers"])


def add_data(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p_data = sub.add_parser(
        "data",
        help="synthesise, validate, export and convert data",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsub = p_data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")

    p_synth = dsub.add_parser(
        "synth",
        help="build the synthetic world (real CC3M/VIST/MMDialog formats + scene records)",
        description="Build the synthetic world. Without --out it is built once into the user cache "
        "(the embedded default that tasks use when --data is omitted).",
    )
    p_synth.add_argument("--out", type=Path, help="folder to write (must be new or empty)")
    p_synth.add_argument("--size", choices=["small", "default"], default="default")
    p_synth.add_argument("--level", type=int, choices=[1, 2, 3], default=None,
                         help="1: one object; 2: one or two; 3 (the default): two or three, texts name part of "
                         "them (docs/world.md)")  # fmt: skip
    p_synth.add_argument("--seed", type=SEED, default=0, help="world seed (default 0)")
    p_synth.add_argument("--cache-dir", type=Path, help="cache root (default: the user cache directory)")
    p_synth.add_argument("--quiet", action="store_true", help="no progress bar")

    p_val = dsub.add_parser(
        "validate",
        help="check a data folder and print counts and every problem",
        description="Read every split of a data folder (or --split) and report all bad records.",
    )
    p_val.add_argument("path", help="data folder (real format or a synthetic world), or synth:...")
    p_val.add_argument("--task", required=True, help="cc3m, vist or mmdialog")
    p_val.add_argument("--split", help="only this split")
    p_val.add_argument("--json", action="store_true", help="print the report as JSON")
    add_task_args(p_val)

    p_exp = dsub.add_parser(
        "export",
        help="write a task's samples as JSON lines",
        description="Write one JSON line per sample: {id, context: [segments], target: [segments], group, "
        "meta}; a segment is {'text': str} or {'image': absolute path}. A manifest with the settings, the "
        "data fingerprint and any skipped records is written beside it as <out>.manifest.json.",
    )
    p_exp.add_argument("--task", required=True)
    p_exp.add_argument("--data", help="real data folder or synth:level=2,size=small (default: the embedded world)")
    p_exp.add_argument("--split", help="split (default: the task's default_split)")
    p_exp.add_argument("--out", type=Path, required=True)
    p_exp.add_argument("--skip-bad", action="store_true", help="skip bad records (listed in the manifest)")
    add_task_args(p_exp)

    p_ov = dsub.add_parser(
        "overlap",
        help="contamination check: how much of a test split a training source already holds",
        description="Perceptual-hash near-duplicate images (imagehash phash, Hamming distance over 64 bits) and "
        "pixel-identical images, and texts duplicated whole or sharing a word n-gram, between a training source "
        "and a task split. Counts and shares are over the target's items.",
    )
    p_ov.add_argument("--source", required=True,
                      help="a folder (every image below it, the texts of any CC3M/VIST/MMDialog data files in it) or "
                      "a task split TASK[:SPLIT], e.g. cc3m:train, read from --source-data")  # fmt: skip
    p_ov.add_argument("--target", required=True, help="the task split to check, TASK[:SPLIT], e.g. vist:test")
    p_ov.add_argument("--data", help="the target's data: real data folder or synth:... (default: the embedded world)")
    p_ov.add_argument("--source-data", help="the source task split's data (default: --data)")
    p_ov.add_argument("--max-distance", type=int_type(0, 64), default=None,
                      help="near-duplicate threshold in bits of 64 (default 8)")  # fmt: skip
    p_ov.add_argument("--ngram", type=POSITIVE, default=None, help="word n-gram length (default 8)")
    p_ov.add_argument("--examples", type=COUNT, default=5, help="examples to print and record (default 5)")
    p_ov.add_argument("--out", type=Path, help="write the report as JSON here")
    p_ov.add_argument("--cache-dir", type=Path, help="cache root (default: the user cache directory)")
    p_ov.add_argument("--quiet", action="store_true", help="no progress bar")

    p_conv = dsub.add_parser("convert", help="convert official releases into the MiniGPT-5 layout")
    csub = p_conv.add_subparsers(dest="convert_kind", metavar="KIND")
    p_sis = csub.add_parser(
        "vist-sis",
        help="VIST story-in-sequence JSON -> <split>_cleaned.json + <split>_image_mapping.json",
        description="Stories with a missing image are left out and listed (on screen and in "
        "DST/<split>_conversion_report.json); nothing is dropped silently.",
    )
    p_sis.add_argument("src_json", type=Path)
    p_sis.add_argument("images_dir", type=Path)
    p_sis.add_argument("dst", type=Path)
    p_sis.add_argument("--split", help="split name (default: from the file name, e.g. val.story-in-sequence)")
    p_sis.add_argument("--skip-bad", action="store_true", help="skip malformed annotations (listed in the report)")


def cmd_ls(args: argparse.Namespace) -> int:
    from mg5bench import api

    entries = api.names(args.what)
    if not entries:
        print(f"no {args.what} registered yet")
        return 0
    width = max(len(n) for n, _ in entries)
    for name, description in entries:
        print(f"{name:<{width}}  {description}")
        if args.what == "models":
            print(_default_checkpoints_line(api.default_checkpoints(name), width))
    return 0


def _default_checkpoints_line(defaults: dict[str, tuple[str, bool]], width: int) -> str:
    """'    default checkpoints (reference_model/checkpoints/): vist=stage2-vist, ...'; none needed says so."""
    if not defaults:
        return f"{'':<{width}}    default checkpoints: none needed"
    parts = [f"{task}={rel}" + ("" if there else " (MISSING)") for task, (rel, there) in defaults.items()]
    return f"{'':<{width}}    default checkpoints (reference_model/checkpoints/): " + ", ".join(parts)


def cmd_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mg5bench import api

    if args.data_command == "synth":
        root, manifest = api.synth(
            args.out, size=args.size, level=args.level, seed=args.seed, cache_dir=args.cache_dir,
            progress=not args.quiet,
        )  # fmt: skip
        print(f"world: {root}")
        print(f"images: {manifest['n_images']}  fingerprint: {manifest['fingerprint'][:16]}")
        for fmt, per_split in manifest["counts"].items():
            print(f"  {fmt}: " + ", ".join(f"{s}={_count(v)}" for s, v in per_split.items()))
        return 0
    if args.data_command == "validate":
        report = api.validate(
            args.path, args.task, split=args.split, task_args=api.parse_kv(args.task_args, "--task-args")
        )
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(f"{report.task} data at {report.root}")
            for split, counts in report.splits.items():
                print(f"  {split}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
            for errors in report.problems.values():
                for e in errors:
                    print(f"problem: {e}", file=sys.stderr)
            total = sum(len(v) for v in report.problems.values())
            print("ok: no problems found" if report.ok else f"{total} problem(s) found")
        return 0 if report.ok else 2
    if args.data_command == "export":
        api.check_output_file(args.out)
        sset = api.export_samples(
            args.task, args.out, data=args.data, split=args.split,
            task_args=api.parse_kv(args.task_args, "--task-args"), skip_bad=args.skip_bad,
        )  # fmt: skip
        print(f"wrote {len(sset.samples)} samples from {sset.n_records} records of {sset.split} to {args.out}")
        if len(sset.problems):
            print(
                f"skipped {len(sset.problems)} bad record(s), listed in {args.out}.manifest.json",
                file=sys.stderr,
            )
            for e in sset.problems:
                print(f"skipped: {e}", file=sys.stderr)
        return 0
    if args.data_command == "overlap":
        report = api.overlap(
            args.source, args.target, data=args.data, source_data=args.source_data, max_distance=args.max_distance,
            ngram=args.ngram, examples=args.examples, out=args.out, cache_dir=args.cache_dir, progress=not args.quiet,
        )  # fmt: skip
        print(api.format_overlap(report))
        if args.out is not None:
            print(f"wrote {args.out}")
        return 0
    if args.data_command == "convert" and args.convert_kind == "vist-sis":
        api.check_output_folder(args.dst, "DST")
        report = api.convert_vist_sis(
            args.src_json, args.images_dir, args.dst, split=args.split, skip_bad=args.skip_bad
        )
        info = report.to_dict()
        print(
            f"{info['split']}: {info['stories_written']} of {info['stories_in']} stories written, "
            f"{info['images_copied']} images copied to {args.dst}"
        )
        listed = args.dst / f"{info['split']}_conversion_report.json"
        lines = [f"left out: story {m.get('story_id')}: missing image(s) {m.get('missing')}" for m in info["missing"]]
        lines += [f"skipped: {s['path']}: {s['record']}: {s['problem']}" for s in info["skipped"]]
        for line in lines[:MAX_LISTED]:
            print(one_line(line), file=sys.stderr)
        if len(lines) > MAX_LISTED:
            print(f"... and {len(lines) - MAX_LISTED} more, every one listed in {listed}", file=sys.stderr)
        return 0
    parser.parse_args(["data", "--help"])
    return 2


def _count(v: object) -> str:
    if isinstance(v, dict):
        return str(v.get("stories", v.get("conversations", v)))
    return str(v)
