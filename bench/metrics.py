"""Throughput of `mg5bench score` against a loop written like the official metric.py, on the same
512 (ground truth, generated) pairs and the same evaluator (the embedded world CLIP).

The official-style loop works one pair at a time: preprocess + encode the ground-truth image, the
generated image and the caption for CLIP-I / CLIP-T, then push both images through the FID feature
extractor again (batch size 1 everywhere, ground truth re-encoded for every pair). `mg5bench score`
batches, encodes each image once, and caches ground-truth features on disk.

    .venv/bin/python bench/metrics.py [--pairs 512]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def official_style(pairs: list[tuple[str, str, str]], ev: Any) -> dict[str, float]:
    from PIL import Image
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=ev.feature_module(), normalize=False)
    clip_i, clip_t = [], []
    model, preprocess, tok = ev.model, ev.preprocess, ev.tokenizer
    with torch.inference_mode():
        for gt, gen, caption in pairs:
            g = Image.open(gt).convert("RGB")
            p = Image.open(gen).convert("RGB")
            fg = torch.nn.functional.normalize(model.encode_image(preprocess(g)[None]), dim=-1)
            fp = torch.nn.functional.normalize(model.encode_image(preprocess(p)[None]), dim=-1)
            ft = torch.nn.functional.normalize(model.encode_text(tok([caption])), dim=-1)
            clip_i.append(float(fg @ fp.T))
            clip_t.append(float(ft @ fp.T))
            to_u8 = lambda im: torch.from_numpy(__import__("numpy").asarray(im)).permute(2, 0, 1)[None]  # noqa: E731
            fid.update(to_u8(g), real=True)
            fid.update(to_u8(p), real=False)
    return {"clip_i": sum(clip_i) / len(clip_i), "clip_t": sum(clip_t) / len(clip_t), "fid": float(fid.compute())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from mg5bench.scoring.evaluators import load_evaluator
    from mg5bench.scoring.scorer import score
    from mg5bench.tasks import build_samples, get_task

    task = get_task("vist")
    sset = build_samples(task, None, "val", progress=False)
    samples = sset.samples[: args.pairs]
    sset = dataclasses.replace(sset, samples=samples)
    shuffled = [s.target_images[0] for s in samples]
    random.Random(0).shuffle(shuffled)
    ev = load_evaluator("embedded")
    with tempfile.TemporaryDirectory() as tmp:
        preds = Path(tmp) / "preds.jsonl"
        preds.write_text(
            "".join(
                json.dumps({"id": s.id, "output": [{"image": g}]}) + "\n"
                for s, g in zip(samples, shuffled, strict=True)
            )
        )
        pairs = [(s.target_images[0], g, s.meta["caption"]) for s, g in zip(samples, shuffled, strict=True)]
        t = time.perf_counter()
        ref = official_style(pairs, ev)
        t_official = time.perf_counter() - t
        kw = dict(metrics=["clip_i", "clip_t", "fid"], progress=False, sset=sset)
        t = time.perf_counter()
        cold = score("vist", preds, None, resamples=0, cache_dir=Path(tmp) / "cache", **kw)
        t_cold = time.perf_counter() - t
        t = time.perf_counter()
        score("vist", preds, None, resamples=0, cache_dir=Path(tmp) / "cache", **kw)
        t_warm = time.perf_counter() - t
        t = time.perf_counter()
        score("vist", preds, None, resamples=1000, cache_dir=Path(tmp) / "cache", **kw)
        t_ci = time.perf_counter() - t
    m = cold["metrics"]
    print(f"{len(pairs)} pairs, evaluator {ev.name}")
    print(f"official-style loop          : {t_official:7.2f} s  clip_i={ref['clip_i']:.4f} clip_t={ref['clip_t']:.4f} "
          f"fid={ref['fid']:.4f}")  # fmt: skip
    print(f"mg5bench score, cold cache   : {t_cold:7.2f} s  clip_i={m['clip_i']['value']:.4f} "
          f"clip_t={m['clip_t']['value']:.4f} fid={m['fid']['value']:.4f}")  # fmt: skip
    print(f"mg5bench score, warm cache   : {t_warm:7.2f} s")
    print(f"mg5bench score, + 1000x CIs  : {t_ci:7.2f} s")
    print(f"throughput ratio (cold)      : {t_official / t_cold:.1f}x")
    print(f"throughput ratio (warm)      : {t_official / t_warm:.1f}x")
    print(f"throughput ratio (with CIs)  : {t_official / t_ci:.1f}x")


if __name__ == "__main__":
    main()
