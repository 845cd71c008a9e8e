"""``mg5bench score``: score any model's outputs on a task, with CIs, per-sample rows and a table.

Predictions: one JSON line per sample ``{"id": ..., "output": [segments]}``, a segment being
``{"text": ...}`` or ``{"image": path}`` (relative paths resolve against the predictions file). A
sample with no line is scored as an empty output and counted. Each image is encoded once per run;
ground-truth features are cached on disk by (data fingerprint, preprocessing, evaluator hash).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.catalog import make_metric
from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.files import atomic_write_json, atomic_write_text
from mg5bench.core.hashing import sha256_bytes, sha256_file
from mg5bench.core.sample import Segment
from mg5bench.metrics import Metric, MetricContext
from mg5bench.scoring.evaluators import resolve_evaluator
from mg5bench.scoring.features import build_bank
from mg5bench.scoring.items import make_item
from mg5bench.scoring.predictions import load_predictions, output_roots, output_segments
from mg5bench.tasks import SampleSet, build_samples, get_task


def check_resamples(resamples: int, seed: int = 0) -> None:
    """Before any work: bootstrap resamples 0 (no intervals) up to ``limits.MAX_RESAMPLES``, and a seed numpy
    accepts."""
    from mg5bench.core.limits import MAX_RESAMPLES

    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 0 <= resamples <= MAX_RESAMPLES:
        raise ConfigError(f"--resamples must be 0 (no intervals) or a positive integer up to {MAX_RESAMPLES}, got "
                          f"{resamples!r}"[:160])  # fmt: skip
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed (the bootstrap's) must be a non-negative integer, got {seed!r}")


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def resolve_metrics(cfg: Any, synthetic: bool, metrics: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The metric names to compute (the task's list unless given; unknown names fail here, before anything
    is computed) and notes on what was left out: a metric that ``needs_scenes`` is dropped on real data, or
    refused if it was asked for by name."""
    from mg5bench.catalog import metric_class

    names = list(metrics) if metrics else list(cfg.metrics)
    notes: list[str] = []
    for name in list(names):
        if metric_class(name).needs_scenes and not synthetic:
            if metrics:
                raise ConfigError(f"{name} needs the synthetic world's scene records; this data has none")
            names.remove(name)
            notes.append(f"{name} skipped: real data has no scene records")
    return names, notes


def score(
    task: str,
    predictions: Path,
    out: Path | None = None,
    *,
    data: str | None = None,
    split: str | None = None,
    metrics: Sequence[str] | None = None,
    evaluator: str | None = None,
    inception: str | None = None,
    task_args: Mapping[str, Any] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    sset: SampleSet | None = None,
    device: str = "cpu",
    media_roots: Sequence[Path] = (),
) -> dict[str, Any]:
    """Score a predictions file (one line per sample) and write ``out/metrics.json`` and ``out/per_sample.jsonl``
    atomically. Returns the metrics.json content. ``evaluator`` None: the embedded one on the synthetic world,
    refused elsewhere (``evaluators.resolve_evaluator``). Image paths must lie inside the predictions file's
    folder, one of ``media_roots`` or the data folder (``load_predictions``)."""
    from mg5bench.core.files import check_output_folder

    check_resamples(resamples, seed)
    if out is not None:
        check_output_folder(out)  # before any work: an unwritable --out must not cost the whole scoring
    cfg = get_task(task, task_args or {})
    if sset is None:
        sset = build_samples(cfg, data, split, cache_dir=cache_dir, progress=progress)
    preds = load_predictions(Path(predictions), {s.id for s in sset.samples}, [*media_roots, sset.source.root])
    info = {
        "path": str(predictions),
        "sha256": sha256_file(predictions),
    }
    names, notes = resolve_metrics(cfg, sset.source.synthetic, metrics)
    evaluator, warnings = resolve_evaluator(evaluator, sset.source.synthetic)
    return score_outputs(cfg, sset, preds, info, out, names=names, notes=[*warnings, *notes], evaluator=evaluator,
                         inception=inception, resamples=resamples, seed=seed, cache_dir=cache_dir,
                         progress=progress, device=device)  # fmt: skip


