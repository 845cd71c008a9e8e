"""Training MiniGPT-5 (docs/minigpt5.md, "Training in two stages") and the tiny backbones it sits on.

    python -m reference_model.train backbones --world W --out runs/backbones
    python -m reference_model.train stage1 --backbones runs/backbones --data W/CC3M --out runs/stage1 --steps 2000
    python -m reference_model.train stage2 --init runs/stage1 --task vist --data W/VIST --out runs/s2-vist --steps 2000
    torchrun --nproc-per-node 2 -m reference_model.train stage1 ...       # DDP, gloo on CPU

Stage 1: CC3M-format data, fc + mapper + queries (lr x10) and the new token rows, caption loss on.
Stage 2: VIST- or MMDialog-format data, LoRA on q/v + new token rows + mapper, fc and queries frozen,
initialised from a stage-1 checkpoint (or from scratch with --single-stage).
AdamW (eps 1e-8, betas 0.9/0.999, weight decay 0.01), linear warmup then linear decay to 0, seeded.
A checkpoint folder holds minigpt5_config.json, trainable.safetensors (only trainable tensors) and
state.json (stage, steps, data fingerprint, parent checkpoint hash, losses, wall time); train_state.pt
holds the optimizer for resuming (rerun the same command). Imports nothing from mg5bench.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from reference_model.config import MiniGPT5Config, config_from_backbones
from reference_model.data import (
    OFFICIAL_INSTRUCTION_EVERY,
    Example,
    cc3m_examples,
    fingerprint,
    mmdialog_examples,
    vist_examples,
)
from reference_model.state import resume, save_state


@dataclass
class TrainConfig:
    """Everything that changes a training run's numbers (saved in state.json)."""

    stage: int
    steps: int
    batch: int = 16  # global batch per optimizer step (split across ranks); official effective batch 48
    grad_accum: int = 1
    lr: float = 2e-4  # official 2e-5 (for 7B at batch 48 over 2 epochs of CC3M); the tiny models need more
    warmup: int = 100  # official 1000
    weight_decay: float = 0.01
    seed: int = 42
    task: str = "cc3m"
    data: str = ""
    init: str = ""  # stage-1 checkpoint for stage 2 ("" = from scratch: the single-stage ablation)
    val_every: int = 250
    val_examples: int = 64
    fix_row_drift: bool = False  # official: weight decay shrinks the original token rows; True restores them
    mapper_lr_scale: float = 1.0  # stage 2: the mapper's lr relative to LoRA's (official: equal)
    whole_mapper: bool = False  # stage 2 from a stage-1 init: also train fc and queries, as single-stage does
    instruction_every: int = OFFICIAL_INSTRUCTION_EVERY  # stage 1: every n-th CC3M row gets an instruction copy


