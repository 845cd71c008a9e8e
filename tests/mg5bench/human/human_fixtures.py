"""Fixture run folders for the human-evaluation tests, written by hand in the run-folder layout that ``mg5bench
run`` writes (run.json with the spec and data fingerprint, samples.jsonl, images/), over the official VIST sample
(one story = five samples), so no model runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import SAMPLES

from mg5bench.human.assignment import StudyPlan

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


def make_real_run(
    runs: Path,
    model: str,
    colour: tuple[int, int, int],
    *,
    generation: dict[str, Any] | None = None,
    task_args: dict[str, Any] | None = None,
    seed: int = 0,
    text: bool = False,
    checkpoint: str | None = None,
    limit: int | None = None,
    model_args: dict[str, Any] | None = None,
) -> Path:
    """A run folder as 'mg5bench run' names and describes it (the runner's own ``prepare`` and ``run_info``: real key,
    folder name and run.json) on the official VIST sample, with the outputs written here instead of by the model:
    one 8x8 image of ``colour`` per sample (and a text when ``text``); ``limit``: the --limit it was asked for (it
    holds every sample of the split, as a run whose last batch went past its limit does). ``checkpoint``: the
    run.json of a run of another trained checkpoint of that name (as 'ablate' writes for another training seed: the
    path in the model args, another content hash in the key)."""
    from PIL import Image

    from mg5bench.runs.keys import prepare, run_info
    from mg5bench.runs.spec import GenerationConfig, RunSpec
    from mg5bench.runs.store import RunStore

    spec = RunSpec(task="vist", model=model, split="val", data=str(VIST_DATA), seed=seed,
                   generation=GenerationConfig(**(generation or {})), task_args=task_args or {},
                   model_args=model_args or {})  # fmt: skip
    p = prepare(spec, runs, progress=False)
    folder = p.folder
    if checkpoint is not None:
        p.key["model"] = {**p.key["model"], "sha256": f"other-{checkpoint}"}
        folder = folder.with_name(f"{folder.name[:-12]}{abs(hash(checkpoint)) % 10**12:012d}")
    (folder / "images").mkdir(parents=True)
    lines = []
    for s in p.sset.samples:
        rel = f"images/{s.id}_0.png"
        Image.new("RGB", (8, 8), colour).save(folder / rel)
        out = [{"text": f"story {s.id}"}] if text else []
        lines.append(json.dumps({"id": s.id, "output": [*out, {"image": rel}]}))
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
    info = run_info(p, RunStore(folder), None, limit or len(lines), {s.id for s in p.sset.samples})
    if checkpoint is not None:
        info["spec"]["model_args"]["checkpoint"] = str(runs / "trained" / checkpoint)
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def ablated_runs(runs: Path) -> dict[str, Path]:
    """What runs/vist/ holds after 'mg5bench run' of two models and an 'mg5bench ablate' of the first: the
    shipped checkpoint at default settings, two guidance scales, another protocol and run seed, two other
    trained checkpoints (the paper's w/o CFG, another training seed)."""
    return {
        "default": make_real_run(runs, "minigpt5", (255, 0, 0)),
        "gs1": make_real_run(runs, "minigpt5", (0, 255, 0), generation={"guidance_scale": 1.0}),
        "gs7.5": make_real_run(runs, "minigpt5", (0, 255, 0), generation={"guidance_scale": 7.5}),
        "text": make_real_run(runs, "minigpt5", (1, 1, 1), task_args={"context": "text"}),
        "seed1": make_real_run(runs, "minigpt5", (2, 2, 2), seed=1),
        "no-cfg": make_real_run(runs, "minigpt5", (3, 3, 3), checkpoint="stage2-vist-no-cfg"),
        "train-seed1": make_real_run(runs, "minigpt5", (4, 4, 4), checkpoint="stage2-vist-seed1"),
        "sd2-ft": make_real_run(runs, "sd2-ft", (0, 0, 255)),
    }


def synthetic_plan(
    n: int, root: Path, x: str = "X", y: str = "Y", gold: int = 0, aspects: tuple[str, ...] | None = None
) -> StudyPlan:
    """A study plan of ``n`` text-only pair items (and ``gold`` gold items) that needs no run folder: for tests
    of the store and the analysis. Every question is asked, or only ``aspects`` (the others marked skipped)."""
    from mg5bench.human.assignment import ASPECTS, GOLD_BLANK, GOLD_GT, PlanItem, StudyPlan

    asked = aspects or ASPECTS
    skipped = {a: "not in this test's design" for a in ASPECTS if a not in asked}

    def item(i: int, kind: str, mx: str, my: str) -> PlanItem:
        outs = {"x": [{"text": f"{mx} on s{i:03d}"}], "y": [{"text": f"{my} on s{i:03d}"}]}
        payload = {"context": [{"text": f"context {i}"}], "outputs": outs, "skipped": skipped}
        return PlanItem(f"s{i:03d}", kind, mx, my, payload, asked)

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
