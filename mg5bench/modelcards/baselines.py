"""Model cards for the shipped baseline checkpoints (divter-<task>, sd2-ft-<task>) in reference_model/checkpoints/:
what was trained and how, and what it scores on the embedded world's val split through ``mg5bench.api.run`` (the
same numbers a user gets from ``mg5bench run``), next to the caption-only ``sd2`` baseline.

    python -m mg5bench.modelcards.baselines [--limit 200] [--runs runs/cards] [--checkpoints DIR --data synth:level=N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mg5bench.modelcards.common import write_card_text

COLS = ["scene_accuracy", "scene_accuracy.objects", "scene_accuracy.colour", "scene_accuracy.shape",
        "scene_accuracy.size", "scene_accuracy.cell", "clip_i", "clip_i.image_rate"]  # fmt: skip
GENERATED_HEADINGS = ("## On the embedded world's val split",)


def _row(label: str, metrics: dict[str, Any]) -> str:
    vals = [metrics.get(c, {}).get("value") for c in COLS]
    return f"| {label} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |"


def how_trained(folder: Path, model: str, task: str) -> str:
    """One paragraph from the checkpoint's own record: the command, data, loss and what it is stored against."""
    if model == "divter":
        cfg = json.loads((folder / "divter_config.json").read_text())
        return (f"`mg5bench train divter --task {task} --steps {cfg['steps']} --batch {cfg['batch']} "
                f"--lr {cfg['lr']}`; LoRA r={cfg['lora_r']} on the backbone LM's q/k/v/o; "
                f"{cfg['train_pairs']} training examples "
                f"(data fingerprint {cfg['data_fingerprint']}); {cfg['wall_s']} s here; final loss "
                f"{cfg['final_loss']}. Backbones sha256 {cfg['backbones_sha256'][:16]}... (checked).")  # fmt: skip
    cfg = json.loads((folder / "sd2ft.json").read_text())
    return (f"`mg5bench train sd2-ft --task {task} --steps {cfg['steps']}` (cross-kv: text encoder + the UNet's "
            f"cross-attention k/v; {cfg['new_words']} new words); {cfg['pairs']} (text, image) pairs (data "
            f"fingerprint {cfg['data_fingerprint']}); final loss {cfg['final_loss']:.4f}. Stored as a float16 "
            f"delta over `{cfg['base']}` (sha256 {cfg['base_sha256'][:16]}..., checked on load).")  # fmt: skip


def write_cards(limit: int = 200, runs: Path = Path("runs/cards"), progress: bool = True,
                checkpoints: Path | None = None, data: str | None = None) -> list[Path]:  # fmt: skip
    """Evaluate every divter-<task> and sd2-ft-<task> checkpoint of a set (default: the shipped one, on the embedded
    world) and the sd2 baseline on the set's backbones; rewrite their cards' generated sections (hand-written
    sections are kept). ``checkpoints`` + ``data``: another set and the world it was trained on. Training seeds
    (NAME-seed<k>) are listed in their first checkpoint's card by mg5bench.modelcards.seeds, not here."""
    from mg5bench import api
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.catalog import MODELS
    from mg5bench.runs.seeds import SEED_SUFFIX

    root = Path(checkpoints).resolve() if checkpoints is not None else shipped_checkpoints()
    arg = f" --data {data}" if data else ""

    def spec(model: str, task: str, folder: Path) -> api.RunSpec:
        """The val run of ``model`` on ``folder`` (the model's own default when the set is the shipped one)."""
        args = {MODELS.get(model).checkpoint_arg: str(folder)} if checkpoints is not None else {}
        return api.RunSpec(task=task, model=model, split="val", data=data, limit=limit, model_args=args)

    written = []
    for folder in sorted(p for p in root.iterdir() if p.name.startswith(("divter-", "sd2-ft-"))):
        if SEED_SUFFIX.search(folder.name):
            continue
        model, task = folder.name.rsplit("-", 1)
        mine = api.run(spec(model, task, folder), runs, progress=progress)
        sd2 = root / MODELS.get("sd2").default_checkpoints[task]
        ref = api.run(spec("sd2", task, sd2), runs, progress=progress)
        command = f"mg5bench run --task {task} --model {model} --split val --limit {limit}{arg}"
        lines = [f"# {folder.name}", "", how_trained(folder, model, task), "",
                 f"{GENERATED_HEADINGS[0]} (first {limit} samples, `{command}`)", "",
                 "| model | " + " | ".join(COLS) + " |", "|---" * (len(COLS) + 1) + "|",
                 _row(f"{model} (this checkpoint)", mine.report["metrics"]),
                 _row("sd2 (caption only)", ref.report["metrics"])]  # fmt: skip
        written.append(write_card_text(folder / "README.md", "\n".join(lines),
                                       "python -m mg5bench.modelcards.baselines", GENERATED_HEADINGS))  # fmt: skip
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=200, help="first N val samples (default 200)")
    ap.add_argument("--runs", type=Path, default=Path("runs/cards"), help="where the runs are stored (default "
                    "runs/cards)")  # fmt: skip
    ap.add_argument("--checkpoints", type=Path, help="another trained set (default: the shipped one)")
    ap.add_argument("--data", help="the world or data that set was trained on, e.g. synth:level=1 (default: the "
                    "embedded world)")  # fmt: skip
    args = ap.parse_args(argv)
    for path in write_cards(args.limit, args.runs, checkpoints=args.checkpoints, data=args.data):
        print(path)


if __name__ == "__main__":
    main()
