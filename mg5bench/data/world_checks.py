"""Measurements that keep the synthetic world honest.

- ``oracle_accuracy``: how well the oracle reads freshly rendered scenes, clean and degraded.
- ``caption_determinacy``: on the VIST-like split, how often caption k alone determines the step-k
  scene, measured as the accuracy of the best caption-only predictor (the most frequent scene for each
  caption on the fit split, scored on another split). Context must matter: for steps 2-5 it must be low.
- ``information_bounds``: what the words carry against the scene, per story step: the caption-only guess,
  and the best guess from all the words a text pipeline can have (the narration so far plus a caption of
  every context image, written by an oracle-perfect captioner that samples the world's own caption
  distribution, by one that writes its most likely caption, or lossless captions for contrast).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.data.oracle import ATTRIBUTES, compare_scene, objects_right, parse_image
from mg5bench.data.scenes import (
    BACKGROUND,
    CELL_PHRASES,
    COLOURS,
    GRID,
    SHAPES,
    SIZES,
    Geometry,
    place,
    render,
    scene_caption,
    scene_key,
)
from mg5bench.data.world_content import level3_objects, mode_caption, partial_caption, random_scene_objects

DEGRADATIONS: dict[str, dict[str, float]] = {
    "clean": {},
    "blur": {"radius": 0.8},
    "noise": {"sigma": 12.0},
    "jpeg": {"quality": 75},
}


def degrade(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur (PIL), additive Gaussian noise, or a JPEG round trip (4:2:0 chroma)."""
    from PIL import Image, ImageFilter

    params = DEGRADATIONS[kind]
    if kind == "clean":
        return img
    if kind == "blur":
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(params["radius"])))
    if kind == "noise":
        return np.clip(img + rng.normal(0, params["sigma"], img.shape), 0, 255).astype(np.uint8)
    if kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(params["quality"]))
        return np.asarray(Image.open(buf).convert("RGB"))
    raise ValueError(f"unknown degradation {kind!r}")


def oracle_accuracy(
    n: int = 1000, *, level: int = 1, kind: str = "clean", seed: int = 1234, image_size: int = 48
) -> dict[str, Any]:
    """Per-attribute and exact-scene accuracy of the oracle on ``n`` fresh random scenes."""
    rng = np.random.default_rng(seed)
    geom = Geometry(image_size)
    correct = dict.fromkeys(ATTRIBUTES, 0)
    n_obj = exact = 0
    for _ in range(n):
        k = 1 if level == 1 else int(rng.integers(1, 3)) if level == 2 else int(rng.integers(2, 4))
        objs = level3_objects(rng, k) if level == 3 else random_scene_objects(rng, k)
        scene = {"background": list(BACKGROUND), "objects": [place(o, geom, rng) for o in objs]}
        img = degrade(render(scene, image_size), kind, rng)
        r = compare_scene(scene["objects"], parse_image(img))
        for a in ATTRIBUTES:
            correct[a] += r["correct"][a]
        n_obj += r["n_objects"]
        exact += r["exact"]
    return {
        "kind": kind,
        "params": DEGRADATIONS[kind],
        "level": level,
        "n_scenes": n,
        "attributes": {a: correct[a] / n_obj for a in ATTRIBUTES},
        "exact": exact / n,
    }


