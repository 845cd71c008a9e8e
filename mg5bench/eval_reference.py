"""Oracle scene accuracy of a reference MiniGPT-5 checkpoint on the embedded world's val split, next to
the caption-only text-to-image backbone (the numbers the model cards report).

    python -m mg5bench.eval_reference reference_model/checkpoints/stage2-vist --task vist --n 40

For VIST every story step k is generated from the official ``-gen`` source (system prompt, previous
captions and images, current caption); the backbone gets only caption k. Each sample has its own
torch.Generator seeded from (seed, sample name), so numbers do not depend on batching.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.runner import sample_generator


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
    result["_images"] = {"minigpt5": made[:10], "targets": [e.output_image for e in exs[:10]],
                         "names": [e.task for e in exs[:10]]}  # fmt: skip
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
        result["_images"]["t2i"] = base[:10]
        if task == "vist":
            for k in range(5):
                idx = [j for j, e in enumerate(exs) if e.task.endswith(f"_{k}-gen")]
                result[f"t2i_step{k}"] = _score([base[j] for j in idx], [target_scenes[j] for j in idx])
    return result


def sample_strip(result: dict[str, Any], path: Path, scale: int = 2) -> None:
    """A PNG with the targets (top), MiniGPT-5's images (middle) and the caption-only T2I's (bottom)."""
    from PIL import Image

    imgs = result["_images"]
    rows = [[Image.open(p).convert("RGB") for p in imgs["targets"]], imgs["minigpt5"], imgs.get("t2i", [])]
    rows = [r for r in rows if r]
    size = max(im.size[0] for r in rows for im in r if im is not None)
    canvas = Image.new("RGB", (size * len(rows[0]) * scale, size * len(rows) * scale), (255, 255, 255))
    for y, row in enumerate(rows):
        for x, im in enumerate(row):
            if im is not None:
                canvas.paste(
                    im.resize((size * scale, size * scale), Image.NEAREST), (x * size * scale, y * size * scale)
                )
    canvas.save(path)


def _lineage(ckpt: Path, state: dict[str, Any]) -> str:
    """One line naming the parent (stage-1) checkpoint: shipped beside this one, or only recorded by sha256."""
    parent = state.get("parent")
    if not parent:
        return "Parent: none (stage 1, or the single-stage ablation: stage 2 from the backbones)."
    name = Path(parent["path"]).name
    where = ("shipped beside this one" if (ckpt.parent / name / "trainable.safetensors").exists() else
             "not shipped (size budget); scripts/train_reference.sh retrains it")  # fmt: skip
    return f"Parent: `{name}` (sha256 {parent['sha256'][:16]}...), {where}."


def write_card(ckpt: Path, result: dict[str, Any], title: str, command: str) -> Path:
    """README.md model card of a checkpoint: command, steps, wall time, final losses, oracle accuracy
    next to the caption-only T2I, a sample strip. Also writes eval_val.json."""
    from mg5bench.data.oracle import ATTRIBUTES

    state = json.loads((ckpt / "state.json").read_text())
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    (ckpt / "eval_val.json").write_text(json.dumps(public, indent=2) + "\n")
    sample_strip(result, ckpt / "samples.png")
    cols = ["image_rate", *ATTRIBUTES, "exact"]
    lines = [f"# {title}", "", f"Stage: {state['stage']} on {state['task']}; {state['steps']} steps; "
             f"{state['train_examples']} training examples (data fingerprint {state['data_fingerprint']}); "
             f"{state['processes']} process(es); wall time of the last call {state['wall_s_this_call']} s.", "",
             "Train command:", "", f"    {state['command']}", "", "Evaluation command:", "", f"    {command}", "",
             _lineage(ckpt, state), "",
             f"Final training losses (mean of the last 100 steps): `{json.dumps(state['final_losses'])}`", "",
             f"Last validation losses: `{json.dumps(state['val_log'][-1] if state['val_log'] else {})}`", "",
             f"## Oracle scene accuracy on the val split ({result['task']}, guidance {result['guidance_scale']}, "
             f"{result['steps']} steps, seed {result['seed']})", "",
             "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]  # fmt: skip
    keys = [("MiniGPT-5 (this checkpoint)", "minigpt5"), ("caption-only T2I backbone", "t2i_caption_only")]
    if result["task"] == "vist":
        keys += [(f"MiniGPT-5, step {k}", f"minigpt5_step{k}") for k in range(5)]
        keys += [(f"T2I, step {k}", f"t2i_step{k}") for k in range(5)]
    for label, key in keys:
        if key in result:
            lines.append(
                f"| {label} (n={result[key]['n']}) | " + " | ".join(f"{result[key][c]:.3f}" for c in cols) + " |"
            )
    lines += ["", "Samples (`samples.png`): top = targets, middle = this checkpoint, bottom = caption-only T2I.", "",
              "Generated text of the first samples:", ""]  # fmt: skip
    lines += [f"- `{e['name']}`: {e['text']!r}" for e in result["examples"]]
    (ckpt / "README.md").write_text("\n".join(lines) + "\n")
    return ckpt / "README.md"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--task", choices=["vist", "mmdialog", "cc3m"], default="vist")
    ap.add_argument("--n", type=int, default=40, help="stories / conversations / captions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--guidance-scale", type=float, default=None, help="default: the checkpoint's")
    ap.add_argument("--num-inference-steps", type=int, default=None, help="diffusion steps (default: the checkpoint's)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the result JSON here")
    ap.add_argument(
        "--card", metavar="TITLE", help="write README.md, eval_val.json and samples.png into the checkpoint"
    )
    args = ap.parse_args(argv)
    res = evaluate(args.checkpoint, args.task, args.n, args.seed, guidance=args.guidance_scale,
                   steps=args.num_inference_steps, baseline=not args.no_baseline)  # fmt: skip
    text = json.dumps({k: v for k, v in res.items() if not k.startswith("_")}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.card:
        import sys

        cmd = "python -m mg5bench.eval_reference " + " ".join(a for a in (argv or sys.argv[1:]))
        print(write_card(args.checkpoint, res, args.card, cmd))


if __name__ == "__main__":
    main()


def write_backbones_card(folder: Path, t2i_run: Path, lm_info: dict[str, Any] | None = None,
                         vision_info: dict[str, Any] | None = None, notes: str = "") -> Path:  # fmt: skip
    """README.md of the shipped backbones: the T2I accuracy curve (oracle, level-1 val captions), the VAE,
    the LM and the vision path, with the commands that made them."""
    folder = Path(folder)
    curve = [json.loads(x) for x in (t2i_run / "curve.jsonl").read_text().splitlines() if x.strip()]
    vae = json.loads((t2i_run / "vae_info.json").read_text()) if (t2i_run / "vae_info.json").exists() else {}
    cfg = json.loads((t2i_run / "t2i_config.json").read_text())
    cols = ["colour", "shape", "size", "cell", "exact"]
    lines = ["# Backbones of the embedded world", "",
             "Trained on the synthetic world's train split (level 1, seed 0, 48 px). Retrain with "
             "`scripts/train_t2i.sh runs/t2i 6000 1000 32` and `python -m reference_model.train backbones ...` "
             "(see `scripts/train_reference.sh`; the shipped UNet came from a chain of warm starts, see Notes).", "",
             "## t2i/ — latent diffusion (StableDiffusionPipeline folder)", "",
             f"VAE: {vae.get('steps')} steps, {vae.get('wall_s')} s here, weighted MSE {vae.get('final_mse')}, "
             f"scaling factor {vae.get('scaling_factor')}. UNet channels {cfg['unet_channels']}, "
             f"{cfg['unet_layers_per_block']} layer per block, cross-attention at every level "
             f"({cfg['cross_attention_everywhere']}), text encoder {cfg['text_layers']} layers x {cfg['text_hidden']}, "
             f"EMA {cfg['ema_decay']}, Min-SNR {cfg['snr_gamma']}, caption drop {cfg['cfg_drop']}.", "",
             "Oracle accuracy on 200 level-1 val captions (guidance 3, 25 DDIM steps, one generator per caption); "
             "target: colour >= 0.95, shape >= 0.85, size >= 0.9, cell >= 0.85, exact >= 0.6.", "",
             "| UNet step | " + " | ".join(cols) + " | eval s | run |", "|---" * (len(cols) + 3) + "|"]  # fmt: skip
    for row in curve:
        lines.append(f"| {row['train_step']} | " + " | ".join(f"{row[c]:.3f}" for c in cols)
                     + f" | {row['seconds']} | {row.get('run', '')} |")  # fmt: skip
    if lm_info:
        lines += ["", "## lm/ — LLaMA-architecture LM + byte-level BPE", "", f"`{json.dumps(lm_info)}`"]
    if vision_info:
        lines += ["", "## vision/ — encoder + Q-Former + projection", "", f"`{json.dumps(vision_info)}`"]
    if notes:
        lines += ["", "## Notes", "", notes]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("\n".join(lines) + "\n")
    return folder / "README.md"
