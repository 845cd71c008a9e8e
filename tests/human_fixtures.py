"""Fixture run folders for the human-evaluation tests, written by hand in the run-folder layout that ``mg5bench
run`` writes (run.json with the spec and data fingerprint, samples.jsonl, images/), over the official VIST sample
(one story = five samples), so no model runs."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES

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
) -> Path:
    """runs/vist/<model>/val-seed0-test-<hash>/ with one text and one 8x8 PNG per sample."""
    from PIL import Image

    folder = runs / "vist" / model / f"{split}-seed0-test-{abs(hash((model, colour))) % 10**12:012d}"
    (folder / "images").mkdir(parents=True)
    lines = []
    for sid in ids or VIST_IDS:
        rel = f"images/{sid}_0.png"
        Image.new("RGB", (8, 8), colour).save(folder / rel)
        lines.append(
            json.dumps(
                {"id": sid, "output": [{"text": f"{model} says {sid}"}, {"image": rel}], "meta": {"seconds": 0.1}}
            )
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
