"""Export trained runs into the shipped checkpoint set (reference_model/checkpoints/):

    python -m reference_model.export RUNS_DIR DEST [--fp32] [--only stage1,stage2-vist] [--keep-backbones]

DEST/backbones/{lm,vision,t2i} holds the frozen parts (float16 on disk unless --fp32; loaders upcast to
float32), and every finished stage run RUNS_DIR/<name> becomes DEST/<name> (config re-pointed at
DEST/backbones with relative paths, trainable.safetensors, state.json). Trainable tensors are stored in
float16 too (loaders upcast; the stage set would not fit 40 MB in float32); a stage-2 run's recorded parent is
re-pointed at the exported parent file (its sha256; the float32 original's is kept as ``sha256_float32``).
Prints the set's total size.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from reference_model.config import MiniGPT5Config

STAGE_FILES = ("trainable.safetensors", "state.json")


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_backbones(src: Path, dest: Path, half: bool = True, t2i: Path | None = None) -> None:
    """Copy lm/, vision/ and t2i/ (re-saved in float16 when ``half``). ``t2i``: an already exported T2I folder to
    copy byte for byte instead (a new LM or vision path on the shipped T2I keeps sd2-ft's base sha256 valid)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

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
    if t2i is not None:
        shutil.copytree(t2i, tmp / "t2i")
    else:
        export_t2i(src / "t2i", tmp / "t2i", half=half)
    for card in src.glob("*.md"):
        shutil.copy(card, tmp / card.name)
    if (dest / "README.md").exists() and not (tmp / "README.md").exists():
        shutil.copy(dest / "README.md", tmp / "README.md")  # the card written when the T2I was kept
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def export_t2i(src: Path, dest: Path, half: bool = True) -> None:
    """Re-save a trained T2I pipeline folder (float16 when ``half``) with its record files, atomically. On its own
    so the T2I (hours of training) can be kept as soon as it is trained, before the LM and vision path exist;
    ``export_backbones(..., t2i=dest)`` then copies it byte for byte."""
    from reference_model.t2i import load_pipeline

    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    pipe = load_pipeline(src)
    pipe.to(dtype=torch.float16 if half else torch.float32).save_pretrained(tmp, safe_serialization=True)
    drop_saved_from(tmp)
    for extra in ("t2i_config.json", "README.md", "curve.jsonl", "vae_info.json"):
        if (src / extra).exists():
            shutil.copy(src / extra, tmp / extra)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def drop_saved_from(folder: Path) -> None:
    """Remove diffusers' ``_name_or_path`` (the folder a pipeline was loaded from on the training machine) from
    every config under ``folder``: the configs are part of the checkpoint's content hash, which must not depend on
    where it was trained. Diffusers fills the field in again on loading."""
    for path in sorted(folder.rglob("*.json")):
        cfg = json.loads(path.read_text())
        if isinstance(cfg, dict) and "_name_or_path" in cfg:
            del cfg["_name_or_path"]
            path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def portable(obj: Any, replacements: list[tuple[str, str]]) -> Any:
    """``obj`` (a state.json tree) with every string's machine-specific path prefixes replaced, longest first, so
    a shipped record names the world as ``$W`` and repo files relative to the repo root (a card must give commands
    a user can re-run, never the training machine's absolute paths)."""
    if isinstance(obj, dict):
        return {k: portable(v, replacements) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v, replacements) for v in obj]
    if isinstance(obj, str):
        for old, new in sorted(replacements, key=lambda r: -len(r[0])):
            obj = obj.replace(old, new)
    return obj


def path_replacements(state: dict[str, Any], repo: Path) -> list[tuple[str, str]]:
    """The world folder of a stage run (the parent of its --data folder) becomes ``$W``; the prefix ``repo`` is
    dropped (export_stage passes the working directory: the repo root when run as documented)."""
    out = [(str(repo.resolve()) + "/", "")]
    data = state.get("train_config", {}).get("data")
    if data and Path(data).is_absolute():
        out.append((str(Path(data).parent), "$W"))
    return out


