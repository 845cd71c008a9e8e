"""Pair two stored runs into a study plan: find each run folder, read its outputs, check that both cover the
same samples of the same task, split, protocol and data, and attach the shared context (as the model saw it)
and, for the gold checks, the ground truth.

Reads only the documented run-folder files: ``run.json`` (``spec``: task, model, split, data, task_args; ``data``:
the data fingerprint; ``samples.complete_for``: the --limit the run was asked for) and ``samples.jsonl`` (one
``{"id", "output": [segments]}`` line per sample in sample order, image paths relative to the run folder). A run
is complete when ``samples.jsonl`` exists and no ``samples.rank*.jsonl`` shard is left (a run still generating,
or interrupted: rerun it to finish). A run stores whole batches, so it may hold more samples than its --limit:
the study takes the first ``complete_for`` of them, as ``mg5bench score`` does.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.human.assignment import GOLD_BLANK, GOLD_GT, PlanItem, StudyPlan, asked_aspects


@dataclass(frozen=True)
class RunOutputs:
    """One complete run folder's outputs, by sample id, in file order."""

    folder: Path
    task: str
    split: str
    model: str
    data: str | None
    task_args: dict[str, Any]
    fingerprint: str | None
    outputs: dict[str, list[dict[str, Any]]]


def load_run(folder: str | Path) -> RunOutputs:
    """Read a complete run folder; a one-line error names what is wrong and what to do."""
    folder = Path(folder).expanduser().resolve()
    info_path = folder / "run.json"
    if not info_path.is_file():
        raise DataError(
            str(folder),
            None,
            "not a run folder (no run.json)",
            "pass a folder printed by 'mg5bench run', e.g. runs/vist/minigpt5/<settings>-<hash>",
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        spec = info["spec"]
        task, model, split = str(spec["task"]), str(spec["model"]), str(spec["split"])
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise DataError(str(info_path), None, f"malformed run.json ({type(e).__name__}: {str(e)[:80]})",
                        "rerun the same 'mg5bench run'") from None  # fmt: skip
    rerun = f"rerun 'mg5bench run --task {task} --model {model} --split {split}' with the same settings"
    if any(folder.glob("samples.rank*.jsonl")) or not (folder / "samples.jsonl").is_file():
        raise DataError(str(folder), None, "the run is not complete (samples.jsonl missing or shards left)", rerun)
    from mg5bench.data.io import read_text_utf8

    outputs: dict[str, list[dict[str, Any]]] = {}
    path = folder / "samples.jsonl"
    for n, line in enumerate(read_text_utf8(path, "samples file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            sid, segs = str(rec["id"]), rec["output"]
            if not isinstance(segs, list):
                raise TypeError("output is not a list")
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise DataError(str(path), f"line {n}", f"malformed sample record ({str(e)[:80]})", rerun) from None
        if sid in outputs:
            raise DataError(str(path), f"line {n}", f"duplicate sample id {sid!r}", rerun)
        outputs[sid] = segs
    fingerprint = (info.get("data") or {}).get("data_fingerprint")
    asked = (info.get("samples") or {}).get("complete_for")
    if isinstance(asked, int) and not isinstance(asked, bool) and 0 < asked < len(outputs):
        outputs = dict(list(outputs.items())[:asked])  # the --limit asked for; the rest completed a batch
    return RunOutputs(
        folder, task, split, model, spec.get("data"), dict(spec.get("task_args") or {}), fingerprint, outputs
    )


@dataclass(frozen=True)
class RunLabel:
    """What a run folder is, in words: the checkpoint and every setting that differs from the model's defaults,
    read from its run.json. After ``mg5bench ablate`` a model has many folders; this is how a person (and
    ``annotate``) tells the shipped model at its default settings from an ablation or another training seed."""

    folder: Path
    task: str
    model: str
    split: str
    complete: bool
    checkpoint: str  # the checkpoint folder's name ("" for a model without one)
    shipped: bool  # the model's shipped checkpoint for the task (its content, not only its name)
    changes: tuple[str, ...]  # the settings that differ from the model's defaults, e.g. "guidance_scale=1"

    @property
    def default(self) -> bool:
        """The shipped checkpoint at default settings: what ``annotate --models`` picks."""
        return self.shipped and not self.changes

    @property
    def settings(self) -> str:
        """The checkpoint and the changed settings, e.g. "stage2-vist-no-cfg, guidance_scale=1"."""
        ckpt = [] if not self.checkpoint else [self.checkpoint + (" (shipped)" if self.shipped else "")]
        return ", ".join([*ckpt, *(self.changes or ["default settings"])])

    @property
    def label(self) -> str:
        """The model and its settings, e.g. "minigpt5: stage2-vist (shipped), default settings"."""
        return f"{self.model}: {self.settings}"

    @property
    def study_name(self) -> str:
        """How a study and its report name this run: the model alone at the shipped default, else the model
        with what differs (so two studies of one model under different settings never pool in Bradley-Terry)."""
        if self.default:
            return self.model
        parts = ([] if self.shipped or not self.checkpoint else [self.checkpoint]) + list(self.changes)
        return f"{self.model} ({', '.join(parts or ['non-default checkpoint'])})"


_DEFAULTS: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any], str] | None] = {}