def score_outputs(
    cfg: Any,
    sset: SampleSet,
    preds: Mapping[str, list[Segment]],
    predictions_info: Mapping[str, Any],
    out: Path | None,
    *,
    names: Sequence[str],
    notes: Sequence[str] = (),
    evaluator: str = "embedded",
    inception: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    device: str = "cpu",
    extra: Mapping[str, Any] | None = None,
    content_cache: Path | None = None,
) -> dict[str, Any]:
    """The scoring engine: every sample of ``sset`` against its output in ``preds`` (missing = empty output).
    Writes per_sample.jsonl, then metrics.json (its presence marks a finished scoring), both atomically. The
    evaluator is loaded only when a feature is not cached (``content_cache``: generated images and texts by
    content; the data's images by the data's fingerprint)."""
    from mg5bench.data.world import default_cache_dir
    from mg5bench.scoring.evaluators import InceptionFeatures, LazyEvaluator

    t0 = time.perf_counter()
    items = [make_item(s, preds.get(s.id, [])) for s in sset.samples]
    n_missing = sum(s.id not in preds for s in sset.samples)
    notes = list(notes)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    ev = LazyEvaluator(evaluator, device, cache)
    incep = InceptionFeatures(inception, device) if inception else None
    ctx = MetricContext(cfg.format, incep, device)
    built: list[Metric] = [make_metric(n, ctx) for n in names]
    bank, enc = build_bank(ev, items, sset, cache, progress, incep, content_cache)
    results, per_sample = _compute(built, items, bank, resamples, seed, progress)
    report = {
        "metrics": results,
        "evaluator": {
            **ev.info(),
            "distribution_features": incep.name if incep else f"{ev.name} image embedding (projected, unnormalised)",
            **({"inception": incep.info()} if incep else {}),
        },
        "task": {**cfg.to_dict(), "split": sset.split},
        "data": {
            "spec": sset.source.spec,
            "root": str(sset.source.root),
            "fingerprint": sset.fingerprint,
            "synthetic": sset.source.synthetic,
        },
        "predictions": {
            **predictions_info,
            "n_samples": len(items),
            "n_with_output": len(items) - n_missing,
            "n_missing": n_missing,
        },
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "cluster": "story" if cfg.format == "vist" else "conversation" if cfg.format == "mmdialog" else "sample",
            "level": 0.95,
        },
        "encoding": enc,
        "device": device,
        "notes": notes,
        **dict(extra or {}),
        "versions": _versions(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if out is not None:
        out = Path(out)
        rows = [{"id": it.id, "group": it.group, **per_sample[it.id]} for it in items]
        atomic_write_text(out / "per_sample.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        atomic_write_json(out / "metrics.json", report)
    return report


def _compute(built: Sequence[Metric], items: Sequence[Any], bank: Any, resamples: int, seed: int,
             progress: bool) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:  # fmt: skip
    """Every metric over the items: each result key's metrics.json entry (value, 95% cluster-bootstrap interval, N,
    variant, direction, and what the metric declares beside its main result), and each sample's per-sample values."""
    from tqdm.auto import tqdm

    from mg5bench.scoring.statistics import cluster_bootstrap

    groups = [it.group for it in items]
    results: dict[str, Any] = {}
    per_sample: dict[str, dict[str, Any]] = {it.id: {} for it in items}
    for metric in tqdm(built, desc="metrics", disable=not progress, leave=False):
        metric.update(items, bank)
        values = metric.compute()
        cis = cluster_bootstrap(metric, groups, resamples, seed) if resamples else {}
        counts = metric.n()
        for key, value in values.items():
            entry = {
                "value": _clean(value),
                "ci_low": _clean(cis.get(key, (float("nan"),) * 2)[0]),
                "ci_high": _clean(cis.get(key, (float("nan"),) * 2)[1]),
                "n": counts.get(key, counts.get(metric.name, len(items))),
                "variant": metric.variant,
                "higher_is_better": metric.higher(key),
            }
            if metric.flag:
                entry["flag"] = metric.flag
            if key == metric.name:
                if metric.ci_note:
                    entry["ci_note"] = metric.ci_note
                if metric.warning:
                    entry["warning"] = metric.warning
                entry.update(metric.counts())
            if key.endswith(".std"):
                entry["ci_low"] = entry["ci_high"] = None
            results[key] = entry
        for key, vals in metric.per_sample().items():
            for it, v in zip(items, vals, strict=True):
                per_sample[it.id][key] = v
    return results, per_sample


# ---------------------------------------------------------------------------------------------
# scoring a stored run (``mg5bench score RUN_FOLDER``; ``mg5bench run`` goes through here too)

# the scoring scheme: FID's bootstrap replicates through the weighted formula (equal to torchmetrics to 1e-9)
SCORER_VERSION = 2


@dataclass
class ScoreResult:
    """What ``score_run`` returns: the scoring's folder, its metrics.json, whether it was read back, and its key."""

    folder: Path  # <run>/scores/<settings>-<hash>
    report: dict[str, Any]  # metrics.json content
    reused: bool  # True: this scoring existed and was read back
    key: dict[str, Any]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "evaluator"


def score_run(
    folder: Path,
    *,
    limit: int | None = None,
    evaluator: str | None = None,
    metrics: Sequence[str] | None = None,
    inception: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: bool = True,
    force: bool = False,
    sset: SampleSet | None = None,
) -> ScoreResult:
    """Score the stored generations of a run folder (never loading the model) and store the result under
    ``<run>/scores/<evaluator>-r<resamples>-n<N>-<hash>/``, keyed by everything that can change a number:
    evaluator + weights sha256, Inception weights sha256, metrics, resamples, bootstrap seed, the sample subset
    (ids) and the device type. A scoring that exists is read back, not recomputed (``force`` recomputes).

    ``limit``: score the first N samples of the split (default: the largest selection the run was completed
    for, run.json ``samples.complete_for``, else the stored prefix; 0 = every sample of the split). Every one of
    them must be stored."""
    from mg5bench.core.devices import device_type, resolve_device
    from mg5bench.core.hashing import content_hash
    from mg5bench.runs.store import RunStore
    from mg5bench.scoring.evaluators import evaluator_identity

    check_resamples(resamples, seed)
    store = RunStore(Path(folder))
    info = store.read_info()
    spec = info["spec"]
    cfg = get_task(spec["task"], spec.get("task_args") or {})
    if sset is None:
        sset = build_samples(cfg, spec.get("data"), spec["split"], cache_dir=cache_dir, progress=progress)
    n, ids, records = _selection(store, info, sset, limit)
    sub = dataclasses.replace(sset, samples=sset.samples[:n])
    names, notes = resolve_metrics(cfg, sset.source.synthetic, metrics)
    evaluator, warnings = resolve_evaluator(evaluator, sset.source.synthetic)
    notes = [*warnings, *notes]
    dev = resolve_device(device)
    ev_id = evaluator_identity(evaluator)
    if inception is not None and not Path(inception).is_file():
        from mg5bench.scoring.evaluators import INCEPTION_HELP

        raise ConfigError(f"{inception}: Inception weights not found. {INCEPTION_HELP}")
    selected = ids[:n]
    key = {
        "scorer": SCORER_VERSION,
        "evaluator": ev_id,
        "inception_sha256": sha256_file(inception) if inception else None,
        "metrics": names,
        "resamples": resamples,
        "bootstrap_seed": seed,
        "n_samples": n,
        "ids_sha256": sha256_bytes("\n".join(selected)),
        "device_type": device_type(dev),
    }
    out = store.scores / f"{_slug(ev_id['name'])}-r{resamples}-n{n}-{content_hash(key)}"
    if (out / "metrics.json").is_file() and not force:
        try:
            return ScoreResult(out, json.loads((out / "metrics.json").read_text()), True, key)
        except (ValueError, RecursionError):  # damaged: scored again (metrics.json is written last, atomically)
            from mg5bench.core.notes import note

            note(f"{out / 'metrics.json'}: unreadable; scoring again")
    from mg5bench.core.files import check_output_folder

    check_output_folder(out, "the run's scores folder")  # before the work: a read-only run folder fails now
    roots = output_roots(store.root, sset)  # the run's images/, and ground truth the gt model points at
    try:
        preds = {sid: output_segments(records[sid]["output"], store.root, store.samples, f"id {sid}", roots)
                 for sid in selected}  # fmt: skip
    except DataError as e:
        fix = "rerun the same 'mg5bench run' command: it regenerates a sample whose image is missing or unreadable"
        raise DataError(e.path, e.record, e.problem, fix) from None
    outputs = [{"id": sid, "output": records[sid]["output"]} for sid in selected]  # not meta (timings, rank)
    lines = "".join(json.dumps(o, sort_keys=True) + "\n" for o in outputs).encode()
    pinfo = {"run": str(store.root), "run_hash": info.get("folder_hash"),
             "records_sha256": sha256_bytes(lines)}  # fmt: skip
    # generated images' and texts' features, keyed by content: a rescoring with this evaluator loads no model
    ev_key = sha256_bytes(json.dumps([evaluator, ev_id]))[:16]
    features = store.root / "features" / f"{_slug(ev_id['name'])}-{ev_key}.safetensors"
    report = score_outputs(cfg, sub, preds, pinfo, out, names=names, notes=notes, evaluator=evaluator,
                           inception=inception, resamples=resamples, seed=seed, cache_dir=cache_dir,
                           progress=progress, device=dev, extra={"score_key": key},
                           content_cache=features)  # fmt: skip
    return ScoreResult(out, report, False, key)


def _selection(store: Any, info: Mapping[str, Any], sset: SampleSet,
               limit: int | None) -> tuple[int, list[str], dict[str, Any]]:  # fmt: skip
    """How many first samples of the split a scoring of this run covers (see ``score_run``), checked: the data is
    the one the run was generated on, and every one of them is stored. Returns that number, the split's sample ids
    and the stored records."""
    from mg5bench.runs.store import stored_prefix

    want = info["key"]["data_fingerprint"]
    if sset.fingerprint != want and int(info.get("runner", 0)) < 3:
        raise DataError(str(store.run_json), None, "this run was generated by an older mg5bench, whose data "
                        "fingerprint covered image names and sizes, not contents", "rerun its 'mg5bench run' "
                        "command: it generates into a new folder keyed by the data's content")  # fmt: skip
    if sset.fingerprint != want:
        raise DataError(str(store.run_json), None, f"the data changed since this run was generated (fingerprint "
                        f"{want} then, {sset.fingerprint} now)", "score it on the data it was generated from, or "
                        "start a new run with 'mg5bench run'")  # fmt: skip
    ids = [s.id for s in sset.samples]
    records = store.done()
    have = stored_prefix(ids, set(records))
    complete_for = (info.get("samples") or {}).get("complete_for", 0)
    n = len(ids) if limit == 0 else (limit or (complete_for if isinstance(complete_for, int) else 0) or have)
    n = min(n, len(ids))
    if n < 1:
        raise DataError(str(store.root), None, "no generated sample to score yet",
                        "finish the run first: rerun the same 'mg5bench run' command")  # fmt: skip
    if n > have and store.invalid:
        raise DataError(str(store.root), store.invalid[0].partition(":")[0], f"{len(store.invalid)} stored line(s) "
                        f"failed validation ({store.invalid[0].partition(': ')[2]})", "rerun its 'mg5bench run' "
                        "command: it moves them to quarantine.jsonl and generates their samples again")  # fmt: skip
    if n > have:
        raise DataError(str(store.root), None, f"{n} samples asked for, but the generations cover the first {have} "
                        f"of {len(ids)}", f"generate them first: rerun its 'mg5bench run' with --limit {n}, or score "
                        f"--limit {have}")  # fmt: skip
    return n, ids, records


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "mg5bench",
        "torch",
        "torchmetrics",
        "open_clip_torch",
        "nltk",
        "rouge-score",
        "sentence-transformers",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
