"""The ``mg5bench`` command line: parse, call ``mg5bench.api``, print.

Keep module-level imports to the standard library: ``mg5bench --help`` must not import torch
(or numpy, yaml, PIL). Every user-facing error becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mg5bench import __version__
from mg5bench.core.devices import DEVICE_HELP
from mg5bench.core.errors import Mg5Error
from mg5bench.core.limits import (
    COUNT,
    GALLERY,
    INFERENCE_STEPS,
    NEW_TOKENS,
    NONNEGATIVE_REAL,
    PERMUTATIONS,
    PORT,
    POSITIVE,
    POSITIVE_REAL,
    RESAMPLES,
    SEED,
    SHEET_SAMPLES,
    UNIT,
    int_type,
)

EXAMPLES = """\
examples:
  mg5bench ls tasks
  mg5bench data synth --out world/ --size small --level 1
  mg5bench data validate official_samples/VIST --task vist
  mg5bench data export --task vist --split val --out vist_val.jsonl
  mg5bench data export --task vist --task-args round_range=last,context=text --out gill_vist.jsonl
  mg5bench data convert vist-sis val.story-in-sequence.json images/ vist_data/
  mg5bench data overlap --source cc3m:train --target vist:test --data synth:level=3 --out overlap.json
  mg5bench score --task vist --split val --predictions preds.jsonl --out scores/
  mg5bench run --task vist --model minigpt5
  torchrun --nproc-per-node 2 -m mg5bench run --task vist --model sd2 --limit 0
