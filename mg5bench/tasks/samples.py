"""The sample builders: a task's records, read through ``mg5bench.data``, turned into the protocol's ``Sample``s (a
stable id, ordered context and target segments, the story or conversation as the bootstrap cluster), with a content
fingerprint of what was read; and ``SampleCache``, which builds each distinct sample set once for callers that
resolve many runs of one task (an ablation's variants, a report's runs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import data_fingerprint
from mg5bench.core.sample import Sample, Segment
from mg5bench.data.io import Problems
from mg5bench.tasks.config import VIST_STEPS, TaskConfig
from mg5bench.tasks.source import DataSource, resolve_data, resolve_split


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

    return load_scenes(source.world_root, under=source.root) if source.world_root is not None else {}


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
    """Read the split (``resolve_split``: None = the task's default, or the folder's only split) and build the
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


class SampleCache:
    """Sample sets built once per distinct (task, data, split, options): callers that resolve many runs of one task
    (an ablation's variants, a report's runs) read and check the data once instead of once per run (about 4 s each
    on the default VIST split). The SampleSets it returns are shared: their users do not modify them."""

    def __init__(self) -> None:
        self._sets: dict[str, SampleSet] = {}

    def get(self, task: TaskConfig, data: str | None = None, split: str | None = None, **options: Any) -> SampleSet:
        """``build_samples(task, data, split, **options)``, built on the first call with these arguments (``progress``
        does not tell two sets apart)."""
        key = json.dumps([task.to_dict(), data, split,
                          sorted((k, str(v)) for k, v in options.items() if k != "progress")],
                         sort_keys=True, default=str)  # fmt: skip
        if key not in self._sets:
            self._sets[key] = build_samples(task, data, split, **options)
        return self._sets[key]
