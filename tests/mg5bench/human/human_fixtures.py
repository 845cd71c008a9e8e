"""Fixture run folders for the human-evaluation tests, written by hand in the run-folder layout that ``mg5bench
run`` writes (run.json with the spec and data fingerprint, samples.jsonl, images/), over the official VIST sample
(one story = five samples), so no model runs."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES

from mg5bench.human.store import StudyPlan

VIST_DATA = SAMPLES / "VIST"
VIST_IDS = [f"40470_{k}" for k in range(5)]


def vist_fingerprint() -> str:
    from mg5bench.tasks import build_samples, get_task

    return build_samples(get_task("vist"), str(VIST_DATA), "val", progress=False).fingerprint


def make_run(
    runs: Path,
    model: str,
    colour: tuple[int, int, int],
    ids: list[str] | None = None,
    fingerprint: str | None = None,
    split: str = "val",
    word: str = "output",
) -> Path:
    """runs/vist/<model>/val-seed0-test-<hash>/ with one text ("<word> <id>", never the model's name: the app
    must not reveal it) and one 8x8 PNG of ``colour`` per sample."""
    from PIL import Image

    folder = runs / "vist" / model / f"{split}-seed0-test-{abs(hash((model, colour))) % 10**12:012d}"
    (folder / "images").mkdir(parents=True)
    lines = []
    for sid in ids or VIST_IDS:
        rel = f"images/{sid}_0.png"
        Image.new("RGB", (8, 8), colour).save(folder / rel)
        lines.append(
            json.dumps({"id": sid, "output": [{"text": f"{word} {sid}"}, {"image": rel}], "meta": {"seconds": 0.1}})
        )
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
    info = {
        "spec": {
            "task": "vist",
            "model": model,
            "split": split,
            "data": str(VIST_DATA),
            "seed": 0,
            "model_args": {},
            "task_args": {},
        },
        "data": {"data_fingerprint": fingerprint},
    }
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def synthetic_plan(n: int, root: Path, x: str = "X", y: str = "Y", gold: int = 0) -> StudyPlan:
    """A study plan of ``n`` text-only pair items (and ``gold`` gold items) that needs no run folder: for tests
    of the store and the analysis."""
    from mg5bench.human.store import GOLD_BLANK, GOLD_GT, PlanItem, StudyPlan

    def item(i: int, kind: str, mx: str, my: str) -> PlanItem:
        outs = {"x": [{"text": f"{mx} on s{i:03d}"}], "y": [{"text": f"{my} on s{i:03d}"}]}
        return PlanItem(f"s{i:03d}", kind, mx, my, {"context": [{"text": f"context {i}"}], "outputs": outs})

    return StudyPlan(
        "vist",
        "val",
        x,
        y,
        {"x": str(root), "y": str(root), "data": str(root)},
        {"x": str(root / x), "y": str(root / y)},
        [item(i, "pair", x, y) for i in range(n)],
        [item(i, "gold", GOLD_GT, GOLD_BLANK) for i in range(gold)],
    )


def label_for(outcome: str, left_is_x: bool) -> str:
    """The label a rater gives for an outcome seen from model X's side, given where X was shown."""
    x_side, y_side = ("A", "B") if left_is_x else ("B", "A")
    return {
        "win": x_side,
        "loss": y_side,
        "lean_win": f"tie_{x_side.lower()}",
        "lean_loss": f"tie_{y_side.lower()}",
        "both_bad": "both_bad",
    }[outcome]
