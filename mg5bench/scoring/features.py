"""Features for the metrics, each image and text encoded once per scoring: ground-truth images through the data's
feature cache (keyed by the evaluator's weights and preprocessing, the data fingerprint and the split), generated
images and texts through a run's content-keyed cache (``encode_by_content``: a regenerated image is never answered
from its old features). A cache that fails to load is deleted with a note and rebuilt; one that cannot be written
only costs time."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.core.hashing import sha256_bytes
from mg5bench.metrics.base import FeatureBank, ScoreItem
from mg5bench.metrics.clip import VOKEN_STRING
from mg5bench.metrics.mmrel import clean_text_minigpt5
from mg5bench.tasks import SampleSet


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
