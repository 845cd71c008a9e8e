"""``mg5bench run``, ``score`` and ``train``: the commands of the flow itself (generate and score a run, rescore a
stored run or score a predictions file, train a baseline)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mg5bench.cli.common import (
    DEFAULT_LIMIT,
    EVALUATOR_HELP,
    add_output_flags,
    add_task_args,
    metric_list,
    parse_bool,
)
from mg5bench.core.devices import DEVICE_HELP
from mg5bench.core.limits import (
    COUNT,
    INFERENCE_STEPS,
    NEW_TOKENS,
    NONNEGATIVE_REAL,
    POSITIVE,
    POSITIVE_REAL,
    RESAMPLES,
    SEED,
    UNIT,
)


def add_score(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    add_output_flags(p_score)
    add_task_args(p_score)


def add_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    gen.add_argument("--do-sample", type=parse_bool, metavar="true|false", help=f"sample text (true) or decode "
                     f"greedily ({own}: minigpt5 true, as the official code)")  # fmt: skip
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
    add_output_flags(p_run)
    add_task_args(p_run)


def add_train(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    add_task_args(p_train)
    add_output_flags(p_train)


def cmd_score(args: argparse.Namespace) -> int:
    from mg5bench import api
    from mg5bench.core.errors import ConfigError

    if args.run is not None:
        given = [f"--{n.replace('_', '-')}" for n in ("task", "data", "split", "predictions", "out", "media_root")
                 if getattr(args, n) is not None]  # fmt: skip
        if given or args.task_args:
            raise ConfigError(f"score RUN_FOLDER takes its task, data and split from run.json and stores the scores "
                              f"under RUN_FOLDER/scores/: drop {', '.join(given or ['--task-args'])}")  # fmt: skip
        res = api.score(
            args.run, limit=args.limit, evaluator=args.evaluator, metrics=metric_list(args.metrics),
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
        args.task, args.predictions, args.out, data=args.data, split=args.split, metrics=metric_list(args.metrics),
        evaluator=args.evaluator, inception=args.inception, task_args=api.parse_kv(args.task_args, "--task-args"),
        resamples=args.resamples, seed=args.seed, progress=not args.quiet, device=args.device,
        media_roots=args.media_root or (),
    )  # fmt: skip
    print(api.table(report))
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'per_sample.jsonl'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
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


def cmd_run(args: argparse.Namespace) -> int:
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
                      evaluator=args.evaluator, metrics=metric_list(args.metrics), resamples=args.resamples,
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
