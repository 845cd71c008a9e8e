"""``mg5bench score``: score any model's outputs on a task, with CIs, per-sample rows and a table.

Predictions: one JSON line per sample ``{"id": ..., "output": [segments]}``, a segment being
``{"text": ...}`` or ``{"image": path}`` (relative paths resolve against the predictions file). A
sample with no line is scored as an empty output and counted. Each image is encoded once per run;
ground-truth features are cached on disk by (data fingerprint, preprocessing, evaluator hash).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.data.io import atomic_write_json, atomic_write_text, check_image
from mg5bench.errors import ConfigError, DataError
from mg5bench.metrics import FeatureBank, Metric, MetricContext, ScoreItem, make_metric
from mg5bench.metrics.clip import VOKEN_STRING
from mg5bench.metrics.mmrel import clean_text_minigpt5
from mg5bench.tasks import SampleSet, build_samples, get_task
from mg5bench.types import Sample, Segment


def load_predictions(path: Path, known_ids: set[str]) -> dict[str, list[Segment]]:
    """Parse and check a predictions file; every problem is a one-line DataError."""
    from mg5bench.data.io import read_text_utf8

    path = Path(path)
    text = read_text_utf8(path, "predictions file")
    base = path.resolve().parent
    out: dict[str, list[Segment]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rec = f"line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                str(path), rec, f"malformed JSON: {e.msg} at column {e.colno}", "one JSON object per line"
            ) from None
        if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("output", []), list):
            raise DataError(str(path), rec, "expected an object {'id': ..., 'output': [segments]}")
        sid = str(obj["id"])
        rec = f"line {n} (id {sid})"
        if sid not in known_ids:
            close = sorted(known_ids)[:3]
            raise DataError(str(path), rec, f"unknown sample id {sid!r} for this task and split",
                            f"ids look like {', '.join(close)}; check --task, --split and --data")  # fmt: skip
        if sid in out:
            raise DataError(str(path), rec, "duplicate id", "give one line per sample")
        segs = []
        for seg in obj.get("output", []):
            try:
                s = Segment.from_json(seg)
            except ConfigError as e:
                raise DataError(str(path), rec, str(e)) from None
            if s.is_image:
                img = Path(s.value)
                img = img if img.is_absolute() else base / img
                check_image(img, path, rec)
                s = Segment.image(str(img.resolve()), s.role)
            segs.append(s)
        out[sid] = segs
    return out


def make_item(sample: Sample, output: Sequence[Segment]) -> ScoreItem:
    gt_text = " ".join(s.value for s in sample.target if s.is_text)
    caption = sample.meta.get("caption") or (gt_text or None)
    return ScoreItem(
        id=sample.id,
        group=sample.group,
        gt_text=gt_text,
        gen_text=" ".join(s.value for s in output if s.is_text),
        gt_images=[s.value for s in sample.target if s.is_image],
        gen_images=[s.value for s in output if s.is_image],
        caption=caption,
        gt_elements=[(s.kind, s.value) for s in sample.target],
        gen_elements=[(s.kind, s.value) for s in output],
        scenes=list(sample.meta.get("target_scenes", [])),
        meta=dict(sample.meta),
    )


def _feature_cache_path(cache_dir: Path, evaluator: Any, fingerprint: str, split: str) -> Path:
    key = hashlib.sha256(
        json.dumps([evaluator.weights_sha256, evaluator.preprocessing, fingerprint, split]).encode()
    ).hexdigest()[:24]
    return cache_dir / "features" / f"{key}.safetensors"


def encode_images_cached(
    evaluator: Any, paths: list[str], cache_file: Path | None, progress: bool
) -> tuple[dict[str, np.ndarray], int]:
    """Raw features for ``paths``; with ``cache_file``, reuse and extend an on-disk cache.
    Returns (features by path, number of images actually encoded)."""
    from safetensors.numpy import load_file, save_file

    feats: dict[str, np.ndarray] = {}
    if cache_file is not None and cache_file.is_file():
        from safetensors import safe_open

        with safe_open(str(cache_file), "np") as f:
            cached_paths = json.loads(f.metadata()["paths"])
        arr = load_file(str(cache_file))["features"]
        feats = {p: arr[i] for i, p in enumerate(cached_paths)}
    todo = [p for p in dict.fromkeys(paths) if p not in feats]
    if todo:
        new = evaluator.encode_images_raw(todo, progress=progress).numpy()
        feats.update(zip(todo, new, strict=True))
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(feats)
            tmp = cache_file.with_suffix(f".{time.time_ns()}.tmp")
            save_file(
                {"features": np.stack([feats[k] for k in keys])},
                str(tmp),
                metadata={"paths": json.dumps(keys)},
            )
            tmp.replace(cache_file)
    return feats, len(todo)


def build_bank(
    evaluator: Any,
    items: Sequence[ScoreItem],
    sset: SampleSet,
    cache_dir: Path | None,
    progress: bool,
    inception: Any = None,
) -> tuple[FeatureBank, dict[str, int]]:
    """Encode every image and text the metrics will ask for, each once."""
    gt_paths = sorted({p for it in items for p in it.gt_images})
    gen_paths = sorted({p for it in items for p in it.gen_images} - set(gt_paths))
    cache_file = _feature_cache_path(cache_dir, evaluator, sset.fingerprint, sset.split) if cache_dir else None
    images, n_gt = encode_images_cached(evaluator, gt_paths, cache_file, progress)
    gen_feats, n_gen = encode_images_cached(evaluator, gen_paths, None, progress)
    images.update(gen_feats)
    texts: set[str] = {VOKEN_STRING}
    for it in items:
        if it.caption:
            texts.add(it.caption)
        for t in (it.gt_text, it.gen_text):
            cleaned = clean_text_minigpt5(t)
            if cleaned:
                texts.add(cleaned)
        texts.update(v for k, v in it.gt_elements + it.gen_elements if k == "text" and v.strip())
    order = sorted(texts)
    tfeats = evaluator.encode_texts(order).numpy()
    scale = float(evaluator.model.logit_scale.detach().exp()) if hasattr(evaluator, "model") else 100.0
    dist = None
    if inception is not None:  # FID / KID on Inception-v3 pool features instead of the evaluator's
        paths = gt_paths + gen_paths
        dist = dict(zip(paths, inception.encode_pool(paths).numpy(), strict=True))
    bank = FeatureBank(images, dict(zip(order, tfeats, strict=True)), scale, evaluator.dim, dist)
    return bank, {
        "images_encoded": n_gt + n_gen,
        "gt_images_from_cache": len(gt_paths) - n_gt,
        "texts_encoded": len(order),
    }


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def score(
    task: str,
    predictions: Path,
    out: Path | None = None,
    *,
    data: str | None = None,
    split: str | None = None,
    metrics: Sequence[str] | None = None,
    evaluator: str = "embedded",
    inception: str | None = None,
    task_args: Mapping[str, Any] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    sset: SampleSet | None = None,
) -> dict[str, Any]:
    """Score a predictions file (or, from the runner, a ready SampleSet + predictions) and write
    ``out/metrics.json`` and ``out/per_sample.jsonl`` atomically. Returns the metrics.json content."""
    from mg5bench.data.world import default_cache_dir
    from mg5bench.evaluators import InceptionFeatures, load_evaluator

    t0 = time.perf_counter()
    cfg = get_task(task, task_args or {})
    if sset is None:
        sset = build_samples(cfg, data, split, progress=progress)
    preds = load_predictions(Path(predictions), {s.id for s in sset.samples})
    items = [make_item(s, preds.get(s.id, [])) for s in sset.samples]
    n_missing = sum(s.id not in preds for s in sset.samples)
    names = list(metrics) if metrics else list(cfg.metrics)
    notes: list[str] = []
    if "scene_accuracy" in names and not sset.source.synthetic:
        if metrics:
            raise ConfigError("scene_accuracy needs the synthetic world's scene records; this data has none")
        names.remove("scene_accuracy")
        notes.append("scene_accuracy skipped: real data has no scene records")
    ev = load_evaluator(evaluator)
    incep = InceptionFeatures(inception) if inception else None
    ctx = MetricContext(cfg.format, incep)
    built: list[Metric] = [make_metric(n, ctx) for n in names]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    bank, enc = build_bank(ev, items, sset, cache, progress, incep)
    groups = [it.group for it in items]
    from tqdm.auto import tqdm

    from mg5bench.stats import cluster_bootstrap

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
            ci_note = getattr(metric, "ci_note", None)
            if ci_note and key == metric.name:
                entry["ci_note"] = ci_note
            warning = getattr(metric, "warning", None)
            if warning and key == metric.name:
                entry["warning"] = warning
            if hasattr(metric, "counts") and key == metric.name:
                entry.update(metric.counts())
            if key.endswith(".std"):
                entry["ci_low"] = entry["ci_high"] = None
            results[key] = entry
        for key, vals in metric.per_sample().items():
            for it, v in zip(items, vals, strict=True):
                per_sample[it.id][key] = v
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
            "path": str(predictions),
            "sha256": hashlib.sha256(Path(predictions).read_bytes()).hexdigest(),
            "n_samples": len(items),
            "n_with_output": len(preds),
            "n_missing": n_missing,
        },
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "cluster": "story" if cfg.format == "vist" else "conversation" if cfg.format == "mmdialog" else "sample",
            "level": 0.95,
        },
        "encoding": enc,
        "notes": notes,
        "versions": _versions(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if out is not None:
        out = Path(out)
        rows = [{"id": it.id, "group": it.group, **per_sample[it.id]} for it in items]
        atomic_write_text(out / "per_sample.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        atomic_write_json(out / "metrics.json", report)
    return report


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


def format_table(report: Mapping[str, Any]) -> str:
    """A plain-text table of the metrics with CIs, N and flags."""
    rows = [("metric", "value", "95% CI", "n", "")]
    for key, m in report["metrics"].items():
        v = m["value"]
        value = "n/a" if v is None else f"{v:.4f}"
        ci = "" if m["ci_low"] is None else f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]"
        arrow = "^" if m["higher_is_better"] else "v"
        note = "FLAG " if "flag" in m else ""
        note += "WARN " + m["warning"] if "warning" in m else ""
        rows.append((f"{key} {arrow}", value, ci, str(m["n"]), note.strip()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + ("  " + r[4] if r[4] else "") for r in rows]
    ev = report["evaluator"]
    lines.append(f"evaluator: {ev['name']} (sha256 {ev['weights_sha256'][:12]}); bootstrap "
                 f"{report['bootstrap']['resamples']}x by {report['bootstrap']['cluster']}")  # fmt: skip
    if report["predictions"]["n_missing"]:
        lines.append(f"{report['predictions']['n_missing']} sample(s) had no prediction line: scored as empty outputs")
    lines += report.get("notes", [])
    return "\n".join(lines)
