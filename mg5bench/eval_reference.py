"""Oracle scene accuracy of a reference MiniGPT-5 checkpoint on the embedded world's val split, next to
the caption-only text-to-image backbone (the numbers the model cards report).

    python -m mg5bench.eval_reference reference_model/checkpoints/stage2-vist --task vist --n 40

For VIST every story step k is generated from the official ``-gen`` source (system prompt, previous
captions and images, current caption); the backbone gets only caption k. Each sample has its own
torch.Generator seeded from (seed, sample name), so numbers do not depend on batching.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def sample_generator(seed: int, name: str) -> Any:
    """A torch.Generator seeded from (run seed, sample name)."""
    import torch

    h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)
    return torch.Generator().manual_seed(h)


def _interleave(source: str, images: list[Any]) -> list[Any]:
    """Source text with <Img><ImageHere></Img> placeholders + images -> [str, image, str, ...]."""
    parts = source.split("<Img><ImageHere></Img>")
    if len(parts) != len(images) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders but {len(images)} images")
    out: list[Any] = [parts[0]]
    for im, text in zip(images, parts[1:], strict=True):
        out += [im, text]
    return out


def _score(images: list[Any], scenes: list[dict[str, Any]]) -> dict[str, Any]:
    from mg5bench.data.oracle import ATTRIBUTES, compare_scene, parse_image

    correct = dict.fromkeys(ATTRIBUTES, 0.0)
    exact = produced = 0
    for im, scene in zip(images, scenes, strict=True):
        if im is None:
            continue  # counted as wrong: the denominators are all samples
        produced += 1
        res = compare_scene(scene["objects"], parse_image(np.asarray(im)))
        exact += res["exact"]
        for a in ATTRIBUTES:
            correct[a] += res["correct"][a] / max(res["n_objects"], 1)
    n = max(len(scenes), 1)
    return {"n": len(scenes), "image_rate": produced / n, **{a: correct[a] / n for a in ATTRIBUTES}, "exact": exact / n}


def evaluate(
    ckpt: Path, task: str = "vist", n: int = 40, seed: int = 0, batch: int = 20, world: Path | None = None,
    guidance: float | None = None, steps: int | None = None, baseline: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Generate for the first ``n`` stories / conversations / captions of the val split and score them."""
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from mg5bench.data.world import WorldConfig, ensure_world, load_scenes
    from reference_model.data import cc3m_examples, mmdialog_examples, vist_examples
    from reference_model.modeling import load_checkpoint

    root = world or ensure_world(WorldConfig(level=1), progress=False)
    scenes = load_scenes(root)
    model = load_checkpoint(ckpt)
    nv = model.cfg.num_vokens
    if task == "vist":
        exs = vist_examples(root / "VIST", "val", train=False, num_vokens=nv)
        keep = sorted({e.task.split("_")[0] for e in exs})[:n]
        exs = [e for e in exs if e.task.split("_")[0] in keep]
    elif task == "mmdialog":
        exs = [e for e in mmdialog_examples(root / "MMDialog", "val", train=False, num_vokens=nv) if e.output_image]
        keep = sorted({e.task.split("_")[0] for e in exs})[:n]
        exs = [e for e in exs if e.task.split("_")[0] in keep]
    elif task == "cc3m":
        exs = cc3m_examples(root / "CC3M", "val", train=False, num_vokens=nv)[:n]
    else:
        raise ValueError(f"unknown task {task!r}")
    kw = {"guidance_scale": guidance, "num_inference_steps": steps}
    t0 = time.time()
    made: list[Any] = []
    texts: list[str] = []
    for i in tqdm(range(0, len(exs), batch), desc=f"minigpt5 {task}", unit="batch"):
        chunk = exs[i : i + batch]
        inputs = [_interleave(e.source, [Image.open(p).convert("RGB") for p in e.input_images]) for e in chunk]
        outs = model.generate(inputs, [sample_generator(seed, e.task) for e in chunk], **kw)
        for o in outs:
            made.append(next((s["image"] for s in o if "image" in s), None))
            texts.append(" ".join(s["text"] for s in o if "text" in s))
    target_scenes = [scenes[str(Path(e.output_image).resolve())] for e in exs]
    result: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "task": task,
        "split": "val",
        "seed": seed,
        "guidance_scale": guidance if guidance is not None else model.cfg.guidance_scale,
        "steps": steps or model.cfg.num_inference_steps,
        "minigpt5": _score(made, target_scenes),
        "minigpt5_seconds": round(time.time() - t0, 1),
        "examples": [{"name": e.task, "text": t} for e, t in list(zip(exs, texts, strict=True))[:5]],
    }
    if task == "vist":
        for k in range(5):
            idx = [j for j, e in enumerate(exs) if e.task.endswith(f"_{k}-gen")]
            result[f"minigpt5_step{k}"] = _score([made[j] for j in idx], [target_scenes[j] for j in idx])
    if baseline:
        pipe = model.pipe
        cap = [e.source.split("scene description: ")[-1].split(" ###")[0] if task == "vist" else e.caption or e.target
               for e in exs]  # fmt: skip
        base: list[Any] = []
        g = result["guidance_scale"]
        for i in tqdm(range(0, len(exs), batch), desc="t2i caption-only", unit="batch"):
            chunk = exs[i : i + batch]
            with torch.inference_mode():
                base += pipe(cap[i : i + batch], generator=[sample_generator(seed, e.task) for e in chunk],
                             guidance_scale=g, num_inference_steps=result["steps"], height=model.cfg.image_size,
                             width=model.cfg.image_size).images  # fmt: skip
        result["t2i_caption_only"] = _score(base, target_scenes)
        if task == "vist":
            for k in range(5):
                idx = [j for j, e in enumerate(exs) if e.task.endswith(f"_{k}-gen")]
                result[f"t2i_step{k}"] = _score([base[j] for j in idx], [target_scenes[j] for j in idx])
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--task", choices=["vist", "mmdialog", "cc3m"], default="vist")
    ap.add_argument("--n", type=int, default=40, help="stories / conversations / captions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the result JSON here")
    args = ap.parse_args(argv)
    res = evaluate(args.checkpoint, args.task, args.n, args.seed, guidance=args.guidance, steps=args.steps,
                   baseline=not args.no_baseline)  # fmt: skip
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
