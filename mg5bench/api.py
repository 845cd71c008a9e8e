"""The Python API that the CLI is a thin layer over: the stages of the flow (``run`` generates and scores,
``score`` rescores a stored run or scores a predictions file, ``train`` trains a baseline), the data commands, and
what the CLI prints (``names``, ``table``), and the studies over stored runs (``ablate``, ``report``: with
``rebuild`` it generates what the report's plan lacks, then the report renders from the store). The CLI reaches
the rest of mg5bench through it (annotate and human, the rating store's commands, call ``mg5bench.human``).

May import: every stage of mg5bench (it composes them); only the CLI and the model cards import it.

    from mg5bench import api
    res = api.run(api.RunSpec(task="vist", model="minigpt5", split="val", limit=50))
    print(api.table(api.score(res.folder, resamples=200).report))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.files import atomic_write_json, atomic_write_text, check_output_file, check_output_folder
from mg5bench.data.io import Problems
from mg5bench.runs.spec import GenerationConfig, RunSpec
from mg5bench.tasks import SampleSet, build_samples, get_task

if TYPE_CHECKING:
    from mg5bench.runs.runner import RunResult
    from mg5bench.scoring.scorer import ScoreResult

__all__ = ["GenerationConfig", "RunSpec", "check_output_file", "check_output_folder", "convert_vist_sis",
           "default_checkpoints", "default_split",
           "export_samples", "names", "parse_kv", "run", "score", "score_predictions", "synth", "table", "train",
           "validate"]  # fmt: skip


def synth(
    out: Path | None = None,
    *,
    size: str = "default",
    level: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Build a synthetic world into ``out`` (or the user cache, reused if already there). ``out`` holding this
    very world already (verified against its manifest) is reused too; one left incomplete by an interrupted
    build is cleared and built again. ``level`` None = the embedded default's level."""
    from mg5bench.data.world import WorldConfig, build_world, ensure_world, is_world
    from mg5bench.tasks import check_world

    cfg = WorldConfig(seed=seed, size=size) if level is None else WorldConfig(seed=seed, level=level, size=size)
    if out is None:
        root = ensure_world(cfg, cache_dir, progress=progress)
    else:
        root = Path(out)
        held = json.loads((root / "world.json").read_text()).get("world") if is_world(root) else None
        if held == cfg.to_dict():
            check_world(root, cache_dir)
        elif held is not None:
            flags = " ".join(f"--{k} {held.get(k)}" for k in ("level", "size", "seed"))
            raise ConfigError(f"{root} holds another world than the one asked for (level {cfg.level}, size "
                              f"{cfg.size}, seed {cfg.seed}): reuse it with 'mg5bench data synth --out {root} "
                              f"{flags}', or pass a new folder")  # fmt: skip
        else:
            build_world(cfg, root, progress=progress, cache_dir=cache_dir)
    return root, json.loads((root / "world.json").read_text())


