"""Task cards (``tasks/*.yaml``) parsed into frozen TaskConfigs, data resolution, and the sample
builders that turn CC3M / VIST / MMDialog records into protocol Samples.

Protocol switches (VIST ``round_range`` and ``context``, MMDialog history windows and
``first_media_only``) are task settings: they are part of the TaskConfig and of every run's key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.hashing import data_fingerprint
from mg5bench.core.registry import Registry
from mg5bench.core.sample import Sample, Segment
from mg5bench.data.io import Problems

FORMATS = ("cc3m", "vist", "mmdialog")
VIST_STEPS = 5  # a VIST story is five photos and five sentences (tasks/vist/README.md); the protocols assume it
# Options each format understands, with their allowed values (a tuple) or type.
PROTOCOL_OPTIONS: dict[str, dict[str, Any]] = {
    "cc3m": {},
    "vist": {"round_range": ("all", "last"), "context": ("text", "image", "text+image"),
             "instruction": ("fixed", "random"), "instruction_seed": int},
    "mmdialog": {"history_assistant": int, "history_human": int, "first_media_only": bool},
}  # fmt: skip
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "cc3m": {},
    "vist": {"round_range": "all", "context": "text+image", "instruction": "fixed", "instruction_seed": 0},
    "mmdialog": {"history_assistant": 3, "history_human": 2, "first_media_only": True},
}
# Options a protocol records only when they differ from their default: a run stored before the option existed was
# made at its default, and its key (which hashes the protocol) stays the same.
RECORDED_IF_SET: dict[str, dict[str, Any]] = {"vist": {"instruction": "fixed", "instruction_seed": 0}}


def cards_dir() -> Path:
    """Where the task cards live: inside the wheel (``mg5bench/_cards``) or the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_cards", here.parent / "tasks"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise ConfigError(f"no task cards found next to {here}; reinstall mg5bench")


def _coerce(fmt: str, key: str, value: Any, where: str) -> Any:
    options = PROTOCOL_OPTIONS[fmt]
    if key not in options:
        known = ", ".join(sorted(options)) or "(none)"
        raise ConfigError(f"{where}: unknown {fmt} protocol option {key!r}; known: {known}")
    allowed = options[key]
    if isinstance(allowed, tuple):
        if value not in allowed:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
        return value
    if allowed is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if allowed is int:
        try:
            ivalue = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or ivalue < 0 or str(ivalue) != str(value).strip():
            raise ConfigError(f"{where}: {key} must be a non-negative integer, got {value!r}")
        return ivalue
    raise AssertionError(allowed)  # pragma: no cover


