"""Model card of a reference MiniGPT-5 checkpoint: oracle scene accuracy on the embedded world's val split, per
attribute and (VIST) per story step, next to the caption-only text-to-image backbone (``sd2`` on the checkpoint's
own T2I), both generated and scored through ``mg5bench.api`` exactly as ``mg5bench run`` would.

    python -m mg5bench.modelcards.reference reference_model/checkpoints/stage2-vist --task vist --n 40 \\
        [--card stage2-vist]

``--n``: stories (VIST), conversations (MMDialog) or captions (CC3M), the first n of the val split; every sample of
them is generated from the task's protocol (VIST: the official ``-gen`` source, the story so far and the step
caption; the backbone sees the step caption only) with its own torch.Generator seeded from (seed, sample id).
Generations and scores are stored under ``--runs`` (default runs/cards) and reused by a re-evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mg5bench.modelcards.common import (
    ORACLE_COLUMNS,
    first_groups,
    oracle_table,
    summarise,
    table_rows,
    train_command,
    write_card_text,
)

ENTRY = "python -m mg5bench.modelcards.reference"
GENERATED_HEADINGS = ("## Oracle scene accuracy on the val split",)


def _images(run: Any, ids: list[str]) -> list[Any]:
    """The first generated image of each sample (None when it produced none), as PIL images."""
    from PIL import Image

    from mg5bench.runs.store import RunStore

    records = RunStore(run.folder).done()
    out = []
    for sid in ids:
        path = next((seg["image"] for seg in records[sid]["output"] if "image" in seg), None)
        out.append(None if path is None else Image.open(Path(run.folder) / path).convert("RGB"))
    return out


def evaluate(
    ckpt: Path, task: str = "vist", n: int = 40, seed: int = 0, batch: int | None = None,
    world: Path | str | None = None,
    guidance: float | None = None, steps: int | None = None, baseline: bool = True, runs: Path = Path("runs/cards"),
    progress: bool = True, cross_task: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Generate (what is not stored yet) and score the first ``n`` stories / conversations / captions of the val
    split with the checkpoint and, with ``baseline``, with the caption-only T2I; returns the card's figures.
    ``batch``: the runner's batch size (default: the model's); ``world``: a world folder or a data spec such as
    ``synth:level=3`` (default: the embedded world); ``cross_task``: evaluate a checkpoint trained for another task
    (refused otherwise)."""
    from mg5bench import api
    from mg5bench.runs.store import RunStore
    from mg5bench.tasks import build_samples, get_task
    from reference_model.config import MiniGPT5Config

    ckpt = Path(ckpt)
    data = str(world) if world is not None else None
    cfg = get_task(task)
    samples = build_samples(cfg, data, "val", progress=progress).samples
    limit = first_groups(samples, n)
    samples = samples[:limit]
    options = {"batch_size": batch, "metrics": ["scene_accuracy"], "progress": progress}
    spec = api.RunSpec(task=task, model="minigpt5", split="val", data=data, limit=limit, seed=seed,
                       generation=api.GenerationConfig(guidance_scale=guidance, num_inference_steps=steps),
                       model_args={"checkpoint": str(ckpt.resolve()),
                                   **({"cross_task": "true"} if cross_task else {})})  # fmt: skip
    mine = api.run(spec, runs, **options)
    used = mine.info["generation"]
    table = oracle_table(mine, samples)
    ids = [s.id for s in samples if s.id in table]
    records = RunStore(mine.folder).done()
    result: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "task": task,
        "split": "val",
        "seed": seed,
        "guidance_scale": used["guidance_scale"],
        "steps": used["num_inference_steps"],
        "minigpt5": summarise(table),
        "minigpt5_seconds": round(sum(r["timing"]["model_s_rank0"] for r in mine.info["runs"]), 1),
        "examples": [{"name": s.id, "text": " ".join(seg["text"] for seg in records[s.id]["output"] if "text" in seg)}
                     for s in samples[:5]],
        "runs": {"minigpt5": str(mine.folder)},
    }  # fmt: skip
    result["_images"] = {"minigpt5": _images(mine, ids[:10]),
                         "targets": [next(s.target_images[0] for s in samples if s.id == i) for i in ids[:10]],
                         "names": ids[:10]}  # fmt: skip
    steps_of = {s.id: s.meta.get("step") for s in samples}
    if task == "vist":
        for k in range(5):
            result[f"minigpt5_step{k}"] = summarise(table, [i for i in ids if steps_of[i] == k])
    if baseline:
        t2i = MiniGPT5Config.load(ckpt).t2i_path
        gen = api.GenerationConfig(guidance_scale=used["guidance_scale"],
                                   num_inference_steps=used["num_inference_steps"])  # fmt: skip
        base_spec = api.RunSpec(task=task, model="sd2", split="val", data=data, limit=limit, seed=seed, generation=gen,
                                model_args={"path": str(Path(t2i).resolve())})  # fmt: skip
        base = api.run(base_spec, runs, **options)
        base_table = oracle_table(base, samples)
        result["t2i_caption_only"] = summarise(base_table)
        result["runs"]["t2i"] = str(base.folder)
        result["_images"]["t2i"] = _images(base, ids[:10])
        if task == "vist":
            for k in range(5):
                result[f"t2i_step{k}"] = summarise(base_table, [i for i in ids if steps_of[i] == k])
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
    """README.md model card of a checkpoint: command, steps, wall time, final losses, oracle accuracy next to the
    caption-only T2I, a sample strip (samples.png); also writes eval_val.json. Only the generated section of an
    existing README.md is replaced: the analysis written around it is kept."""
    ckpt = Path(ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    (ckpt / "eval_val.json").write_text(json.dumps(public, indent=2) + "\n")
    sample_strip(result, ckpt / "samples.png")
    cols = list(ORACLE_COLUMNS)
    lines = [f"# {title}", "", f"Stage: {state['stage']} on {state['task']}; {state['steps']} steps; "
             f"{state['train_examples']} training examples (data fingerprint {state['data_fingerprint']}); "
             f"{state['processes']} process(es); wall time of the last call {state['wall_s_this_call']} s.", "",
             "Train command:", "", f"    {train_command(ckpt, state)}", "",
             "Evaluation command:", "", f"    {command}", "",
             _lineage(ckpt, state), "",
             f"Final training losses (mean of the last 100 steps): `{json.dumps(state['final_losses'])}`", "",
             f"Last validation losses: `{json.dumps(state['val_log'][-1] if state['val_log'] else {})}`", "",
             f"{GENERATED_HEADINGS[0]} ({result['task']}, guidance {result['guidance_scale']}, "
             f"{result['steps']} steps, seed {result['seed']})", "",
             "Generated and scored as `mg5bench run` does (`scene_accuracy`); the caption-only row is `mg5bench run "
             "--model sd2` on this checkpoint's T2I (VIST: the step caption; MMDialog: the last text turn).", "",
             "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]  # fmt: skip
    keys = [("MiniGPT-5 (this checkpoint)", "minigpt5"), ("caption-only T2I backbone", "t2i_caption_only")]
    if result["task"] == "vist":
        keys += [(f"MiniGPT-5, step {k}", f"minigpt5_step{k}") for k in range(5)]
        keys += [(f"T2I, step {k}", f"t2i_step{k}") for k in range(5)]
    lines += table_rows(result, keys)
    lines += ["", "Samples (`samples.png`): top = targets, middle = this checkpoint, bottom = caption-only T2I.", "",
              "Generated text of the first samples:", ""]  # fmt: skip
    lines += [f"- `{e['name']}`: {e['text']!r}" for e in result["examples"]]
    return write_card_text(ckpt / "README.md", "\n".join(lines), ENTRY, GENERATED_HEADINGS)


def main(argv: list[str] | None = None) -> None:
    """The card evaluation from the command line (``python -m mg5bench.modelcards.reference CKPT --task T``)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--task", choices=["vist", "mmdialog", "cc3m"], default="vist", help="default vist")
    ap.add_argument("--n", type=int, default=40, help="stories / conversations / captions (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    ap.add_argument("--guidance-scale", type=float, default=None, help="default: the checkpoint's")
    ap.add_argument("--num-inference-steps", type=int, default=None, help="diffusion steps (default: the checkpoint's)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the caption-only T2I")
    ap.add_argument("--out", type=Path, help="also write the result JSON here")
    ap.add_argument("--card", metavar="TITLE", help="write README.md (keeping its hand-written sections), "
                    "eval_val.json and samples.png into the checkpoint")  # fmt: skip
    ap.add_argument("--runs", type=Path, default=Path("runs/cards"), help="where the runs are stored (default "
                    "runs/cards)")  # fmt: skip
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--cross-task", action="store_true", help="evaluate a checkpoint trained for another task")
    ap.add_argument("--data", help="the data source, as `mg5bench run --data` takes it: a world folder or "
                    "synth:level=N (default: the embedded world); recorded in the card's command, so a level is "
                    "better named than the folder it was built into")  # fmt: skip
    args = ap.parse_args(argv)
    res = evaluate(args.checkpoint, args.task, args.n, args.seed, world=args.data, guidance=args.guidance_scale,
                   steps=args.num_inference_steps, baseline=not args.no_baseline, runs=args.runs,
                   progress=not args.quiet, cross_task=args.cross_task)  # fmt: skip
    text = json.dumps({k: v for k, v in res.items() if not k.startswith("_")}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.card:
        cmd = f"{ENTRY} " + " ".join(argv if argv is not None else sys.argv[1:])
        print(write_card(args.checkpoint, res, args.card, cmd))


PROBE_COLS = ("colour", "shape", "size", "cell", "exact")


def _probe_table(probe: dict[str, Any]) -> list[str]:
    return ["| " + " | ".join(PROBE_COLS) + " |", "|---" * len(PROBE_COLS) + "|",
            "| " + " | ".join(f"{float(probe[c]):.3f}" for c in PROBE_COLS) + " |"]  # fmt: skip


def _lm_lines(info: dict[str, Any]) -> list[str]:
    """The LM's section: its scene-tracking probe (the LM asked what the scene looks like after a val story prefix,
    every object's attributes read from its answer) as a table with a few answers; other records as JSON."""
    if not all(c in info for c in PROBE_COLS):
        return [f"`{json.dumps(info)}`"]
    per_step = ", ".join(f"{x:.2f}" for x in info.get("exact_per_step", []))
    lines = [f"Scene-tracking probe after step {info.get('step')} (training loss {info.get('loss', float('nan')):.3f}) "
             f"on {info.get('probe_n')} val story prefixes: asked what the scene looks like now; the attributes are "
             f"the answer's first object's against the scene's first (salient) object, exact = every object right, "
             f"in order"
             + (f"; exact per story step: {per_step}" if per_step else "") + ".", "", *_probe_table(info)]  # fmt: skip
    examples = info.get("examples", [])[:3]
    if examples:
        lines += ["", "Answers:", ""] + [f"- {e.get('prompt', '')} -> {e.get('answer', '')}" for e in examples]
    return lines


def _vision_lines(info: dict[str, Any]) -> list[str]:
    """The vision path's section: Q-Former pretraining losses, the captioning training, the val caption loss with
    matched and shuffled images (how much the image informs the caption) and the caption probe."""
    if "caption_probe" not in info:
        return [f"`{json.dumps(info)}`"]
    q = info.get("qformer", {})
    probe = info["caption_probe"]
    lines = [f"Q-Former pretraining: {q.get('steps')} steps, batch {q.get('batch')}, final ITC {q.get('itc')}, "
             f"ITM {q.get('itm')}, ITG {q.get('itg')}. Captioning into the frozen LM: {info.get('steps')} steps "
             f"({info.get('gen_trainable')} of the vision path trainable), {info.get('wall_s')} s, final loss "
             f"{info.get('final_loss', float('nan')):.3f}; val caption loss {info.get('val_caption_loss_matched')} "
             f"with the caption's own image against {info.get('val_caption_loss_shuffled')} with another image's.",
             "", f"Caption probe on {probe.get('n')} val images (the caption's first object against the scene's first, "
             "salient, object; exact = every object of the scene named right, in order; CC3M-like captions name "
             "the others only sometimes):", "", *_probe_table(probe)]  # fmt: skip
    examples = probe.get("examples", [])[:3]
    if examples:
        lines += ["", "Captions:", ""] + [f"- {e.get('truth', '')} -> {e.get('caption', '')}" for e in examples]
    return lines


def write_backbones_card(folder: Path, t2i_run: Path, lm_info: dict[str, Any] | None = None,
                         vision_info: dict[str, Any] | None = None, notes: str = "",
                         level: int = 1) -> Path:  # fmt: skip
    """README.md of a set's backbones: the T2I accuracy curve (oracle, the level's val captions), the VAE, the LM
    and the vision path, with the commands that made them. ``t2i_run``: a folder with the T2I's curve.jsonl and
    t2i_config.json (and vae_info.json when kept)."""
    from mg5bench.modelcards.common import write_card_text

    folder = Path(folder)
    curve = [json.loads(x) for x in (t2i_run / "curve.jsonl").read_text().splitlines() if x.strip()]
    vae = json.loads((t2i_run / "vae_info.json").read_text()) if (t2i_run / "vae_info.json").exists() else {}
    cfg = json.loads((t2i_run / "t2i_config.json").read_text())
    if level == 1:
        retrain = ("Retrain with `scripts/train_t2i.sh runs/t2i 6000 1000 32` and `python -m reference_model.train "
                   "backbones ...` (see `scripts/train_reference.sh`; the shipped UNet came from a chain of warm "
                   "starts, see Notes).")  # fmt: skip
        target = "; target: colour >= 0.95, shape >= 0.85, size >= 0.9, cell >= 0.85, exact >= 0.6"
    else:
        retrain = (f"Retrain with `scripts/train_reference.sh --level {level}`: its first part runs "
                   f"`scripts/train_t2i.sh` (VAE, then the UNet in chunks of 1,000 steps, each followed by the row "
                   f"below) and `python -m reference_model.train backbones` (LM, then the vision path).")  # fmt: skip
        target = "; per-object attribute accuracy, and exact = every object of the scene right"
    cols = ["colour", "shape", "size", "cell", "exact"]
    title = "embedded world" if level == 1 else f"level-{level} world"
    lines = [f"# Backbones of the {title}", "",
             f"Trained on the synthetic world's train split (level {level}, seed 0, 48 px). {retrain}", "",
             "## t2i/ — latent diffusion (StableDiffusionPipeline folder)", "",
             f"VAE: {vae.get('steps')} steps, {vae.get('wall_s')} s here, weighted MSE {vae.get('final_mse')}, "
             f"scaling factor {vae.get('scaling_factor')}. UNet channels {cfg['unet_channels']}, "
             f"{cfg['unet_layers_per_block']} layer per block, cross-attention at every level "
             f"({cfg['cross_attention_everywhere']}), text encoder {cfg['text_layers']} layers x {cfg['text_hidden']}, "
             f"EMA {cfg['ema_decay']}, Min-SNR {cfg['snr_gamma']}, caption drop {cfg['cfg_drop']}.", "",
             f"Oracle accuracy on 200 level-{level} val captions (guidance 3, 25 DDIM steps, one generator per "
             f"caption){target}.", "",
             "| UNet step | " + " | ".join(cols) + " | eval s | run |", "|---" * (len(cols) + 3) + "|"]  # fmt: skip
    for row in curve:
        lines.append(f"| {row['train_step']} | " + " | ".join(f"{row[c]:.3f}" for c in cols)
                     + f" | {row['seconds']} | {row.get('run', '')} |")  # fmt: skip
    if lm_info:
        lines += ["", "## lm/ — LLaMA-architecture LM + byte-level BPE", "", *_lm_lines(lm_info)]
    if vision_info:
        lines += ["", "## vision/ — encoder + Q-Former + projection", "", *_vision_lines(vision_info)]
    if notes:
        lines += ["", "## Notes", "", notes]
    headings = ("## t2i/", "## lm/", "## vision/", *(("## Notes",) if notes else ()))
    return write_card_text(folder / "README.md", "\n".join(lines), "mg5bench.modelcards.reference.write_backbones_card",
                           headings)  # fmt: skip


if __name__ == "__main__":
    main()
