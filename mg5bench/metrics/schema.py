"""What a reader needs of each result key (``metric_schema.yaml`` beside this file): its display name, direction,
units, one-line description, whether it is an official-compat variant and whether it is a diagnostic (never a
headline result). Tables, plots and reports of every
command read it from here, so a result is named the same everywhere."""

from __future__ import annotations

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
