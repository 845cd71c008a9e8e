"""The Python API that the CLI is a thin layer over."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.data.io import Problems, atomic_write_json, atomic_write_text
from mg5bench.errors import ConfigError, DataError
from mg5bench.tasks import SampleSet, TaskConfig, build_samples, get_task


def synth(
    out: Path | None = None,
    *,
    size: str = "default",
    level: int = 1,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Build a synthetic world into ``out`` (or the user cache, reused if already there)."""
    from mg5bench.data.world import WorldConfig, build_world, ensure_world

    cfg = WorldConfig(seed=seed, level=level, size=size)
    if out is None:
        root = ensure_world(cfg, cache_dir, progress=progress)
    else:
        root = Path(out)
        build_world(cfg, root, progress=progress)
    return root, json.loads((root / "world.json").read_text())


def export_samples(
    task: str,
    out: Path,
    *,
    data: str | None = None,
    split: str | None = None,
    task_args: Mapping[str, Any] | None = None,
    skip_bad: bool = False,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> SampleSet:
    """Write one JSON line per sample to ``out`` and a manifest (settings, fingerprint, skips)
    beside it as ``<out>.manifest.json``. Both are written atomically."""
    cfg = get_task(task, task_args or {})
    sset = build_samples(cfg, data, split, skip_bad=skip_bad, cache_dir=cache_dir, progress=progress)
    lines = "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in sset.samples)
    out = Path(out)
    atomic_write_text(out, lines)
    atomic_write_json(out.with_name(out.name + ".manifest.json"), sset.manifest())
    return sset


@dataclass
class ValidationReport:
    """Counts per split and every problem found (nothing stops at the first error)."""

    task: str
    root: str
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: dict[str, list[DataError]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "root": self.root,
            "splits": self.splits,
            "problems": {k: [e.to_dict() for e in v] for k, v in self.problems.items()},
            "ok": self.ok,
        }


def _present_splits(cfg: TaskConfig, root: Path) -> list[str]:
    if cfg.format == "cc3m":
        return sorted(p.stem.removeprefix("cc3m_") for p in root.glob("cc3m_*.tsv"))
    if cfg.format == "vist":
        return sorted(p.name.removesuffix("_cleaned.json") for p in root.glob("*_cleaned.json"))
    return sorted(p.parent.name for p in root.glob("*/*_conversations.txt") if p.name.startswith(p.parent.name))


def validate(
    path: str, task: str, *, split: str | None = None, task_args: Mapping[str, Any] | None = None
) -> ValidationReport:
    """Read every split (or the one given) of a data folder, collecting all problems."""
    from mg5bench.tasks import resolve_data

    cfg = get_task(task, task_args or {})
    source = resolve_data(cfg, path, progress=False)
    splits = [split] if split else _present_splits(cfg, source.root)
    if not splits:
        raise DataError(
            str(source.root),
            None,
            f"no {cfg.format} data files found",
            {
                "cc3m": "expected cc3m_<split>.tsv",
                "vist": "expected <split>_cleaned.json + <split>_image_mapping.json",
                "mmdialog": "expected <split>/<split>_conversations.txt",
            }[cfg.format],
        )
    report = ValidationReport(task=cfg.name, root=str(source.root))
    for s in splits:
        try:
            sset = build_samples(cfg, path, s, skip_bad=True, progress=False)
        except DataError as e:  # a file-level problem: the split cannot be read at all
            report.problems[s] = [e]
            report.splits[s] = {"records": 0, "samples": 0}
            continue
        report.problems[s] = list(sset.problems)
        report.splits[s] = {
            "records": sset.n_records,
            "samples": len(sset.samples),
            "bad_records": len(sset.problems),
        }
    return report


def convert_vist_sis(
    src_json: Path, images_dir: Path, dst: Path, *, split: str | None = None, skip_bad: bool = False
) -> Any:
    """Convert the official VIST story-in-sequence release into the MiniGPT-5 VIST layout."""
    from mg5bench.data.vist_sis import convert_vist_sis as _convert

    if not Path(images_dir).is_dir():
        raise DataError(str(images_dir), None, "images folder not found", "pass the folder of <photo id>.jpg files")
    return _convert(Path(src_json), Path(images_dir), Path(dst), split, problems=Problems(skip_bad=skip_bad))


def run(spec: Any, out: Path = Path("runs"), **kwargs: Any) -> Any:
    """Generate what the store lacks for ``spec`` and score it (``mg5bench.runner.run``; keyword arguments:
    force, batch_size, device, evaluator, metrics, resamples, cache_dir, progress)."""
    from mg5bench.runner import run as _run

    return _run(spec, out, **kwargs)


def score_run(folder: Path, **kwargs: Any) -> Any:
    """Score a stored run folder without loading its model (``mg5bench.scoring.score_run``; keyword arguments:
    limit, evaluator, metrics, inception, resamples, seed, device, cache_dir, progress, force)."""
    from mg5bench.scoring import score_run as _score_run

    return _score_run(Path(folder), **kwargs)


def score_predictions(task: str, predictions: Path, out: Path | None, *, device: str = "auto", **kwargs: Any) -> Any:
    """Score a predictions file (``mg5bench.scoring.score``) on ``device`` (auto = CUDA when available)."""
    from mg5bench.devices import resolve_device
    from mg5bench.scoring import score

    return score(task, predictions, out, device=resolve_device(device), **kwargs)


def train(
    what: str,
    task: str,
    out: Path,
    steps: int,
    *,
    data: str | None = None,
    base: Path | None = None,
    batch: int = 32,
    lr: float = 3e-4,
    seed: int = 0,
    task_args: Mapping[str, Any] | None = None,
    unet: str = "cross-kv",
    device: str = "auto",
) -> dict[str, Any]:
    """Train a baseline (``sd2-ft`` or ``divter``) on the task's train split on ``device``; returns its summary."""
    from mg5bench.devices import resolve_device

    dev = resolve_device(device)
    if what == "divter":
        from mg5bench.divter import train_divter

        return train_divter(task, out, steps, data=data, backbones=base, batch=batch, lr=lr, seed=seed,
                            task_args=dict(task_args or {}), device=dev)  # fmt: skip
    if what == "sd2-ft":
        from mg5bench.finetune import train_sd2ft

        return train_sd2ft(task, out, steps, data=data, base=base, batch=batch, lr=lr, seed=seed,
                           task_args=dict(task_args or {}), unet=unet, device=dev)  # fmt: skip
    raise ConfigError(f"unknown trainer {what!r}; choose sd2-ft or divter")


def parse_kv(text: str | None, what: str) -> dict[str, str]:
    """``a=1,b=x`` -> {"a": "1", "b": "x"} with a clear error on malformed input."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what}: expected key=value pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out
