"""Where a task's records come from: the synthetic world (built once into the user cache, or a world folder) or a
folder in the real CC3M / VIST / MMDialog layout, and which split of it is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.tasks.config import TaskConfig


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
    from mg5bench.data.world import WorldConfig, ensure_world, find_world_root, incomplete_world
    from mg5bench.data.world_content import FOLDERS

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
    """The split to read: the one asked for if the folder has it; none asked for: the task's default, or the
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
        which = "the task's default split " if split == task.default_split else "split "
        suggest = task.default_split if task.default_split in present else present[0]
        raise ConfigError(f"{task.name}: {which}{split!r} is not in {where}; it has {', '.join(present)} "
                          f"(pass --split {suggest})")  # fmt: skip
    return split
