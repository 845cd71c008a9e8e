"""The embedded world's language, as the tiny backbones need it: canonical scene captions, a parser that
reads them back into objects, and the text corpus the tiny LM is pretrained on.

The corpus teaches what the real system's instruction-tuned LLM already knows: the world's captions, stories
and dialogs, the prompt templates MiniGPT-5's loaders build (``reference_model.data``), and text that states a
story's or a dialog's *current* scene (read from the world's ``scenes.jsonl``), so that the LM can track a
scene through a story before any MiniGPT-5 stage. Reads only the real file formats plus ``scenes.jsonl``;
imports nothing from mg5bench (``tests`` check the phrases against mg5bench's world).
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

CELL_PHRASES: tuple[str, ...] = (
    "at the top left", "at the top", "at the top right",
    "on the left", "in the middle", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
)  # fmt: skip
SIZES = ("small", "big")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPES = ("circle", "square", "triangle")
ATTRIBUTES = ("colour", "shape", "size", "cell")

# The probe question (and the pretraining documents that teach the answer to it).
PROBE_QUESTION = "what does the scene look like now ?"
DESCRIBE_QUESTION = "Describe this image."  # MiniGPT-4's captioning prompt (reference_model.vision.DESCRIBE)


def img_slot(objects: list[dict[str, Any]]) -> str:
    """An image as the LM sees it in pretraining text: its scene statement between the image tags. The vision
    path later learns to put embeddings there that the LM reads the same way (the text stand-in for an
    image, as a real LLM has read about images before MiniGPT-4 shows it any)."""
    return f"<Img>{scene_caption(objects)}</Img>"


_OBJECT = re.compile(
    rf"\b({'|'.join(SIZES)}) ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)}) "
    rf"({'|'.join(sorted(CELL_PHRASES, key=len, reverse=True))})"
)


def describe(obj: dict[str, Any]) -> str:
    """'a big red circle at the top left' (no final period)."""
    return f"a {obj['size']} {obj['colour']} {obj['shape']} {CELL_PHRASES[int(obj['cell'])]}"


def scene_caption(objects: list[dict[str, Any]]) -> str:
    """The canonical statement of a scene: 'a big red circle at the top left and a small ... .'"""
    return " and ".join(describe(o) for o in objects) + " ."


def parse_caption(text: str) -> list[dict[str, Any]]:
    """Objects named in a caption, in order: [{size, colour, shape, cell}]. Words that do not form a full
    '<size> <colour> <shape> <place>' phrase are ignored (a partial answer parses to fewer objects)."""
    return [
        {"size": m[1], "colour": m[2], "shape": m[3], "cell": CELL_PHRASES.index(m[4])} for m in _OBJECT.finditer(text)
    ]


def attribute_scores(truth: list[dict[str, Any]], text: str) -> dict[str, float]:
    """Per-attribute and exact agreement of a caption with a one-object (level-1) scene; multi-object scenes
    count as exact only when the parsed object list equals the truth in order."""
    got = parse_caption(text)
    first = got[0] if got else {}
    want = truth[0] if truth else {}
    out = {a: float(bool(first) and first.get(a) == want.get(a)) for a in ATTRIBUTES}
    strip = [{a: o[a] for a in ATTRIBUTES} for o in truth]
    out["exact"] = float(got == strip)
    return out


# ---------------------------------------------------------------------------------------------
# reading a world folder


def load_scene_objects(world: Path) -> dict[str, list[dict[str, Any]]]:
    """image path relative to the world root -> its objects (shape, colour, size, cell)."""
    out = {}
    with open(Path(world) / "scenes.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            out[rec["image"]] = [{a: o[a] for a in ATTRIBUTES} for o in rec["scene"]["objects"]]
    return out


def with_scene_captions(examples: list[Any], data: Path) -> list[Any]:
    """Stage 2's tiny-preset caption targets: every example with an output image gets the scene caption of that
    image (``scene_caption``), read from the world's ``scenes.jsonl`` next to ``data`` (W/VIST, W/MMDialog).
    Real data sets have no scene records, so this stops with the fix instead of training without the loss."""
    world = Path(data).resolve().parent
    if not (world / "scenes.jsonl").is_file():
        raise FileNotFoundError(
            f"{world / 'scenes.jsonl'}: the stage-2 scene-caption loss needs the world's scene records, which only "
            "the embedded world has; drop --scene-caption-weight (the paper preset) for real VIST / MMDialog"
        )
    scenes = load_scene_objects(world)
    out = []
    for e in examples:
        if e.output_image is None:
            out.append(e)
            continue
        rel = Path(e.output_image).resolve().relative_to(world).as_posix()
        if rel not in scenes:
            raise KeyError(f"{world / 'scenes.jsonl'}: no scene record for {rel}; rebuild the world")
        out.append(replace(e, caption=scene_caption(scenes[rel])))
    return out


def vist_stories(world: Path, split: str) -> list[list[tuple[str, list[dict[str, Any]]]]]:
    """[[(narration, objects of that step's image)] per story], in story-id and sequence order (read through
    the stage-2 loader's ``read_vist``)."""
    from reference_model.data import read_vist

    world = Path(world)
    scenes = load_scene_objects(world)
    stories = read_vist(world / "VIST", split)
    return [[(c, scenes[p.relative_to(world).as_posix()]) for c, p in stories[sid]] for sid in sorted(stories)]


def _fill_images(source: str, objects: list[list[dict[str, Any]]]) -> str:
    """A loader-built source with its ``<Img><ImageHere></Img>`` placeholders replaced, in order, by the scene
    statements of the images they stand for (``img_slot``)."""
    from reference_model.data import IMG

    parts = source.split(IMG)
    if len(parts) != len(objects) + 1:
        raise ValueError(f"{len(parts) - 1} image placeholders but {len(objects)} scenes")
    return "".join(
        p + (img_slot(o) if i < len(objects) else "")
        for i, (p, o) in enumerate(zip(parts, [*objects, []], strict=True))
    )


def probe_prompt(narrations: list[str]) -> str:
    """The scene-tracking probe: the story so far (text only), then the question."""
    from reference_model.data import SYSTEM_VIST

    return f"{SYSTEM_VIST}###Human:{' '.join(narrations)} {PROBE_QUESTION} ###Assistant:"


def corpus(world: Path, split: str = "train", seed: int = 0) -> list[str]:
    """Every pretraining document of the tiny LM (one string each; the trainer adds BOS/EOS)."""
    from reference_model.data import (
        GEN_PROMPTS_CC3M,
        SYSTEM_CC3M,
        SYSTEM_VIST,
        VIST_GEN,
        VIST_MULTIMODAL,
        mmdialog_source,
        read_mmdialog,
        vist_context,
    )

    rng = random.Random(seed)
    world = Path(world)
    scenes = load_scene_objects(world)
    docs: list[str] = []
    # CC3M: the bare caption, and the stage-1 instruction prompt answered with the canonical statement
    with open(world / "CC3M" / f"cc3m_{split}.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    for cap, rel in rows:
        docs.append(cap)
        objs = scenes["CC3M/" + rel]
        state = scene_caption(objs)
        docs.append(f"{SYSTEM_CC3M}###Human: {rng.choice(GEN_PROMPTS_CC3M)} {cap} ###Assistant: {state} ###")
        docs.append(f"###Human: {img_slot(objs)} {DESCRIBE_QUESTION} ###Assistant: {cap} ###")
    # VIST: the story, the probe question after every prefix, and the stage-2 templates
    for steps in vist_stories(world, split):
        narr = [c for c, _ in steps]
        docs.append(" ".join(narr))
        for k, (cap, objs) in enumerate(steps):
            state = scene_caption(objs)
            docs.append(f"{probe_prompt(narr[: k + 1])} {state} ###")
            ctx, ctx_objs = vist_context(steps, k)  # type: ignore[arg-type]  # scenes stand where images would
            ctx = _fill_images(ctx, ctx_objs)  # type: ignore[arg-type]
            gen = rng.choice(VIST_GEN).format(c=cap)
            docs.append(f"{SYSTEM_VIST}###Human:{ctx} {gen} {state} ###")
            if k:
                docs.append(f"{SYSTEM_VIST}###Human:{ctx} {rng.choice(VIST_MULTIMODAL)} {cap} {state} ###")
    # MMDialog: whole conversations, and every turn as the stage-2 source + its reply (+ the shown scene)
    for _, turns in read_mmdialog(world / "MMDialog", split):
        docs.append(" ".join(f"###{'Assistant' if i % 2 else 'Human'}: {t}" for i, (t, _) in enumerate(turns)))
        for i in range(1, len(turns)):
            src, paths = mmdialog_source(turns, i)
            src = _fill_images(src, [scenes[p.relative_to(world).as_posix()] for p in paths])
            text, here = turns[i]
            docs.append(
                f"{src} {text}" + (f" {img_slot(scenes[here.relative_to(world).as_posix()])}" if here else "") + " ###"
            )
    rng.shuffle(docs)
    return docs
