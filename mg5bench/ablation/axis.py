"""Ablation axes are data: a YAML table of variants (name, model, checkpoint, run settings), so a user adds an
axis by writing a file, not code. The built-in axes are ``mg5bench/ablation/axes/*.yaml``; ``--axis-file`` reads any
other.

An axis file::

    name: cfg                     # the axis name (the output folder starts with it)
    title: Classifier-free guidance
    description: one paragraph shown above the table
    tasks: [vist]                 # tasks it applies to; the first is the default --task
    model: minigpt5               # the model of every variant unless a variant names another
    base: gs-3                    # the variant every other one is compared with
    claim: cfg                    # optional: the paper claim it tests (the report's "paper vs ours")
    variants:
      - name: gs-1                # unique, file-name safe
        label: guidance 1.0       # optional, for tables and plots
        model: minigpt5           # optional
        checkpoint: stage2-vist   # optional: a shipped checkpoint name, or a folder (relative to the current dir);
                                  # its seed set (the folder and its NAME-seed<k> siblings, mg5bench.runs.seeds) is
                                  # used, or a list [a, b, c] names the seeds of one recipe explicitly
        make: <command>           # optional: how to make the checkpoint when it is missing (printed then)
        model_args: {k: v}        # optional: adapter arguments (--model-args)
        generation: {guidance_scale: 1.0}   # optional: GenerationConfig fields (--guidance-scale, ...)
        task_args: {context: text}          # optional: protocol options (--task-args)
        seed: 0                   # optional: the run seed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.limits import MAX_VARIANTS, excerpt, keys_excerpt
from mg5bench.runs.spec import GenerationConfig, RunSpec

AXES_DIR = Path(__file__).resolve().parent / "axes"
AXIS_KEYS = ("name", "title", "description", "tasks", "model", "base", "claim", "variants")
VARIANT_KEYS = ("name", "label", "model", "checkpoint", "make", "model_args", "generation", "task_args", "seed")


@dataclass(frozen=True)
class Variant:
    """One row of an axis: what to run (model and settings) and how to make its checkpoint if it is missing."""

    name: str
    label: str
    model: str
    checkpoint: str | None = None
    make: str | None = None
    model_args: tuple[tuple[str, Any], ...] = ()
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    task_args: tuple[tuple[str, Any], ...] = ()
    seed: int | None = None
    checkpoints: tuple[str, ...] = ()  # the seeds of one recipe, named explicitly (checkpoint is the first)

    def checkpoint_path(self, root: Path | None = None) -> Path | None:
        """The checkpoint folder: a bare name is a checkpoint of the set in ``root`` (default: the shipped set,
        reference_model/checkpoints), anything else a path (relative to the current directory)."""
        return None if self.checkpoint is None else _checkpoint_path(self.checkpoint, root)

    def seed_paths(self, task_format: str, seeds: int | None = None, root: Path | None = None) -> list[Path | None]:
        """The checkpoint of each seed, the default first: the listed checkpoints, else the seed set of the
        checkpoint (or of the model's default checkpoint for the task), at most ``seeds`` of them. ``None`` (one
        entry) for a model without checkpoints, or for the shipped default itself. ``root``: another trained set
        whose folders bare names and model defaults resolve to."""
        from mg5bench.runs.seeds import check_same_recipe, seed_set

        if seeds is not None and seeds < 1:
            raise ConfigError(f"--seeds must be a positive number of checkpoints, got {seeds}")
        if self.checkpoints:
            paths = [_checkpoint_path(c, root) for c in self.checkpoints][:seeds]
            check_same_recipe(paths)
            return list(paths)
        if self.checkpoint is not None:
            return list(seed_set(_checkpoint_path(self.checkpoint, root), seeds))
        default = _default_checkpoint(self.model, task_format, root)
        if default is None:
            return [None]
        found = seed_set(default, seeds)
        if root is not None:
            return list(found)
        return [None, *found[1:]]  # the default runs as the model's own default (the run key of a plain run)

    def spec(self, task: str, split: str, data: str | None, limit: int | None, seed: int,
             checkpoint: Path | str | None = "default") -> RunSpec:  # fmt: skip
        """The run this variant stands for (the checkpoint goes to the adapter as its checkpoint argument, e.g.
        ``checkpoint=<absolute path>``, sd2's ``path=``); ``checkpoint``: one of ``seed_paths`` (None = the model's
        default), or "default" = the variant's own."""
        from mg5bench.catalog import MODELS

        args = dict(self.model_args)
        path = self.checkpoint_path() if checkpoint == "default" else checkpoint
        if path is not None:
            args[MODELS.get(self.model).checkpoint_arg] = str(path)
        return RunSpec(task=task, model=self.model, split=split, data=data, limit=limit,
                       seed=self.seed if self.seed is not None else seed, generation=self.generation,
                       model_args=args, task_args=dict(self.task_args))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "model": self.model,
            "checkpoint": self.checkpoint,
            **({"checkpoints": list(self.checkpoints)} if self.checkpoints else {}),
            "model_args": dict(self.model_args),
            "generation": {k: v for k, v in self.generation.to_dict().items() if v is not None},
            "task_args": dict(self.task_args),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Axis:
    """A parsed axis file (see the module docstring)."""

    name: str
    title: str
    description: str
    tasks: tuple[str, ...]
    base: str
    variants: tuple[Variant, ...]
    path: str
    claim: str | None = None

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError(f"axis {self.name}: no variant {name!r}; variants: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    def task_for(self, task: str | None) -> str:
        """The task to run: ``task`` (checked against the axis's tasks) or the axis's first task."""
        if task is None:
            return self.tasks[0]
        if task not in self.tasks:
            raise ConfigError(f"axis {self.name} applies to {', '.join(self.tasks)}, not {task!r} (fix: --task "
                              f"{self.tasks[0]}, or write an axis file for {task})")  # fmt: skip
        return task

    def missing_checkpoints(self, root: Path | None = None) -> list[tuple[Variant, Path]]:
        out = []
        for v in self.variants:
            paths = [_checkpoint_path(c, root) for c in v.checkpoints] or [v.checkpoint_path(root)]
            out += [(v, p) for p in paths if p is not None and not p.is_dir()]
        return out

    def check_checkpoints(self, root: Path | None = None) -> None:
        """Fail before anything runs when a variant's checkpoint is missing, naming it and how to make it."""
        missing = self.missing_checkpoints(root)
        if not missing:
            return
        v, path = missing[0]
        how = f"make it with: {v.make}" if v.make else "point the variant's checkpoint at an existing folder"
        if v.make and root is not None and not _is_shipped_set(root):  # the axis file's recipe makes the shipped set's
            how = (f"the axis file's 'make' trains it into the shipped set; train it the same way on this set's world "
                   f"and export it into {display_path(Path(root))}")  # fmt: skip
        others = ", ".join(m.name for m, _ in missing[1:])
        more = f" ({len(missing) - 1} more missing: {others})" if others else ""
        shown = display_path(path)
        raise ConfigError(f"axis {self.name}: variant {v.name} needs the checkpoint {shown}, which is not there{more}; "
                          f"{how}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "tasks": list(self.tasks),
            "base": self.base,
            "claim": self.claim,
            "variants": [v.to_dict() for v in self.variants],
        }


def _checkpoint_path(name: str, root: Path | None = None) -> Path:
    """A bare name is a checkpoint of the set in ``root`` (default: the shipped reference_model/checkpoints),
    anything else a path."""
    if "/" not in name and "\\" not in name and not name.startswith("~"):
        from mg5bench.adapters.common import shipped_checkpoints

        return (Path(root).resolve() if root is not None else shipped_checkpoints()) / name
    return Path(name).expanduser().resolve()


def _default_checkpoint(model: str, task_format: str, root: Path | None = None) -> Path | None:
    """The model's default checkpoint for a task format in the set ``root`` (default: the shipped one), when it
    has one (gt and blank have none)."""
    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.catalog import MODELS

    rel = MODELS.get(model).default_checkpoints.get(task_format)
    if rel is None:
        return None
    return (Path(root).resolve() if root is not None else shipped_checkpoints()) / rel


def list_axes() -> list[str]:
    """The built-in axes (``mg5bench/ablation/axes/*.yaml``)."""
    return sorted(p.stem for p in AXES_DIR.glob("*.yaml"))


def axis_path(name_or_file: str | Path) -> Path:
    """A built-in axis name or a YAML file path; unknown names list the built-in ones."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    builtin = AXES_DIR / f"{name_or_file}.yaml"
    if builtin.is_file():
        return builtin
    import difflib

    close = difflib.get_close_matches(str(name_or_file), list_axes(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown axis {str(name_or_file)!r}{hint} Built-in axes: {', '.join(list_axes())} "
                      "(or pass your own with --axis-file FILE.yaml)")  # fmt: skip


def _pairs(value: Any, path: str, rec: str, key: str) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise DataError(path, rec, f"{key} must be a mapping of names to values, got {type(value).__name__}",
                        f"write e.g. {key}: {{name: value}}")  # fmt: skip
    for k, v in value.items():
        if isinstance(v, (dict, list)):
            raise DataError(path, rec, f"{key}.{excerpt(str(k), 24)} must be a scalar, got {type(v).__name__}")
    return tuple(sorted((str(k), v) for k, v in value.items()))


def parse_axis(data: Any, path: str) -> Axis:
    """Check an axis document (every problem is one line naming the file, the variant and the fix)."""
    if not isinstance(data, Mapping):
        raise DataError(
            path, None, "an axis file is a YAML mapping", "see mg5bench/ablation/axes/cfg.yaml for the layout"
        )
    unknown = list(set(data) - set(AXIS_KEYS))
    if unknown:
        raise DataError(path, None, f"unknown key(s) {keys_excerpt(unknown)}", f"known keys: "
                        f"{', '.join(AXIS_KEYS)}; is this an axis file?")  # fmt: skip
    for key in ("name", "variants"):
        if not data.get(key):
            raise DataError(path, None, f"missing {key!r}", "see mg5bench/ablation/axes/cfg.yaml for the layout")
    name = str(data["name"])
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 64:
        raise DataError(path, None, f"axis name {excerpt(name)} must be 1-64 letters, digits, '-', '_' or '.'")
    tasks = data.get("tasks") or ["vist"]
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, Sequence) or not all(isinstance(t, str) for t in tasks):
        raise DataError(path, None, "tasks must be a list of task names", "e.g. tasks: [vist]")
    default_model = data.get("model")
    raw = data["variants"]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise DataError(path, None, "variants must be a list of mappings", "see mg5bench/ablation/axes/cfg.yaml")
    if len(raw) > MAX_VARIANTS:
        raise DataError(path, None, f"{len(raw)} variants, more than the {MAX_VARIANTS} an axis may have (each is a "
                        "run to generate)", "split the axis into several files")  # fmt: skip
    variants: list[Variant] = []
    for i, v in enumerate(raw):
        rec = f"variant {i + 1}"
        if not isinstance(v, Mapping):
            raise DataError(path, rec, "a variant is a mapping with at least a name")
        if v.get("name"):
            rec = f"variant {excerpt(str(v['name']))}"
        bad = list(set(v) - set(VARIANT_KEYS))
        if bad:
            raise DataError(path, rec, f"unknown key(s) {keys_excerpt(bad)}", f"known keys: {', '.join(VARIANT_KEYS)}")
        vname = str(v.get("name") or "")
        plain = vname.replace("-", "").replace("_", "").replace(".", "").replace("+", "")
        if not vname or not plain.isalnum() or len(vname) > 64:
            raise DataError(path, rec, f"variant name {excerpt(vname)} must be 1-64 letters, digits, '-', '_', '.' "
                            "or '+'")  # fmt: skip
        model = v.get("model", default_model)
        if not model:
            raise DataError(path, rec, "no model", "give the axis a 'model' or the variant a 'model'")
        gen = v.get("generation") or {}
        if not isinstance(gen, Mapping):
            raise DataError(path, rec, "generation must be a mapping", "e.g. generation: {guidance_scale: 1.5}")
        try:
            generation = GenerationConfig.from_dict(dict(gen))
        except ConfigError as e:
            raise DataError(path, rec, str(e)) from None
        if "checkpoint" in (v.get("model_args") or {}) and v.get("checkpoint"):
            raise DataError(path, rec, "checkpoint given twice (checkpoint and model_args.checkpoint)", "keep one")
        ckpts = v.get("checkpoint")
        listed: tuple[str, ...] = ()
        if isinstance(ckpts, (list, tuple)):
            if not ckpts or not all(isinstance(c, str) and c for c in ckpts):
                raise DataError(path, rec, "checkpoint must be a name, a folder or a list of them (the seeds of one "
                                "recipe)", "e.g. checkpoint: [stage2-vist, stage2-vist-seed43]")  # fmt: skip
            if len(set(ckpts)) != len(ckpts):
                raise DataError(path, rec, "a checkpoint is listed twice", "list each seed's checkpoint once")
            listed = tuple(str(c) for c in ckpts)
        elif ckpts is not None and not isinstance(ckpts, str):
            raise DataError(path, rec, f"checkpoint must be a name or a folder, got {type(ckpts).__name__}")
        seed = v.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise DataError(path, rec, f"seed must be an integer, got {excerpt(seed)}")
        variants.append(Variant(
            name=vname, label=str(v.get("label") or vname), model=str(model),
            checkpoint=listed[0] if listed else (str(v["checkpoint"]) if v.get("checkpoint") else None),
            checkpoints=listed if len(listed) > 1 else (),
            make=" ".join(str(v["make"]).split()) if v.get("make") else None,
            model_args=_pairs(v.get("model_args"), path, rec, "model_args"), generation=generation,
            task_args=_pairs(v.get("task_args"), path, rec, "task_args"), seed=seed,
        ))  # fmt: skip
    names = [v.name for v in variants]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(path, None, f"duplicate variant name(s) {dup}", "give every variant its own name")
    base = str(data.get("base") or names[0])
    if base not in names:
        raise DataError(path, None, f"base {excerpt(base)} is not one of the variants ({', '.join(names[:10])}"
                        f"{', ...' if len(names) > 10 else ''})")  # fmt: skip
    if len(variants) < 2:
        raise DataError(path, None, "an axis needs the base and at least one other variant")
    return Axis(name=name, title=str(data.get("title") or name), description=" ".join(str(data.get("description",
                "")).split()), tasks=tuple(tasks), base=base, variants=tuple(variants), path=path,
                claim=str(data["claim"]) if data.get("claim") else None)  # fmt: skip


def load_axis(name_or_file: str | Path) -> Axis:
    """A built-in axis by name (``cfg``, ``stages``, ...) or an axis YAML file (read by ``read_yaml``: size-capped,
    no aliases)."""
    from mg5bench.data.io import read_yaml

    path = axis_path(name_or_file)
    return parse_axis(read_yaml(Path(path), "axis file"), str(path))


def _is_shipped_set(root: Path) -> bool:
    """Whether ``root`` is the shipped checkpoint set (whose axis-file ``make`` recipes export into it)."""
    from mg5bench.adapters.common import shipped_checkpoints

    return Path(root).resolve() == shipped_checkpoints().resolve()


def display_path(path: Path) -> str:
    """A path as a user re-types it: relative to the working directory when inside it (a report or a message
    never carries one machine's absolute paths), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
