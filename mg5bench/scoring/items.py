"""What the metrics see of a sample and its output (``ScoreItem``): built from a sample and its output segments
(``make_item``), and for a stored run, from its first N stored samples (``load_run_items``), which ablations and the
report's meta-evaluation compare across runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import DataError
from mg5bench.core.sample import Sample, Segment
from mg5bench.metrics.base import ScoreItem
from mg5bench.scoring.predictions import output_segments


def make_item(sample: Sample, output: Sequence[Segment]) -> ScoreItem:
    gt_text = " ".join(s.value for s in sample.target if s.is_text)
    caption = sample.meta.get("caption") or (gt_text or None)
    return ScoreItem(
        id=sample.id,
        group=sample.group,
        gt_text=gt_text,
        gen_text=" ".join(s.value for s in output if s.is_text),
        gt_images=[s.value for s in sample.target if s.is_image],
        gen_images=[s.value for s in output if s.is_image],
        caption=caption,
        gt_elements=[(s.kind, s.value) for s in sample.target],
        gen_elements=[(s.kind, s.value) for s in output],
        scenes=list(sample.meta.get("target_scenes", [])),
        meta=dict(sample.meta),
    )


@dataclass
class RunItems:
    """A stored run's outputs as the metrics see them, for the first ``len(ids)`` samples of its split."""

    name: str
    folder: Path
    info: dict[str, Any]
    ids: list[str]
    items: dict[str, ScoreItem]
    targets: dict[str, tuple[Any, ...]]


def load_run_items(name: str, folder: Path, sset: Any, n: int) -> RunItems:
    """Read a run folder's first ``n`` stored samples (every one must be stored) into ScoreItems."""
    from mg5bench.runs.store import RunStore

    store = RunStore(Path(folder))
    info = store.read_info()
    records = store.done()
    ids = [s.id for s in sset.samples[:n]]
    missing = [i for i in ids if i not in records]
    if missing:
        raise DataError(str(store.root), f"sample {missing[0]}", f"{len(missing)} of the {n} samples are not stored",
                        "generate them: rerun 'mg5bench ablate' without --no-generate")  # fmt: skip
    by_id = {s.id: s for s in sset.samples[:n]}
    items, targets = {}, {}
    roots = [store.root.resolve(), Path(sset.source.root).resolve()]  # as the scorer: the run's images, the data's
    for sid in ids:
        segs = output_segments(records[sid]["output"], store.root, store.samples, f"id {sid}", roots)
        items[sid] = make_item(by_id[sid], segs)
        targets[sid] = tuple(by_id[sid].target)
    return RunItems(name, store.root, info, ids, items, targets)


def shared_ids(base: RunItems, other: RunItems) -> list[str]:
    """The samples both runs hold, in the base's order; their targets must be the same (else the two runs are not
    over the same samples: different data, split or protocol)."""
    have = set(other.ids)
    ids = [i for i in base.ids if i in have]
    for sid in ids:
        if base.targets[sid] != other.targets[sid]:
            raise DataError(str(other.folder), f"sample {sid}", f"its target differs from the one in {base.folder}",
                            "compare runs over the same data and split")  # fmt: skip
    return ids
