"""``mg5bench run``: build a RunSpec, stream the task's samples through a model adapter, store every
finished sample atomically, then score with the task card's metrics (the same engine as ``score``).

    runs/<task>/<model>/<split>-seed<S>-...-<hash>/   run.json samples.jsonl images/ metrics.json per_sample.jsonl

The folder hash covers every setting that can change a number: the RunSpec, the adapter's identity
(checkpoint path and sha256), the resolved generation config, the task card and the data fingerprint.
A finished run is printed, not recomputed (``force`` recomputes); an interrupted run resumes. Under
``torchrun --nproc-per-node N`` samples are sharded by rank and rank 0 scores once all shards are in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.errors import ConfigError
from mg5bench.spec import RunSpec, content_hash
from mg5bench.store import RunStore
from mg5bench.types import Sample, Segment

RUNNER_VERSION = 1


def sample_seed(seed: int, sample_id: str) -> int:
    """The seed of one sample's torch.Generator: a hash of (run seed, sample id)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()[:8], "little") & (2**63 - 1)


def sample_generator(seed: int, sample_id: str) -> Any:
    import torch

    return torch.Generator().manual_seed(sample_seed(seed, sample_id))


@dataclass
class RunResult:
    folder: Path
    report: dict[str, Any] | None  # metrics.json content (rank 0); None on other ranks
    reused: bool
    info: dict[str, Any]


def _dist() -> tuple[int, int]:
    """(rank, world size); initialises gloo on CPU (nccl on GPU) under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def load_adapter_class(name: str) -> Any:
    from mg5bench.catalog import MODELS

    return MODELS.get(name)


def run_folder(out: Path, spec: RunSpec, key: Mapping[str, Any]) -> Path:
    """runs/<task>/<model>/<readable settings>-<hash of everything>."""
    readable = spec.name.rsplit("-", 1)[0]
    return Path(out) / spec.task / spec.model / f"{readable}-{content_hash(dict(key))}"


def _to_segments(store: RunStore, sample: Sample, output: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Adapter output -> JSON segments; PIL images are saved under images/ (paths relative to the run)."""
    segs: list[dict[str, Any]] = []
    k = 0
    for kind, value in output:
        if kind == "text":
            segs.append({"text": str(value)})
        elif kind == "image":
            if isinstance(value, (str, Path)):
                segs.append({"image": str(Path(value).resolve())})
            else:
                path = store.save_image(sample.id, k, value)
                segs.append({"image": str(path.relative_to(store.root.resolve()))})
                k += 1
        else:
            raise ConfigError(f"adapter returned an unknown segment kind {kind!r} for sample {sample.id}")
    return segs


def run(
    spec: RunSpec,
    out: Path = Path("runs"),
    *,
    force: bool = False,
    batch_size: int | None = None,
    evaluator: str = "embedded",
    resamples: int = 1000,
    cache_dir: Path | None = None,
    progress: bool = True,
    after_sample: Callable[[int], None] | None = None,
) -> RunResult:
    """Generate (or resume) and score one run. ``after_sample(n_done)`` is a test hook called after each
    stored sample (it may raise to simulate a crash)."""
    from tqdm.auto import tqdm

    from mg5bench.scoring import score
    from mg5bench.tasks import build_samples, get_task

    t_start = time.perf_counter()
    rank, world = _dist()
    cfg = get_task(spec.task, dict(spec.task_args))
    sset = build_samples(cfg, spec.data, spec.split, cache_dir=cache_dir, progress=progress and rank == 0)
    samples = sset.samples[: spec.limit] if spec.limit else sset.samples
    sub = dataclasses.replace(sset, samples=samples)
    cls = load_adapter_class(spec.model)
    adapter = cls(cfg, dict(spec.model_args))
    gen_cfg = spec.generation.merged(cls.defaults)
    key = {
        "runner": RUNNER_VERSION,
        "spec": spec.to_dict(),
        "model": adapter.identity(),
        "generation": gen_cfg.to_dict(),
        "task": cfg.to_dict(),
        "data_fingerprint": sset.fingerprint,
        "evaluator": evaluator,
        "resamples": resamples,
    }
    folder = run_folder(out, spec, key)
    store = RunStore(folder)
    if store.is_complete() and not force:
        info = json.loads((folder / "run.json").read_text())
        report = json.loads((folder / "metrics.json").read_text()) if rank == 0 else None
        return RunResult(folder, report, True, info)
    if force and folder.exists() and rank == 0:
        shutil.rmtree(folder)
    _barrier(world)
    store.images.mkdir(parents=True, exist_ok=True)
    done = store.done()
    mine = [s for i, s in enumerate(samples) if i % world == rank]
    todo = [s for s in mine if s.id not in done]
    bs = batch_size or getattr(cls, "batch_size", 8)
    model_seconds = 0.0
    t_gen = time.perf_counter()
    if todo:
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"{spec.model} {spec.task}", unit="sample",
                   disable=not progress, position=rank)  # fmt: skip
        load = getattr(adapter, "load", None)
        t0 = time.perf_counter()
        if load is not None:
            load()
        model_seconds += time.perf_counter() - t0
        n_done = len(mine) - len(todo)
        for i in range(0, len(todo), bs):
            batch = todo[i : i + bs]
            gens = [sample_generator(spec.seed, s.id) for s in batch]
            t0 = time.perf_counter()
            outputs = adapter.generate(batch, gen_cfg, gens)
            dt = time.perf_counter() - t0
            model_seconds += dt
            if len(outputs) != len(batch):
                raise ConfigError(f"adapter {spec.model!r} returned {len(outputs)} outputs for {len(batch)} samples")
            for sample, output in zip(batch, outputs, strict=True):
                rec = {"id": sample.id, "output": _to_segments(store, sample, output),
                       "meta": {"seconds": round(dt / len(batch), 4), "rank": rank}}  # fmt: skip
                store.append(rank, rec)
                n_done += 1
                bar.update(1)
                if after_sample is not None:
                    after_sample(n_done)
        bar.close()
    gen_seconds = time.perf_counter() - t_gen
    _barrier(world)
    if world > 1:  # scoring is rank 0's alone: torchmetrics must not try to sync with finished ranks
        import torch.distributed as dist

        dist.destroy_process_group()
    if rank != 0:
        return RunResult(folder, None, False, {})
    store.finalize([s.id for s in samples])
    t_score = time.perf_counter()
    report = score(
        spec.task, folder / "samples.jsonl", folder, data=spec.data, split=spec.split, evaluator=evaluator,
        task_args=dict(spec.task_args), resamples=resamples, cache_dir=cache_dir, progress=progress, sset=sub,
    )  # fmt: skip
    info = {
        "spec": spec.to_dict(),
        "key": key,
        "folder_hash": folder.name.rsplit("-", 1)[1],
        "data": sub.manifest(),
        "n_samples": len(samples),
        "processes": world,
        "timing": {
            "generation_s": round(gen_seconds, 3),
            "model_s_rank0": round(model_seconds, 3),
            "scoring_s": round(time.perf_counter() - t_score, 3),
            "total_s": round(time.perf_counter() - t_start, 3),
        },
        "complete": True,
    }
    store.write_run_json(info)
    return RunResult(folder, report, False, info)


def segments_of(record: Mapping[str, Any], folder: Path) -> list[Segment]:
    """Segments of one samples.jsonl record, image paths made absolute."""
    out = []
    for seg in record["output"]:
        s = Segment.from_json(seg)
        if s.is_image and not Path(s.value).is_absolute():
            s = Segment.image(str((folder / s.value).resolve()), s.role)
        out.append(s)
    return out
