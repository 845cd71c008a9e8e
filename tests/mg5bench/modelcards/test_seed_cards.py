"""The training-seeds section of a model card: per-seed values, their mean and standard deviation (statistics
module as reference), written between markers so the hand-written card around it is kept, and a card per sibling."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from mg5bench.modelcards.seeds import BEGIN, END, section, write_cards


def _result() -> dict:
    rows = [
        {
            "checkpoint": name,
            "seed": seed,
            "size_mb": 2.2,
            "train_minutes": 15.0,
            "values": {
                "scene_accuracy": v,
                "scene_accuracy.colour": c,
                "scene_accuracy.shape": 1.0,
                "scene_accuracy.size": 1.0,
                "scene_accuracy.position": 0.5,
                "clip_i": 0.8,
            },
        }
        for name, seed, v, c in (("ck", 42, 0.40, 0.9), ("ck-seed43", 43, 0.44, 0.8), ("ck-seed44", 44, 0.36, 0.7))
    ]
    return {"first": "ck", "model": "minigpt5", "task": "vist", "n": 100, "samples": 500, "seeds": rows}  # fmt: skip


def test_section_has_each_seed_the_mean_and_the_spread() -> None:
    text = section(_result())
    mean = next(line for line in text.splitlines() if line.startswith("| mean"))
    sd = next(line for line in text.splitlines() if line.startswith("| seed sd"))
    assert f"{statistics.fmean([0.40, 0.44, 0.36]):.3f}" in mean
    assert f"{statistics.stdev([0.40, 0.44, 0.36]):.3f}" in sd and f"{statistics.stdev([0.9, 0.8, 0.7]):.3f}" in sd
    assert "4.40 MB for the 2 beyond this folder" in text


def test_cards_keep_the_hand_written_text(tmp_path: Path) -> None:
    first = tmp_path / "ck"
    for name in ("ck", "ck-seed43", "ck-seed44"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.json").write_text(json.dumps({"command": f"train {name}"}))
    (first / "README.md").write_text("# ck\n\nHand-written analysis.\n")
    write_cards(_result(), first, "python -m mg5bench.modelcards.seeds ck")
    write_cards(_result(), first, "python -m mg5bench.modelcards.seeds ck")  # twice: replaced, not appended
    card = (first / "README.md").read_text()
    assert card.startswith("# ck\n\nHand-written analysis.") and card.count(BEGIN) == 1 and card.count(END) == 1
    sibling = (tmp_path / "ck-seed43" / "README.md").read_text()
    assert "Training seed 43 of" in sibling and "train ck-seed43" in sibling


def test_a_generated_card_written_over_a_seeds_only_card_keeps_the_seeds_marker(tmp_path: Path) -> None:
    """The order train_reference.sh writes a baseline's card in: the seeds section first (a card with nothing
    else), then the generated card, then the seeds section again: one seeds section, not two."""
    from mg5bench.modelcards.common import END as GEN_END
    from mg5bench.modelcards.common import write_card_text

    first = tmp_path / "ck"
    for name in ("ck", "ck-seed43", "ck-seed44"):
        (tmp_path / name).mkdir()
    write_cards(_result(), first, "seeds ck")
    write_card_text(first / "README.md", "# ck\n\n## Val figures\n\n| a |", "cards", ["## Val figures"])
    write_cards(_result(), first, "seeds ck")
    card = (first / "README.md").read_text()
    assert card.count(BEGIN) == 1 and card.count(END) == 1 and card.count("## Training seeds") == 1
    assert card.index(GEN_END) < card.index(BEGIN) < card.index("## Training seeds") < card.index(END)
