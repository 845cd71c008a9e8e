"""An ablation's runs, resolved before anything is generated: every variant of the axis (each checkpoint of its
seed set) as a run folder (``runs.keys.prepare``, the variants sharing one sample cache), how many of its first
samples the comparison needs, and whether the store holds them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.ablation.axis import Axis
from mg5bench.core.errors import ConfigError


@dataclass
class PlannedRun:
    """One run of an ablation: a variant's checkpoint resolved to its run folder."""

    name: str
    spec: Any  # RunSpec
    prepared: Any  # runner.Prepared
    need: int  # samples of this run that the comparison uses (its first `need`)
    seed_index: int = 0  # which of the variant's checkpoints (seeds) this run is; 0 = the variant's own
    checkpoint: str = "default"  # the checkpoint folder's name ("default": the model's default for the task)
    paths: tuple[str, ...] = ()  # every checkpoint of the variant (decides whether two variants pair by seed)


def records_sha256(folder: Path, ids: Sequence[str]) -> str:
    """sha256 of the stored outputs of ``ids`` (what the comparison reads), or '' when any is missing."""
    from mg5bench.runs.store import RunStore

    done = RunStore(folder).done()
    if any(i not in done for i in ids):
        return ""
    lines = "".join(json.dumps({"id": i, "output": done[i]["output"]}, sort_keys=True) + "\n" for i in ids)
    return hashlib.sha256(lines.encode()).hexdigest()


def plan(
    axis: Axis,
    task: str,
    split: str,
    data: str | None,
    limit: int,
    seed: int,
    out: Path,
    *,
    batch_size: int | None,
    device: str,
    cache_dir: Path | None,
    progress: bool,
    seeds: int | None = None,
    checkpoints: Path | None = None,
) -> list[PlannedRun]:
    """Resolve every variant's runs (one per checkpoint of its seed set, at most ``seeds``) to their run folders
    without loading a model, and how many samples of each are needed: the base's first ``limit``; for a variant over
    other samples (e.g. the GILL last-step protocol) the fewest first samples that cover every sample it shares with
    the base's selection."""
    from mg5bench.runs.keys import prepare
    from mg5bench.tasks import SampleCache, get_task

    fmt = get_task(task).format
    planned: dict[str, list[PlannedRun]] = {}
    samples = SampleCache()  # the variants of one task share their sample sets
    for v in axis.variants:
        paths = v.seed_paths(fmt, seeds, checkpoints)
        names = tuple("default" if x is None else str(x) for x in paths)
        for k, path in enumerate(paths):
            spec = v.spec(task, split, data, limit, seed, checkpoint=path)
            p = prepare(spec, out, batch_size=batch_size, device=device, cache_dir=cache_dir, progress=progress,
                        samples=samples)  # fmt: skip
            label = "default" if path is None else Path(path).name
            planned.setdefault(v.name, []).append(PlannedRun(v.name, spec, p, 0, k, label, names))
    base = planned[axis.base][0]
    base_ids = [s.id for s in base.prepared.sset.samples[:limit]]
    if len(base_ids) < limit:
        limit = len(base_ids)
    wanted = set(base_ids)
    for name, runs in planned.items():
        for pl in runs:
            if name == axis.base:
                pl.need = limit
                continue
            ids = [s.id for s in pl.prepared.sset.samples]
            last = max((i for i, sid in enumerate(ids) if sid in wanted), default=-1)
            if last < 0:
                raise ConfigError(f"axis {axis.name}: variant {name} shares no sample with the base's first {limit} "
                                  "(different data, split or task?); fix the axis file")  # fmt: skip
            pl.need = last + 1
    return [pl for v in axis.variants for pl in planned[v.name]]


def is_stored(p: PlannedRun) -> bool:
    from mg5bench.runs.store import RunStore, stored_prefix

    ids = [s.id for s in p.prepared.sset.samples]
    return stored_prefix(ids, RunStore(p.prepared.folder).stored_ids()) >= p.need