def with_defaults(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded train_config with every setting it predates filled in at its default (it ran at it)."""
    return {**{f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}, **recorded}


def same_config(recorded: dict[str, Any], tc: TrainConfig) -> bool:
    """Is a recorded train_config this one?"""
    return with_defaults(recorded) == asdict(tc)


def group_lr(tc: TrainConfig, name: str, lr_scale: float) -> float:
    """A parameter group's learning rate: --lr x the group's own scale (stage 1's 10x for fc, mapper and queries) x,
    in stage 2, --mapper-lr-scale for the mapper. The single-stage ablation trains fc, mapper and queries as one
    group, which takes the mapper scale too: at stage 2's lr 1e-3 the bare 10x would put them at 1e-2, where stage 1
    was measured to diverge, and the ablation would measure a crippled mapper instead of the missing stage."""
    mapper = name == "mapper" or (tc.stage == 2 and name == "fc_mapper_queries")
    return tc.lr * lr_scale * (tc.mapper_lr_scale if mapper else 1.0)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def build_examples(
    task: str,
    data: Path,
    split: str,
    train: bool,
    num_vokens: int,
    tok: Any = None,
    instruction_every: int = OFFICIAL_INSTRUCTION_EVERY,
) -> list[Example]:
    """The examples of one task split, as the official loaders build them."""
    if task == "cc3m":
        return cc3m_examples(data, split, train, num_vokens, instruction_every=instruction_every)
    if task == "vist":
        return vist_examples(data, split, train, num_vokens)
    if task == "mmdialog":
        count = (lambda s: len(tok(s, add_special_tokens=False)["input_ids"])) if tok is not None else None
        return mmdialog_examples(data, split, train, num_vokens, count_tokens=count)
    raise ValueError(f"unknown task {task!r}: choose cc3m, vist or mmdialog")


class ImageCache:
    """Loads each image once (the tiny world's images are small)."""

    def __init__(self) -> None:
        self._cache: dict[Path, Any] = {}

    def __call__(self, path: Path) -> Any:
        from PIL import Image

        if path not in self._cache:
            with Image.open(path) as im:
                self._cache[path] = im.convert("RGB")
        return self._cache[path]


def _dist() -> tuple[int, int]:
    """(rank, world size); initialises gloo (CPU) or nccl (GPU) under torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def load_model(cfg: MiniGPT5Config, init: str | None, stage: int, whole_mapper: bool = False) -> Any:
    """Build the model; for stage 2 wrap the LM with LoRA and load the stage-1 trainable tensors. ``whole_mapper``:
    stage 2 trains fc, mapper and queries as one group, like the single-stage ablation but from the stage-1 init
    (officially fc and queries stay frozen in stage 2)."""
    from safetensors.torch import load_file

    from reference_model.modeling import MiniGPT5

    model = MiniGPT5.from_config(cfg)
    groups = model.setup_stage(stage, single_stage=stage == 2 and (not init or whole_mapper))
    if init:
        model.load_trainable_state(load_file(str(Path(init) / "trainable.safetensors")))
    return model, groups


def train_stage(cfg: MiniGPT5Config, tc: TrainConfig, out: Path, threads: int | None = None) -> dict[str, Any]:
    """One training stage; resumable from out/train_state.pt; works alone or under torchrun."""
    from tqdm.auto import tqdm

    rank, world = _dist()
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tc.seed)
    model, groups = load_model(cfg, tc.init or None, tc.stage, whole_mapper=tc.whole_mapper)
    train_ex, val_ex = _examples(cfg, tc, model.tokenizer)
    opt = torch.optim.AdamW(
        [{"params": g["params"], "lr": group_lr(tc, g["name"], g["lr_scale"]), "name": g["name"]} for g in groups],
        lr=tc.lr, eps=1e-8, betas=(0.9, 0.999), weight_decay=tc.weight_decay,
    )  # fmt: skip
    base_lrs = [g["lr"] for g in opt.param_groups]
    net: Any = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, find_unused_parameters=True, broadcast_buffers=False)
    snapshot = None
    if tc.fix_row_drift:
        from reference_model.vokens import snapshot_original_rows

        snapshot = snapshot_original_rows(model.lm, model.ids)
    if rank == 0:
        cfg.save(out)  # written first, so a running or interrupted stage can be inspected from train_state.pt
    state_path = out / "train_state.pt"

    def same_training(st: dict[str, Any]) -> None:
        if not same_config(st["train_config"], tc):
            raise ValueError(f"{state_path}: written by a different training config; use a new --out or delete it")

    start, st = resume(state_path, {"trainable": model.load_trainable_state, "opt": opt}, check=same_training)
    log, val_log = st.get("log", []), st.get("val_log", [])
    load = ImageCache()
    per_rank = tc.batch // world
    if per_rank * world != tc.batch or per_rank == 0:
        raise ValueError(f"--batch {tc.batch} must be a positive multiple of the number of processes ({world})")
    t0 = time.time()
    bar = tqdm(range(start, tc.steps), initial=start, total=tc.steps, desc=f"stage{tc.stage}", disable=rank != 0)
    model.train()
    for step in bar:
        f = (step + 1) / tc.warmup if step < tc.warmup else max(0.0, (tc.steps - step) / max(tc.steps - tc.warmup, 1))
        for g, lr in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = lr * f
        opt.zero_grad(set_to_none=True)
        parts: dict[str, float] = {}
        for micro in range(tc.grad_accum):
            pick = torch.Generator().manual_seed(tc.seed * 1_000_003 + step * 101 + micro)
            idx = torch.randint(0, len(train_ex), (tc.batch,), generator=pick)[rank::world]
            gen = torch.Generator().manual_seed(tc.seed * 7_777_777 + step * 1013 + micro * 17 + rank)
            batch = model.collate([train_ex[int(i)] for i in idx], load, train=True, generator=gen)
            losses = net(batch, gen)
            (losses["loss"] / tc.grad_accum).backward()
            for k, v in losses.items():
                parts[k] = parts.get(k, 0.0) + float(v.detach()) / tc.grad_accum
        opt.step()
        if snapshot is not None:
            from reference_model.vokens import restore_original_rows

            restore_original_rows(model.lm, model.ids, snapshot)
        log.append({"step": step + 1, **{k: round(v, 5) for k, v in parts.items()}})
        if rank == 0 and step % 5 == 0:
            recent = log[-25:]
            keys = ("loss", "text", "image") + (("caption",) if any(r["caption"] for r in recent) else ())
            bar.set_postfix({k: f"{sum(r[k] for r in recent) / len(recent):.4f}" for k in keys})
        last = step + 1 == tc.steps
        if rank == 0 and val_ex and ((step + 1) % tc.val_every == 0 or last):
            val_log.append({"step": step + 1, **evaluate_loss(model, val_ex, load, tc.seed)})
            model.train()
        if rank == 0 and ((step + 1) % tc.val_every == 0 or last):
            save_state({"trainable": model.trainable_state(), "opt": opt.state_dict(), "step": step + 1, "log": log,
                        "val_log": val_log, "train_config": asdict(tc)}, state_path)  # fmt: skip
    wall = round(time.time() - t0, 1)
    if rank == 0:
        _write_checkpoint(cfg, tc, out, model, train_ex, log, val_log, world, wall)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return {"out": str(out), "wall_s": wall, "steps": tc.steps}


def _examples(cfg: MiniGPT5Config, tc: TrainConfig, tokenizer: Any) -> tuple[list[Example], list[Example]]:
    """The stage's training examples and a seeded sample of ``tc.val_examples`` val examples; with the tiny
    preset's scene-caption weight, both labelled with the world's scene captions."""
    train_ex = build_examples(tc.task, Path(tc.data), "train", True, cfg.num_vokens, tokenizer,
                              tc.instruction_every)  # fmt: skip
    val_ex = build_examples(tc.task, Path(tc.data), "val", False, cfg.num_vokens, tokenizer)
    val_ex = random.Random(0).sample(val_ex, min(tc.val_examples, len(val_ex)))
    if not train_ex:
        raise ValueError(f"{tc.data}: no {tc.task} training examples")
    if tc.stage == 2 and cfg.loss.scene_caption_weight > 0:  # tiny preset: L_cap on the world's scene captions
        from reference_model.world_text import with_scene_captions

        labelled = with_scene_captions(train_ex + val_ex, Path(tc.data))  # one read of scenes.jsonl for both
        train_ex, val_ex = labelled[: len(train_ex)], labelled[len(train_ex) :]
    return train_ex, val_ex


def _write_checkpoint(cfg: MiniGPT5Config, tc: TrainConfig, out: Path, model: Any, train_ex: list[Example],
                      log: list[dict[str, Any]], val_log: list[dict[str, Any]], world: int,
                      wall: float) -> None:  # fmt: skip
    """The finished stage's checkpoint: its config, the trainable tensors and state.json (what it was trained on,
    from which parent, its final losses and the command), each written atomically."""
    from safetensors.torch import save_file

    cfg.save(out)
    tmp = out / "trainable.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in model.trainable_state().items()}, str(tmp))
    os.replace(tmp, out / "trainable.safetensors")
    tail = log[-100:]
    state = {
        "stage": f"stage{tc.stage}",
        "task": tc.task,
        "steps": tc.steps,
        "processes": world,
        "train_config": asdict(tc),
        "data_fingerprint": fingerprint(train_ex),
        "train_examples": len(train_ex),
        "parent": {"path": tc.init, "sha256": _sha256(Path(tc.init) / "trainable.safetensors")} if tc.init else None,
        "final_losses": {k: round(sum(r[k] for r in tail) / len(tail), 5) for k in tail[0] if k != "step"},
        "val_log": val_log,
        "wall_s_this_call": wall,
        "command": " ".join(sys.argv),
    }
    _atomic_json(out / "state.json", state)


@torch.no_grad()
def evaluate_loss(model: Any, examples: list[Example], load: Any, seed: int, batch: int = 16) -> dict[str, float]:
    """Mean losses on fixed validation examples with a fixed generator (no CFG drop: eval mode)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed + 99)
    sums: dict[str, float] = {}
    n = 0
    for i in range(0, len(examples), batch):
        chunk = examples[i : i + batch]
        out = model(model.collate(chunk, load, train=False), gen)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(chunk)
        n += len(chunk)
    return {f"val_{k}": round(v / n, 5) for k, v in sums.items() if k != "dropped"}


# ---------------------------------------------------------------------------------------------
# CLI


def _model_config(args: argparse.Namespace, backbones: Path | None) -> MiniGPT5Config:
    if args.init:
        cfg = MiniGPT5Config.load(Path(args.init))
    else:
        if backbones is None:
            raise SystemExit("error: pass --backbones DIR (or --init STAGE1_DIR)")
        cfg = config_from_backbones(backbones)
    if args.num_vokens is not None:
        cfg = replace(cfg, num_vokens=args.num_vokens)
    if args.no_cfg:
        cfg = replace(cfg, cfg_drop_p=0.0, learned_null_condition=False)
    if args.no_caption_loss:  # the ablation: no L_cap in any stage
        cfg = replace(cfg, loss=replace(cfg.loss, caption_weight=0.0, scene_caption_weight=0.0))
    elif getattr(args, "caption_weight", None) is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, caption_weight=args.caption_weight))
    if getattr(args, "scene_caption_weight", None) is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, scene_caption_weight=args.scene_caption_weight))
    if getattr(args, "text_weight", None) is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, text_weight=args.text_weight))
    if args.image_recipe is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, image_recipe=args.image_recipe))
    if getattr(args, "x0_weight_floor", None) is not None:
        cfg = replace(cfg, loss=replace(cfg.loss, x0_weight_floor=args.x0_weight_floor))
    if getattr(args, "lora_targets", None):
        cfg = replace(cfg, lora=replace(cfg.lora, target_modules=tuple(args.lora_targets.split(","))))
    return cfg


