"""Finding what the runs folder holds: every run folder (``<runs>/<task>/<model>/<folder>/run.json``), how many of
its samples are stored, its scoring on the samples the leaderboard uses (read back when stored, else computed from
the stored outputs: scoring only, never a generation), a readable label, and which run is a model's default."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.tasks import SampleCache, SampleSet

BOUNDS = ("gt", "blank")  # the upper and lower bound rows: shown, never "best"


@dataclass
class RunRecord:
    """One run folder as the report sees it."""

    folder: Path
    rel: str  # the folder relative to the runs root (what the report prints)
    info: dict[str, Any]
    task: str
    model: str
    split: str
    stored_prefix: int
    complete_for: int
    label: str = ""
    default: bool = False  # the run 'mg5bench run --task T --model M' makes (no settings given)
    score: dict[str, Any] | None = None  # metrics.json of the scoring the table uses
    score_folder: Path | None = None
    ids_sha256: str = ""
    skipped: str = ""  # why this run is not in a table
    images: dict[str, list[Path]] = field(default_factory=dict)  # sample id -> its output images, checked

    @property
    def checkpoint(self) -> str:
        """The checkpoint folder the run used, as a reader names it: relative to reference_model/checkpoints/ when
        shipped, else the folder's name; a run without a checkpoint argument used its model's default for the task
        (the run key holds contents only, so the name comes from the run's arguments)."""
        spec = self.info.get("spec", {})
        args = spec.get("model_args") or {}
        model = self.info.get("key", {}).get("model", {})
        src = str(next((args[k] for k in weight_args(self.model) if args.get(k)), "")
                  or model.get("source") or model.get("path") or "")  # fmt: skip
        if not src:
            return default_checkpoint_name(self.model, self.info)
        return src.rsplit("checkpoints/", 1)[1] if "checkpoints/" in src else Path(src).name

    @property
    def sha256(self) -> str:
        return str(self.info.get("key", {}).get("model", {}).get("sha256") or "")

    @property
    def settings(self) -> dict[str, Any]:
        """What may tell two runs of one model apart: checkpoint, generation settings, protocol options, seed."""
        spec = self.info.get("spec", {})
        out: dict[str, Any] = {"ckpt": self.checkpoint}
        out.update({k: v for k, v in sorted((spec.get("model_args") or {}).items()) if k != "checkpoint"})
        out.update({k: v for k, v in (self.info.get("generation") or {}).items() if v is not None})
        protocol = self.info.get("key", {}).get("task", {}).get("protocol") or spec.get("task_args") or {}
        out.update({str(k): v for k, v in sorted(protocol.items())})
        out["seed"] = spec.get("seed", 0)
        return out


def find_runs(runs: Path) -> tuple[list[RunRecord], list[str]]:
    """Every run folder under ``runs`` (sorted by task, model, folder name; ablation folders are not runs), and every
    folder left out with the reason: a run.json that cannot be read (damaged, not UTF-8, not a run description, a
    folder), a folder that resolves outside ``runs`` (a symlink: the report publishes only what lies inside it), or
    one already found by another path (a symlink inside ``runs``)."""
    from mg5bench.runs.store import RunStore

    out: list[RunRecord] = []
    left_out: list[str] = []
    root = Path(runs).resolve()
    seen: dict[Path, str] = {}
    for run_json in sorted(Path(runs).glob("*/*/*/run.json")):
        folder = run_json.parent
        if folder.parts[-3] == "ablations":
            continue
        rel = str(folder.relative_to(runs))
        real = folder.resolve()
        if not real.is_relative_to(root):
            left_out.append(f"{rel}: resolves outside the runs folder (a symlink to {real}); a report publishes only "
                            "what lies inside it (fix: move or copy the run folder into it)")  # fmt: skip
            continue
        if real in seen:
            left_out.append(f"{rel}: the same run folder as {seen[real]} (reached again through a symlink)")
            continue
        info, problem = read_run_json(run_json)
        if info is None:
            left_out.append(f"{rel}: run.json {problem} (fix: rerun its 'mg5bench run' command: stored samples are "
                            "kept)")  # fmt: skip
            continue
        seen[real] = rel
        spec = info.get("spec", {})
        samples = info.get("samples") if isinstance(info.get("samples"), dict) else {}
        store = RunStore(folder)
        shards = list(folder.glob("samples.rank*.jsonl"))
        prefix = int(samples.get("stored_prefix", 0)) if not shards else 0
        if not store.samples.exists():
            prefix = 0
        out.append(RunRecord(folder=folder, rel=rel, info=info, task=spec["task"], model=spec["model"],
                             split=spec["split"], stored_prefix=prefix,
                             complete_for=int(samples.get("complete_for", 0))))  # fmt: skip
    return out, left_out


def weight_args(model: str) -> tuple[str, ...]:
    """The --model-args that name a run's weights, as its adapter declares them (``checkpoint_arg`` first, then the
    other arguments whose content the run key hashes, e.g. minigpt5's ``official``). A run of a model not registered
    here is read by every registered adapter's names."""
    from mg5bench.catalog import MODELS

    adapters = [MODELS.get(model)] if model in MODELS else [MODELS.get(name) for name in MODELS.names()]
    names = [n for a in adapters for n in (a.checkpoint_arg, *a.hashed_args)]
    return tuple(dict.fromkeys(names))


def default_checkpoint_name(model: str, info: dict[str, Any]) -> str:
    """The model's shipped default checkpoint for the run's task ('' when it has none, or the model is unknown)."""
    from mg5bench.catalog import MODELS
    from mg5bench.core.errors import Mg5Error

    fmt = info.get("key", {}).get("task", {}).get("format", "")
    try:
        return str(MODELS.get(model).default_checkpoints.get(fmt, ""))
    except Mg5Error:
        return ""


def read_run_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A run folder's run.json as the report needs it, or None and why not (one short phrase)."""
    from mg5bench.core.errors import Mg5Error
    from mg5bench.tasks import get_task

    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except IsADirectoryError:
        return None, "is a folder, not a file"
    except OSError as e:
        return None, f"cannot be read ({e.strerror or e})"
    except UnicodeDecodeError as e:
        return None, f"is not UTF-8 text (byte {e.start})"
    except (ValueError, RecursionError) as e:
        return None, f"is not valid JSON ({str(e)[:60]})"
    spec = info.get("spec") if isinstance(info, dict) else None
    if not isinstance(spec, dict) or not all(
        isinstance(spec.get(k), str) and spec[k] for k in ("task", "model", "split")
    ):
        return None, f"is not a run description (a JSON {type(info).__name__} without spec task, model and split)"
    samples = info.get("samples")
    if samples is not None and not (isinstance(samples, dict) and all(
            isinstance(samples.get(k, 0), int) and not isinstance(samples.get(k, 0), bool)
            for k in ("stored_prefix", "complete_for"))):  # fmt: skip
        return None, "has a damaged samples entry (stored_prefix and complete_for must be integers)"
    try:
        get_task(spec["task"])
    except Mg5Error as e:  # an unknown task name: the run cannot be placed in a table
        return None, f"names an unknown task ({str(e)[:80]})"
    return info, ""


def choose_limit(records: Sequence[RunRecord]) -> int:
    """The number of samples a task's table uses when none is given: the most common completed --limit among its
    runs (ties: the larger), so that every row is over the same samples."""
    counts = Counter(r.complete_for for r in records if r.complete_for > 0)
    if not counts:
        return 0
    best = max(counts.values())
    return max(n for n, c in counts.items() if c == best)


def label_runs(records: Sequence[RunRecord]) -> None:
    """Label each run by its model and the settings that differ among that model's runs in the same table."""
    by_model: dict[str, list[RunRecord]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    for runs in by_model.values():
        keys = sorted({k for r in runs for k in r.settings})
        varying = [k for k in keys if len({json.dumps(r.settings.get(k), sort_keys=True) for r in runs}) > 1]
        for r in runs:
            s = r.settings
            parts = []
            for k in varying:
                v = s.get(k)
                if k == "ckpt":
                    parts.append(str(v))
                elif k == "guidance_scale":
                    parts.append(f"gs {v:g}")
                else:
                    parts.append(f"{k}={v}")
            r.label = r.model + (f" ({', '.join(parts)})" if parts else "")


def mark_defaults(records: Sequence[RunRecord], out: Path, n: int, cache_dir: Path | None = None,
                  samples: SampleCache | None = None) -> None:  # fmt: skip
    """Mark the run each model's plain 'mg5bench run --task T --model M' makes: its folder is resolved without
    loading the model (``runs.keys.prepare``); a model whose adapter cannot be resolved here is left unmarked."""
    from mg5bench.core.errors import Mg5Error
    from mg5bench.runs.keys import prepare
    from mg5bench.runs.spec import RunSpec

    samples = samples if samples is not None else SampleCache()
    seen: dict[tuple[str, str, str], Path | None] = {}
    for r in records:
        key = (r.task, r.model, r.split)
        if key not in seen:
            data = r.info.get("spec", {}).get("data")
            try:
                p = prepare(RunSpec(task=r.task, model=r.model, split=r.split, data=data, limit=n or None), out,
                            device="cpu", cache_dir=cache_dir, progress=False, samples=samples)  # fmt: skip
                seen[key] = p.folder.resolve()
            except (Mg5Error, OSError):
                seen[key] = None
        r.default = seen[key] == r.folder.resolve()


def sample_set(record: RunRecord, samples: SampleCache, cache_dir: Path | None = None) -> SampleSet:
    """The sample set a run was generated on (its task, protocol, data and split), from the report's one cache."""
    from mg5bench.tasks import get_task

    spec = record.info.get("spec", {})
    task = get_task(record.task, spec.get("task_args") or {})
    return samples.get(task, spec.get("data"), record.split, cache_dir=cache_dir, progress=False)


def score_records(records: Sequence[RunRecord], n: int, *, evaluator: str | None, resamples: int, device: str,
                  cache_dir: Path | None, progress: bool, samples: SampleCache) -> None:  # fmt: skip
    """Attach to each run the scoring of its first ``n`` samples with the task's default metrics (read back when
    stored; computed from the stored outputs otherwise). A run with fewer than ``n`` stored samples is skipped and
    says so."""
    from mg5bench.core.errors import Mg5Error
    from mg5bench.scoring.predictions import output_roots, stored_images
    from mg5bench.scoring.scorer import score_run

    for r in records:
        if r.stored_prefix < n:
            r.skipped = f"{r.stored_prefix} of the {n} samples stored"
            continue
        try:
            sset = sample_set(r, samples, cache_dir)  # runs of one task and protocol share their samples
            res = score_run(r.folder, limit=n, evaluator=evaluator, resamples=resamples, device=device,
                            cache_dir=cache_dir, progress=progress, sset=sset)  # fmt: skip
        except Mg5Error as e:
            r.skipped = f"not scored: {e}"
            continue
        try:  # a stored scoring is reused as it is: its outputs' paths are checked again, as the scorer checks them
            r.images = stored_images(r.folder, [s.id for s in sset.samples[:n]], output_roots(r.folder, sset))
        except Mg5Error as e:
            r.skipped = f"left out: {e}"
            continue
        r.score, r.score_folder = res.report, res.folder
        r.ids_sha256 = str(res.key.get("ids_sha256", ""))


@dataclass
class TaskTable:
    """The rows of one leaderboard table: runs of one task scored on the same samples."""

    task: str
    split: str
    n: int
    protocol: dict[str, Any]
    rows: list[RunRecord] = field(default_factory=list)

    @property
    def title(self) -> str:
        proto = ", ".join(f"{k}={v}" for k, v in self.protocol.items())
        return f"{self.task} {self.split}, first {self.n} samples ({proto})" if proto else (
            f"{self.task} {self.split}, first {self.n} samples")  # fmt: skip


MODEL_ORDER = ("minigpt5", "sd2-ft", "sd2", "divter", "two-stage", "gt", "blank")


def row_order(r: RunRecord) -> tuple[Any, ...]:
    """Models in a fixed order (MiniGPT-5 first, the bounds last), a model's default run before its variants."""
    return (r.model in BOUNDS, MODEL_ORDER.index(r.model) if r.model in MODEL_ORDER else 99, r.model, not r.default,
            r.label, r.rel)  # fmt: skip


def group_tables(records: Sequence[RunRecord], n: int) -> list[TaskTable]:
    """Runs scored on the same samples (same ids) form one table; the main table (the most rows) comes first."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.score is not None:
            groups.setdefault(r.ids_sha256, []).append(r)
    tables = []
    for rows in groups.values():
        rows.sort(key=row_order)
        proto = (rows[0].score or {}).get("task", {}).get("protocol") or {}
        note = {"round_range": "last"} if proto.get("round_range") == "last" else {}
        tables.append(TaskTable(rows[0].task, rows[0].split, n, note, rows))
    tables.sort(key=lambda t: (-len(t.rows), json.dumps(t.protocol)))
    return tables