def export_samples(
    task: str,
    out: Path,
    *,
    data: str | None = None,
    split: str | None = None,
    task_args: Mapping[str, Any] | None = None,
    skip_bad: bool = False,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> SampleSet:
    """Write one JSON line per sample to ``out`` and a manifest (settings, fingerprint, skips)
    beside it as ``<out>.manifest.json``. Both are written atomically."""
    cfg = get_task(task, task_args or {})
    sset = build_samples(cfg, data, split, skip_bad=skip_bad, cache_dir=cache_dir, progress=progress)
    lines = "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in sset.samples)
    out = Path(out)
    atomic_write_text(out, lines)
    atomic_write_json(out.with_name(out.name + ".manifest.json"), sset.manifest())
    return sset


@dataclass
class ValidationReport:
    """Counts per split and every problem found (nothing stops at the first error)."""

    task: str
    root: str
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: dict[str, list[DataError]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "root": self.root,
            "splits": self.splits,
            "problems": {k: [e.to_dict() for e in v] for k, v in self.problems.items()},
            "ok": self.ok,
        }


def validate(
    path: str, task: str, *, split: str | None = None, task_args: Mapping[str, Any] | None = None
) -> ValidationReport:
    """Read every split (or the one given) of a data folder, collecting all problems."""
    from mg5bench.tasks import present_splits, resolve_data, resolve_split

    cfg = get_task(task, task_args or {})
    source = resolve_data(cfg, path, progress=False)
    splits = [resolve_split(cfg, source, split)] if split else present_splits(cfg, source.root)
    if not splits:
        resolve_split(cfg, source, None)  # raises: no data files of this format here
    report = ValidationReport(task=cfg.name, root=str(source.root))
    for s in splits:
        try:
            sset = build_samples(cfg, path, s, skip_bad=True, progress=False)
        except DataError as e:  # a file-level problem: the split cannot be read at all
            report.problems[s] = [e]
            report.splits[s] = {"records": 0, "samples": 0}
            continue
        report.problems[s] = list(sset.problems)
        if sset.n_records == 0 and not report.problems[s]:  # an empty split is no data, not good data
            report.problems[s].append(DataError(str(source.root), f"split {s}", "holds no records",
                                                "check the files of this split; an empty file is no data"))  # fmt: skip
        report.splits[s] = {
            "records": sset.n_records,
            "samples": len(sset.samples),
            "bad_records": len(sset.problems),
        }
    return report


def overlap(
    source: str,
    target: str,
    *,
    data: str | None = None,
    source_data: str | None = None,
    max_distance: int | None = None,
    ngram: int | None = None,
    examples: int = 5,
    out: Path | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Contamination check: the target task split's images and texts found in ``source`` (a folder, or a task split
    read from ``source_data``, default ``data``). Writes the report as JSON to ``out`` (atomically) when given."""
    from mg5bench.data import overlap as ov

    if out is not None:
        check_output_file(out)
    tgt = ov.read_task_split(target, data, cache_dir=cache_dir, progress=progress)
    if ov.is_task_split(source) and not Path(source).exists():
        src = ov.read_task_split(source, source_data if source_data is not None else data, cache_dir=cache_dir,
                                 progress=progress)  # fmt: skip
    else:
        src = ov.read_folder(Path(source))
    report = ov.overlap(src, tgt, max_distance=ov.MAX_DISTANCE if max_distance is None else max_distance,
                        n=ov.NGRAM if ngram is None else ngram, examples=examples, progress=progress)  # fmt: skip
    if out is not None:
        atomic_write_json(out, report)
    return report


def format_overlap(report: Mapping[str, Any]) -> str:
    """The printed summary of ``overlap``'s report."""
    from mg5bench.data.overlap import format_overlap as fmt

    return fmt(dict(report))


def convert_vist_sis(
    src_json: Path, images_dir: Path, dst: Path, *, split: str | None = None, skip_bad: bool = False
) -> Any:
    """Convert the official VIST story-in-sequence release into the MiniGPT-5 VIST layout."""
    from mg5bench.data.vist_sis import convert_vist_sis as _convert

    if not Path(images_dir).is_dir():
        raise DataError(str(images_dir), None, "images folder not found", "pass the folder of <photo id>.jpg files")
    return _convert(Path(src_json), Path(images_dir), Path(dst), split, problems=Problems(skip_bad=skip_bad))


def run(spec: RunSpec, out: Path = Path("runs"), **options: Any) -> RunResult:
    """Generate what the store lacks for ``spec`` and score it (``mg5bench.runs.runner.run``; options: force,
    batch_size, device, evaluator, metrics, resamples, cache_dir, progress)."""
    from mg5bench.runs.runner import run as _run

    return _run(spec, out, **options)


def seed_specs(spec: RunSpec, seeds: int) -> list[tuple[str, RunSpec]]:
    """``spec`` once per checkpoint of its seed set (``mg5bench.runs.seeds``: the checkpoint given by --model-args, or
    the model's default for the task, and its NAME-seed<k> siblings), at most ``seeds``: (checkpoint name, spec).
    The first is ``spec`` itself, so its run is the plain run's."""
    import dataclasses

    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.catalog import MODELS
    from mg5bench.runs.seeds import seed_set

    args = dict(spec.model_args)
    arg = MODELS.get(spec.model).checkpoint_arg
    ckpt = args.get(arg)
    if ckpt is not None:
        first = Path(ckpt).expanduser()
    else:
        rel = MODELS.get(spec.model).default_checkpoints.get(get_task(spec.task, dict(spec.task_args)).format)
        if rel is None:
            raise ConfigError(f"--seeds: model {spec.model!r} has no checkpoint, so no training seeds; drop --seeds")
        first = shipped_checkpoints() / rel
    found = seed_set(first, seeds)
    out = [(first.name, spec)]
    for path in found[1:]:
        out.append((path.name, dataclasses.replace(spec, model_args={**args, arg: str(path)})))
    return out


def seed_summary(named: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """A table of each result's value per checkpoint (seed), their mean and standard deviation: how much retraining
    with another seed moves a number."""
    import statistics

    if not named:
        return ""
    keys = [k for k in named[0][1]["metrics"] if all(k in r["metrics"] for _, r in named)]
    head = ("metric", *(n for n, _ in named), "mean", "seed sd")
    rows = [head]
    for k in keys:
        vals = [r["metrics"][k]["value"] for _, r in named]
        ok = [float(v) for v in vals if v is not None]
        mean = f"{statistics.fmean(ok):.4f}" if ok else "n/a"
        sd = f"{statistics.stdev(ok):.4f}" if len(ok) > 1 else "n/a"
        rows.append((k, *("n/a" if v is None else f"{v:.4f}" for v in vals), mean, sd))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(len(r))).rstrip() for r in rows]
    return "\n".join([f"across {len(named)} training seeds (one checkpoint each):", *lines])


