"""Oracle accuracy of a text-to-image diffusers pipeline on the world's level-1 val captions.

    python -m mg5bench.eval_t2i PIPELINE_DIR [--n 200] [--guidance-scale 3] [--num-inference-steps 25] [--seed 0]

Generates one image per caption with a per-caption torch.Generator, parses it with the scene oracle
and prints per-attribute and exact-scene accuracy (the numbers the backbone's model card reports).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def evaluate(
    pipeline_dir: Path, n: int = 200, guidance: float = 3.0, steps: int = 25, seed: int = 0, batch: int = 50,
    world: Path | None = None, split: str = "val",
) -> dict[str, Any]:  # fmt: skip
    import torch

    from mg5bench.data.cc3m import read_cc3m
    from mg5bench.data.oracle import ATTRIBUTES, compare_scene, parse_image
    from mg5bench.data.world import WorldConfig, ensure_world, load_scenes
    from reference_model.t2i import load_pipeline

    root = world or ensure_world(WorldConfig(level=1), progress=False)
    recs = read_cc3m(root / "CC3M", split, check_images=False)[:n]
    scenes = load_scenes(root)
    pipe = load_pipeline(pipeline_dir)
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    correct = dict.fromkeys(ATTRIBUTES, 0)
    exact, t0 = 0, time.time()
    for i in range(0, len(recs), batch):
        chunk = recs[i : i + batch]
        gens = [torch.Generator().manual_seed(seed * 1_000_003 + i + j) for j in range(len(chunk))]
        with torch.inference_mode():
            images = pipe([r.caption for r in chunk], num_inference_steps=steps, guidance_scale=guidance,
                          generator=gens, height=size, width=size).images  # fmt: skip
        for r, im in zip(chunk, images, strict=True):
            res = compare_scene(scenes[str(r.image)]["objects"], parse_image(np.asarray(im)))
            exact += res["exact"]
            for a in ATTRIBUTES:
                correct[a] += res["correct"][a] / max(res["n_objects"], 1)
    k = len(recs)
    return {
        "n": k,
        "guidance": guidance,
        "steps": steps,
        "seed": seed,
        **{a: correct[a] / k for a in ATTRIBUTES},
        "exact": exact / k,
        "seconds": round(time.time() - t0, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--num-inference-steps", type=int, default=25, help="diffusion steps (not training steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--append", type=Path, help="also append the result as one JSON line to this file")
    ap.add_argument("--train-step", type=int, help="training step of the checkpoint (recorded with --append)")
    args = ap.parse_args(argv)
    result = evaluate(args.pipeline, args.n, args.guidance_scale, args.num_inference_steps, args.seed)
    if args.train_step is not None:
        result = {"train_step": args.train_step, **result}
    print(json.dumps(result))
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
