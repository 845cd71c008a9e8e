"""Training and evaluation examples of MiniGPT-5, built from the real CC3M / VIST / MMDialog file formats
exactly as the official loaders build them (docs/minigpt5.md, "Training in two stages"). Imports nothing from mg5bench.

An example is (source, target, input images, output image, caption): the source holds one
``<Img><ImageHere></Img>`` per input image, the target ends with `` ###`` and holds the voken string
when an image is to be generated.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reference_model.losses import preprocess_caption

IMG = "<Img><ImageHere></Img>"
SYSTEM_CC3M = "You will be able to generate image according to command."
SYSTEM_VIST = (
    "Give the following images in <Img>ImageContent</Img> format. You will be able to see the images once I "
    "provide it to you. Please understanding images and generate story."
)
SYSTEM_MMDIALOG = (
    "Give the following images in <Img>ImageContent</Img> format. You will be able to see the images once I "
    "provide it to you. Please generate conversations with appropriate images."
)
GEN_PROMPTS_CC3M = (
    "generate image with caption:",
    "can you give me the image with caption:",
    "help me to generate this image:",
    "generate image with according to caption:",
    "according to caption, generate image:",
    "an image with caption:",
    "can you visualize this caption:",
)
VIST_GEN = (
    "Generate an image with the scene description: {c} ###Assistant:",
    "the scene description: {c} ###Assistant:",
)
VIST_MULTIMODAL = (
    "Tell me the next scene with image. ###Assistant:",
    "Generate the next scene with image. ###Assistant:",
    "What should happen then? ###Assistant:",
)
VIST_UNDERSTANDING = (
    "Tell me the next scene description by this image: " + IMG + " ###Assistant:",
    "What happen in the next scene image: " + IMG + " ###Assistant:",
)


OFFICIAL_INSTRUCTION_EVERY = 100  # officially every 100th CC3M row also gets an instruction-style copy


def voken_string(n: int) -> str:
    """``[IMG0][IMG1]...[IMGn-1]`` (no spaces)."""
    return "".join(f"[IMG{i}]" for i in range(n))


@dataclass
class Example:
    """One training / evaluation example."""

    task: str
    source: str
    target: str
    input_images: list[Path] = field(default_factory=list)
    output_image: Path | None = None
    caption: str | None = None  # stage 1 caption-loss target

    def __post_init__(self) -> None:
        n = self.source.count("<ImageHere>")
        if n != len(self.input_images):
            raise ValueError(f"{self.task}: {n} <ImageHere> placeholders but {len(self.input_images)} input images")


# ---------------------------------------------------------------------------------------------
# CC3M (stage 1)


def cc3m_examples(
    folder: Path,
    split: str,
    train: bool,
    num_vokens: int = 8,
    seed: int = 42,
    instruction_every: int = OFFICIAL_INSTRUCTION_EVERY,
) -> list[Example]:
    """Caption -> vokens; in train mode every ``instruction_every``-th row also gets an instruction-style copy
    (official: every 100th). An option because with 1 in 100 the tiny LM's vokens work after a bare
    caption but not after an instruction prompt; more copies (measured: 1 in 2) fix the CC3M instruction prompt
    but not the VIST one and cost layout, so the shipped stage 1 keeps the official rate."""
    if instruction_every < 1:
        raise ValueError(f"instruction_every must be >= 1, got {instruction_every}")
    tsv = Path(folder) / f"cc3m_{split}.tsv"
    with open(tsv, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or rows[0] != ["caption", "image_path"]:
        raise ValueError(f"{tsv}: expected the header caption<TAB>image_path")
    rng = random.Random(seed)
    target = voken_string(num_vokens) + " ###"
    out: list[Example] = []
    for n, row in enumerate(rows[1:]):
        if len(row) != 2:
            raise ValueError(f"{tsv}: line {n + 2}: expected 2 tab-separated fields, got {len(row)}")
        cap, rel = row
        clean = preprocess_caption(cap)
        img = Path(folder) / rel
        out.append(Example(f"cc3m_{n}", clean, target, [], img, clean))
        if train and n % instruction_every == 0:
            src = f"{SYSTEM_CC3M}###Human: {rng.choice(GEN_PROMPTS_CC3M)} {clean} ###Assistant:"
            out.append(Example(f"cc3m_{n}_instruction", src, target, [], img, clean))
    return out


# ---------------------------------------------------------------------------------------------
# VIST (stage 2)


def read_vist(folder: Path, split: str) -> dict[str, list[tuple[str, Path]]]:
    """story id -> [(caption, image path)] in sequence order, from <split>_cleaned.json + _image_mapping.json."""
    folder = Path(folder)
    stories = json.loads((folder / f"{split}_cleaned.json").read_text(encoding="utf-8"))
    mapping = json.loads((folder / f"{split}_image_mapping.json").read_text(encoding="utf-8"))
    out = {}
    for sid, steps in stories.items():
        steps = sorted(steps, key=lambda s: s["sequence_index"])
        out[str(sid)] = [(s["caption"], folder / mapping[str(s["image_id"])]) for s in steps]
    return out


def vist_context(steps: list[tuple[str, Path]], k: int) -> tuple[str, list[Path]]:
    """ctx = c_0<Img><ImageHere></Img>...c_{k-1}<Img><ImageHere></Img> + newline (empty for k = 0), joined with
    no spaces exactly as the official loader does (``IMG.join(captions) + IMG + "\\n"``)."""
    if k == 0:
        return "", []
    text = "".join(f"{c}{IMG}" for c, _ in steps[:k]) + "\n"
    return text, [p for _, p in steps[:k]]


def vist_gen_source(steps: list[tuple[str, Path]], k: int, template: int = 0) -> tuple[str, list[Path]]:
    """The ``-gen`` source (the test-time protocol): system prompt, context, current caption."""
    ctx, images = vist_context(steps, k)
    return f"{SYSTEM_VIST}###Human:{ctx} {VIST_GEN[template].format(c=steps[k][0])}", images


def vist_examples(
    folder: Path,
    split: str,
    train: bool,
    num_vokens: int = 8,
    seed: int = 42,
    variants: tuple[str, ...] = ("gen", "multimodal", "understanding"),
) -> list[Example]:
    """13 examples per 5-step story in train mode (gen x5, multimodal x4, understanding x4); in eval mode
    only ``-gen`` for every step, with the first template (docs/minigpt5.md, "Official evaluation")."""
    rng = random.Random(seed)
    vok = voken_string(num_vokens)
    out: list[Example] = []
    for sid, steps in read_vist(folder, split).items():
        for k, (cap, img) in enumerate(steps):
            ctx, ctx_imgs = vist_context(steps, k)
            if "gen" in variants or not train:
                src, imgs = vist_gen_source(steps, k, rng.randrange(2) if train else 0)
                out.append(Example(f"{sid}_{k}-gen", src, f"{vok} ###", imgs, img))
            if not train or k == 0:
                continue
            if "multimodal" in variants:
                src = f"{SYSTEM_VIST}###Human:{ctx} {rng.choice(VIST_MULTIMODAL)}"
                out.append(Example(f"{sid}_{k}-multimodal", src, f"{cap} {vok} ###", ctx_imgs, img))
            if "understanding" in variants:
                src = f"{SYSTEM_VIST}###Human:{ctx} {rng.choice(VIST_UNDERSTANDING)}"
                out.append(Example(f"{sid}_{k}-understanding", src, f"{cap} ###", [*ctx_imgs, img], None))
    return out


# ---------------------------------------------------------------------------------------------
# MMDialog (stage 2)


def read_mmdialog(folder: Path, split: str) -> list[tuple[str, list[tuple[str, Path | None]]]]:
    """[(conversation id, [(turn text, first image or None)])] from <split>/<split>_conversations.txt."""
    base = Path(folder) / split
    out = []
    for line in (base / f"{split}_conversations.txt").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        conv = json.loads(line)
        turns = []
        for t in conv["conversation"]:
            text = " ".join(e["__TEXT__"] for e in t["turn"] if "__TEXT__" in e).strip()
            media = [e["__MEDIA__"] for e in t["turn"] if "__MEDIA__" in e]
            turns.append((text, base / f"{media[0]}.jpg" if media else None))
        out.append((str(conv["conversation_id"]), turns))
    return out


def mmdialog_source(turns: list[tuple[str, Path | None]], i: int) -> tuple[str, list[Path]]:
    """S_d + history window (3 previous turns for Assistant targets, 2 for Human) + the speaker tag."""
    window = 3 if i % 2 else 2
    parts, images = [], []
    for j in range(max(0, i - window), i):
        text, img = turns[j]
        entry = f"###{'Assistant' if j % 2 else 'Human'}: {text}"
        if img is not None:
            entry += f" {IMG}"
            images.append(img)
        parts.append(entry)
    return f"{SYSTEM_MMDIALOG} {' '.join(parts)} ###{'Assistant' if i % 2 else 'Human'}:", images


def mmdialog_examples(
    folder: Path,
    split: str,
    train: bool,
    num_vokens: int = 8,
    count_tokens: Callable[[str], int] | None = None,
    max_train_tokens: int = 50,
) -> list[Example]:
    """A target for every turn i >= 1; conversations are cut at the first turn with empty text, text
    ending in .jpg or a missing image, and (train) at the first turn longer than ``max_train_tokens``."""
    vok = voken_string(num_vokens)
    out: list[Example] = []
    for cid, turns in read_mmdialog(folder, split):
        kept: list[tuple[str, Path | None]] = []
        for text, img in turns:
            if not text or text.endswith(".jpg") or (img is not None and not img.exists()):
                break
            if train and count_tokens is not None and count_tokens(text) > max_train_tokens:
                break
            kept.append((text, img))
        if len(kept) < 2:
            continue
        for i in range(1, len(kept)):
            src, imgs = mmdialog_source(kept, i)
            text, img = kept[i]
            tgt = f"{text} {vok} ###" if img is not None else f"{text} ###"
            out.append(Example(f"{cid}_{i}-mm", src, tgt, imgs, img))
    return out


def fingerprint(examples: list[Example]) -> str:
    """A short hash of the example list (task names, texts and image paths), stored with checkpoints."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.task, e.source, e.target, [p.name for p in e.input_images],
                             e.output_image.name if e.output_image else None, e.caption]).encode())  # fmt: skip
    return h.hexdigest()[:16]
