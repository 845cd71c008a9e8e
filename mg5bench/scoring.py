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

import numpy as np

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.hashing import sha256_bytes, sha256_file
from mg5bench.core.sample import Sample, Segment
from mg5bench.data.io import URL_FIX, atomic_write_json, atomic_write_text, check_image, check_text, is_url
from mg5bench.evaluators import resolve_evaluator
from mg5bench.metrics import FeatureBank, Metric, MetricContext, ScoreItem, make_metric
from mg5bench.metrics.clip import VOKEN_STRING
from mg5bench.metrics.mmrel import clean_text_minigpt5
from mg5bench.tasks import SampleSet, build_samples, get_task

RERUN_FIX = "rerun its 'mg5bench run' command: it regenerates a sample whose image is missing, outside or unreadable"
MEDIA_FIX = "put the images under the predictions file's folder (or pass --media-root FOLDER) and use paths inside it"


def load_predictions(path: Path, known_ids: set[str], media_roots: Sequence[Path] = ()) -> dict[str, list[Segment]]:
    """Parse and check a predictions file; every problem is a one-line DataError. Image paths must resolve
    (symlinks followed) inside the file's folder or one of ``media_roots``."""
    from mg5bench.data.io import read_text_utf8

    path = Path(path)
    text = read_text_utf8(path, "predictions file")
    base = path.resolve().parent
    roots = [base, *(Path(r).resolve() for r in media_roots)]
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
        except RecursionError:
            raise DataError(str(path), rec, "JSON is nested too deeply", "one flat JSON object per line") from None
        if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("output"), list):
            got = "no 'output'" if isinstance(obj, dict) and "id" in obj and "output" not in obj else "another shape"
            raise DataError(str(path), rec, f"expected an object {{'id': ..., 'output': [segments]}}, got {got}",
                            "give every line its id and its output list (an empty list for no output)")  # fmt: skip
        sid = str(obj["id"])
        rec = f"line {n} (id {sid})"
        if sid not in known_ids:
            close = sorted(known_ids)[:3]
            raise DataError(str(path), rec, f"unknown sample id {sid!r} for this task and split",
                            f"ids look like {', '.join(close)}; check --task, --split and --data")  # fmt: skip
        if sid in out:
            raise DataError(str(path), rec, "duplicate id", "give one line per sample")
        out[sid] = output_segments(obj["output"], base, path, rec, roots)
    return out


PREDICTION_ROOTS = "the predictions folder and the --media-root folders"


def confined_image(value: str, base: Path, path: Path, rec: str, roots: Sequence[Path] | None,
                   inside: str = PREDICTION_ROOTS, fix: str = MEDIA_FIX) -> Path:  # fmt: skip
    """An image path of a record resolved against ``base`` (symlinks followed); with ``roots`` it must lie inside one
    of them. The refusal is the same words whether or not the file outside exists, so a record cannot probe the
    disk. A URL is refused: images are local files."""
    if is_url(value):
        raise DataError(str(path), rec, f"image path {value[:80]!r} is a URL", URL_FIX)
    img = Path(value)
    img = (img if img.is_absolute() else base / img).resolve()
    if roots is not None and not any(img.is_relative_to(r) for r in roots):
        raise DataError(str(path), rec, f"image path {value[:200]!r} is outside {inside}", fix)
    return img


def output_segments(output: Sequence[Any], base: Path, path: Path, rec: str,
                    roots: Sequence[Path] | None = None) -> list[Segment]:  # fmt: skip
    """One prediction's segments, image paths resolved against ``base`` and checked (``confined_image``, then
    ``check_image``), texts checked (``check_text``); errors name path + rec."""
    segs = []
    for seg in output:
        try:
            s = Segment.from_json(seg)
        except ConfigError as e:
            raise DataError(str(path), rec, str(e)) from None
        if s.is_text:
            check_text(s.value, path, rec)
        if s.is_image:
            img = confined_image(s.value, base, path, rec, roots)
            check_image(img, path, rec)
            s = Segment.image(str(img), s.role)
        segs.append(s)
    return segs