@dataclass(frozen=True)
class TaskConfig:
    """A parsed task card. ``protocol`` is a sorted tuple of (option, value) pairs."""

    name: str
    version: int
    description: str
    format: str
    source: str
    default_split: str
    metrics: tuple[str, ...]
    protocol: tuple[tuple[str, Any], ...]
    card: str = ""

    def option(self, key: str) -> Any:
        return dict(self.protocol)[key]

    def with_args(self, args: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> TaskConfig:
        """A copy with protocol options overridden (``--task-args round_range=last``), validated."""
        items = args.items() if isinstance(args, Mapping) else args
        proto = dict(self.protocol)
        for k, v in items:
            proto[k] = _coerce(self.format, k, v, f"task {self.name}")
        return dataclasses.replace(self, protocol=tuple(sorted(proto.items())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "format": self.format,
            "protocol": {k: v for k, v in self.protocol if RECORDED_IF_SET.get(self.format, {}).get(k, ...) != v},
            "metrics": list(self.metrics),
            "card": self.card,
        }


def parse_card(path: Path) -> TaskConfig:
    """Parse and validate one ``tasks/<name>.yaml``."""
    import yaml

    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{where}: cannot read task card ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a task card must be a mapping")
    required = ("name", "version", "description", "format", "default_split", "metrics")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")
    known = {*required, "source", "protocol"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    fmt = raw["format"]
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(raw["version"], int):
        raise ConfigError(f"{where}: version must be an integer")
    metrics = raw["metrics"]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{where}: metrics must be a list of metric names")
    proto = dict(PROTOCOL_DEFAULTS[fmt])
    for k, v in (raw.get("protocol") or {}).items():
        proto[k] = _coerce(fmt, k, v, where)
    return TaskConfig(
        name=str(raw["name"]),
        version=raw["version"],
        description=str(raw["description"]),
        format=fmt,
        source=str(raw.get("source", "")),
        default_split=str(raw["default_split"]),
        metrics=tuple(metrics),
        protocol=tuple(sorted(proto.items())),
        card=path.name,
    )


def _task_registry() -> Registry[TaskConfig]:
    reg: Registry[TaskConfig] = Registry("task")
    for path in sorted(cards_dir().glob("*.yaml")):
        reg.register(path.stem, lambda p=path: parse_card(p), _card_description(path), card=str(path))
    return reg


def _card_description(path: Path) -> str:
    """The card's description line, read without a YAML parser (keeps ``ls`` fast)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("description:"):
            return line.partition(":")[2].strip()
    return ""


_TASKS: Registry[TaskConfig] | None = None


def task_registry() -> Registry[TaskConfig]:
    global _TASKS
    if _TASKS is None:
        _TASKS = _task_registry()
    return _TASKS


def get_task(name: str, args: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()) -> TaskConfig:
    """The task card ``name`` (did-you-mean on typos), with protocol overrides applied."""
    task = task_registry().get(name)
    return task.with_args(args) if args else task


# ---------------------------------------------------------------------------------------------
# data resolution


@dataclass(frozen=True)
class DataSource:
    """Where a task's records come from: the synthetic world (cached) or a real data folder."""

    spec: str  # as the user gave it ("synth:level=1" or a path)
    root: Path  # the format folder (e.g. <world>/VIST or the user's VIST folder)
    world_root: Path | None  # set for synthetic worlds: scene records are available

    @property
    def synthetic(self) -> bool:
        return self.world_root is not None


def resolve_data(
    task: TaskConfig, data: str | None = None, *, cache_dir: Path | None = None, progress: bool = True
) -> DataSource:
    """``None`` or ``synth:...`` -> the (cached) synthetic world; a path -> that folder.

    A path may be a world folder (from ``mg5bench data synth --out``) or a folder in the real
    format (e.g. the one holding ``val_cleaned.json``).
    """
    from mg5bench.data.world import FOLDERS, WorldConfig, ensure_world, find_world_root, incomplete_world

    if data is None or data == "synth" or data.startswith("synth:"):
        cfg = WorldConfig.parse(data or "synth")
        root = ensure_world(cfg, cache_dir, progress=progress)
        return DataSource(data or "synth", root / FOLDERS[task.format], root)
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(str(path), None, "data folder not found", "pass an existing folder, or omit --data")
    if not path.is_dir():
        raise DataError(str(path), None, "--data must be a folder", "pass the folder that holds the data files")
    partial = incomplete_world(path)
    if partial is not None:
        raise DataError(str(partial), None, "an interrupted 'mg5bench data synth' left this world incomplete (its "
                        "INCOMPLETE file says so)", f"rerun 'mg5bench data synth --out {partial}' with the same "
                        "settings (it starts over), or delete the folder")  # fmt: skip
    world = find_world_root(path)
    if world is not None:
        check_world(world, cache_dir)
    sub = path / FOLDERS[task.format]
    if sub.is_dir() and world == path.resolve():
        return DataSource(str(path), sub.resolve(), path.resolve())
    return DataSource(str(path), path.resolve(), world)


def check_world(root: Path, cache_dir: Path | None = None) -> None:
    """A world folder given as --data must match its manifest: a damaged world (an image replaced, a file cut)
    would give silently wrong scene accuracy. A one-line error names the first difference and the fix."""
    import json

    from mg5bench.data.world import MANIFEST, describe_problems, verify_world

    problems = verify_world(root, cache_dir)
    if problems:
        try:
            w = json.loads((root / "world.json").read_text())["world"]
            cmd = f"mg5bench data synth --out NEW_FOLDER --size {w['size']} --level {w['level']} --seed {w['seed']}"
        except (OSError, ValueError, KeyError, TypeError):
            cmd = "mg5bench data synth --out NEW_FOLDER"
        raise DataError(str(root), None, f"this world differs from its manifest {MANIFEST}: "
                        f"{describe_problems(problems)}", f"build it again: {cmd} (or, to use the changed files as "
                        "plain data without scene records, delete its world.json)")  # fmt: skip


SPLIT_FILES = {
    "cc3m": "cc3m_<split>.tsv",
    "vist": "<split>_cleaned.json + <split>_image_mapping.json",
    "mmdialog": "<split>/<split>_conversations.txt",
}


def present_splits(task: TaskConfig, root: Path) -> list[str]:
    """The splits a data folder holds, from its file names (``SPLIT_FILES``)."""
    root = Path(root)
    if task.format == "cc3m":
        return sorted(p.stem.removeprefix("cc3m_") for p in root.glob("cc3m_*.tsv"))
    if task.format == "vist":
        return sorted(p.name.removesuffix("_cleaned.json") for p in root.glob("*_cleaned.json"))
    return sorted(p.parent.name for p in root.glob("*/*_conversations.txt") if p.name.startswith(p.parent.name))


def resolve_split(task: TaskConfig, source: DataSource, split: str | None) -> str:
    """The split to read: the one asked for if the folder has it; none asked for: the task card's default, or the
    folder's only split (a folder of official samples often has just ``val``). Anything else is an error that
    names the splits the folder has."""
    present = present_splits(task, source.root)
    if not present:
        raise DataError(str(source.root), None, f"no {task.format} data files found",
                        f"expected {SPLIT_FILES[task.format]}; pass the folder that holds them")  # fmt: skip
    if split is None:
        if task.default_split in present or len(present) > 1:
            split = task.default_split
        else:
            return present[0]
    if split not in present:
        where = "the embedded world" if source.spec == "synth" else source.spec if source.synthetic else source.root
        which = "the task card's default split " if split == task.default_split else "split "
        suggest = task.default_split if task.default_split in present else present[0]
        raise ConfigError(f"{task.name}: {which}{split!r} is not in {where}; it has {', '.join(present)} "
                          f"(pass --split {suggest})")  # fmt: skip
    return split


# ---------------------------------------------------------------------------------------------
# sample builders


@dataclass
class SampleSet:
    """The samples of one (task, data, split), with what was skipped and a data fingerprint."""

    task: TaskConfig
    source: DataSource
    split: str
    samples: list[Sample]
    problems: Problems
    fingerprint: str
    n_records: int

    def manifest(self) -> dict[str, Any]:
        return {
            "task": self.task.to_dict(),
            "data": self.source.spec,
            "data_root": str(self.source.root),
            "synthetic": self.source.synthetic,
            "split": self.split,
            "n_records": self.n_records,
            "n_samples": len(self.samples),
            "data_fingerprint": self.fingerprint,
            "skipped": self.problems.to_list(),
        }


def _scenes(source: DataSource) -> dict[str, dict[str, Any]]:
    from mg5bench.data.world import load_scenes

    return load_scenes(source.world_root) if source.world_root is not None else {}


def _target_meta(target: tuple[Segment, ...], scenes: Mapping[str, Any]) -> dict[str, Any]:
    if not scenes:
        return {}
    return {"target_scenes": [scenes.get(s.value) for s in target if s.is_image]}


def build_samples(
    task: TaskConfig,
    data: str | None = None,
    split: str | None = None,
    *,
    skip_bad: bool = False,
    check_images: bool = True,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> SampleSet:
    """Read the split (``resolve_split``: None = the card's default, or the folder's only split) and build the
    task's samples, in a stable order with stable ids."""
    source = resolve_data(task, data, cache_dir=cache_dir, progress=progress)
    split = resolve_split(task, source, split)
    problems = Problems(skip_bad=skip_bad)
    builder = {"cc3m": _build_cc3m, "vist": _build_vist, "mmdialog": _build_mmdialog}[task.format]
    # a synthetic world was just verified file by file against its manifest (written when its images were made
    # and checked), so decoding every image header again would only cost time (~0.4 s per VIST split)
    check_images = check_images and not source.synthetic
    samples, files, images, n_records = builder(task, source, split, problems, check_images)
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):  # pragma: no cover - readers reject duplicate record ids
        raise ConfigError("duplicate sample ids; this is a bug in mg5bench, please report it")
    fingerprint = data_fingerprint(files, images, cache_dir)
    return SampleSet(task, source, split, samples, problems, fingerprint, n_records)


def _build_cc3m(task, source, split, problems, check_images):  # type: ignore[no-untyped-def]
    from mg5bench.data.cc3m import cc3m_file, read_cc3m

    records = read_cc3m(source.root, split, problems=problems, check_images=check_images)
    scenes = _scenes(source)
    samples = []
    for r in records:
        target = (Segment.image(str(r.image)),)
        meta = {"caption": r.caption, **_target_meta(target, scenes)}
        samples.append(Sample(r.id, (Segment.text(r.caption),), target, group=r.id, meta=meta))
    return samples, [cc3m_file(source.root, split)], [r.image for r in records], len(records)


def instruction_draw(seed: int, sample_id: str) -> float:
    """A uniform draw in [0, 1) fixed by (seed, sample id): which instruction template a sample gets under the
    ``instruction=random`` protocol, the same on every run, process count and --limit."""
    import hashlib

    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _build_vist(task, source, split, problems, check_images):  # type: ignore[no-untyped-def]
    from mg5bench.data.vist import read_vist, vist_files

    stories = read_vist(source.root, split, problems=problems, check_images=check_images, steps=VIST_STEPS)
    scenes = _scenes(source)
    use_text = task.option("context") in ("text", "text+image")
    use_image = task.option("context") in ("image", "text+image")
    samples, images = [], []
    for story in stories:
        steps = story.steps
        images += [s.image for s in steps]
        ks = range(len(steps)) if task.option("round_range") == "all" else [len(steps) - 1]
        for k in ks:
            context: list[Segment] = []
            for prev in steps[:k]:
                if use_text:
                    context.append(Segment.text(prev.caption))
                if use_image:
                    context.append(Segment.image(str(prev.image)))
            context.append(Segment.text(steps[k].caption))
            target = (Segment.image(str(steps[k].image)),)
            meta = {"story_id": story.story_id, "step": k, "caption": steps[k].caption}
            if task.option("instruction") == "random":  # the official loader's draw; the adapter maps it to a template
                meta["instruction_draw"] = instruction_draw(task.option("instruction_seed"), f"{story.story_id}_{k}")
            meta.update(_target_meta(target, scenes))
            samples.append(Sample(f"{story.story_id}_{k}", tuple(context), target, story.story_id, meta))
    return samples, list(vist_files(source.root, split)), images, len(stories)


def _build_mmdialog(task, source, split, problems, check_images):  # type: ignore[no-untyped-def]
    from mg5bench.data.mmdialog import mmdialog_file, read_mmdialog

    convs = read_mmdialog(source.root, split, problems=problems, check_images=check_images)
    scenes = _scenes(source)
    first_only = task.option("first_media_only")
    samples, images = [], []

    def turn_segments(turn: Any, role: str) -> list[Segment]:
        segs = [Segment.text(turn.text, role)] if turn.text else []
        media = turn.images[:1] if first_only else turn.images
        return segs + [Segment.image(str(p), role) for p in media]

    for conv in convs:
        for turn in conv.turns:
            images += list(turn.images)
        for i in range(1, len(conv.turns)):
            role = "assistant" if i % 2 else "human"
            window = task.option("history_assistant") if i % 2 else task.option("history_human")
            context: list[Segment] = []
            for j in range(max(0, i - window), i):
                context += turn_segments(conv.turns[j], "assistant" if j % 2 else "human")
            target = tuple(turn_segments(conv.turns[i], role))
            meta = {"conversation_id": conv.conversation_id, "turn": i, "speaker": role}
            meta.update(_target_meta(target, scenes))
            samples.append(Sample(f"{conv.conversation_id}_{i}", tuple(context), target, conv.conversation_id, meta))
    return samples, [mmdialog_file(source.root, split)], images, len(convs)
