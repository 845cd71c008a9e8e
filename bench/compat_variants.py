"""Print each official-compat metric variant next to the correct one, on the same predictions.

Predictions are simple context-echo baselines on the embedded world (no model needed):
- VIST: the last context image (the previous step's ground truth); step 0 gets no image.
- MMDialog: the last context text and the last context image.

    .venv/bin/python bench/compat_variants.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mg5bench.scoring.scorer import score
from mg5bench.tasks import build_samples, get_task

PAIRS = {
    "vist": [("clip_t", "clip_t_minigpt5"), ("fid", "fid_per_story_minigpt5"), ("clip_i", "clip_i.produced_only")],
    "mmdialog": [
        ("mm_relevance", "mm_relevance_minigpt5"),
        ("bleu1", "bleu_char_minigpt5.bleu1"),
        ("bleu2", "bleu_char_minigpt5.bleu2"),
        ("clip_i", "clip_i.produced_only"),
    ],
}
METRICS = {
    "vist": ["clip_i", "clip_t", "clip_t_minigpt5", "fid", "fid_per_story_minigpt5"],
    "mmdialog": ["mm_relevance", "mm_relevance_minigpt5", "bleu1", "bleu2", "bleu_char_minigpt5", "clip_i"],
}


def echo_output(context: list) -> list[dict]:
    out = []
    texts = [s for s in context if s.is_text]
    images = [s for s in context if s.is_image]
    if texts and images:  # dialog: echo the last turn's text too
        out.append({"text": texts[-1].value})
    if images:
        out.append({"image": images[-1].value})
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for task in ("vist", "mmdialog"):
            sset = build_samples(get_task(task), None, "val", progress=False)
            preds = Path(tmp) / f"{task}.jsonl"
            preds.write_text(
                "".join(json.dumps({"id": s.id, "output": echo_output(list(s.context))}) + "\n" for s in sset.samples)
            )
            rep = score(task, preds, None, split="val", metrics=METRICS[task], resamples=1000, progress=False)
            m = rep["metrics"]
            print(f"{task} val, context-echo baseline ({len(sset.samples)} samples):")
            for correct, compat in PAIRS[task]:
                a, b = m[correct], m[compat]
                print(f"  {correct:<14} {a['value']:8.4f} [{a['ci_low']:.4f}, {a['ci_high']:.4f}]   vs   "
                      f"{compat:<26} {b['value']:8.4f} [{b['ci_low']:.4f}, {b['ci_high']:.4f}]")  # fmt: skip


if __name__ == "__main__":
    main()