def export_stage(
    run: Path, dest: Path, backbones: Path, half: bool = True, parents: dict[str, Path] | None = None
) -> str:
    """Copy a finished stage run, pointing its config at the shipped backbones; returns the exported
    trainable file's sha256. ``parents`` maps a run file's sha256 to the exported folder made from it."""
    from safetensors.torch import load_file, save_file

    cfg = MiniGPT5Config.load(run)
    cfg = replace(cfg, lm_path=str((backbones / "lm").resolve()), vision_path=str((backbones / "vision").resolve()),
                  t2i_path=str((backbones / "t2i").resolve()))  # fmt: skip
    dest.mkdir(parents=True, exist_ok=True)
    sd = load_file(str(run / "trainable.safetensors"))
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    tmp = dest / "trainable.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp))
    tmp.replace(dest / "trainable.safetensors")
    state = json.loads((run / "state.json").read_text())
    parent = state.get("parent")
    if parent and parents and parent.get("sha256") in parents:
        shipped = parents[parent["sha256"]]
        state["parent"] = {"path": f"../{shipped.name}", "sha256": _sha256(shipped / "trainable.safetensors"),
                           "sha256_float32": parent["sha256"], "trained_from": parent.get("path")}  # fmt: skip
    elif parent:
        # trained from the folder shipped beside DEST (e.g. --init reference_model/checkpoints/stage1), or from a
        # byte-identical copy of it (a staging folder beside new backbones): record the shipped one
        trained_from = Path(parent["path"]).resolve()
        shipped = dest.resolve().parent / trained_from.name
        weights = shipped / "trainable.safetensors"
        matches = weights.exists() and _sha256(weights) == parent["sha256"]
        if trained_from == shipped and not matches:
            raise SystemExit(f"error: {shipped} changed since {run} was trained from it (sha256 differs)")
        if matches:
            state["parent"] = {**parent, "path": f"../{shipped.name}", "trained_from": parent["path"]}
    data = state.get("train_config", {}).get("data")
    if data and Path(data).is_absolute():
        state["world"] = Path(data).parent.name  # what $W stands for: the world's folder name says its level
    state = portable(state, path_replacements(state, Path.cwd()))
    (dest / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    cfg.save(dest)
    return _sha256(dest / "trainable.safetensors")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--fp32", action="store_true", help="keep the backbones and trainable tensors in float32")
    ap.add_argument("--only", default="", help="comma-separated run names to export (default: every finished run)")
    ap.add_argument(
        "--keep-backbones",
        action="store_true",
        help="DEST/backbones already holds the parts the runs were trained on: leave it byte for byte",
    )
    args = ap.parse_args(argv)
    backbones = args.dest / "backbones"
    if args.keep_backbones:
        if not (backbones / "lm").is_dir():
            raise SystemExit(f"error: --keep-backbones but {backbones} has no lm/")
    else:
        export_backbones(args.runs / "backbones", backbones, half=not args.fp32)
    only = {n for n in args.only.split(",") if n}
    runs = [p for p in args.runs.iterdir() if (p / "state.json").exists() and (p / STAGE_FILES[0]).exists()]
    missing = only - {p.name for p in runs}
    if missing:
        raise SystemExit(f"error: --only names runs that are not finished in {args.runs}: {sorted(missing)}")
    stage_of = {p: json.loads((p / "state.json").read_text())["stage"] for p in runs}
    parents: dict[str, Path] = {}
    for run in sorted(runs, key=lambda p: (stage_of[p], p.name)):  # parents (stage 1) before their children
        if only and run.name not in only:
            continue
        export_stage(run, args.dest / run.name, backbones, half=not args.fp32, parents=parents)
        parents[_sha256(run / "trainable.safetensors")] = args.dest / run.name
    sizes = {p.name: folder_size(p) for p in sorted(args.dest.iterdir()) if p.is_dir()}
    print(json.dumps({"sizes_mb": {k: round(v / 2**20, 2) for k, v in sizes.items()},
                      "total_mb": round(sum(sizes.values()) / 2**20, 2)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