def _vist_steps(world_root: Path, split: str) -> list[tuple[int, str, tuple[Any, ...]]]:
    """(step, caption, discrete scene) for every story step of a split of a world."""
    vist = world_root / "VIST"
    stories = json.loads((vist / f"{split}_cleaned.json").read_text())
    mapping = json.loads((vist / f"{split}_image_mapping.json").read_text())
    scenes = {}
    with open(world_root / "scenes.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            scenes[rec["image"]] = rec["scene"]
    out = []
    for steps in stories.values():
        for st in steps:
            scene = scenes["VIST/" + mapping[st["image_id"]]]
            out.append((int(st["sequence_index"]), st["caption"], scene_key(scene)))
    return out


def caption_determinacy(world_root: Path, *, fit_split: str = "train", eval_split: str = "val") -> dict[str, Any]:
    """Accuracy of the best caption-only predictor of the step scene, per step (1-based).

    The predictor maps each caption to its most frequent scene on ``fit_split``; a caption never seen
    there counts as wrong. ``steps_2_5`` pools the four later steps: it must stay under 0.5.
    """
    by_caption: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
    for _, caption, key in _vist_steps(Path(world_root), fit_split):
        by_caption[caption][key] += 1
    best = {c: counts.most_common(1)[0][0] for c, counts in by_caption.items()}
    hits: dict[int, list[bool]] = defaultdict(list)
    for step, caption, key in _vist_steps(Path(world_root), eval_split):
        hits[step + 1].append(best.get(caption) == key)
    per_step = {k: float(np.mean(v)) for k, v in sorted(hits.items())}
    later = [h for k, v in hits.items() if k >= 2 for h in v]
    return {
        "fit_split": fit_split,
        "eval_split": eval_split,
        "per_step": per_step,
        "steps_2_5": float(np.mean(later)),
        "n": {k: len(v) for k, v in sorted(hits.items())},
    }


# ---------------------------------------------------------------------------------------------
# what the words carry


def _story_records(world_root: Path, split: str) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    """(story id, the five narrations, the five scene records) of every story of a split, in file order."""
    vist = Path(world_root) / "VIST"
    stories = json.loads((vist / f"{split}_cleaned.json").read_text())
    mapping = json.loads((vist / f"{split}_image_mapping.json").read_text())
    scenes = {}
    with open(Path(world_root) / "scenes.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if rec["image"].startswith(f"VIST/{split}_images/"):
                scenes[rec["image"]] = rec["scene"]
    out = []
    for story_id, steps in stories.items():
        steps = sorted(steps, key=lambda st: int(st["sequence_index"]))
        out.append((story_id, [st["caption"] for st in steps],
                    [scenes["VIST/" + mapping[st["image_id"]]] for st in steps]))  # fmt: skip
    return out


def _alternation(words: tuple[str, ...] | list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))  # longest first: "at the top left"


_DESCRIPTION = re.compile(
    rf"a ({_alternation(SIZES)}) ({_alternation(COLOURS)}) ({_alternation(SHAPES)}) ({_alternation(CELL_PHRASES)})"
    r"(?= |$)"
)
_REF = rf"(it|the (?:{_alternation(SHAPES)})|the (?:{_alternation(COLOURS)}) one)"
_MOVES_BY_NAME = {"to the left": (0, -1), "to the right": (0, 1), "up": (-1, 0), "down": (1, 0)}


def parse_descriptions(text: str) -> list[dict[str, Any]]:
    """Every full object description ("a big red circle at the top left") in a text, in order."""
    return [{"size": m[1], "colour": m[2], "shape": m[3], "cell": CELL_PHRASES.index(m[4])}
            for m in _DESCRIPTION.finditer(text)]  # fmt: skip


def _resolve(ref: str, objs: list[dict[str, Any]]) -> int | None:
    """The object a partial reference points at. The story's focus (objs[0], the object the introduction names
    first: a level-3 story's protagonist) wins when it fits, since level-3 narration refers only to it."""
    fits = [
        i for i, o in enumerate(objs)
        if ref == "it" or ref == f"the {o['shape']}" or ref == f"the {o['colour']} one"
    ]  # fmt: skip
    if not fits:
        return None
    return 0 if 0 in fits else fits[0]


def track_narration(narrations: list[str]) -> list[list[dict[str, Any]]]:
    """The objects the narration alone determines after each step: the introduction's objects, then each event
    applied to the object it refers to (the world's grammar, level 1 to 3). An object no text names is absent."""
    objs = parse_descriptions(narrations[0])
    states = [[dict(o) for o in objs]]
    for text in narrations[1:]:
        objs = [dict(o) for o in objs]
        if text.endswith(" appears ."):
            objs += parse_descriptions(text)
        else:
            m = re.match(rf"(?:then )?{_REF} (.*) \.$", text)
            i = _resolve(m[1], objs) if m else None
            if m is not None and i is not None:
                _apply_narrated(objs, i, m[2])
        states.append(objs)
    return states


def _apply_narrated(objs: list[dict[str, Any]], i: int, rest: str) -> None:
    obj = objs[i]
    if rest == "disappears":
        del objs[i]
    elif rest.startswith("moves "):
        dr, dc = _MOVES_BY_NAME[rest.removeprefix("moves ")]
        row, col = divmod(int(obj["cell"]), GRID)
        obj["cell"] = (row + dr) * GRID + col + dc
    elif rest.startswith("turns "):
        obj["colour"] = rest.removeprefix("turns ")
    elif rest in ("grows", "gets bigger"):
        obj["size"] = "big"
    elif rest in ("shrinks", "gets smaller"):
        obj["size"] = "small"
    elif rest.startswith("becomes a ") and rest.removeprefix("becomes a ") in SHAPES:
        obj["shape"] = rest.removeprefix("becomes a ")
    elif rest.startswith("becomes "):
        new = parse_descriptions(rest.removeprefix("becomes "))
        if new:
            objs[i] = new[0]


def _key(o: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(o[a] for a in ATTRIBUTES)


def guess_from_words(narrations: list[str], captions: list[str]) -> list[dict[str, Any]]:
    """The best guess of the last step's objects from all the words a text pipeline has at that step: the
    narrations so far (``narrations[:k+1]``) and one caption per earlier image (``captions[:k]``). The narration is
    followed as ``track_narration`` does; an object a caption of image j names that the narration's objects at j do
    not hold is a level-3 background object, which never changes, so it is added to every later step. Objects no
    text names are left out: their four attributes are a guess of about 1 in 300 (3 shapes x 2 sizes x 6 colours x
    9 cells, less the ones taken)."""
    states = track_narration(narrations)
    extra: dict[tuple[Any, ...], dict[str, Any]] = {}
    for j, caption in enumerate(captions):
        known = {_key(o) for o in states[j]}
        for o in parse_descriptions(caption):
            if _key(o) not in known:
                extra.setdefault(_key(o), o)
    last = states[-1]
    taken_colours, taken_cells = {o["colour"] for o in last}, {o["cell"] for o in last}
    return last + [o for o in extra.values() if o["colour"] not in taken_colours and o["cell"] not in taken_cells]


def _score(target: list[dict[str, Any]], guess: list[dict[str, Any]] | None) -> tuple[float, float]:
    """(exact scene, share of target objects with all four attributes right) of a guess; None = no guess."""
    if guess is None:
        return 0.0, 0.0
    r = compare_scene(target, guess)
    return float(r["exact"]), objects_right(target, guess) / max(len(target), 1)


def _captioner_rng(seed: int, story_id: str, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(story_id.encode()), step])


# information_bounds' guesses: the narration's most frequent scene, then the text pipeline with three captioners
METHODS: tuple[str, ...] = ("caption_only", "sampling_captioner", "mode_captioner", "lossless")


def information_bounds(
    world_root: Path, *, fit_split: str = "train", eval_split: str = "val", seed: int = 0
) -> dict[str, Any]:
    """What the words carry, per story step k (0-based, as in sample ids), scored on ``eval_split``:

    - ``caption_only``: the most frequent scene of each narration on ``fit_split`` (unseen narration: wrong);
    - ``sampling_captioner``: ``guess_from_words`` with each context image captioned by an oracle-perfect captioner
      that samples the world's own caption distribution for it (level 3: ``partial_caption``, the salient object
      always and each other object with probability 1/3, seeded by (``seed``, story, step); levels 1 and 2: the full
      caption, as their CC3M-like data has);
    - ``mode_captioner``: the same with the most likely caption, what a captioner trained on the world and decoded
      greedily writes (level 3: ``mode_caption``, the salient object only; levels 1 and 2: the full caption);
    - ``lossless``: the same with full captions naming every object.

    The world's level comes from its world.json. Each method gives ``exact`` (the whole scene right) and
    ``objects`` (share of objects right) per step, and pooled over k >= 1."""
    root = Path(world_root)
    level = int(json.loads((root / "world.json").read_text())["world"]["level"])
    by_caption: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
    for _, narrations, scenes in _story_records(root, fit_split):
        for text, scene in zip(narrations, scenes, strict=True):
            by_caption[text][scene_key(scene)] += 1
    best = {c: counts.most_common(1)[0][0] for c, counts in by_caption.items()}
    results: dict[str, dict[str, dict[int, list[float]]]] = {
        m: {"exact": defaultdict(list), "objects": defaultdict(list)} for m in METHODS
    }

    def add(method: str, k: int, scored: tuple[float, float]) -> None:
        results[method]["exact"][k].append(scored[0])
        results[method]["objects"][k].append(scored[1])

    for story_id, narrations, scenes in _story_records(root, eval_split):
        captions: dict[str, list[str]] = {m: [] for m in METHODS[1:]}
        for k, scene in enumerate(scenes):
            objs = [{a: o[a] for a in ATTRIBUTES} for o in scene["objects"]]
            rng = _captioner_rng(seed, story_id, k)
            template = int(rng.integers(3))
            full = scene_caption({"objects": objs}, template)
            captions["sampling_captioner"].append(partial_caption(objs, rng, template)[0] if level == 3 else full)
            captions["mode_captioner"].append(mode_caption(objs, template) if level == 3 else full)
            captions["lossless"].append(full)
        for k, scene in enumerate(scenes):
            target = scene["objects"]
            key = best.get(narrations[k])  # scene_key: (shape, colour, size, cell) per object, ATTRIBUTES' order
            guess = None if key is None else [dict(zip(ATTRIBUTES, o, strict=True)) for o in key]
            add("caption_only", k, _score(target, guess))
            for method, written in captions.items():
                add(method, k, _score(target, guess_from_words(narrations[: k + 1], written[:k])))
    out: dict[str, Any] = {"fit_split": fit_split, "eval_split": eval_split, "seed": seed, "level": level}
    for method, by_measure in results.items():
        out[method] = {}
        for measure, per_step in by_measure.items():
            later = [v for k, vs in per_step.items() if k >= 1 for v in vs]
            out[method][measure] = {
                "per_step": {k: float(np.mean(v)) for k, v in sorted(per_step.items())},
                "later": float(np.mean(later)),
            }
    out["n_stories"] = len(results["caption_only"]["exact"][0])
    return out
