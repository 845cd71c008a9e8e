"""Where a run's generations are stored: a RunSpec resolved (without loading the model) into its generation key and
its run folder, and what the folder's run.json says about itself.

    runs/<task>/<model>/<split>-seed<S>-<settings>-bs<B>-<hash>/   run.json samples.jsonl images/ scores/

The key (``generation_key``) covers exactly what changes a sample's output: runner version, the adapter's
identity (the checkpoint's sha256 and every path argument's content hash, never a path, so a run is found again
from another clone, through a symlink or when the checkpoint is given by path), the generation settings as the
adapter resolved them, the batch size, the task definition and protocol, the split and data fingerprint, the seed,
the device type and, on the CPU, the thread count per process. A folder stored under the older key scheme is
renamed to its new key on first use (``migrate_run``). Not ``--limit`` (it selects the first N samples; a larger
limit later generates only the missing ones) and nothing about scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.adapters.base import Adapter
from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import content_hash
from mg5bench.runs.spec import GenerationConfig, RunSpec
from mg5bench.runs.store import RunStore, stored_prefix
from mg5bench.tasks import SampleCache, SampleSet, TaskConfig

# the key scheme: model identities hold content hashes, never paths, and data fingerprints hash image contents;
# a key of version 3 (identities that held checkpoint paths) is upgraded to it by ``upgrade_key``
RUNNER_VERSION = 4


@dataclass
class Prepared:
    """A run resolved before any generation: what the runner and ``mg5bench run`` print from."""

    spec: RunSpec
    task: TaskConfig
    sset: SampleSet  # the whole split
    adapter: Adapter
    generation: GenerationConfig  # as the adapter resolved it
    batch_size: int
    device: str
    key: dict[str, Any]
    folder: Path


def generation_key(spec: RunSpec, task: TaskConfig, sset: SampleSet, adapter: Adapter, generation: GenerationConfig,
                   batch_size: int, device: str) -> dict[str, Any]:  # fmt: skip
    """What the run folder's hash covers: exactly what can change a sample's output (see the module docstring).
    On the CPU that includes the intra-op thread count: CPU kernels split their reductions by thread, so the
    same batch rounds differently with 1 and 2 threads (measured on the sd2 backbone). A model whose outputs
    depend on the sample alone (``pure``: gt, blank) is keyed without batch size, device or threads."""
    from mg5bench.core.devices import cpu_threads, device_type

    pure = adapter.pure
    cpu = device_type(device) == "cpu"
    return {
        "runner": RUNNER_VERSION,
        "model": adapter.identity(),
        "generation": generation.to_dict(),
        "batch_size": None if pure else batch_size,
        "task": {k: v for k, v in task.to_dict().items() if k in ("name", "version", "format", "protocol")},
        "split": sset.split,
        "data_fingerprint": sset.fingerprint,
        "seed": spec.seed,
        "device_type": None if pure else device_type(device),
        "cpu_threads": cpu_threads() if cpu and not pure else None,
    }


def run_folder(out: Path, spec: RunSpec, key: Mapping[str, Any]) -> Path:
    """runs/<task>/<model>/<readable settings>-<hash of the key>."""
    g = key["generation"]
    parts = [key["split"], f"seed{spec.seed}"]
    if g.get("guidance_scale") is not None:
        parts.append(f"gs{g['guidance_scale']:g}")
    if g.get("num_inference_steps") is not None:
        parts.append(f"steps{g['num_inference_steps']}")
    if key.get("batch_size") is not None:
        parts.append(f"bs{key['batch_size']}")
    if key.get("device_type") == "cpu" and key.get("cpu_threads"):
        parts.append(f"cpu{key['cpu_threads']}")
    elif key.get("device_type"):
        parts.append(str(key["device_type"]))
    return Path(out) / spec.task / spec.model / f"{'-'.join(parts)}-{content_hash(dict(key))}"


def prepare(
    spec: RunSpec,
    out: Path = Path("runs"),
    *,
    batch_size: int | None = None,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
    samples: SampleCache | None = None,
) -> Prepared:
    """Resolve a spec without loading the model: task, samples, adapter, its resolved settings, key, folder.
    ``samples``: the cache the sample set is taken from (callers that resolve many runs of one task share one);
    without it the set is built for this call."""
    from mg5bench.catalog import MODELS
    from mg5bench.tasks import get_task

    cfg = get_task(spec.task, dict(spec.task_args))
    sset = (samples or SampleCache()).get(cfg, spec.data, spec.split, cache_dir=cache_dir, progress=progress)
    cls: type[Adapter] = MODELS.get(spec.model)
    adapter = cls(cfg, dict(spec.model_args))
    adapter.device = device
    generation = adapter.resolve(spec.generation)
    bs = int(batch_size or cls.batch_size)
    if bs < 1:
        raise ConfigError(f"--batch-size must be a positive integer, got {bs}")
    key = generation_key(spec, cfg, sset, adapter, generation, bs, device)
    folder = run_folder(out, spec, key)
    if not folder.exists():
        migrate_run(folder, key, cls)
    return Prepared(spec, cfg, sset, adapter, generation, bs, device, key, folder)


def upgrade_key(old: Mapping[str, Any], cls: type[Adapter]) -> dict[str, Any] | None:
    """A key written by runner version 3 (the model identity held checkpoint paths) as the current version writes
    it; None for another version or when a path it names is no longer there."""
    import json

    from mg5bench.adapters.base import portable_args_of

    if old.get("runner") != 3 or not isinstance(old.get("model"), Mapping):
        return None
    new = json.loads(json.dumps(old))
    new["runner"] = RUNNER_VERSION
    model = new["model"]
    model.pop("path", None)
    model.pop("source", None)
    args = portable_args_of(cls, model.get("model_args") or {})
    if args is None:
        return None
    model["model_args"] = args
    return new


def migrate_run(folder: Path, key: Mapping[str, Any], cls: type[Adapter]) -> Path | None:
    """Find a run folder stored under an older key scheme whose key upgrades to ``key`` (a sibling of ``folder``)
    and rename it to ``folder``, so it is reused, not regenerated; its run.json gets the new key and says where it
    came from. Returns the old folder, or None when there is none."""
    import json

    from mg5bench.core.files import atomic_write_json

    parent = folder.parent
    if not parent.is_dir():
        return None
    for old in sorted(parent.iterdir()):
        info_path = old / "run.json"
        if old == folder or not info_path.is_file():
            continue
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not isinstance(info.get("key"), Mapping):
            continue
        if upgrade_key(info["key"], cls) != dict(key):
            continue
        try:
            old.rename(folder)
        except OSError:  # another process moved it first, or the name is taken: use what is there
            return None
        info.update(key=dict(key), runner=RUNNER_VERSION, folder_hash=folder.name.rsplit("-", 1)[1],
                    migrated_from=old.name)  # fmt: skip
        atomic_write_json(folder / "run.json", info)
        return old
    return None


def _data_spec(data: str | None) -> str | None:
    """The --data to record: a folder as an absolute path (so ``score RUN`` works from any directory)."""
    if data is None or data == "synth" or data.startswith("synth:"):
        return data
    return str(Path(data).expanduser().resolve())


def run_info(p: Prepared, store: RunStore, previous: Mapping[str, Any] | None, n_selected: int,
             stored: set[str]) -> dict[str, Any]:  # fmt: skip
    """run.json: the key and what was resolved from it, and what the folder holds.

    ``samples``: ``in_split`` (samples in the split), ``stored`` (generated and stored, including samples beyond
    the limit that completed a batch group), ``stored_prefix`` (the first P samples of the split are all stored:
    any --limit <= P can be scored) and ``complete_for`` (the largest --limit a finished ``mg5bench run`` was
    asked for; ``mg5bench score RUN`` scores that many by default)."""
    from mg5bench.core.devices import device_info

    ids = [s.id for s in p.sset.samples]
    prev = dict(previous or {})
    prev_samples = prev.get("samples", {})
    spec = p.spec
    return {
        "runner": RUNNER_VERSION,
        "folder_hash": store.root.name.rsplit("-", 1)[1],
        "key": p.key,
        "spec": {
            "task": spec.task,
            "model": spec.model,
            "split": p.sset.split,
            "data": _data_spec(spec.data),
            "seed": spec.seed,
            "model_args": dict(spec.model_args),
            "task_args": dict(spec.task_args),
        },
        "generation": p.generation.to_dict(),
        "batch_size": p.batch_size,
        "device": device_info(p.device),
        "data": p.sset.manifest(),
        "samples": {
            "in_split": len(ids),
            "stored": len(stored),
            "stored_prefix": stored_prefix(ids, stored),
            "complete_for": max(int(prev_samples.get("complete_for", 0)), n_selected),
        },
        "runs": list(prev.get("runs", [])),
        **({"migrated_from": prev["migrated_from"]} if "migrated_from" in prev else {}),
    }
