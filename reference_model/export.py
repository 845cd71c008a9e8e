"""Export trained runs into the shipped checkpoint set (reference_model/checkpoints/):

    python -m reference_model.export RUNS_DIR DEST [--fp32]

DEST/backbones/{lm,vision,t2i} holds the frozen parts (float16 on disk unless --fp32; loaders upcast to
float32), and every finished stage run RUNS_DIR/<name> becomes DEST/<name> (config re-pointed at
DEST/backbones with relative paths, trainable.safetensors, state.json). Prints the set's total size.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from reference_model.config import MiniGPT5Config

STAGE_FILES = ("trainable.safetensors", "state.json")


def export_backbones(src: Path, dest: Path, half: bool = True) -> None:
    """Copy lm/, vision/ and t2i/ (re-saved in float16 when ``half``)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from reference_model.t2i import load_pipeline
    from reference_model.vision import VisionPath

    dtype = torch.float16 if half else torch.float32
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    lm = LlamaForCausalLM.from_pretrained(src / "lm", dtype=torch.float32).to(dtype)
    lm.save_pretrained(tmp / "lm")
    AutoTokenizer.from_pretrained(src / "lm").save_pretrained(tmp / "lm")
    vision = VisionPath.from_pretrained(src / "vision").to(dtype)
    vision.save_pretrained(tmp / "vision")
    pipe = load_pipeline(src / "t2i")
    pipe.to(dtype=dtype).save_pretrained(tmp / "t2i", safe_serialization=True)
    for extra in ("t2i_config.json", "README.md", "curve.jsonl"):
        if (src / "t2i" / extra).exists():
            shutil.copy(src / "t2i" / extra, tmp / "t2i" / extra)
    for card in src.glob("*.md"):
        shutil.copy(card, tmp / card.name)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def export_stage(run: Path, dest: Path, backbones: Path) -> None:
    """Copy a finished stage run, pointing its config at the shipped backbones."""
    cfg = MiniGPT5Config.load(run)
    cfg = replace(cfg, lm_path=str((backbones / "lm").resolve()), vision_path=str((backbones / "vision").resolve()),
                  t2i_path=str((backbones / "t2i").resolve()))  # fmt: skip
    dest.mkdir(parents=True, exist_ok=True)
    for name in STAGE_FILES:
        shutil.copy(run / name, dest / name)
    cfg.save(dest)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--fp32", action="store_true", help="keep the backbones in float32")
    args = ap.parse_args(argv)
    backbones = args.dest / "backbones"
    export_backbones(args.runs / "backbones", backbones, half=not args.fp32)
    for run in sorted(p for p in args.runs.iterdir() if (p / "state.json").exists() and (p / STAGE_FILES[0]).exists()):
        export_stage(run, args.dest / run.name, backbones)
    sizes = {p.name: folder_size(p) for p in sorted(args.dest.iterdir()) if p.is_dir()}
    print(json.dumps({"sizes_mb": {k: round(v / 2**20, 2) for k, v in sizes.items()},
                      "total_mb": round(sum(sizes.values()) / 2**20, 2)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
