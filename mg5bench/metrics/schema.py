"""What a reader needs of each result key (``metric_schema.yaml`` beside this file): its display name, direction,
units, one-line description, whether it is an official-compat variant and whether it is a diagnostic (never a
headline result); and which results lead a table or an ablation (``headline_keys``). Tables, plots and reports of
every command read them from here, so a result is named the same everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).resolve().parent / "metric_schema.yaml"


@lru_cache(maxsize=1)
def metric_schema() -> dict[str, dict[str, Any]]:
    """metric_schema.yaml: per result key its display name, direction, units, description, compat and diagnostic
    flags."""
    import yaml

    data = yaml.safe_load(SCHEMA_FILE.read_text())
    for key, entry in data.items():
        entry.setdefault("compat", False)
        entry.setdefault("diagnostic", False)
        if entry.get("direction") not in ("higher", "lower"):
            raise ValueError(f"{SCHEMA_FILE}: {key}: direction must be higher or lower")
    return data


def display(key: str) -> str:
    """The report's name of a result key (the key itself when the schema does not name it); † marks a compat
    variant."""
    entry = metric_schema().get(key)
    name = entry["display"] if entry else key
    return name + (" †" if entry and entry["compat"] else "")


# the results an ablation and the leaderboard lead with, per task format (others stay in the JSON)
HEADLINE: dict[str, tuple[str, ...]] = {
    "vist": ("clip_i", "clip_i.image_rate", "clip_t", "fid", "kid", "scene_accuracy", "scene_accuracy.objects",
             "scene_accuracy.colour", "persistence", "context_consistency"),
    "cc3m": ("clip_i", "clip_i.image_rate", "clip_t", "fid", "kid", "scene_accuracy", "scene_accuracy.objects",
             "scene_accuracy.colour"),
    "mmdialog": ("mm_relevance", "bleu1", "bleu2", "rouge_l", "sbert", "clip_i", "clip_i.image_rate", "fid",
                 "kid", "scene_accuracy", "scene_accuracy.objects", "scene_accuracy.colour"),
}  # fmt: skip


def headline_keys(task_format: str, metric_names: Sequence[str]) -> list[str]:
    """The headline results present among ``metric_names`` (a metric named outside the defaults leads too). A
    diagnostic (metric_schema.yaml) explains other results without ranking runs: it leads only when it is all there
    is."""
    keys = [k for k in HEADLINE.get(task_format, ()) if k.split(".")[0] in metric_names]
    rest = [m for m in metric_names if m not in keys and not any(k.split(".")[0] == m for k in keys)]
    ranked = [m for m in rest if not metric_schema().get(m, {}).get("diagnostic")]
    return keys + ranked if keys or ranked else rest
