"""The synthetic world written to disk: every image rendered from its scene record, the texts in the real CC3M /
VIST / MMDialog formats, a manifest of every file's sha256 (``files.sha256``) and ``world.json``, written last.
Deterministic from (seed, world version, level, size): the same settings give byte-identical files. A world is
verified against its manifest on every use and built once into the user cache (``ensure_world``). What the world
holds (its settings, scenes, captions, stories and dialogs) is ``mg5bench.data.world_content``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.core.errors import ConfigError
from mg5bench.data.scenes import (
    BACKGROUND,
    Geometry,
    place,
    render,
    scene_caption,
)
from mg5bench.data.world_content import (
    BACKGROUND_ROLE,
    PROTAGONIST,
    SPLITS,
    StoryStep,
    WorldConfig,
    cc3m_scene,
    make_dialog,
    make_story,
    make_story_level3,
    n_objects,
    random_scene_objects,
    rng_for,
    strip_object,
)

# ---------------------------------------------------------------------------------------------
# writing


class _Writer:
    """Renders scenes to files under the world root and keeps the scene records + a content hash."""

    def __init__(self, root: Path, cfg: WorldConfig) -> None:
        self.root = root
        self.cfg = cfg
        self.geom = Geometry(cfg.image_size)
        self.scenes: list[dict[str, Any]] = []

    def image(
        self,
        rel: str,
        objs: list[dict[str, Any]],
        rng: np.random.Generator,
        *,
        named: list[int] | None = None,
        protagonist: int | None = None,
    ) -> str:
        """Render and write one image; its scene record lists the objects, and at level 3 also ``named`` (indices
        of the objects the image's text names in full or by reference) and each object's ``role`` (stories and
        dialogs: one protagonist, the rest background)."""
        from PIL import Image

        scene: dict[str, Any] = {
            "background": list(BACKGROUND),
            "objects": [place(strip_object(o), self.geom, rng) for o in objs],
        }
        if protagonist is not None:
            for i, o in enumerate(scene["objects"]):
                o["role"] = PROTAGONIST if i == protagonist else BACKGROUND_ROLE
        if named is not None:
            scene["named"] = list(named)
        arr = render(scene, self.cfg.image_size)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        if rel.endswith(".jpg"):
            Image.fromarray(arr).save(buf, "JPEG", quality=95, subsampling=0)
        else:
            Image.fromarray(arr).save(buf, "PNG")
        path.write_bytes(buf.getvalue())
        self.scenes.append({"image": rel, "scene": scene})
        return rel


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="record", disable=not enabled, leave=False)


MANIFEST = "files.sha256"  # every file's sha256, in `sha256sum -c` format: what a world is verified against
INCOMPLETE = "INCOMPLETE"  # present while a world is being written; an interrupted build leaves it behind


def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def build_world(cfg: WorldConfig, out: Path, *, progress: bool = True, cache_dir: Path | None = None) -> dict[str, Any]:
    """Write the whole world into ``out`` (new, empty, or left incomplete by an interrupted build, which is cleared);
    return its manifest. While it is written ``out/INCOMPLETE`` says so, and world.json is written last: an
    interrupted build is recognisable and never used as data."""
    from mg5bench.core.files import atomic_write_json, atomic_write_text, check_output_folder
    from mg5bench.data.io import host_name

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder; pass a new folder to write the world into")
    marker = out / INCOMPLETE
    if out.exists() and any(out.iterdir()):
        if not marker.is_file():
            raise ConfigError(f"{out} is not empty; choose a new folder or remove it first")
        from mg5bench.core.notes import note

        note(f"{out}: an interrupted build left it incomplete ({INCOMPLETE}); clearing it and building again")
        _clear(out)
    check_output_folder(out, "the world folder")
    what = (
        "mg5bench data synth is writing this world; if no process is, it was interrupted: rerun the same "
        "command (it starts over) or delete the folder"
    )
    atomic_write_json(marker, {"pid": os.getpid(), "host": host_name(), "world": cfg.to_dict(), "what": what})
    w = _Writer(out, cfg)
    counts = cfg.counts()
    total = sum(sum(per_split.values()) for per_split in counts.values())  # images, stories, conversations
    bar = _progress(total, f"synthesising world {cfg.dirname}", progress)
    stats: dict[str, Any] = {"cc3m": {}, "vist": {}, "mmdialog": {}}
    for split in SPLITS:  # each data set draws from its own stream per split (rng_for), in this order
        stats["cc3m"][split] = _write_cc3m(w, cfg, out, split, counts["cc3m"][split], bar)
        stats["vist"][split] = _write_vist(w, cfg, out, split, counts["vist"][split], bar)
        stats["mmdialog"][split] = _write_mmdialog(w, cfg, out, split, counts["mmdialog"][split], bar)
    bar.close()
    atomic_write_text(out / "scenes.jsonl", "".join(json.dumps(s, sort_keys=True) + "\n" for s in w.scenes))
    entries = _hash_files(out, cache_dir)
    atomic_write_text(out / MANIFEST, _manifest_text(entries))
    manifest = {
        "world": cfg.to_dict(),
        "counts": stats,
        "n_images": len(w.scenes),
        "fingerprint": _tree_fingerprint(entries),
        "files": len(entries),
        "complete": True,
    }
    atomic_write_text(out / "world.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    marker.unlink()
    return manifest


def _write_cc3m(w: _Writer, cfg: WorldConfig, out: Path, split: str, n: int, bar: Any) -> int:
    """CC3M-like: one scene, one caption per image. Returns the number of rows."""
    from mg5bench.data.cc3m import write_cc3m

    rng = rng_for(cfg, "cc3m", split)
    rows = []
    for i in range(n):
        if cfg.level < 3:
            objs = random_scene_objects(rng, n_objects(cfg, rng))
            rel = w.image(f"CC3M/{split}/{i:07d}.png", objs, rng)
            caption = scene_caption({"objects": objs}, int(rng.integers(3)))
        else:
            objs, caption, named = cc3m_scene(rng, n_objects(cfg, rng), int(rng.integers(3)))
            rel = w.image(f"CC3M/{split}/{i:07d}.png", objs, rng, named=named)
        rows.append((caption, rel.removeprefix("CC3M/")))
        bar.update(1)
    write_cc3m(out / "CC3M", split, rows)
    return len(rows)


def _write_vist(w: _Writer, cfg: WorldConfig, out: Path, split: str, n: int, bar: Any) -> dict[str, Any]:
    """VIST-like: five-step stories. Returns the number of stories and of each kind of event."""
    from mg5bench.data.vist import write_vist

    rng = rng_for(cfg, "vist", split)
    stories: dict[str, list[dict[str, Any]]] = {}
    mapping: dict[str, str] = {}
    events: dict[str, int] = {}
    for s in range(n):
        story_id = f"{split}{s:05d}"
        steps = []
        story = [StoryStep(*s) for s in make_story(cfg, rng)] if cfg.level < 3 else make_story_level3(rng)
        for k, st in enumerate(story):
            objs, text, kind = st.objects, st.text, st.event
            image_id = f"{story_id}{k}"
            rel = w.image(f"VIST/{split}_images/{image_id}.png", objs, rng, named=st.named,
                          protagonist=st.protagonist)  # fmt: skip
            mapping[image_id] = rel.removeprefix("VIST/")
            steps.append({"caption": text, "image_id": image_id, "sequence_index": k, "event": kind})
            events[kind] = events.get(kind, 0) + 1
        stories[story_id] = [{k: v for k, v in st.items() if k != "event"} for st in steps]
        bar.update(1)
    write_vist(out / "VIST", split, stories, mapping)
    return {"stories": len(stories), "events": dict(sorted(events.items()))}


def _write_mmdialog(w: _Writer, cfg: WorldConfig, out: Path, split: str, n: int, bar: Any) -> dict[str, Any]:
    """MMDialog-like: two-speaker conversations. Returns the number of conversations and of images."""
    from mg5bench.data.mmdialog import write_mmdialog

    rng = rng_for(cfg, "mmdialog", split)
    convs = []
    used_keys: set[str] = set()
    n_images = 0
    for c in range(n):
        conv_turns = []
        for turn in make_dialog(cfg, rng):
            elements: list[dict[str, str]] = [{"__TEXT__": turn["text"]}]
            if turn["scene"] is not None:
                key = str(int(rng.integers(-(2**63), 2**63 - 1, dtype=np.int64)))
                while key in used_keys:  # pragma: no cover - astronomically unlikely
                    key = str(int(rng.integers(-(2**63), 2**63 - 1, dtype=np.int64)))
                used_keys.add(key)
                w.image(f"MMDialog/{split}/{key}.jpg", turn["scene"], rng, named=turn.get("named"),
                        protagonist=turn.get("protagonist"))  # fmt: skip
                elements.append({"__MEDIA__": key})
                n_images += 1
            conv_turns.append({"turn": elements})
        convs.append({"conversation_id": c, "conversation": conv_turns})
        bar.update(1)
    write_mmdialog(out / "MMDialog", split, convs)
    return {"conversations": len(convs), "images": n_images}


def _world_files(root: Path) -> list[Path]:
    skip = ("world.json", MANIFEST, INCOMPLETE)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip)  # sha256_tree's order


def _hash_files(root: Path, cache_dir: Path | None) -> list[tuple[str, str]]:
    """(relative POSIX path, sha256) of every file of a world but world.json, the manifest and the marker."""
    from mg5bench.core.hashing import HashCache

    files = _world_files(root)
    digests = HashCache(cache_dir).many(files)
    return [(p.relative_to(root).as_posix(), digests[str(p)]) for p in files]


def _manifest_text(entries: list[tuple[str, str]]) -> str:
    return "".join(f"{sha}  {rel}\n" for rel, sha in entries)


def _tree_fingerprint(entries: list[tuple[str, str]]) -> str:
    """``hashing.sha256_tree`` of the world (every file but world.json), from the per-file hashes."""
    import hashlib

    h = hashlib.sha256()
    for rel, sha in sorted(entries, key=lambda e: e[0].split("/")):  # sha256_tree's order (by path parts)
        h.update(rel.encode() + b"\0")
        h.update(bytes.fromhex(sha))
    return h.hexdigest()


def tree_fingerprint(root: Path) -> str:
    """The world's fingerprint (world.json): every file but world.json and the manifest (``hashing.sha256_tree``)."""
    from mg5bench.core.hashing import sha256_tree

    return sha256_tree(root, exclude=("world.json", MANIFEST, INCOMPLETE))


def verify_world(root: Path, cache_dir: Path | None = None) -> list[str]:
    """What differs between a world folder and its manifest (``files.sha256``): missing or changed files, or a
    manifest that does not match world.json's fingerprint. Empty when intact. Files are hashed through the
    ``HashCache``, so an unchanged world costs a stat per file. A world built before manifests existed is checked
    against world.json's whole-tree fingerprint once and its manifest written."""
    from mg5bench.core.hashing import HashCache

    root = Path(root)
    try:
        meta = json.loads((root / "world.json").read_text())
        want = str(meta["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        return [f"world.json is unreadable ({str(e)[:60]})"]
    path = root / MANIFEST
    if not path.is_file():
        entries = _hash_files(root, cache_dir)
        if _tree_fingerprint(entries) != want:
            return ["its files differ from the fingerprint recorded in world.json"]
        from mg5bench.core.files import atomic_write_text

        with contextlib.suppress(OSError):  # a read-only world is still verified next time, the slow way
            atomic_write_text(path, _manifest_text(entries))
        return []
    entries, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        sha, sep, rel = line.partition("  ")
        if not sep or len(sha) != 64 or not rel:
            return [f"{MANIFEST} line {n} is malformed"]
        entries.append((rel, sha))
    if _tree_fingerprint(entries) != want:
        return [f"{MANIFEST} does not match the fingerprint in world.json"]
    cache = HashCache(cache_dir)
    base = str(root.resolve())
    for rel, sha in entries:
        try:
            if cache.sha256(os.path.join(base, rel)) != sha:
                problems.append(f"{rel} changed")
        except FileNotFoundError:
            problems.append(f"{rel} is missing")
        except OSError as e:
            problems.append(f"{rel} is unreadable ({e.strerror})")
    cache.save()
    return problems


def describe_problems(problems: list[str]) -> str:
    more = f" and {len(problems) - 1} more file(s)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


def default_cache_dir() -> Path:
    from mg5bench.core.hashing import user_cache_dir

    return user_cache_dir()


def is_world(root: Path) -> bool:
    """A finished world folder: ``world.json`` (written last) says complete and no ``INCOMPLETE`` marker is left."""
    root = Path(root)
    meta = root / "world.json"
    if not meta.is_file() or (root / INCOMPLETE).exists():
        return False
    try:
        return bool(json.loads(meta.read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def incomplete_world(path: Path) -> Path | None:
    """The folder (``path`` or up to two parents) that an interrupted build left with an ``INCOMPLETE`` marker."""
    path = Path(path).resolve()
    for candidate in (path, *list(path.parents)[:2]):
        if (candidate / INCOMPLETE).is_file():
            return candidate
    return None


def _remove_stale_builds(parent: Path, dirname: str) -> None:
    """Temporary build folders of ``dirname`` left by a build that was killed (its process is gone)."""
    from mg5bench.data.io import host_name, pid_alive

    for tmp in parent.glob(f".{dirname}.*"):
        try:
            info = json.loads((tmp / INCOMPLETE).read_text()) if (tmp / INCOMPLETE).is_file() else {}
        except (OSError, ValueError):
            info = {}
        dead = info.get("host") == host_name() and not pid_alive(int(info.get("pid", 0)) or -1)
        if tmp.is_dir() and (dead or tmp.name.startswith(f".{dirname}.old-")):
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_world(cfg: WorldConfig | None = None, cache_dir: Path | None = None, *, progress: bool = True) -> Path:
    """The cached world for ``cfg``: built on first use (in a temp folder, then renamed atomically), verified
    against its manifest on every use, and rebuilt with a one-line note when damaged."""
    cfg = cfg or WorldConfig()
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = base / "worlds" / cfg.dirname
    if is_world(target):
        from mg5bench.core.notes import note

        problems = verify_world(target, base)
        if not problems and json.loads((target / "world.json").read_text()).get("world") == cfg.to_dict():
            return target
        if problems:
            note(f"{target}: the cached world is damaged ({describe_problems(problems)}); rebuilding it")
        else:
            note(f"{target}: the cached world was written by another generator (its world.json settings differ); "
                 "rebuilding it")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(target.parent, cfg.dirname)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cfg.dirname}.", dir=target.parent))
    try:
        build_world(cfg, tmp, progress=progress, cache_dir=base)
        if target.exists():  # damaged or half-written: moved aside, then removed
            trash = target.with_name(f".{cfg.dirname}.old-{os.getpid()}-{time.time_ns()}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_world(target):  # someone else finished first: theirs is identical
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_scenes(root: Path, under: Path | None = None) -> dict[str, dict[str, Any]]:
    """Scene records of a world keyed by the absolute resolved image path; with ``under`` (a folder inside the
    world, e.g. its VIST folder) only the records of images below it. The root is resolved once; the world writes
    its images as plain files below it, so a normalised join equals a per-file ``resolve()``. ``under`` matters on
    level 3, whose CC3M-like pretraining split is most of the world's 97k records: a VIST run parses a tenth of
    them (a finished run's re-print spent most of its time here)."""
    root = Path(root).resolve()
    base = str(root)
    prefix = ""
    if under is not None and Path(under).resolve() != root and Path(under).resolve().is_relative_to(root):
        prefix = Path(under).resolve().relative_to(root).as_posix() + "/"
    quoted = f'"{prefix}'  # the world's writer does not escape "/": a record below ``under`` holds this text
    out: dict[str, dict[str, Any]] = {}
    with open(root / "scenes.jsonl", encoding="utf-8") as f:
        for line in f:
            if prefix and quoted not in line:
                continue
            rec = json.loads(line)
            if rec["image"].startswith(prefix):
                out[os.path.normpath(os.path.join(base, rec["image"]))] = rec["scene"]
    return out


def find_world_root(path: Path) -> Path | None:
    """The world folder that contains ``path`` (itself or up to two parents), if any."""
    path = Path(path).resolve()
    for candidate in (path, *list(path.parents)[:2]):
        if is_world(candidate):
            return candidate
    return None
