"""Does a MiniGPT-5 checkpoint's image path survive a change of prompt? Forced [IMG0] oracle accuracy on CC3M
val captions placed in three prompts: the bare caption (stage 1's format), the CC3M instruction prompt (stage 1's
every-Nth copies) and the VIST step-0 ``-gen`` prompt (stage 2's format). The numbers in reference_model/README.md.

    .venv/bin/python scripts/probe_prompts.py reference_model/checkpoints/stage1 --n 40
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--n", type=int, default=40, help="CC3M val captions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from mg5bench.core.seeding import sample_generator
    from mg5bench.data.oracle import accuracy
    from mg5bench.data.world import WorldConfig, ensure_world, load_scenes
    from reference_model.data import SYSTEM_CC3M, SYSTEM_VIST, VIST_GEN, cc3m_examples
    from reference_model.modeling import load_checkpoint

    torch.set_num_threads(args.threads)
    root = ensure_world(WorldConfig(level=1), progress=False)
    scenes = load_scenes(root)
    model = load_checkpoint(args.checkpoint)
    exs = cc3m_examples(root / "CC3M", "val", train=False, num_vokens=model.cfg.num_vokens)[: args.n]
    prompts = {
        "bare caption": lambda c: c,
        "CC3M instruction": lambda c: f"{SYSTEM_CC3M}###Human: generate image with caption: {c} ###Assistant:",
        "VIST step 0": lambda c: f"{SYSTEM_VIST}###Human: {VIST_GEN[0].format(c=c)}",
    }
    targets = [scenes[str(Path(e.output_image).resolve())] for e in exs]
    out = {}
    for name, fmt in prompts.items():
        made = []
        for i in tqdm(range(0, len(exs), 20), desc=name, unit="batch"):
            chunk = exs[i : i + 20]
            gens = [sample_generator(args.seed, e.task) for e in chunk]
            res = model.generate([[fmt(e.caption)] for e in chunk], gens, force_generation=True)
            made += [next((s["image"] for s in r if "image" in s), None) for r in res]
        out[name] = {k: round(v, 3) for k, v in accuracy(made, targets).items()}
    print(json.dumps({"checkpoint": str(args.checkpoint), "seed": args.seed, "results": out}, indent=2))


if __name__ == "__main__":
    main()
