"""The training-seeds section of a model card: every checkpoint of a seed set (``mg5bench.runs.seeds``: the folder and
its ``NAME-seed<k>`` siblings) evaluated on the same val samples through ``mg5bench.api`` as ``mg5bench run``
does, their values, mean and standard deviation, and what each seed costs (size on disk, training time). It is
written into the first checkpoint's README.md between its own markers (the rest of the card is kept), and every
sibling gets a short card of its own pointing there.

    python -m mg5bench.modelcards.seeds reference_model/checkpoints/stage2-vist --task vist --n 100
    python -m mg5bench.modelcards.seeds reference_model/checkpoints/divter-mmdialog --model divter --task mmdialog \\
        --n 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from mg5bench.modelcards.common import train_command

ENTRY = "python -m mg5bench.modelcards.seeds"
BEGIN = "<!-- mg5bench:seeds begin"
END = "<!-- mg5bench:seeds end -->"
KEYS = {
    "vist": ("scene_accuracy", "scene_accuracy.objects", "scene_accuracy.colour", "scene_accuracy.shape",
             "scene_accuracy.size", "scene_accuracy.cell", "persistence", "clip_i"),
    "mmdialog": ("mm_relevance", "scene_accuracy", "scene_accuracy.objects", "scene_accuracy.colour",
                 "clip_i.image_rate", "bleu1"),
    "cc3m": ("scene_accuracy", "scene_accuracy.objects", "scene_accuracy.colour", "clip_i"),
}  # fmt: skip
METRICS = {
    "vist": ["scene_accuracy", "persistence", "clip_i"],
    "mmdialog": ["mm_relevance", "scene_accuracy", "clip_i", "bleu1"],
    "cc3m": ["scene_accuracy", "clip_i"],
}


def _cost(folder: Path) -> tuple[float, float | None]:
    """(MB on disk of the weights and configs, training wall time in minutes) of one checkpoint."""
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and f.suffix in (".safetensors", ".json")
               and f.name != "eval_val.json")  # fmt: skip
    wall = None
    for name, key in (("state.json", "wall_s_this_call"), ("divter_config.json", "wall_s")):
        p = folder / name
        if p.is_file():
            wall = json.loads(p.read_text()).get(key)
            break
    return size / 1e6, None if wall is None else float(wall) / 60


def evaluate_seeds(first: Path, model: str, task: str, n: int, runs: Path = Path("runs/cards"),
                   progress: bool = True, data: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Each checkpoint of ``first``'s seed set on the first ``n`` stories / conversations of the val split of
    ``data`` (default: the embedded world)."""
    from mg5bench import api
    from mg5bench.catalog import MODELS
    from mg5bench.modelcards.common import first_groups
    from mg5bench.runs.seeds import seed_set, training_seed
    from mg5bench.tasks import build_samples, get_task

    samples = build_samples(get_task(task), data, "val", progress=progress).samples
    limit = first_groups(samples, n)
    rows = []
    for path in seed_set(Path(first)):
        spec = api.RunSpec(task=task, model=model, split="val", data=data, limit=limit,
                           model_args={MODELS.get(model).checkpoint_arg: str(path.resolve())})  # fmt: skip
        res = api.run(spec, runs, metrics=METRICS[task], progress=progress)
        assert res.report is not None
        size, wall = _cost(path)
        values = {k: res.report["metrics"][k]["value"] for k in KEYS[task] if k in res.report["metrics"]}
        rows.append({"checkpoint": path.name, "seed": training_seed(path), "size_mb": round(size, 2),
                     "train_minutes": None if wall is None else round(wall, 1), "values": values})  # fmt: skip
    return {"first": Path(first).name, "model": model, "task": task, "n": n, "samples": limit, "seeds": rows}


