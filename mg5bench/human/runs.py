"""Pair two stored runs into a study plan: find each run folder, read its outputs, check that both cover the
same samples of the same task, split, protocol and data, and attach the shared context (as the model saw it)
and, for the gold checks, the ground truth.

Reads only the documented run-folder files: ``run.json`` (``spec``: task, model, split, data, task_args; ``data``:
the data fingerprint) and ``samples.jsonl`` (one ``{"id", "output": [segments]}`` line per sample, image paths
relative to the run folder). A run is complete when ``samples.jsonl`` exists and no ``samples.rank*.jsonl``
shard is left (a run still generating, or interrupted: rerun it to finish).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.errors import ConfigError, DataError
from mg5bench.human.store import GOLD_BLANK, GOLD_GT, PlanItem, StudyPlan


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
    return RunOutputs(
        folder, task, split, model, spec.get("data"), dict(spec.get("task_args") or {}), fingerprint, outputs
    )


def find_run(runs: str | Path, task: str, model: str, split: str) -> Path:
    """The one complete run of ``model`` on ``task``/``split`` under ``runs``; none or several is a one-line
    error (several: choose with --run-a/--run-b)."""
    base = Path(runs) / task / model
    found = []
    for info_path in sorted(base.glob("*/run.json")):
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue  # not a run this command can pair (named when passed as --run-a/--run-b)
        spec = info.get("spec") if isinstance(info, dict) else None
        if not isinstance(spec, dict):
            continue
        folder = info_path.parent
        complete = (folder / "samples.jsonl").is_file() and not any(folder.glob("samples.rank*.jsonl"))
        if spec.get("split") == split and complete:
            found.append(folder)
    if not found:
        raise ConfigError(
            f"no complete run of {model} on {task} {split} under {base}: run 'mg5bench run --task "
            f"{task} --model {model} --split {split}' first, or pass --runs / --run-a / --run-b"
        )
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise ConfigError(
            f"{len(found)} complete runs of {model} on {task} {split} under {base} ({names}): choose "
            "one with --run-a / --run-b"
        )
    return found[0]


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
    mx, my = a.model, b.model
    if mx == my:  # the same model under two settings: tell them apart by folder
        mx, my = f"{a.model}:{a.folder.name}", f"{b.model}:{b.folder.name}"
    pairs, gold, contexts = [], [], {}
    for sid in ids:
        s = samples[sid]
        context = contexts[sid] = [_rooted(seg.to_json(), roots, None, str(sset.source.root)) for seg in s.context]
        outs = {
            k: [_rooted(seg, roots, k, str(run.folder / "samples.jsonl")) for seg in run.outputs[sid]]
            for k, run in (("x", a), ("y", b))
        }
        pairs.append(PlanItem(sid, "pair", mx, my, {"context": context, "outputs": outs}))
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
        context = contexts[sid]
        gold.append(
            PlanItem(sid, "gold", GOLD_GT, GOLD_BLANK, {"context": context, "outputs": {"x": target, "y": blank}})
        )
    return StudyPlan(
        a.task,
        a.split,
        mx,
        my,
        {k: str(v) for k, v in roots.items()},
        {"x": str(a.folder), "y": str(b.folder)},
        pairs,
        gold,
    )