def output_roots(folder: Path, sset: SampleSet) -> list[Path]:
    """Where a run's stored images may lie: its own folder and the data folder (the gt model points at the ground
    truth), symlinks resolved."""
    return [Path(folder).resolve(), Path(sset.source.root).resolve()]


def stored_images(folder: Path, ids: Sequence[str], roots: Sequence[Path]) -> dict[str, list[Path]]:
    """The image files of a run folder's stored outputs of ``ids``, each confined to ``roots``, present and within
    the pixel limit by its header (nothing decoded): what a report may show of a run whose scoring was stored
    earlier, since a record or a symlink may have changed since. A problem is a one-line DataError."""
    from mg5bench.data.io import image_too_large
    from mg5bench.runs.store import RunStore

    store = RunStore(Path(folder))
    records = store.done()
    out: dict[str, list[Path]] = {}
    for sid in ids:
        rec = records.get(sid)
        if rec is None:
            raise DataError(str(store.samples), f"id {sid}", "not stored", "rerun its 'mg5bench run' command")
        paths = []
        for seg in rec["output"]:
            if isinstance(seg, dict) and isinstance(seg.get("image"), str):
                img = confined_image(seg["image"], store.root, store.samples, f"id {sid}", roots,
                                     "the run folder and the data folder", RERUN_FIX)  # fmt: skip
                shown = repr(seg["image"][:200])
                if not img.is_file():
                    raise DataError(str(store.samples), f"id {sid}", f"image {shown} is missing", RERUN_FIX)
                try:
                    too_large = image_too_large(img)
                except OSError as e:  # PIL's UnidentifiedImageError is an OSError
                    raise DataError(str(store.samples), f"id {sid}", f"image {shown} is unreadable ({e})"[:300],
                                    RERUN_FIX) from None  # fmt: skip
                if too_large:
                    raise DataError(str(store.samples), f"id {sid}", f"image {shown}: {too_large}", RERUN_FIX)
                paths.append(img)
        out[sid] = paths
    return out