def score(run_folder: Path, **options: Any) -> ScoreResult:
    """Score a stored run folder without loading its model; the scoring is stored under ``<run>/scores/`` and
    reused (``mg5bench.scoring.scorer.score_run``; options: limit, evaluator, metrics, inception, resamples, seed,
    device, cache_dir, progress, force)."""
    from mg5bench.scoring.scorer import score_run

    return score_run(Path(run_folder), **options)


def score_predictions(
    task: str, predictions: Path, out: Path | None, *, device: str = "auto", **options: Any
) -> dict[str, Any]:
    """Score a predictions file (``mg5bench.scoring.scorer.score``) on ``device`` (auto = CUDA when available); returns
    the metrics.json content."""
    from mg5bench.core.devices import resolve_device
    from mg5bench.scoring.scorer import score as _score

    return _score(task, predictions, out, device=resolve_device(device), **options)


def train(
    trainer: str,
    task: str,
    out: Path,
    steps: int,
    *,
    device: str = "auto",
    task_args: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train a baseline (``mg5bench ls trainers``) on the task's train split on ``device``; returns its summary.
    ``options`` are the trainer's keyword arguments (data, base, batch, lr, seed, and e.g. sd2-ft's unet); one it
    does not take is an error naming the ones it does, and None means "the trainer's default"."""
    import inspect

    from mg5bench.catalog import TRAINERS
    from mg5bench.core.devices import resolve_device

    fn = TRAINERS.get(trainer)
    given = {k: v for k, v in options.items() if v is not None}
    takes = [p for p in inspect.signature(fn).parameters if p not in ("task", "out", "steps", "device", "progress")]
    unknown = sorted(set(given) - {*takes, "progress"})
    if unknown:
        raise ConfigError(f"trainer {trainer!r} does not take {', '.join(unknown)}; it takes: {', '.join(takes)}")
    return fn(task, out, steps, task_args=dict(task_args or {}), device=resolve_device(device), **given)  # type: ignore[no-any-return]


def names(kind: str) -> list[tuple[str, str]]:
    """(name, description) of every registered task, model, metric, evaluator or trainer, sorted."""
    from mg5bench import catalog
    from mg5bench.tasks import task_registry

    registries = {"tasks": task_registry(), "models": catalog.MODELS, "metrics": catalog.METRICS,
                  "evaluators": catalog.EVALUATORS, "trainers": catalog.TRAINERS}  # fmt: skip
    if kind not in registries:
        raise ConfigError(f"unknown kind {kind!r}; choose {', '.join(registries)}")
    reg = registries[kind]
    return [(n, reg.entry(n).description) for n in reg.names()]


def default_checkpoints(model: str) -> dict[str, tuple[str, bool]]:
    """Task format -> (default checkpoint folder relative to the shipped checkpoints, whether it is there)."""
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.catalog import MODELS

    root = shipped_checkpoints()
    return {task: (rel, (root / rel).is_dir()) for task, rel in MODELS.get(model).default_checkpoints.items()}


def default_split(task: str, data: str | None = None, task_args: Mapping[str, Any] | None = None) -> str:
    """The split a command reads when none is given: the task's default, or the data folder's only split."""
    from mg5bench.tasks import resolve_data, resolve_split

    cfg = get_task(task, task_args or {})
    if data is None:
        return cfg.default_split
    return resolve_split(cfg, resolve_data(cfg, data, progress=False), None)


def table(report: Mapping[str, Any]) -> str:
    """The printed metric table of a scoring's report (``mg5bench.scoring.summary.format_table``)."""
    from mg5bench.scoring.summary import format_table

    return format_table(report)


