"""Model cards for the shipped baseline checkpoints (divter-<task>, sd2-ft-<task>) in reference_model/checkpoints/:
what was trained and how, and what it scores on the embedded world's val split through `mg5bench run` (the
same numbers a user gets), next to the caption-only `sd2` baseline.

    .venv/bin/python scripts/baseline_cards.py [--limit 200] [--out runs/cards]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLS = ["scene_accuracy", "scene_accuracy.colour", "scene_accuracy.shape", "scene_accuracy.size",
        "scene_accuracy.cell", "clip_i", "clip_i.image_rate"]  # fmt: skip


def _row(label: str, metrics: dict) -> str:
    vals = [metrics.get(c, {}).get("value") for c in COLS]
    return f"| {label} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |"


def main() -> None:
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.runner import run
    from mg5bench.spec import RunSpec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("runs/cards"))
    args = ap.parse_args()
    root = shipped_checkpoints()
    for folder in sorted(p for p in root.iterdir() if p.name.startswith(("divter-", "sd2-ft-"))):
        model, task = folder.name.rsplit("-", 1)
        spec = RunSpec(task=task, model=model, split="val", limit=args.limit)
        mine = run(spec, args.out, progress=True)
        ref = run(RunSpec(task=task, model="sd2", split="val", limit=args.limit), args.out, progress=True)
        if model == "divter":
            cfg = json.loads((folder / "divter_config.json").read_text())
            how = (f"`mg5bench train divter --task {task} --steps {cfg['steps']} --batch {cfg['batch']} "
                   f"--lr {cfg['lr']}`; LoRA r={cfg['lora_r']} on the backbone LM's q/k/v/o; "
                   f"{cfg['train_pairs']} training examples "
                   f"(data fingerprint {cfg['data_fingerprint']}); {cfg['wall_s']} s here; final loss "
                   f"{cfg['final_loss']}. Backbones sha256 {cfg['backbones_sha256'][:16]}... (checked).")  # fmt: skip
        else:
            cfg = json.loads((folder / "sd2ft.json").read_text())
            how = (f"`mg5bench train sd2-ft --task {task} --steps {cfg['steps']}` (cross-kv: text encoder + the UNet's "
                   f"cross-attention k/v; {cfg['new_words']} new words); {cfg['pairs']} (text, image) pairs (data "
                   f"fingerprint {cfg['data_fingerprint']}); final loss {cfg['final_loss']:.4f}. Stored as a float16 "
                   f"delta over `{cfg['base']}` (sha256 {cfg['base_sha256'][:16]}..., checked on load).")  # fmt: skip
        lines = [f"# {folder.name}", "", how, "", f"## On the embedded world's val split (first {args.limit} samples, "
                 f"`mg5bench run --task {task} --model {model} --split val --limit {args.limit}`)", "",
                 "| model | " + " | ".join(COLS) + " |", "|---" * (len(COLS) + 1) + "|",
                 _row(f"{model} (this checkpoint)", mine.report["metrics"]),
                 _row("sd2 (caption only)", ref.report["metrics"]), ""]  # fmt: skip
        (folder / "README.md").write_text("\n".join(lines))
        print(folder / "README.md")


if __name__ == "__main__":
    main()