def check_resamples(resamples: int, seed: int = 0) -> None:
    """Before any work: bootstrap resamples 0 (no intervals) up to ``limits.MAX_RESAMPLES``, and a seed numpy
    accepts."""
    from mg5bench.core.limits import MAX_RESAMPLES

    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 0 <= resamples <= MAX_RESAMPLES:
        raise ConfigError(f"--resamples must be 0 (no intervals) or a positive integer up to {MAX_RESAMPLES}, got "
                          f"{resamples!r}"[:160])  # fmt: skip
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed (the bootstrap's) must be a non-negative integer, got {seed!r}")


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
    key = sha256_bytes(json.dumps([evaluator.weights_sha256, evaluator.preprocessing, fingerprint, split]))[:24]
    return cache_dir / "features" / f"{key}.safetensors"


def _read_feature_cache(cache_file: Path, dim: int) -> dict[str, np.ndarray]:
    """The cached features by path; a cache that fails to load or check (torn, wrong shape, not finite) is
    deleted with a one-line note and recomputed: a cache is never a reason to fail, nor to trust a wrong number."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(cache_file), "np") as f:
            cached_paths = json.loads((f.metadata() or {})["paths"])
        arr = load_file(str(cache_file))["features"]
        if arr.ndim != 2 or arr.shape != (len(cached_paths), dim) or not np.isfinite(arr).all():
            raise ValueError(f"features of shape {arr.shape} for {len(cached_paths)} images of dimension {dim}")
        return {str(p): arr[i] for i, p in enumerate(cached_paths)}
    except Exception as e:  # whatever is wrong with a cache file, it is rebuilt
        from mg5bench.core.notes import note

        note(f"{cache_file}: feature cache unreadable ({type(e).__name__}: {str(e)[:80]}); deleted, the "
             "ground-truth features are computed again")  # fmt: skip
        cache_file.unlink(missing_ok=True)
        return {}


def encode_images_cached(
    evaluator: Any, paths: list[str], cache_file: Path | None, progress: bool
) -> tuple[dict[str, np.ndarray], int]:
    """Raw features for ``paths``; with ``cache_file``, reuse and extend an on-disk cache (written atomically; a
    cache that cannot be written only costs time). Returns (features by path, number of images actually encoded)."""
    import os

    from safetensors.numpy import save_file

    feats: dict[str, np.ndarray] = {}
    if cache_file is not None and cache_file.is_file():
        feats = _read_feature_cache(cache_file, int(evaluator.dim))
    todo = [p for p in dict.fromkeys(paths) if p not in feats]
    if todo:
        new = evaluator.encode_images_raw(todo, progress=progress).numpy()
        feats.update(zip(todo, new, strict=True))
        if cache_file is not None:
            keys = sorted(feats)
            tmp = cache_file.with_suffix(f".{os.getpid()}.{time.time_ns()}.tmp")
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                save_file({"features": np.stack([feats[k] for k in keys])}, str(tmp),
                          metadata={"paths": json.dumps(keys)})  # fmt: skip
                tmp.replace(cache_file)
            except Exception as e:  # disk full, read-only cache: only costs time later
                from mg5bench.core.notes import note

                tmp.unlink(missing_ok=True)
                note(f"{cache_file}: feature cache not written ({getattr(e, 'strerror', None) or e}); scoring goes "
                     "on without it")  # fmt: skip
    return feats, len(todo)


def _content_cache(path: Path, dim: int) -> dict[str, np.ndarray]:
    """A content-keyed feature cache (``img:<sha256 of the file>`` / ``txt:<sha256 of the text>`` -> vector); a
    file that fails to load or check is deleted with a note and rebuilt."""
    if not path.is_file():
        return {}
    from safetensors import safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(path), "np") as f:
            keys = json.loads((f.metadata() or {})["keys"])
        arr = load_file(str(path))["features"]
        if arr.ndim != 2 or arr.shape != (len(keys), dim) or not np.isfinite(arr).all():
            raise ValueError(f"features of shape {arr.shape} for {len(keys)} keys of dimension {dim}")
        return {str(k): arr[i] for i, k in enumerate(keys)}
    except Exception as e:  # whatever is wrong with a cache file, it is rebuilt
        from mg5bench.core.notes import note

        note(f"{path}: feature cache unreadable ({type(e).__name__}: {str(e)[:80]}); deleted, the features are "
             "computed again")  # fmt: skip
        path.unlink(missing_ok=True)
        return {}


def _save_content_cache(path: Path, feats: Mapping[str, np.ndarray]) -> None:
    import os

    from safetensors.numpy import save_file

    keys = sorted(feats)
    tmp = path.with_suffix(f".{os.getpid()}.{time.time_ns()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"features": np.stack([feats[k] for k in keys]).astype(np.float32)}, str(tmp),
                  metadata={"keys": json.dumps(keys)})  # fmt: skip
        tmp.replace(path)
    except Exception as e:  # disk full, read-only folder: only costs time later
        from mg5bench.core.notes import note

        tmp.unlink(missing_ok=True)
        note(f"{path}: feature cache not written ({getattr(e, 'strerror', None) or e}); scoring goes on without it")


def encode_by_content(evaluator: Any, images: Sequence[str], texts: Sequence[str], cache_file: Path | None,
                      progress: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int, int]:  # fmt: skip
    """Raw features of ``images`` (by path) and normalised features of ``texts``, reusing a cache keyed by the
    images' and texts' contents (so a regenerated image is never answered from its old features). Returns (image
    features by path, text features by text, images encoded, texts encoded)."""
    from mg5bench.core.hashing import HashCache, sha256_bytes

    hashes = HashCache().many(images) if images else {}
    img_keys = {p: "img:" + hashes[p] for p in images}
    txt_keys = {t: "txt:" + sha256_bytes(t) for t in texts}
    cached = _content_cache(cache_file, int(evaluator.dim)) if cache_file is not None else {}
    todo_img = [p for p in images if img_keys[p] not in cached]
    todo_txt = [t for t in texts if txt_keys[t] not in cached]
    if todo_img:
        new = evaluator.encode_images_raw(todo_img, progress=progress).numpy()
        cached.update({img_keys[p]: v for p, v in zip(todo_img, new, strict=True)})
    if todo_txt:
        new = evaluator.encode_texts(list(todo_txt)).numpy()
        cached.update({txt_keys[t]: v for t, v in zip(todo_txt, new, strict=True)})
    if cache_file is not None and (todo_img or todo_txt):
        _save_content_cache(cache_file, cached)
    return ({p: cached[img_keys[p]] for p in images}, {t: cached[txt_keys[t]] for t in texts}, len(todo_img),
            len(todo_txt))  # fmt: skip


def build_bank(
    evaluator: Any,
    items: Sequence[ScoreItem],
    sset: SampleSet,
    cache_dir: Path | None,
    progress: bool,
    inception: Any = None,
    content_cache: Path | None = None,
) -> tuple[FeatureBank, dict[str, int]]:
    """Encode every image and text the metrics will ask for, each once: ground-truth images through the data's
    feature cache, generated images and texts through ``content_cache`` (a run's own, keyed by content)."""
    gt_paths = sorted({p for it in items for p in it.gt_images})
    gen_paths = sorted({p for it in items for p in it.gen_images} - set(gt_paths))
    cache_file = _feature_cache_path(cache_dir, evaluator, sset.fingerprint, sset.split) if cache_dir else None
    images, n_gt = encode_images_cached(evaluator, gt_paths, cache_file, progress)
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
    gen_feats, tfeat, n_gen, n_txt = encode_by_content(evaluator, gen_paths, order, content_cache, progress)
    images.update(gen_feats)
    tfeats = [tfeat[t] for t in order]
    scale = evaluator.logit_scale
    dist = None
    if inception is not None:  # FID / KID on Inception-v3 pool features instead of the evaluator's
        paths = gt_paths + gen_paths
        dist = dict(zip(paths, inception.encode_pool(paths).numpy(), strict=True))
    bank = FeatureBank(images, dict(zip(order, tfeats, strict=True)), scale, evaluator.dim, dist)
    return bank, {
        "images_encoded": n_gt + n_gen,
        "gt_images_from_cache": len(gt_paths) - n_gt,
        "generated_images_from_cache": len(gen_paths) - n_gen,
        "texts_encoded": n_txt,
        "texts_from_cache": len(order) - n_txt,
    }


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def resolve_metrics(cfg: Any, synthetic: bool, metrics: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The metric names to compute (the task's list unless given; unknown names fail here, before anything
    is computed) and notes on what was left out: a metric that ``needs_scenes`` is dropped on real data, or
    refused if it was asked for by name."""
    from mg5bench.metrics import metric_class

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
    from mg5bench.data.io import check_output_folder

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
    from mg5bench.evaluators import InceptionFeatures, LazyEvaluator

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


# ---------------------------------------------------------------------------------------------
# scoring a stored run (``mg5bench score RUN_FOLDER``; ``mg5bench run`` goes through here too)

SCORER_VERSION = 2  # 2: FID bootstrap replicates through the weighted formula (equal to torchmetrics to 1e-9)


@dataclass
class ScoreResult:
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
    from mg5bench.evaluators import evaluator_identity
    from mg5bench.runs.store import RunStore, stored_prefix

    check_resamples(resamples, seed)
    store = RunStore(Path(folder))
    info = store.read_info()
    spec = info["spec"]
    cfg = get_task(spec["task"], spec.get("task_args") or {})
    if sset is None:
        sset = build_samples(cfg, spec.get("data"), spec["split"], cache_dir=cache_dir, progress=progress)
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
    sub = dataclasses.replace(sset, samples=sset.samples[:n])
    names, notes = resolve_metrics(cfg, sset.source.synthetic, metrics)
    evaluator, warnings = resolve_evaluator(evaluator, sset.source.synthetic)
    notes = [*warnings, *notes]
    dev = resolve_device(device)
    ev_id = evaluator_identity(evaluator)
    if inception is not None and not Path(inception).is_file():
        from mg5bench.evaluators import INCEPTION_HELP

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
    from mg5bench.data.io import check_output_folder

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