def parse_kv(text: str | None, what: str) -> dict[str, str]:
    """``a=1,b=x`` -> {"a": "1", "b": "x"} with a clear error on malformed input."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what}: expected key=value pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def ablate(axis: str | Path, **options: Any) -> Any:
    """Expand a base run along an axis and compare every variant with it (``mg5bench.ablation.ablate``; keyword
    arguments: task, split, data, limit, seed, out, metrics, evaluator, resamples, permutations, batch_size, device,
    cache_dir, generate, force, progress). Returns an AblationResult (folder, report, reused, generated)."""
    from mg5bench.ablation import ablate as _ablate

    return _ablate(axis, **options)


def ablation_axes() -> list[tuple[str, str]]:
    """The built-in axes as (name, title)."""
    from mg5bench.ablation import list_axes, load_axis

    return [(name, load_axis(name).title) for name in list_axes()]


def format_ablation(report: Mapping[str, Any]) -> str:
    """The printed ablation table (per headline result: value, paired difference [CI], p)."""
    from mg5bench.ablation import format_report

    return format_report(dict(report))


def report(runs: Path = Path("runs"), out: Path | None = None, *, rebuild: bool = False, **options: Any) -> Any:
    """Build the leaderboard from stored results (``mg5bench.leaderboard.build_report``; ``out`` default
    ``<runs>/report``; keyword arguments: ratings, limit, evaluator, resamples, device, cache_dir, gallery, contact,
    contact_sheets, plan, progress, shipped_only). ``rebuild``: first generate what the plan lacks (``run_plan``),
    once every setting is checked. The report names each plan axis with no stored ablation and, when its axis file
    says so, why it cannot run (a missing checkpoint and the command that makes it)."""
    from mg5bench.leaderboard import build_report

    runs = Path(runs)

    def generate(plan: Mapping[str, Any], **kw: Any) -> list[str]:
        return run_plan(plan, runs, **kw)

    return build_report(runs, None if out is None else Path(out), generate=generate if rebuild else None,
                        axis_problem=_axis_problem, **options)  # fmt: skip


def run_plan(plan: Mapping[str, Any], runs: Path, *, device: str, cache_dir: Path | None, progress: bool,
             evaluator: str | None = None) -> list[str]:  # fmt: skip
    """Generate what a report plan (``mg5bench.leaderboard.load_plan``) needs and the store lacks, one run at a time:
    every model on every task, then the ablation axes. Returns the errors of axes that cannot run (e.g. a
    checkpoint that is not shipped), which the report then shows."""
    from mg5bench.ablation import ablate
    from mg5bench.core.errors import Mg5Error

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


def _axis_problem(axis: str, checkpoints: Path | None = None) -> str | None:
    """Why an ablation axis cannot run here with the checkpoint set ``checkpoints`` (None = the shipped one): its
    axis file does not load, or a variant's checkpoint is missing (the message says how to make it); None when it
    can."""
    from mg5bench.ablation import load_axis
    from mg5bench.core.errors import Mg5Error

    try:
        load_axis(axis).check_checkpoints(checkpoints)
    except Mg5Error as e:
        return str(e)
    return None
