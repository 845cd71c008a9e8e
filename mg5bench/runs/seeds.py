"""Training seeds of one recipe: a trained variant is several checkpoints that differ only in their seed.

A checkpoint folder ``NAME`` and its siblings ``NAME-seed<k>`` form a seed set (the shipped ``stage2-vist`` is
seed 42, ``stage2-vist-seed43`` and ``stage2-vist-seed44`` the others). Comparisons resample and permute over the
seeds as well as the stories (``mg5bench.scoring.statistics.two_level_difference``), so a verdict accounts for how much
a retrained model moves. An axis file may also list a variant's checkpoints explicitly. Before they are pooled,
the checkpoints are checked to share one recipe: every training setting but the seed (and where the data or the
parent lived on disk) must agree, and the parent's and data's content hashes too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError

SEED_SUFFIX = re.compile(r"-seed(\d+)$")
# settings that may differ between the seeds of one recipe: the seed itself, and where things were on disk (their
# content is compared through the recorded sha256 and data fingerprint instead)
_FREE = {"seed", "data", "init", "out", "wall_s", "wall_s_this_call", "final_loss", "final_losses", "command",
         "val_log", "processes"}  # fmt: skip


def seed_siblings(path: Path) -> list[Path]:
    """``path`` and every sibling folder named ``<path.name>-seed<k>``, ordered by k (``path`` first)."""
    path = Path(path)
    if not path.parent.is_dir():
        return [path]
    pattern = re.compile(re.escape(path.name) + r"-seed(\d+)$")
    found = sorted(((int(m.group(1)), p) for p in path.parent.iterdir() if (m := pattern.match(p.name))
                    and p.is_dir()), key=lambda t: t[0])  # fmt: skip
    return [path, *(p for _, p in found)]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recipe(folder: Path) -> dict[str, Any]:
    """What a checkpoint was trained with, without its seed: MiniGPT-5 (``state.json`` + ``minigpt5_config.json``),
    Divter (``divter_config.json``) or sd2-ft (``sd2ft.json``); {} for a folder with none of them (an untrained
    or foreign model, compared as one checkpoint)."""
    folder = Path(folder)
    state = _read(folder / "state.json")
    if state is not None:
        tc = {k: v for k, v in (state.get("train_config") or {}).items() if k not in _FREE}
        parent = (state.get("parent") or {}).get("sha256")
        cfg = _read(folder / "minigpt5_config.json") or {}
        return {"kind": "minigpt5", "train_config": tc, "parent_sha256": parent, "config": cfg,
                "data_fingerprint": state.get("data_fingerprint"), "steps": state.get("steps")}  # fmt: skip
    for name, kind in (("divter_config.json", "divter"), ("sd2ft.json", "sd2-ft")):
        cfg = _read(folder / name)
        if cfg is not None:
            return {"kind": kind, **{k: v for k, v in cfg.items() if k not in _FREE}}
    return {}


def training_seed(folder: Path) -> int | None:
    """The seed a checkpoint was trained with, where its files record one."""
    state = _read(Path(folder) / "state.json")
    if state is not None:
        return (state.get("train_config") or {}).get("seed")
    cfg = _read(Path(folder) / "divter_config.json")
    return None if cfg is None else cfg.get("seed")


def _diff(a: Any, b: Any, prefix: str = "") -> str | None:
    """The first setting where two recipes differ (a dotted key), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _diff(a.get(k), b.get(k), f"{prefix}{k}.")
            if d is not None:
                return d
        return None
    return None if a == b else prefix.rstrip(".")


def check_same_recipe(folders: Sequence[Path]) -> None:
    """Refuse to pool checkpoints of different recipes (one line naming both folders and the setting)."""
    if len(folders) < 2:
        return
    first = recipe(folders[0])
    seen = {training_seed(folders[0])}
    for f in folders[1:]:
        other = recipe(f)
        if first.get("kind") == other.get("kind") == "minigpt5" and set(first["train_config"]) != set(
            other["train_config"]
        ):  # one was recorded before a setting existed: it ran at that setting's default
            from reference_model.train import with_defaults

            for r in (first, other):
                r["train_config"] = {k: v for k, v in with_defaults(r["train_config"]).items() if k not in _FREE}
        where = _diff(first, other)
        if where is not None:
            raise ConfigError(f"{f.name} is not a seed of {folders[0].name}: they differ in {where or 'kind'} (a "
                              "seed set shares every training setting but the seed); rename it or list the "
                              "variant's checkpoints explicitly")  # fmt: skip
        s = training_seed(f)
        if s is not None and s in seen:
            raise ConfigError(f"{f.name} and {folders[0].name} were trained with the same seed ({s}); a seed set "
                              "needs distinct seeds")  # fmt: skip
        seen.add(s)


def seed_set(folder: Path, limit: int | None = None) -> list[Path]:
    """The checked seed set of a checkpoint folder (itself first), at most ``limit`` checkpoints."""
    found = seed_siblings(Path(folder))
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--seeds must be a positive number of checkpoints, got {limit}")
        found = found[:limit]
    check_same_recipe(found)
    return found