def model_defaults(model: str, task: str) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """(identity, resolved generation settings, default checkpoint name) of ``model`` with its shipped checkpoint
    for ``task``, as ``mg5bench run`` would key it; None when the model or its checkpoint is not available here.
    Building the adapter loads no weights (its checkpoint hash is cached)."""
    if (model, task) not in _DEFAULTS:
        from mg5bench.catalog import MODELS
        from mg5bench.core.errors import Mg5Error
        from mg5bench.runs.spec import GenerationConfig
        from mg5bench.tasks import get_task

        try:
            cfg = get_task(task)
            cls = MODELS.get(model)
            adapter = cls(cfg, {})
            rel = str(cls.default_checkpoints.get(cfg.format) or "")
            found = (adapter.identity(), adapter.resolve(GenerationConfig()).to_dict(), Path(rel).name)
        except (Mg5Error, OSError, KeyError, ValueError):
            found = None
        _DEFAULTS[(model, task)] = found
    return _DEFAULTS[(model, task)]


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)


def describe_run(folder: str | Path) -> RunLabel:
    """The label of a run folder from its run.json (see ``RunLabel``); a folder that is not a run is a one-line
    error."""
    folder = Path(folder).expanduser().resolve()
    info_path = folder / "run.json"
    fix = "pass a folder printed by 'mg5bench run', e.g. runs/vist/minigpt5/<settings>-<hash>"
    if not info_path.is_file():
        raise DataError(str(folder), None, "not a run folder (no run.json)", fix)
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        spec = info["spec"]
        task, model, split = str(spec["task"]), str(spec["model"]), str(spec["split"])
        model_args = dict(spec.get("model_args") or {})
        task_args = dict(spec.get("task_args") or {})
        seed = int(spec.get("seed") or 0)
        generation = dict(info.get("generation") or {})
        key_model = (info.get("key") or {}).get("model")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise DataError(str(info_path), None, f"malformed run.json ({type(e).__name__}: {str(e)[:80]})",
                        "rerun the same 'mg5bench run'") from None  # fmt: skip
    complete = (folder / "samples.jsonl").is_file() and not any(folder.glob("samples.rank*.jsonl"))
    defaults = model_defaults(model, task)
    path_args, weights_args = _path_args(model)
    weights = {k: Path(str(v)) for k, v in model_args.items() if k in weights_args}  # what the identity hashes
    changes: list[str] = []
    if defaults is None:
        shipped, default_name, default_gen = not weights, "", {}
    else:
        identity, default_gen, default_name = defaults
        shipped = _weights(key_model) == _weights(identity) if key_model is not None else not weights
    checkpoint = default_name
    for k, p in weights.items():
        name = f"{p.parent.name}/{p.name}" if p.name == default_name and not shipped else p.name
        checkpoint = name if k == weights_args[0] else f"{k}={name}"
    if not weights and not shipped:
        checkpoint = f"{default_name} (an earlier build)" if default_name else "an earlier build"
    for k, v in generation.items():
        if v is not None and k in default_gen and default_gen[k] != v:
            changes.append(f"{k}={_short(v)}")
    changes += [
        f"{k}={Path(str(v)).name}" for k, v in sorted(model_args.items()) if k in path_args and k not in weights
    ]
    changes += [f"{k}={_short(v)}" for k, v in sorted(model_args.items()) if k not in path_args]
    changes += _protocol_changes(task, task_args)
    if seed:
        changes.append(f"seed={seed}")
    return RunLabel(folder, task, model, split, complete, checkpoint, shipped, tuple(changes))