def section(result: dict[str, Any]) -> str:
    """The card section: a row per seed, then mean and standard deviation over the seeds."""
    from mg5bench.tasks import cluster_unit, get_task

    keys = [k for k in KEYS[result["task"]] if all(k in r["values"] for r in result["seeds"])]
    unit = cluster_unit(get_task(result["task"]).format)[0]
    lines = ["## Training seeds", "",
             f"Every checkpoint of this recipe's seed set (the same settings and stage-1 parent, another seed), on the "
             f"first {result['n']} {unit} of the val split ({result['samples']} samples), generated and scored as "
             "`mg5bench run` does. Comparisons (`mg5bench ablate`, the report) use all of them: the difference of "
             "seed means, its interval adding the spread between seeds.", "",
             "| checkpoint | seed | MB | training min | " + " | ".join(keys) + " |",
             "|---" * (4 + len(keys)) + "|"]  # fmt: skip
    for r in result["seeds"]:
        wall = "n/a" if r["train_minutes"] is None else f"{r['train_minutes']:.1f}"
        lines.append(f"| `{r['checkpoint']}` | {r['seed']} | {r['size_mb']:.2f} | {wall} | "
                     + " | ".join(f"{r['values'][k]:.3f}" for k in keys) + " |")  # fmt: skip
    if len(result["seeds"]) > 1:
        vals = {k: [float(r["values"][k]) for r in result["seeds"]] for k in keys}
        lines.append("| mean | | | | " + " | ".join(f"{statistics.fmean(vals[k]):.3f}" for k in keys) + " |")
        lines.append("| seed sd | | | | " + " | ".join(f"{statistics.stdev(vals[k]):.3f}" for k in keys) + " |")
    total = sum(r["size_mb"] for r in result["seeds"][1:])
    lines += [
        "",
        f"Each extra seed costs {result['seeds'][-1]['size_mb']:.2f} MB of the shipped set "
        f"({total:.2f} MB for the {len(result['seeds']) - 1} beyond this folder) and one stage-2 training.",
    ]
    return "\n".join(lines)


def _replace_block(text: str, block: str) -> str:
    if BEGIN in text and END in text:
        return text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) + 1 :]
    return text.rstrip() + "\n\n" + block


def write_cards(result: dict[str, Any], first: Path, command: str) -> list[Path]:
    """The seeds section into ``first``/README.md, and a card for every sibling."""
    first = Path(first)
    block = f"{BEGIN}: rewritten by `{command}` -->\n{section(result)}\n{END}\n"
    card = first / "README.md"
    card.write_text(_replace_block(card.read_text() if card.is_file() else f"# {first.name}\n", block))
    written = [card]
    for r in result["seeds"][1:]:
        folder = first.parent / r["checkpoint"]
        state = folder / "state.json"
        how = train_command(folder, json.loads(state.read_text())) if state.is_file() else None
        link = f"[`{first.name}`](../{first.name}/README.md)"
        lines = [
            f"# {r['checkpoint']}",
            "",
            f"Training seed {r['seed']} of {link}: the same recipe and parent, "
            "another seed. Its figures beside the other seeds' are in that card's "
            '"Training seeds" section; use it through the seed set (`mg5bench ablate`, `mg5bench run --seeds '
            f"N`) or alone with `--model-args checkpoint=reference_model/checkpoints/{r['checkpoint']}`.",
            "",
        ]
        if how:
            lines += ["Train command:", "", f"    {how}", ""]
        took = "" if r["train_minutes"] is None else f"; training took {r['train_minutes']:.1f} min"
        lines += [f"Size {r['size_mb']:.2f} MB{took}.", ""]
        (folder / "README.md").write_text("\n".join(lines))
        written.append(folder / "README.md")
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="the seed set's first checkpoint (the folder without -seed<k>)")
    ap.add_argument("--model", default="minigpt5", help="minigpt5 (default) or divter")
    ap.add_argument("--task", choices=["vist", "mmdialog", "cc3m"], default="vist", help="default vist")
    ap.add_argument("--n", type=int, default=100, help="stories / conversations / captions (default 100)")
    ap.add_argument("--runs", type=Path, default=Path("runs/cards"), help="where the runs are stored")
    ap.add_argument("--data", help="data (default: the embedded world; synth:level=3 for another level)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    res = evaluate_seeds(
        args.checkpoint, args.model, args.task, args.n, args.runs, progress=not args.quiet, data=args.data
    )
    print(section(res))
    cmd = f"{ENTRY} " + " ".join(argv if argv is not None else sys.argv[1:])
    for p in write_cards(res, args.checkpoint, cmd):
        print(p)


if __name__ == "__main__":
    main()
