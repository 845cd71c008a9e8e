"""Oracle accuracy of a text-to-image diffusers pipeline on a world's val captions (default: the embedded world):
the curve the backbones card reports. Goes through ``mg5bench.api.run`` (``sd2`` with ``path=PIPELINE`` on
CC3M), so every caption is generated with its own torch.Generator seeded from (seed, sample id) and stored
under ``--runs``.

    python -m mg5bench.modelcards.t2i PIPELINE_DIR [--n 200] [--guidance-scale 3] [--num-inference-steps 25] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from mg5bench.modelcards.common import oracle_table, summarise


def evaluate(
    pipeline_dir: Path, n: int = 200, guidance: float = 3.0, steps: int = 25, seed: int = 0, batch: int | None = None,
    world: Path | None = None, split: str = "val", runs: Path = Path("runs/cards"), progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Per-attribute and exact-scene accuracy of the first ``n`` captions of ``split``; ``batch``: the runner's
    batch size (default: the sd2 adapter's)."""
    from mg5bench import api
    from mg5bench.tasks import build_samples, get_task

    t0 = time.time()
    data = str(world) if world is not None else None
    samples = build_samples(get_task("cc3m"), data, split, progress=progress).samples[:n]
    spec = api.RunSpec(task="cc3m", model="sd2", split=split, data=data, limit=len(samples), seed=seed,
                       generation=api.GenerationConfig(guidance_scale=guidance, num_inference_steps=steps),
                       model_args={"path": str(Path(pipeline_dir).resolve())})  # fmt: skip
    run = api.run(spec, runs, batch_size=batch, metrics=["scene_accuracy"], progress=progress)
    acc = summarise(oracle_table(run, samples))
    return {"n": acc.pop("n"), "guidance": guidance, "steps": steps, "seed": seed, **acc,
            "seconds": round(time.time() - t0, 1), "run": str(run.folder)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Print one JSON line (and append it to ``--append``): the backbone's accuracy at this training step."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("--n", type=int, default=200, help="val captions (default 200)")
    ap.add_argument("--guidance-scale", type=float, default=3.0, help="default 3")
    ap.add_argument("--num-inference-steps", type=int, default=25, help="diffusion steps, not training steps "
                    "(default 25)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="default 0")
    ap.add_argument("--append", type=Path, help="also append the result as one JSON line to this file")
    ap.add_argument("--train-step", type=int, help="training step of the checkpoint (recorded with --append)")
    ap.add_argument("--runs", type=Path, default=Path("runs/cards"), help="where the runs are stored (default "
                    "runs/cards)")  # fmt: skip
    ap.add_argument("--world", type=Path, help="a world folder (default: the embedded world)")
    args = ap.parse_args(argv)
    result = evaluate(args.pipeline, args.n, args.guidance_scale, args.num_inference_steps, args.seed,
                      world=args.world, runs=args.runs)  # fmt: skip
    if args.train_step is not None:
        result = {"train_step": args.train_step, **result}
    print(json.dumps(result))
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