def _path_args(model: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The --model-args of ``model`` that name a file or folder, and of those the ones that are its weights (the
    ones its identity hashes, the checkpoint first); ("checkpoint",) both for a model not in the catalog."""
    from mg5bench.catalog import MODELS
    from mg5bench.core.errors import Mg5Error

    try:
        cls = MODELS.get(model)
        return tuple(cls.path_args), tuple(cls.hashed_args) or ("checkpoint",)
    except (Mg5Error, ImportError):
        return ("checkpoint",), ("checkpoint",)


def _weights(identity: Any) -> Any:
    """A model identity without its other arguments: what tells one checkpoint's content from another's."""
    return {k: v for k, v in identity.items() if k != "model_args"} if isinstance(identity, dict) else identity


def _protocol_changes(task: str, task_args: dict[str, Any]) -> list[str]:
    """The protocol options (--task-args) that differ from the task's."""
    if not task_args:
        return []
    from mg5bench.core.errors import Mg5Error
    from mg5bench.tasks import get_task

    try:
        card, used = dict(get_task(task).protocol), dict(get_task(task, task_args).protocol)
    except (Mg5Error, KeyError, ValueError):
        return [f"{k}={_short(v)}" for k, v in sorted(task_args.items())]
    return [f"{k}={_short(v)}" for k, v in sorted(used.items()) if card.get(k) != v]


def candidate_runs(runs: str | Path, task: str, model: str, split: str) -> list[RunLabel]:
    """Every complete run of ``model`` on ``task``/``split`` under ``runs`` (runs/<task>/<model>/*), labelled;
    folders that are not readable runs are left out."""
    from mg5bench.core.errors import Mg5Error

    out = []
    for info_path in sorted((Path(runs) / task / model).glob("*/run.json")):
        try:
            run = describe_run(info_path.parent)
        except Mg5Error:
            continue  # not a run this command can pair (named when passed as --run-a/--run-b)
        if run.complete and run.split == split and run.task == task:
            out.append(run)
    return out


MAX_LISTED = 6  # candidates an error names before pointing at --list-runs (an error stays one short line)


def listing(runs: list[RunLabel], more: str) -> str:
    """Candidates on one line, "<settings> (<folder name>)" each; past MAX_LISTED, ``more`` says where the rest
    are."""
    shown = "; ".join(f"{r.settings} ({r.folder.name})" for r in runs[:MAX_LISTED])
    return shown + (f"; and {len(runs) - MAX_LISTED} more ({more})" if len(runs) > MAX_LISTED else "")


def find_run(runs: str | Path, task: str, model: str, split: str, flag: str = "--run-a") -> Path:
    """The run ``annotate --models`` compares: the one complete run of ``model`` on ``task``/``split`` with the
    shipped checkpoint at default settings. None, or several, is a one-line error saying to pick one with
    ``flag`` and listing the candidates with their labels."""
    base = Path(runs) / task / model
    found = candidate_runs(runs, task, model, split)
    if not found:
        raise ConfigError(
            f"no complete run of {model} on {task} {split} under {base}: run 'mg5bench run --task "
            f"{task} --model {model} --split {split}' first, or pass --runs / --run-a / --run-b"
        )
    default = [r for r in found if r.default]
    if len(default) == 1:
        return default[0].folder
    pick = f"pick one with {flag} FOLDER (a folder name below is enough)"
    more = "all of them: add --list-runs"
    if default:
        raise ConfigError(
            f"{len(default)} runs of {model} on {task} {split} under {base} are the shipped checkpoint at default "
            f"settings as far as their run.json tell (other batch size, device or threads?): {pick}: "
            f"{listing(default, more)}"
        )
    raise ConfigError(
        f"none of the {len(found)} complete run(s) of {model} on {task} {split} under {base} is the shipped "
        f"checkpoint at default settings: {pick}, or run 'mg5bench run --task {task} --model {model} --split "
        f"{split}': {listing(found, more)}"
    )


def check_run(run: RunLabel, flag: str, task: str, model: str, split: str | None) -> None:
    """A run given with ``flag`` next to --task/--models must be of that task and model (and --split)."""
    for what, want, have in (("task", task, run.task), ("model", model, run.model), ("split", split, run.split)):
        if want is not None and want != have:
            raise ConfigError(
                f"{flag} {run.folder} is a run of {run.model} on {run.task} {run.split}, not of {what} {want}: "
                f"pass a run folder of {model} on {task}" + (f" {split}" if split else "") + f", or drop {flag}"
            )


def pair_runs(a: RunOutputs, b: RunOutputs) -> list[str]:
    """The sample ids both runs cover (in run A's order). The runs must be of the same task, split, protocol and
    data, and cover the same ids; otherwise a one-line error."""
    for what, va, vb in (
        ("task", a.task, b.task),
        ("split", a.split, b.split),
        ("task protocol (--task-args)", a.task_args, b.task_args),
    ):
        if va != vb:
            raise ConfigError(
                f"the runs differ in {what}: {a.folder} has {va!r}, {b.folder} has {vb!r}; compare "
                "runs of the same task, split and protocol"
            )
    if a.fingerprint and b.fingerprint and a.fingerprint != b.fingerprint:
        raise ConfigError(
            f"the runs were generated from different data (fingerprint {a.fingerprint} in {a.folder}, "
            f"{b.fingerprint} in {b.folder}); compare runs over the same --data"
        )
    only_a = [i for i in a.outputs if i not in b.outputs]
    only_b = [i for i in b.outputs if i not in a.outputs]
    if only_a or only_b:
        ex = (only_a or only_b)[0]
        raise ConfigError(
            f"the runs do not cover the same samples: {a.folder} has {len(a.outputs)}, {b.folder} has "
            f"{len(b.outputs)}, {len(only_a) + len(only_b)} id(s) in only one (e.g. {ex!r}); run both "
            "with the same --limit"
        )
    return list(a.outputs)


def _rooted(seg: dict[str, Any], roots: dict[str, Path], own: str | None, where: str) -> dict[str, Any]:
    """A segment for the store: an image as a path relative to one of the study's folders (``root``); a path that
    lies in none of them is refused here, so the app is never asked for it."""
    from mg5bench.data.io import URL_FIX, check_text, is_url

    if not isinstance(seg, dict):
        raise DataError(where, None, f"segment {str(seg)[:60]!r} is not an object", "rerun the model")
    out = {k: v for k, v in seg.items() if k in ("text", "role")}
    if "image" not in seg:
        if not isinstance(seg.get("text"), str):
            raise DataError(where, None, f"segment {str(seg)[:60]!r} is neither text nor image", "rerun the model")
        check_text(seg["text"], where, None)
        return out
    if not isinstance(seg["image"], str) or is_url(seg["image"]):
        raise DataError(where, None, f"image {str(seg['image'])[:80]!r} is not a local file path", URL_FIX)
    p = Path(seg["image"])
    if not p.is_absolute():
        if own is None:
            raise DataError(where, None, f"relative image path {p} outside a run", "report this as a bug")
        p = roots[own] / p
    p = p.resolve()
    for key in ([own] if own else []) + ["data"]:
        if p.is_relative_to(roots[key]):
            out.update(image=str(p.relative_to(roots[key])), root=key)
            return out
    raise DataError(
        where,
        None,
        f"image {seg['image']!r} lies outside the run folder and the data folder",
        "only images inside them are shown to raters",
    )


def build_plan(
    run_a: str | Path,
    run_b: str | Path,
    *,
    items: int | None = None,
    seed: int = 0,
    gold_pool: int = 50,
    cache_dir: Path | None = None,
) -> StudyPlan:
    """The study over two complete runs: each shared sample's context (rebuilt from the task's data as the model
    saw it) with both outputs, and up to ``gold_pool`` gold items (ground truth vs a blank image). ``items``
    keeps a seeded random subset of that many samples (in sample order)."""
    from mg5bench.tasks import build_samples, get_task

    a, b = load_run(run_a), load_run(run_b)
    ids = pair_runs(a, b)
    if items:
        keep = set(random.Random(f"items:{seed}").sample(ids, min(items, len(ids))))
        ids = [i for i in ids if i in keep]
    cfg = get_task(a.task, a.task_args)
    sset = build_samples(cfg, a.data, a.split, cache_dir=cache_dir, progress=False)
    if a.fingerprint and sset.fingerprint != a.fingerprint:
        raise DataError(
            str(sset.source.root),
            None,
            f"the data changed since the runs (fingerprint {sset.fingerprint}, runs {a.fingerprint})",
            "rerun both models on this data",
        )
    samples = {s.id: s for s in sset.samples}
    missing = [i for i in ids if i not in samples]
    if missing:
        raise DataError(
            str(a.folder),
            None,
            f"{len(missing)} sample id(s) are not in the {a.task} {a.split} data (e.g. {missing[0]!r})",
            "pass the --data the runs were made from",
        )
    roots = {"x": a.folder, "y": b.folder, "data": Path(sset.source.root).resolve()}
    la, lb = describe_run(a.folder), describe_run(b.folder)
    mx, my = la.study_name, lb.study_name
    if mx == my:  # the same settings as far as the labels tell (e.g. other threads): tell them apart by folder
        mx, my = f"{mx} [{a.folder.name}]", f"{my} [{b.folder.name}]"
    pairs, gold, contexts = [], [], {}
    for sid in ids:
        s = samples[sid]
        context = contexts[sid] = [_rooted(seg.to_json(), roots, None, str(sset.source.root)) for seg in s.context]
        outs = {
            k: [_rooted(seg, roots, k, str(run.folder / "samples.jsonl")) for seg in run.outputs[sid]]
            for k, run in (("x", a), ("y", b))
        }
        asked, skipped = asked_aspects(outs["x"], outs["y"], any(seg.is_text for seg in s.target), context)
        payload = {"context": context, "outputs": outs, "skipped": skipped}
        pairs.append(PlanItem(sid, "pair", mx, my, payload, asked))
    for sid in random.Random(f"gold:{seed}").sample(ids, min(gold_pool, len(ids))):
        s = samples[sid]
        target = [_rooted(seg.to_json(), roots, None, str(sset.source.root)) for seg in s.target]
        side = 512
        if s.target_images:
            from PIL import Image

            with Image.open(s.target_images[0]) as im:
                side = im.size[0]
        blank: list[dict[str, Any]] = [{"text": ""}] if cfg.format == "mmdialog" else []
        blank.append({"blank": side})
        asked, skipped = asked_aspects(target, blank, any(seg.is_text for seg in s.target), contexts[sid])
        payload = {"context": contexts[sid], "outputs": {"x": target, "y": blank}, "skipped": skipped}
        gold.append(PlanItem(sid, "gold", GOLD_GT, GOLD_BLANK, payload, asked))
    return StudyPlan(
        a.task,
        a.split,
        mx,
        my,
        {k: str(v) for k, v in roots.items()},
        {"x": str(a.folder), "y": str(b.folder)},
        pairs,
        gold,
        {"x": la.label, "y": lb.label},
    )