"""

DEFAULT_LIMIT = 200


class _Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr and exit status 2, like every other error (argparse's default
    prints the usage block first); subcommand parsers inherit this class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task-args",
        metavar="K=V,...",
        help="protocol overrides, e.g. round_range=last,context=text (vist) or first_media_only=false (default: "
        "the task's protocol)",
    )


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: shown)")
    p.add_argument("--verbose", action="store_true", help="also show the libraries' warnings and their nested "
                   "'Loading weights' / 'Writing model shards' bars (default: silenced)")  # fmt: skip


EVALUATOR_HELP = ("embedded | open_clip:<model>:<weights> | open_clip:local-dir:<folder> | hf-clip:<folder> (default: "
                  "embedded on the synthetic world; required on other data, where 'embedded' must be named and is "
                  "flagged); see 'mg5bench ls evaluators'")  # fmt: skip


QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
             "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}  # fmt: skip


@contextlib.contextmanager
def _quiet_libraries(enabled: bool) -> Iterator[None]:
    """Normal runs print mg5bench's own progress and results only: no library warnings, no nested 'Loading weights'
    or 'Loading pipeline components' bars (``--verbose`` keeps them). Set before any library is imported; bars that
    mg5bench draws pass ``disable=`` explicitly, which tqdm's TQDM_DISABLE default does not override. The
    environment and warning filters are restored afterwards, so ``main()`` called in-process leaves no trace."""
    import os
    import warnings

    if not enabled:
        yield
        return
    saved = {k: os.environ.get(k) for k in QUIET_ENV}
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"^(?!mg5bench|reference_model)")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mg5bench",
        description="Evaluate and benchmark interleaved image-and-text generation (MiniGPT-5 and baselines).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mg5bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_score = sub.add_parser(
        "score",
        help="score a stored run (RUN_FOLDER) or a predictions file (CLIP, FID/KID, MM-Relevance, text, scenes)",
        description="Score outputs without generating anything. (1) A run folder from 'mg5bench run': its stored "
        "generations are scored and the result stored under RUN_FOLDER/scores/<evaluator>-r<resamples>-n<N>-<hash>/ "
        "(metrics.json, per_sample.jsonl), keyed by the evaluator and its weights' sha256, --inception, --metrics, "
        "--resamples, --seed and the samples scored; an existing scoring is printed, not recomputed. The model is "
        "never loaded. (2) A predictions file: one JSON line per sample {'id', 'output': [segments]}, segments "
        "{'text': ...} or {'image': path} (relative to the predictions file); samples without a line are scored as "
        "empty outputs and counted; writes OUT/metrics.json and OUT/per_sample.jsonl. CIs are a 95% cluster "
        "bootstrap over stories / conversations.",
        epilog="examples:\n  mg5bench score runs/vist/minigpt5/val-seed0-gs3-steps25-bs8-0123456789ab --resamples 200\n"
        "  mg5bench score runs/vist/minigpt5/<folder> --evaluator open_clip:ViT-L-14:/models/vit_l_14.bin\n"
        "  mg5bench data export --task vist --split val --out gt.jsonl\n"
        "  mg5bench score --task vist --split val --predictions preds.jsonl --out scores/\n"
        "  mg5bench score --task mmdialog --predictions p.jsonl --out s/ --metrics mm_relevance,bleu1\n"
        "  mg5bench score --task cc3m --data CC3M/ --split val --predictions p.jsonl --out s/ \\\n"
        "      --evaluator open_clip:ViT-L-14:/models/vit_l_14.bin",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_score.add_argument("run", nargs="?", type=Path, metavar="RUN_FOLDER",
                         help="a folder from 'mg5bench run' (its run.json gives task, data and split)")  # fmt: skip
    p_score.add_argument("--limit", type=COUNT, help="RUN_FOLDER: score the first N samples (default: the largest "
                         "--limit the run was completed for; 0 = the whole split, if generated)")  # fmt: skip
    p_score.add_argument("--task", help="predictions file: the task (cc3m, vist, mmdialog)")
    p_score.add_argument("--data", help="predictions file: real data folder or synth:... (default: the embedded world)")
    p_score.add_argument("--split", help="predictions file: split (default: the task's default_split)")
    p_score.add_argument("--predictions", type=Path, help="predictions file (JSON lines)")
    p_score.add_argument("--out", type=Path, help="predictions file: folder for metrics.json and per_sample.jsonl")
    p_score.add_argument("--media-root", type=Path, action="append", metavar="FOLDER",
                         help="predictions file: a folder its image paths may point into, besides the file's "
                         "own folder and the data folder (repeatable; default: none; others are refused)")  # fmt: skip
    p_score.add_argument("--metrics", help="comma-separated metric names (default: the task's list)")
    p_score.add_argument("--evaluator", help=EVALUATOR_HELP)
    p_score.add_argument("--inception", help="torch-fidelity Inception-v3 weights file (enables inception_score)")
    p_score.add_argument("--resamples", type=RESAMPLES, default=1000, help="bootstrap resamples (default 1000; "
                         "0 = no intervals)")  # fmt: skip
    p_score.add_argument("--seed", type=SEED, default=0, help="bootstrap seed (default 0)")
    p_score.add_argument("--device", default="auto", help=f"where the evaluator runs: {DEVICE_HELP} (default auto)")
    p_score.add_argument("--force", action="store_true", help="RUN_FOLDER: recompute a scoring that is stored "
                         "(default: print it)")  # fmt: skip
    _add_output_flags(p_score)
    _add_task_args(p_score)

    p_run = sub.add_parser(
        "run",
        help="generate with a model on a task, store every sample, score (resumable)",
        description="Generate outputs for a task's samples with a model adapter and score them with the task "
        "card's metrics. Generations are stored under OUT/<task>/<model>/<settings>-<hash>/ (run.json, "
        "samples.jsonl, images/); the hash covers what changes an output: the checkpoint's sha256, the generation "
        "settings as the model resolves them (its defaults filled in, recorded in run.json), the batch size, the "
        "task protocol, the data fingerprint, the seed, the device type and CPU threads per process. Not --limit: "
        "a larger --limit later generates only the missing samples. Not the scoring: it is stored under "
        "<run>/scores/ and reused, and 'mg5bench score RUN_FOLDER' rescores without the model. An interrupted "
        f"run resumes. Default --limit: the first {DEFAULT_LIMIT} samples (--limit 0 = all).",
        epilog="examples:\n  mg5bench run --task vist --model minigpt5\n"
        "  mg5bench run --task vist --model minigpt5 --limit 300     # generates the 100 samples not stored yet\n"
        "  mg5bench run --task vist --model gt --limit 0\n"
        "  mg5bench run --task vist --model minigpt5 --guidance-scale 1 --seed 3\n"
        "  mg5bench run --task vist --model minigpt5 --seeds 3    # the three training seeds of stage2-vist\n"
        "  mg5bench run --task mmdialog --model sd2 --model-args path=/models/sd-2-1-base --split val\n"
        "  torchrun --nproc-per-node 2 -m mg5bench run --task vist --model minigpt5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_run.add_argument("--task", required=True, help="cc3m, vist or mmdialog (required; see 'mg5bench ls tasks')")
    p_run.add_argument("--model", required=True, help="required; see 'mg5bench ls models'")
    p_run.add_argument("--data", help="real data folder or synth:... (default: the embedded world)")
    p_run.add_argument("--split", help="split (default: the task's default_split, or the data folder's only "
                       "split)")  # fmt: skip
    p_run.add_argument(
        "--limit",
        type=COUNT,
        default=DEFAULT_LIMIT,
        help=f"first N samples (default {DEFAULT_LIMIT}; 0 = all)",
    )
    p_run.add_argument("--seed", type=int, default=0, help="run seed; each sample's generator is seeded from it and "
                       "its id (default 0)")  # fmt: skip
    gen = p_run.add_argument_group("generation settings (default: the model's own, resolved and recorded in run.json; "
                                   "a setting the model does not use is an error)")  # fmt: skip
    own = "default: the model's own"
    gen.add_argument("--guidance-scale", type=NONNEGATIVE_REAL, help=f"classifier-free guidance scale of the image "
                     f"decoder ({own}: minigpt5 its checkpoint's, the T2I baselines 3)")  # fmt: skip
    gen.add_argument("--num-inference-steps", type=INFERENCE_STEPS, help=f"diffusion sampling steps, not training "
                     f"steps, at most 1000 ({own}: minigpt5 its checkpoint's, the T2I baselines 25)")  # fmt: skip
    gen.add_argument("--max-new-tokens", type=NEW_TOKENS, help=f"length limit of generated text ({own}: minigpt5 its "
                     "checkpoint's, divter the length it was trained with, two-stage 24 on dialogs)")  # fmt: skip
    gen.add_argument(
        "--temperature", type=POSITIVE_REAL, help=f"text sampling temperature ({own}: minigpt5 its checkpoint's)"
    )
    gen.add_argument("--top-p", type=UNIT, help=f"text nucleus-sampling mass ({own}: minigpt5 its checkpoint's)")
    gen.add_argument("--repetition-penalty", type=POSITIVE_REAL, help=f"text repetition penalty ({own}: minigpt5 its "
                     "checkpoint's)")  # fmt: skip
    gen.add_argument("--do-sample", type=_bool, metavar="true|false", help=f"sample text (true) or decode greedily "
                     f"({own}: minigpt5 true, as the official code)")  # fmt: skip
    p_run.add_argument("--model-args", metavar="K=V,...", help="adapter arguments, e.g. checkpoint=... or path=... "
                       "(default: none, the shipped checkpoint; see 'mg5bench ls models')")  # fmt: skip
    p_run.add_argument("--batch-size", type=POSITIVE, help="samples per model call (default: the model's). Part of the "
                       "generation key: batched kernels round differently for different batch compositions, so "
                       "outputs are reproducible (any --limit, resume, process count) at one batch size")  # fmt: skip
    p_run.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto); the device type is part of "
                       "the generation key")  # fmt: skip
    p_run.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default: ./runs)")
    p_run.add_argument("--force", action="store_true", help="delete the stored run (generations, scores) and redo it "
                       "(default: reuse what is stored)")  # fmt: skip
    p_run.add_argument("--evaluator", help=f"scoring, not part of the generation key: {EVALUATOR_HELP}")
    p_run.add_argument("--metrics", help="scoring: comma-separated metric names (default: the task's list)")
    p_run.add_argument("--resamples", type=RESAMPLES, default=1000, help="scoring: bootstrap resamples (default "
                       "1000; 0 = no intervals)")  # fmt: skip
    p_run.add_argument("--seeds", type=POSITIVE, help="run this many checkpoints (training seeds) of the model's "
                       "checkpoint, each its own run, and print how much the results move between seeds (default: "
                       "the one checkpoint)")  # fmt: skip
    p_run.add_argument("--no-wait", action="store_true", help="if another 'mg5bench run' is generating the "
                       "same run folder, exit with an error instead of waiting (default: wait for it)")  # fmt: skip
    _add_output_flags(p_run)
    _add_task_args(p_run)

    p_train = sub.add_parser(
        "train",
        help="train a baseline on a task (sd2-ft, divter)",
        description="Fine-tune a baseline on the task's train split. sd2-ft: the text-to-image backbone on the "
        "text it will be prompted with (VIST: the step caption, or the story text with --task-args context=text; "
        "MMDialog: the response text). divter: the LoRA of Divter's text LM (context with captioned images -> "
        "reply + image description). Resumable: rerun the same command.",
        epilog="examples:\n  mg5bench train sd2-ft --task vist --out runs/sd2-ft-vist --steps 600\n"
        "  mg5bench train divter --task mmdialog --out runs/divter-mmdialog --steps 600 --lr 1e-3\n"
        "  mg5bench train sd2-ft --task mmdialog --out runs/sd2-ft-mmdialog --steps 600 --base /models/tiny-t2i",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_train.add_argument("what", metavar="TRAINER", help="sd2-ft or divter (see 'mg5bench ls trainers')")
    p_train.add_argument("--task", required=True, help="cc3m, vist or mmdialog (required)")
    p_train.add_argument("--data", help="real data folder or synth:... (default: the embedded world)")
    p_train.add_argument("--out", type=Path, required=True, help="output folder (required; rerun to resume)")
    p_train.add_argument("--steps", type=POSITIVE, default=600, help="training steps (default 600)")
    p_train.add_argument(
        "--base",
        type=Path,
        help="sd2-ft: T2I pipeline to start from; divter: the backbones folder (default: the shipped ones)",
    )
    p_train.add_argument(
        "--unet",
        choices=["cross-kv", "all"],
        help="sd2-ft: train the UNet's cross-attention k/v only (packs to ~1 MB) or all of it (default cross-kv)",
    )
    p_train.add_argument("--batch", type=POSITIVE, help="batch size (default 32)")
    p_train.add_argument("--lr", type=POSITIVE_REAL, help="learning rate (default: sd2-ft 3e-4, divter 1e-3)")
    p_train.add_argument("--seed", type=SEED, help="seed (default 0)")
    p_train.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto)")
    _add_task_args(p_train)
    _add_output_flags(p_train)

    p_ls = sub.add_parser("ls", help="list registered tasks, models, metrics, evaluators or trainers")
    p_ls.add_argument("what", choices=["tasks", "models", "metrics", "evaluators", "trainers"])

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
    p_synth.add_argument("--level", type=int, choices=[1, 2, 3], default=1,
                         help="1: one object; 2: one or two; 3: two or three, texts name part of them "
                         "(docs/world.md)")  # fmt: skip
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
    _add_task_args(p_val)

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
    _add_task_args(p_exp)

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
    _add_human_parsers(sub)  # human evaluation block, below
    _add_ablation_report_parsers(sub)  # ablations and reports block, below
    return parser


def _cmd_ls(args: argparse.Namespace) -> int:
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


def _cmd_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
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


def _metric_list(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _cmd_score(args: argparse.Namespace) -> int:
    from mg5bench import api
    from mg5bench.core.errors import ConfigError

    if args.run is not None:
        given = [f"--{n.replace('_', '-')}" for n in ("task", "data", "split", "predictions", "out", "media_root")
                 if getattr(args, n) is not None]  # fmt: skip
        if given or args.task_args:
            raise ConfigError(f"score RUN_FOLDER takes its task, data and split from run.json and stores the scores "
                              f"under RUN_FOLDER/scores/: drop {', '.join(given or ['--task-args'])}")  # fmt: skip
        res = api.score(
            args.run, limit=args.limit, evaluator=args.evaluator, metrics=_metric_list(args.metrics),
            inception=args.inception, resamples=args.resamples, seed=args.seed, device=args.device,
            progress=not args.quiet, force=args.force,
        )  # fmt: skip
        print(api.table(res.report))
        how = "stored earlier; printed without recomputing" if res.reused else f"{res.report['seconds']:.1f} s"
        print(f"scores: {res.folder} ({how}; no sample generated)")
        return 0
    missing = [f"--{n}" for n in ("task", "predictions", "out") if getattr(args, n) is None]
    if missing:
        raise ConfigError(f"give a RUN_FOLDER, or score a predictions file with {', '.join(missing)}")
    if args.limit is not None or args.force:
        raise ConfigError("--limit and --force apply to a RUN_FOLDER; a predictions file is scored whole")
    report = api.score_predictions(
        args.task, args.predictions, args.out, data=args.data, split=args.split, metrics=_metric_list(args.metrics),
        evaluator=args.evaluator, inception=args.inception, task_args=api.parse_kv(args.task_args, "--task-args"),
        resamples=args.resamples, seed=args.seed, progress=not args.quiet, device=args.device,
        media_roots=args.media_root or (),
    )  # fmt: skip
    print(api.table(report))
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'per_sample.jsonl'}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from mg5bench import api

    api.check_output_folder(args.out)
    info = api.train(
        args.what, args.task, args.out, args.steps, data=args.data, base=args.base, batch=args.batch, lr=args.lr,
        seed=args.seed, task_args=api.parse_kv(args.task_args, "--task-args"), unet=args.unet, device=args.device,
        progress=not args.quiet,
    )  # fmt: skip
    print(json.dumps(info, indent=2))
    if args.what == "divter":
        print(f"use: mg5bench run --task {args.task} --model divter --model-args checkpoint={args.out}")
        return 0
    pipe = Path(info.get("packed", args.out / "pipeline"))
    print(f"pipeline: {pipe}  (use: mg5bench run --task {args.task} --model sd2-ft --model-args path={pipe})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from mg5bench import api

    api.check_output_folder(args.out)  # before the data is even read
    task_args = api.parse_kv(args.task_args, "--task-args")
    gen = api.GenerationConfig(
        guidance_scale=args.guidance_scale, num_inference_steps=args.num_inference_steps,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, do_sample=args.do_sample,
    )  # fmt: skip
    spec = api.RunSpec(
        task=args.task, model=args.model, split=args.split or api.default_split(args.task, args.data, task_args),
        data=args.data, limit=args.limit or None, seed=args.seed, generation=gen,
        model_args=api.parse_kv(args.model_args, "--model-args"), task_args=task_args,
    )  # fmt: skip
    specs = api.seed_specs(spec, args.seeds) if args.seeds else [("", spec)]
    reports = []
    for i, (name, one) in enumerate(specs):
        if len(specs) > 1:
            print(f"== checkpoint {name} (seed {i + 1} of {len(specs)})", flush=True)
        res = api.run(one, args.out, force=args.force, batch_size=args.batch_size, device=args.device,
                      evaluator=args.evaluator, metrics=_metric_list(args.metrics), resamples=args.resamples,
                      progress=not args.quiet, wait=not args.no_wait)  # fmt: skip
        _print_run(res)
        if res.report is not None:
            reports.append((name, res.report))
    if len(reports) > 1:
        print(api.seed_summary(reports))
    return 0


def _print_run(res: Any) -> None:
    from mg5bench import api

    if res.report is None:
        return
    print(api.table(res.report))
    settings = " ".join(f"{k}={v}" for k, v in res.info["generation"].items() if v is not None)
    print(f"settings: {settings or '(none)'} batch_size={res.info['batch_size']} device={res.info['device']['device']}")
    t = res.timing
    if res.generated:
        done = f"generated {res.generated} sample(s) in {t.get('generation_s', 0):.1f} s"
    else:
        done = f"all {res.n_selected} samples were stored: nothing generated"
    scored = "stored earlier, reused" if res.score_reused else f"computed in {t.get('scoring_s', 0):.1f} s"
    print(f"run: {res.folder} ({done})")
    print(f"scores: {res.score_folder} ({scored})")


def _default_split(task: str, task_args: str | None) -> str:
    from mg5bench import api

    return api.default_split(task, None, api.parse_kv(task_args, "--task-args"))


def _count(v: object) -> str:
    if isinstance(v, dict):
        return str(v.get("stories", v.get("conversations", v)))
    return str(v)


# --- human evaluation (issue 14): `mg5bench annotate`, `mg5bench human report|export` -----------------------------
# Self-contained block: the parsers use the standard library only; the handlers import mg5bench.human lazily.

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


def _add_human_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "annotate",
        help="pairwise human rating of two stored runs: invite raters, start the rating app",
        description="Blinded pairwise human evaluation (the MiniGPT-5 study: language coherence, image quality, "
        "multimodal coherence, each asked where it applies to what both outputs show; A / B / tie leaning A / tie "
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


def _cmd_annotate(args: argparse.Namespace) -> int:
    import os

    from mg5bench.core.errors import ConfigError
    from mg5bench.human import app_path
    from mg5bench.human.ratings import RatingStore

    if args.invite:
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
            split = split or _default_split(args.task, None)
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
    else:
        if not args.db.exists():
            raise ConfigError("give the runs (--task/--models or --run-a/--run-b), or the --db of an existing study")
        store = RatingStore(args.db, create=False)
        study_id = args.study
    study = store.study(args.study if args.study is not None else study_id)
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
    if args.no_serve:
        return 0
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
    split = args.split or _default_split(args.task, None)
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


def _cmd_human(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mg5bench.human import analysis as stats
    from mg5bench.human.ratings import RatingStore

    if args.human_command is None:
        parser.parse_args(["human", "--help"])
        return 2
    store = RatingStore(args.db, create=False)
    if args.human_command == "export":
        n = store.export(args.out)
        print(f"wrote {n} votes to {args.out}")
        return 0
    rep = stats.report(store, study=args.study, resamples=args.resamples, seed=args.seed, exclude=not args.keep_all)
    from mg5bench.data.io import nan_to_none

    print(json.dumps(nan_to_none(rep), indent=2) if args.json else stats.format_report(rep))
    return 0


# --- end of the human evaluation block --------------------------------------------------------------------------


# --- ablations and reports (issue 13): `mg5bench ablate`, `mg5bench report` ---------------------------------------
# Self-contained block: the parsers use the standard library only; the handlers import mg5bench.api lazily.

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


def _add_ablation_report_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def _cmd_ablate(args: argparse.Namespace) -> int:
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


def _cmd_report(args: argparse.Namespace) -> int:
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


# --- end of the ablations and reports block -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _quiet_libraries(not getattr(args, "verbose", False)):
            return _dispatch(args, parser)
    except Mg5Error as e:
        print(f"mg5bench: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine or a path, not a record: a full disk, a folder where a file belongs, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"mg5bench: error: {one_line(where + str(e.strerror or e))} (fix: {os_error_fix(e)})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mg5bench: interrupted", file=sys.stderr)
        return 130


MAX_ERROR_CHARS = 1000
MAX_LISTED = 20  # lines of a list a command prints before pointing at the file that holds all of them


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message as one line of at most ``limit`` characters: a message built from a file's content can
    neither spread over many lines nor print the whole file."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 5] + " ..."


def os_error_fix(e: OSError) -> str:
    """The fix for an OSError that reached the command line, by its kind (only a full disk is about space)."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free space, then rerun the same command: finished work is kept"
    if isinstance(e, IsADirectoryError):
        return "that path is a folder: pass a file there"
    if isinstance(e, NotADirectoryError):
        return "a part of that path is a file, not a folder: pass another path"
    if isinstance(e, FileNotFoundError):
        return "check the path"
    if isinstance(e, PermissionError) or e.errno == errno.EROFS:
        return "choose a folder you can write to (or a file you can read)"
    return "check the path and the disk, then rerun the same command: finished work is kept"


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "ls":
        return _cmd_ls(args)
    if args.command == "data":
        return _cmd_data(args, parser)
    if args.command == "score":
        return _cmd_score(args)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "train":
        return _cmd_train(args)
    if args.command == "annotate":  # human evaluation block
        return _cmd_annotate(args)
    if args.command == "human":
        return _cmd_human(args, parser)
    if args.command == "ablate":  # ablations and reports block
        return _cmd_ablate(args)
    if args.command == "report":
        return _cmd_report(args)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