def _non_negative(text: str) -> float:
    """argparse type of a loss weight: a finite number >= 0 (a bad value stops before any work)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _add_backbones(sub: Any) -> None:
    b = sub.add_parser("backbones", help="train the tiny LM, vision path and text-to-image model on a world")
    b.add_argument("--world", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--lm-steps", type=int, default=2500, help="LM pretraining steps (batch 32 documents)")
    b.add_argument("--lm-layers", type=int, default=4, help="LM depth (LLaMA blocks; the shipped LM has 4)")
    b.add_argument("--lm-hidden", type=int, default=256, help="LM width")
    b.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    b.add_argument("--qformer-steps", type=int, default=1000,
                   help="BLIP-2 Q-Former pretraining (ITC+ITM+ITG) before the LM sees images; 0 = none")  # fmt: skip
    b.add_argument("--vision-steps", type=int, default=800, help="MiniGPT-4 step: captioning into the frozen LM")
    b.add_argument("--vision-trainable", choices=["proj", "qformer", "all"], default="proj",
                   help="what the captioning step trains after the Q-Former pretraining (MiniGPT-4: proj)")  # fmt: skip
    b.add_argument("--t2i", type=Path, default=None, help="an already trained T2I pipeline folder to copy")
    b.add_argument("--vision-pos-std", type=_non_negative, default=None,
                   help="std of the encoder's position embedding at init (default 0.02, transformers'; 0.5 lets the "
                   "captions say where the object is; saved in vision_config.json)")  # fmt: skip
    b.add_argument("--qformer-dropout", type=_non_negative, default=None,
                   help="the Q-Former's hidden and attention dropout (default 0.1, BERT's; 0 lets it pass the "
                   "place on; saved in the Q-Former's config)")  # fmt: skip


def _add_stage(sub: Any, name: str) -> None:
    s = sub.add_parser(name, help=f"MiniGPT-5 {name}")
    s.add_argument("--data", type=Path, required=True, help="CC3M / VIST / MMDialog folder in the real format")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--backbones", type=Path, default=None)
    s.add_argument("--init", type=str, default="", help="stage-1 checkpoint folder (stage 2)")
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--grad-accum", type=int, default=1)
    s.add_argument("--lr", type=float, default=2e-4)
    s.add_argument("--warmup", type=int, default=100)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--val-every", type=int, default=250)
    s.add_argument("--num-vokens", type=int, default=None, help="ablation: 4 / 8 / 16")
    s.add_argument("--no-cfg", action="store_true", help="ablation: no voken dropout, SD's '' as negative")
    s.add_argument("--no-caption-loss", action="store_true",
                   help="ablation: no L_cap (stage 1's, and stage 2's scene caption)")  # fmt: skip
    s.add_argument(
        "--x0-weight-floor",
        type=_non_negative,
        default=None,
        help="floor on L_img's x0 weight, official recipe (0 = official Min-SNR; saved in the config)",
    )
    s.add_argument(
        "--image-recipe",
        choices=["official", "backbone", "backbone-weights"],
        default=None,
        help="L_img timesteps/weights: official (uniform, Min-SNR), the T2I backbone's recipe, or uniform "
        "timesteps with the backbone's weights (backbone-weights)",
    )
    s.add_argument(
        "--mapper-lr-scale",
        type=float,
        default=1.0,
        help="stage 2: mapper lr = --lr x this (official 1.0: LoRA and mapper share 2e-5)",
    )
    s.add_argument("--fix-row-drift", action="store_true", help="keep the original token rows exactly")
    if name == "stage1":
        s.add_argument("--caption-weight", type=_non_negative, default=None,
                       help="weight of L_cap (official 0.1; saved in the checkpoint's config)")  # fmt: skip
        s.add_argument(
            "--instruction-every",
            type=int,
            default=OFFICIAL_INSTRUCTION_EVERY,
            help="every n-th CC3M row also gets an instruction-style copy (official and shipped: 100)",
        )
    if name == "stage2":
        s.add_argument("--task", choices=["vist", "mmdialog"], required=True)
        s.add_argument("--single-stage", action="store_true", help="ablation: no stage 1 (needs --backbones)")
        s.add_argument("--whole-mapper", action="store_true",
                       help="with --init: also train fc and the queries (officially frozen in stage 2) as one "
                       "group at the single-stage rate: the two then differ only in the init")  # fmt: skip
        s.add_argument("--scene-caption-weight", type=_non_negative, default=None,
                       help="tiny preset: L_cap on the output image's scene caption from the world's "
                       "scenes.jsonl (official 0: stage 2 has no caption loss; saved in the config)")  # fmt: skip
        s.add_argument("--text-weight", type=_non_negative, default=None,
                       help="weight of L_text (official 0.01; tiny preset on MMDialog: 1, where the reply text "
                       "must be learned; saved in the config)")  # fmt: skip
        s.add_argument(
            "--lora-targets",
            default=None,
            help="LM modules with LoRA (official q_proj,v_proj), e.g. q_proj,k_proj,v_proj,o_proj",
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m reference_model.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    _add_backbones(sub)
    for name in ("stage1", "stage2"):
        _add_stage(sub, name)
    args = ap.parse_args(argv)
    for weight in ("caption_weight", "scene_caption_weight"):
        if getattr(args, weight, None) is not None and getattr(args, "no_caption_loss", False):
            ap.error(f"--{weight.replace('_', '-')} and --no-caption-loss contradict each other; give one")
    if args.cmd == "backbones":
        torch.set_num_threads(args.threads)
        res = train_backbones(args.world, args.out, args.lm_steps, args.vision_steps, args.t2i,
                              qformer_steps=args.qformer_steps, vision_trainable=args.vision_trainable,
                              vision_pos_std=args.vision_pos_std, qformer_dropout=args.qformer_dropout,
                              lm_layers=args.lm_layers, lm_hidden=args.lm_hidden)  # fmt: skip
        print(json.dumps(res))
        return
    stage = 1 if args.cmd == "stage1" else 2
    if stage == 2 and not args.init and not args.single_stage:
        raise SystemExit("error: stage2 needs --init STAGE1_DIR, or --single-stage --backbones DIR for the ablation")
    cfg = _model_config(args, args.backbones)
    tc = TrainConfig(
        stage=stage, steps=args.steps, batch=args.batch, grad_accum=args.grad_accum, lr=args.lr, warmup=args.warmup,
        seed=args.seed, task="cc3m" if stage == 1 else args.task, data=str(args.data), init=args.init,
        val_every=args.val_every, fix_row_drift=args.fix_row_drift, mapper_lr_scale=args.mapper_lr_scale,
        instruction_every=getattr(args, "instruction_every", OFFICIAL_INSTRUCTION_EVERY),
        whole_mapper=getattr(args, "whole_mapper", False),
    )  # fmt: skip
    print(json.dumps(train_stage(cfg, tc, args.out, args.threads)))


def train_backbones(
    world: Path, out: Path, lm_steps: int, vision_steps: int, t2i: Path | None, qformer_steps: int = 1000,
    vision_trainable: str = "proj", vision_pos_std: float | None = None, qformer_dropout: float | None = None,
    lm_layers: int = 4, lm_hidden: int = 256,
) -> dict[str, Any]:  # fmt: skip
    """LM pretraining (world corpus + scene-tracking probe), then the vision path: BLIP-2 Q-Former pretraining
    and the MiniGPT-4 captioning step into the frozen LM; the T2I model is trained by scripts/train_t2i.sh
    (hours) and copied in with --t2i."""
    import shutil

    from reference_model.train_lm import pretrain
    from reference_model.train_vision import train_vision

    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {}
    if not (out / "lm" / "config.json").exists():
        res["lm"] = pretrain(world, out / "lm_run", lm_steps, hidden=lm_hidden, layers=lm_layers)
        shutil.copytree(out / "lm_run" / "lm", out / "lm", dirs_exist_ok=True)
    if not (out / "vision" / "extra.safetensors").exists():
        res["vision"] = train_vision(world, out / "lm", out / "vision_run", vision_steps, qformer_steps=qformer_steps,
                                     gen_trainable=vision_trainable, pos_std=vision_pos_std,
                                     qformer_dropout=qformer_dropout)  # fmt: skip
        shutil.copytree(out / "vision_run" / "vision", out / "vision", dirs_exist_ok=True)
    if t2i is not None and not (out / "t2i" / "model_index.json").exists():
        shutil.copytree(t2i, out / "t2i", dirs_exist_ok=True)
    return res


if __name__ == "__main__":
    main()
