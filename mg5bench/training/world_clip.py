"""The embedded evaluator: a small open_clip CLIP trained contrastively on the synthetic world.

It is the default feature backbone for CLIP scores, FID and KID when no real weights are given.
It is trained on scenes drawn from its own random stream (``TRAIN_SEED``), never on the world splits
that generators train on, so the suite does not grade a model with its own encoder.

    python -m mg5bench.training.world_clip train --out mg5bench/assets/world_clip --steps 3000
    python -m mg5bench.training.world_clip eval mg5bench/assets/world_clip
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "world_clip"
TRAIN_SEED = 90_001  # the evaluator's own scene stream; generators use the world splits (seed 0)
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 48,
        "patch_size": 8,
        "width": 96,
        "layers": 3,
        "head_width": 32,
        "mlp_ratio": 4.0,
    },
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
PREPROCESS_CFG: dict[str, Any] = {
    "size": 48,
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


EMPTY_CAPTION = "an empty picture ."
EMPTY_P = 0.05  # share of training images with no object at all


def _scene_batch(rng: np.random.Generator, n: int, degrade_p: float) -> tuple[list[Any], list[str], list[tuple]]:
    """n fresh scenes (levels 1 and 2 mixed, a few empty): PIL images, captions and discrete scene keys."""
    from PIL import Image

    from mg5bench.data.scenes import BACKGROUND, Geometry, place, render, scene_caption, scene_key
    from mg5bench.data.world_checks import DEGRADATIONS, degrade
    from mg5bench.data.world_content import random_scene_objects

    geom = Geometry(48)
    images, captions, keys = [], [], []
    kinds = [k for k in DEGRADATIONS if k != "clean"]
    for _ in range(n):
        k = 0 if rng.random() < EMPTY_P else int(rng.choice([1, 2]))
        objs = random_scene_objects(rng, k)
        scene = {"background": list(BACKGROUND), "objects": [place(o, geom, rng) for o in objs]}
        arr = render(scene, 48)
        if rng.random() < degrade_p:
            arr = degrade(arr, kinds[int(rng.integers(len(kinds)))], rng)
        images.append(Image.fromarray(arr))
        captions.append(scene_caption(scene, int(rng.integers(3))) if objs else EMPTY_CAPTION)
        keys.append(scene_key(scene))
    return images, captions, keys


def attribute_overlap(keys: list[tuple]) -> np.ndarray:
    """(B, B) graded similarity of scenes: 1 for the same discrete scene, else the cosine of their
    attribute-count vectors (shape, colour, size and cell histograms), so a scene that shares colour
    and cell with another is closer to it than one that shares nothing; empty scenes share nothing."""
    from mg5bench.data.scenes import COLOURS, SHAPES, SIZES

    index = {("shape", v): i for i, v in enumerate(SHAPES)}
    index.update({("colour", v): len(SHAPES) + i for i, v in enumerate(COLOURS)})
    index.update({("size", v): len(SHAPES) + len(COLOURS) + i for i, v in enumerate(SIZES)})
    base = len(SHAPES) + len(COLOURS) + len(SIZES)
    vec = np.zeros((len(keys), base + 9))
    for r, key in enumerate(keys):
        for shape, colour, size, cell in key:
            vec[r, [index[("shape", shape)], index[("colour", colour)], index[("size", size)], base + cell]] += 1
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    unit = np.divide(vec, norms, out=np.zeros_like(vec), where=norms > 0)
    sim = np.minimum(unit @ unit.T, 0.95)
    same = np.array([[a == b for b in keys] for a in keys])
    return np.where(same, 1.0, sim)


def build_model() -> tuple[Any, Any, Any]:
    """A fresh (random) model with its open_clip preprocess and tokenizer."""
    import open_clip

    model = open_clip.CLIP(**MODEL_CFG)
    preprocess = open_clip.image_transform(
        PREPROCESS_CFG["size"], is_train=False, mean=PREPROCESS_CFG["mean"], std=PREPROCESS_CFG["std"],
        interpolation=PREPROCESS_CFG["interpolation"], resize_mode=PREPROCESS_CFG["resize_mode"],
    )  # fmt: skip
    tokenizer = open_clip.SimpleTokenizer(context_length=MODEL_CFG["text_cfg"]["context_length"])
    return model, preprocess, tokenizer


def multi_positive_loss(img: Any, txt: Any, keys: list[tuple], scale: Any, tau: float = 0.1) -> Any:
    """InfoNCE with soft targets: every pair showing the same discrete scene is a positive (the world
    has few distinct level-1 scenes, so batches hold duplicates that plain CLIP loss would push apart),
    and partly matching scenes get a little target mass (softmax of attribute overlap / tau), so that
    cosines grade partial agreement instead of treating every wrong scene alike."""
    import torch

    target = torch.softmax(torch.tensor(attribute_overlap(keys), dtype=torch.float32) / tau, dim=1)
    logits = scale * img @ txt.t()
    loss_i = -(target * logits.log_softmax(1)).sum(1).mean()
    loss_t = -(target * logits.t().log_softmax(1)).sum(1).mean()
    return (loss_i + loss_t) / 2


def train(out: Path, steps: int = 3000, batch: int = 256, lr: float = 1e-3, seed: int = 0, threads: int = 2) -> dict:
    """Train from scratch and save an open_clip ``local-dir`` folder + model card. Returns the card data."""
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng([TRAIN_SEED, seed])
    model, preprocess, tokenizer = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.98))
    warmup = max(steps // 20, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + np.cos(np.pi * min(s / steps, 1.0))))
    )
    t0 = time.time()
    losses = []
    model.train()
    bar = tqdm(range(steps), desc="world CLIP", unit="step")
    for step in bar:
        images, captions, keys = _scene_batch(rng, batch, degrade_p=0.3)
        x = torch.stack([preprocess(im) for im in images])  # (B, 3, 48, 48)
        t = tokenizer(captions)  # (B, 32)
        img = torch.nn.functional.normalize(model.encode_image(x), dim=-1)  # (B, 64)
        txt = torch.nn.functional.normalize(model.encode_text(t), dim=-1)  # (B, 64)
        loss = multi_positive_loss(img, txt, keys, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    wall = time.time() - t0
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2) + "\n"
    )
    return {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "train_seed": TRAIN_SEED,
        "wall_time_s": round(wall, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4),
        "threads": threads,
    }


def retrieval(folder: Path, world_root: Path, split: str = "val") -> dict[str, Any]:
    """Caption <-> image top-1 retrieval on a world's CC3M split. A hit is a retrieved item showing the
    same discrete scene as the query (the world repeats scenes, so item identity is the wrong test);
    per attribute: the share of retrieved items that agree with the query on that attribute."""
    import torch

    from mg5bench.data.cc3m import read_cc3m
    from mg5bench.data.oracle import ATTRIBUTES
    from mg5bench.data.world import load_scenes
    from mg5bench.scoring.evaluators import load_evaluator

    ev = load_evaluator(f"open_clip:local-dir:{folder}")
    recs = read_cc3m(world_root / "CC3M", split, check_images=False)
    scenes = load_scenes(world_root)
    objs = [scenes[str(r.image)]["objects"] for r in recs]
    from PIL import Image

    img = ev.encode_images([Image.open(r.image) for r in recs])
    txt = ev.encode_texts([r.caption for r in recs])
    sim = (txt @ img.t()).numpy()  # (N captions, N images)
    out: dict[str, Any] = {"n": len(recs), "split": split}
    for direction, s in (("text_to_image", sim), ("image_to_text", sim.T)):
        best = s.argmax(1)
        keys = [tuple(sorted((o["shape"], o["colour"], o["size"], o["cell"]) for o in ob)) for ob in objs]
        out[direction] = float(np.mean([keys[i] == keys[j] for i, j in enumerate(best)]))
        per_attr = {}
        for a in ATTRIBUTES:
            per_attr[a] = float(
                np.mean([sorted(o[a] for o in objs[i]) == sorted(o[a] for o in objs[j]) for i, j in enumerate(best)])
            )
        out[f"{direction}_per_attribute"] = per_attr
    del torch
    return out


def write_card(folder: Path, info: dict[str, Any], evals: dict[str, Any]) -> None:
    lines = [
        "# world-clip: the embedded evaluator",
        "",
        "A small open_clip CLIP (custom config in `open_clip_config.json`, weights in fp16 safetensors)",
        "trained contrastively on freshly rendered synthetic-world scenes (levels 1 and 2 mixed, 30% of",
        "images blurred, noised or JPEG-compressed) from its own random stream (seed "
        f"{info['train_seed']}), never on the world splits that generators train on.",
        "",
        "Loss: InfoNCE with soft targets: pairs showing the same discrete scene are positives, partly",
        "matching scenes get target mass softmax(attribute overlap / 0.1), and 5% of training images are",
        "empty (caption 'an empty picture .'), so cosines grade partial agreement and a blank canvas matches",
        "nothing.",
        "",
        "## Training",
        "- command: `python -m mg5bench.training.world_clip train --out mg5bench/assets/world_clip "
        f"--steps {info['steps']} --batch {info['batch']} --lr {info['lr']} --seed {info['seed']}`",
        f"- steps {info['steps']}, batch {info['batch']}, AdamW lr {info['lr']} (warmup + cosine), seed {info['seed']}",
        f"- wall time here: {info['wall_time_s']} s on {info['threads']} CPU threads (sharing the machine with"
        f" other work); final loss {info['final_loss']}",
        "",
        "## Retrieval (top-1; a hit shows the same discrete scene as the query)",
        "",
        "| world split | n | caption -> image | image -> caption |",
        "|---|---|---|---|",
    ]
    for name, r in evals.items():
        lines.append(f"| {name} | {r['n']} | {r['text_to_image']:.3f} | {r['image_to_text']:.3f} |")
    lines += ["", "Per attribute (share of retrieved items agreeing with the query):", ""]
    lines += ["| world split | direction | shape | colour | size | cell |", "|---|---|---|---|---|---|"]
    for name, r in evals.items():
        for d in ("text_to_image", "image_to_text"):
            p = r[f"{d}_per_attribute"]
            lines.append(f"| {name} | {d} | {p['shape']:.3f} | {p['colour']:.3f} | {p['size']:.3f} | {p['cell']:.3f} |")
    lines += ["", "Reproduce the table: `python -m mg5bench.training.world_clip eval mg5bench/assets/world_clip`.", ""]
    (folder / "MODEL_CARD.md").write_text("\n".join(lines))
    (folder / "training.json").write_text(json.dumps({"training": info, "retrieval": evals}, indent=2) + "\n")


def evaluate(folder: Path) -> dict[str, Any]:
    from mg5bench.data.world import WorldConfig, ensure_world

    evals = {}
    for level in (1, 2):
        root = ensure_world(WorldConfig(level=level))
        evals[f"level{level} val"] = retrieval(folder, root, "val")
    return evals


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train")
    p.add_argument("--out", type=Path, default=ASSET_DIR)
    p.add_argument("--write-card-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    e = sub.add_parser("eval")
    e.add_argument("folder", type=Path, nargs="?", default=ASSET_DIR)
    args = ap.parse_args(argv)
    if args.cmd == "train" and args.write_card_only:  # re-render the card from training.json
        saved = json.loads((args.out / "training.json").read_text())
        write_card(args.out, saved["training"], saved["retrieval"])
    elif args.cmd == "train":
        info = train(args.out, args.steps, args.batch, args.lr, args.seed, args.threads)
        evals = evaluate(args.out)
        write_card(args.out, info, evals)
        print(json.dumps(evals, indent=2))
    else:
        print(json.dumps(evaluate(args.folder), indent=2))


if __name__ == "__main__":
    main()
