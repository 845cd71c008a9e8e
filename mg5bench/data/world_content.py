"""What the synthetic world holds, drawn from seeded generators: its settings (``WorldConfig``: seed, level, size,
image size; everything that determines its bytes), the scenes and their captions, five-step stories with their
events and two-speaker dialogs. ``mg5bench.data.world`` renders and writes them.

Level 1 has one object per image (one persistent object per story); level 2 adds a second object, and stories can
make objects appear and disappear. Level 3 has one big (salient) object and one or two small ones, texts that name
only part of them (a caption always names the big object, each small one with probability 1/3), and stories and
dialogs that follow the big object as protagonist among persistent small background objects, so that the earlier
images carry what the words leave out.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mg5bench.core.errors import ConfigError
from mg5bench.data.scenes import (
    CELL_PHRASES,
    COLOURS,
    GRID,
    SHAPES,
    SIZES,
    describe,
    scene_caption,
)

WORLD_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")
# per split: CC3M images, VIST stories (5 images each), MMDialog conversations
SIZE_PRESETS: dict[str, dict[str, dict[str, int]]] = {
    "small": {
        "cc3m": {"train": 400, "val": 60, "test": 60},
        "vist": {"train": 80, "val": 16, "test": 16},
        "mmdialog": {"train": 80, "val": 16, "test": 16},
    },
    "default": {
        "cc3m": {"train": 8000, "val": 1000, "test": 1000},
        "vist": {"train": 1600, "val": 200, "test": 200},
        "mmdialog": {"train": 1600, "val": 200, "test": 200},
    },
}
# Level 3: the CC3M-like train split is 10x the VIST-like train split's images (1,600 stories x 5 = 8,000 at the
# default size); val and test stay at the level-1 counts. docs/world.md gives the reasons.
LEVEL3_CC3M: dict[str, dict[str, int]] = {
    "small": {"train": 4000, "val": 60, "test": 60},
    "default": {"train": 80000, "val": 1000, "test": 1000},
}
LEVELS: tuple[int, ...] = (1, 2, 3)
# The embedded default: the level on which the paper's question can be answered (its captions leave part of the
# picture unsaid), chosen by the rule in docs/world.md; the others stay buildable with --data synth:level=N.
DEFAULT_LEVEL = 3
# Level 3's generator revision, recorded in its world.json settings (``WorldConfig.to_dict``): a cached level-3
# world whose settings differ was written by another generator and is rebuilt, not reused. Levels 1 and 2 are fixed.
LEVEL3_REVISION = 2
# Level 3: the chance that a text names an object other than the one it must name (the salient object of a
# caption, a story's or a dialog's protagonist), drawn independently per object.
MENTION_P = 1 / 3
PROTAGONIST, BACKGROUND_ROLE = "protagonist", "background"
STORY_STEPS = 5
FOLDERS = {"cc3m": "CC3M", "vist": "VIST", "mmdialog": "MMDialog"}


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines the world's bytes."""

    seed: int = 0
    level: int = DEFAULT_LEVEL
    size: str = "default"
    image_size: int = 48
    version: int = WORLD_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"world seed must be a non-negative integer, got {self.seed!r}")
        if self.level not in LEVELS:
            raise ConfigError(f"world level must be one of {', '.join(map(str, LEVELS))}, got {self.level!r}")
        if self.size not in SIZE_PRESETS:
            raise ConfigError(f"world size must be one of {sorted(SIZE_PRESETS)}, got {self.size!r}")
        if self.image_size < 24 or self.image_size % GRID:
            raise ConfigError(f"image_size must be a multiple of {GRID} and >= 24, got {self.image_size}")
        if self.version != WORLD_VERSION:
            raise ConfigError(f"this mg5bench builds world version {WORLD_VERSION}, not {self.version}")

    @property
    def dirname(self) -> str:
        return f"v{self.version}-seed{self.seed}-level{self.level}-{self.size}-{self.image_size}px"

    def counts(self) -> dict[str, dict[str, int]]:
        """Records per data set and split: CC3M images, VIST stories, MMDialog conversations."""
        if self.level == 3:
            return {**SIZE_PRESETS[self.size], "cc3m": dict(LEVEL3_CC3M[self.size])}
        return SIZE_PRESETS[self.size]

    def to_dict(self) -> dict[str, Any]:
        """The settings world.json records; level 3 adds its generator revision (LEVEL3_REVISION)."""
        out = asdict(self)
        if self.level == 3:
            out["level3_revision"] = LEVEL3_REVISION
        return out

    @classmethod
    def parse(cls, text: str) -> WorldConfig:
        """Parse ``synth:level=2,size=small,seed=3`` (the ``--data`` spelling of a world)."""
        body = text.removeprefix("synth").lstrip(":")
        kw: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in body.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(f"bad world setting {part!r} in {text!r}; use key=value, e.g. synth:level=2")
            key = key.strip().replace("-", "_")
            if key in ("seed", "level", "image_size", "version"):
                try:
                    kw[key] = int(value)
                except ValueError:
                    raise ConfigError(f"world setting {key} must be an integer, got {value!r}") from None
            elif key == "size":
                kw[key] = value.strip()
            else:
                raise ConfigError(f"unknown world setting {key!r}; known: seed, level, size, image_size")
        return cls(**kw)


def rng_for(cfg: WorldConfig, *names: str) -> np.random.Generator:
    """An independent, stable stream per (world, dataset, split): crc32 is stable across runs."""
    keys = [zlib.crc32(n.encode()) for n in names]
    return np.random.default_rng([cfg.seed, cfg.version, cfg.level, *keys])


# ---------------------------------------------------------------------------------------------
# objects, scenes and events


def _random_object(
    rng: np.random.Generator, used_colours: set[str], used_cells: set[int], size: str | None = None
) -> dict[str, Any]:
    """A random object on a free colour and cell; ``size`` fixes the size (level 3) instead of drawing it."""
    colour = str(rng.choice([c for c in COLOURS if c not in used_colours]))
    cell = int(rng.choice([c for c in range(GRID * GRID) if c not in used_cells]))
    shape = str(rng.choice(SHAPES))
    return {"shape": shape, "colour": colour, "size": str(rng.choice(SIZES)) if size is None else size, "cell": cell}


def random_scene_objects(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """n objects with distinct colours and distinct cells."""
    objs: list[dict[str, Any]] = []
    for _ in range(n):
        objs.append(_random_object(rng, {o["colour"] for o in objs}, {o["cell"] for o in objs}))
    return objs


def level3_objects(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """A level-3 scene of n objects: ``objects[0]`` is the one big object, the salient one a caption always names
    and a story's or dialog's protagonist; then n - 1 small objects in reading order. Colours and cells distinct."""
    objs = [_random_object(rng, set(), set(), size="big")]
    for _ in range(n - 1):
        objs.append(_random_object(rng, {o["colour"] for o in objs}, {o["cell"] for o in objs}, size="small"))
    return [objs[0], *sorted(objs[1:], key=lambda o: int(o["cell"]))]


def salient(objs: list[dict[str, Any]]) -> int:
    """The index of a level-3 scene's salient object: its one big object (ValueError if it has not exactly one)."""
    big = [i for i, o in enumerate(objs) if o["size"] == "big"]
    if len(big) != 1:
        raise ValueError(f"a level-3 scene has exactly one big object, this one has {len(big)}")
    return big[0]


def strip_object(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: obj[k] for k in ("shape", "colour", "size", "cell")}


def n_objects(cfg: WorldConfig, rng: np.random.Generator) -> int:
    if cfg.level == 3:
        return int(rng.choice([2, 3]))  # 0.5 / 0.5
    return 1 if cfg.level == 1 else int(rng.choice([1, 2], p=[0.3, 0.7]))


def _maybe_named(rng: np.random.Generator, indices: list[int]) -> list[int]:
    """Level 3: each of ``indices`` is named with probability MENTION_P, independently (one draw each, in order)."""
    return [i for i in indices if rng.random() < MENTION_P]


def _reading_order(objs: list[dict[str, Any]], indices: list[int]) -> list[int]:
    return sorted(indices, key=lambda i: int(objs[i]["cell"]))


def cc3m_scene(rng: np.random.Generator, n: int, template: int) -> tuple[list[dict[str, Any]], str, list[int]]:
    """A level-3 CC3M-like record: (objects, the big one first, ``level3_objects``; caption; indices the caption
    names), the caption drawn by ``partial_caption``."""
    objs = level3_objects(rng, n)
    caption, named = partial_caption(objs, rng, template)
    return objs, caption, named


def partial_caption(objs: list[dict[str, Any]], rng: np.random.Generator, template: int) -> tuple[str, list[int]]:
    """The level-3 caption distribution for a level-3 scene (objects in any order): the salient (big) object always
    and first, as a caption names the dominant subject, then each small object with probability MENTION_P, in
    reading order. What an oracle-perfect sampling captioner of this world writes (``world_checks``)."""
    s = salient(objs)
    named = [s, *_maybe_named(rng, _reading_order(objs, [i for i in range(len(objs)) if i != s]))]
    return scene_caption({"objects": [objs[i] for i in named]}, template), named


def mode_caption(objs: list[dict[str, Any]], template: int) -> str:
    """The most likely level-3 caption of a scene: the salient (big) object alone (each small object is left out
    with probability 1 - MENTION_P > 1/2), what a captioner decoding greedily from this world's captions writes."""
    return scene_caption({"objects": [objs[salient(objs)]]}, template)


_MOVES = {"to the left": (0, -1), "to the right": (0, 1), "up": (-1, 0), "down": (1, 0)}


def _moves(cell: int, taken: set[int]) -> list[tuple[str, int]]:
    """One-cell moves that stay on the grid and do not land on another object."""
    row, col = divmod(cell, GRID)
    return [
        (name, (row + dr) * GRID + col + dc)
        for name, (dr, dc) in _MOVES.items()
        if 0 <= row + dr < GRID and 0 <= col + dc < GRID and (row + dr) * GRID + col + dc not in taken
    ]


def _other_colour(rng: np.random.Generator, obj: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """A new colour for obj, distinct from its own and from the other objects' colours."""
    taken = {o["colour"] for o in others}
    return str(rng.choice([c for c in COLOURS if c != obj["colour"] and c not in taken]))


def _reference(obj: dict[str, Any], others: list[dict[str, Any]], rng: np.random.Generator) -> str:
    """How the narration refers to an object: partially, and unambiguously within the scene."""
    options = []
    if not others:
        options += ["it", "it"]
    if all(o["shape"] != obj["shape"] for o in others):
        options.append(f"the {obj['shape']}")
    options.append(f"the {obj['colour']} one")  # colours are distinct within a scene
    return str(rng.choice(options))


def story_event(
    objs: list[dict[str, Any]], rng: np.random.Generator, level: int
) -> tuple[list[dict[str, Any]], str, str]:
    """Apply one random event to the scene; return (new objects, narration, event type)."""
    objs = [dict(o) for o in objs]
    kinds = ["move", "move", "recolour", "resize", "reshape", "restate"]
    if level == 2:
        kinds += ["appear"] if len(objs) == 1 else ["disappear"]
    kind = str(rng.choice(kinds))
    if kind == "appear":
        new = _random_object(rng, {o["colour"] for o in objs}, {o["cell"] for o in objs})
        objs.append(new)
        return objs, f"{describe(new)} appears .", kind
    i = int(rng.integers(len(objs)))
    return _apply_event(objs, i, kind, _reference(objs[i], objs[:i] + objs[i + 1 :], rng), rng)


def _apply_event(
    objs: list[dict[str, Any]], i: int, kind: str, ref: str, rng: np.random.Generator, size: str | None = None
) -> tuple[list[dict[str, Any]], str, str]:
    """Apply event ``kind`` to object i (``objs`` is a copy the caller owns), narrated with reference ``ref``.
    Moves never enter another object's cell, recolours never take another object's colour; a restatement draws a
    new object of size ``size`` (None: a random size)."""
    obj, others = objs[i], objs[:i] + objs[i + 1 :]
    if kind == "disappear":
        del objs[i]
        return objs, f"{ref} disappears .", kind
    if kind == "move":
        moves = _moves(obj["cell"], {o["cell"] for o in others})
        if moves:
            name, cell = moves[int(rng.integers(len(moves)))]
            obj["cell"] = cell
            return objs, f"{ref} moves {name} .", kind
        kind = "recolour"  # boxed in: fall through to another event
    if kind == "recolour":
        obj["colour"] = _other_colour(rng, obj, others)
        return objs, f"{ref} turns {obj['colour']} .", kind
    if kind == "resize":
        grow = obj["size"] == "small"
        obj["size"] = "big" if grow else "small"
        verb = str(rng.choice(["grows", "gets bigger"] if grow else ["shrinks", "gets smaller"]))
        return objs, f"{ref} {verb} .", kind
    if kind == "reshape":
        obj["shape"] = str(rng.choice([s for s in SHAPES if s != obj["shape"]]))
        return objs, f"{ref} becomes a {obj['shape']} .", kind
    # restate: the object jumps to a fully described new state
    new = _random_object(rng, {o["colour"] for o in others}, {o["cell"] for o in others}, size=size)
    objs[i] = new
    return objs, f"then {ref} becomes {describe(new)} .", "restate"


_INTROS = ["there is {} .", "our story starts with {} .", "first we see {} ."]


def make_story(cfg: WorldConfig, rng: np.random.Generator) -> list[tuple[list[dict[str, Any]], str, str]]:
    """Five steps of (objects, caption, event): step 0 introduces the scene in full."""
    objs = random_scene_objects(rng, n_objects(cfg, rng))
    intro = str(rng.choice(_INTROS))
    steps = [(objs, intro.format(" and ".join(describe(o) for o in objs)), "intro")]
    for _ in range(STORY_STEPS - 1):
        objs, text, kind = story_event(objs, rng, cfg.level)
        steps.append((objs, text, kind))
    return steps


@dataclass
class StoryStep:
    """One story step: the objects, the narration and the event. At level 3 also which objects the narration
    names and the protagonist's index (the rest are background); None at levels 1 and 2, whose records omit them."""

    objects: list[dict[str, Any]]
    text: str
    event: str
    named: list[int] | None = None
    protagonist: int | None = None


# Level 3 has no size events: the protagonist is the big object and stays the salient one throughout.
LEVEL3_EVENTS = ("move", "move", "recolour", "reshape", "restate")


def make_story_level3(rng: np.random.Generator) -> list[StoryStep]:
    """A level-3 story: the protagonist is the big object (``objects[0]``, ``level3_objects``) among 1-2 small
    background objects that never change. Step 0 introduces the protagonist in full, then names each background
    object with probability MENTION_P; steps 1-4 apply one event of LEVEL3_EVENTS to the protagonist (a restatement
    keeps it big), narrated with a level-1 partial reference ("it", "the triangle", "the green one"), and never
    name a background object."""
    objs = level3_objects(rng, int(rng.choice([2, 3])))
    named = [0, *_maybe_named(rng, list(range(1, len(objs))))]
    intro = str(rng.choice(_INTROS)).format(" and ".join(describe(objs[i]) for i in named))
    steps = [StoryStep(objs, intro, "intro", named, 0)]
    for _ in range(STORY_STEPS - 1):
        objs = [dict(o) for o in objs]
        kind = str(rng.choice(LEVEL3_EVENTS))
        objs, text, kind = _apply_event(objs, 0, kind, _reference(objs[0], [], rng), rng, size="big")
        steps.append(StoryStep(objs, text, kind, [0], 0))
    return steps


_EDIT_ASK = {
    "move": ["can you move it {name} ?", "move it {name} please ."],
    "recolour": ["now make it {colour} .", "can you make it {colour} ?"],
    "resize": ["make it {bigger} .", "can you make it {bigger} ?"],
    "reshape": ["turn it into a {shape} .", "now make it a {shape} ."],
}
_HERE = ["here it is .", "here you go .", "sure , here it is .", "done , take a look ."]


def make_dialog(cfg: WorldConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """A two-speaker conversation about one scene; even turns Human, odd turns Assistant.

    Returns turns as ``{"text": str, "scene": objects | None}``. An Assistant image usually depends
    on the previous image plus the edit asked for, so the dialog context matters.
    """
    # level 3: the big object is the protagonist (objects[0]), the small ones persistent background; texts name the
    # protagonist, images record roles
    if cfg.level == 3:
        objs, p = level3_objects(rng, n_objects(cfg, rng)), 0
    else:
        objs, p = random_scene_objects(rng, n_objects(cfg, rng)), None
    extra = (lambda named: {"named": named, "protagonist": p}) if p is not None else (lambda named: {})
    turns: list[dict[str, Any]] = []
    if rng.random() < 0.6:  # Human asks for a scene, Assistant shows it
        body = " and ".join(describe(o) for o in objs) if p is None else describe(objs[p])
        ask = str(rng.choice(["can you show me {} ?", "please draw {} .", "i would like to see {} ."]))
        turns += [{"text": ask.format(body), "scene": None},
                  {"text": str(rng.choice(_HERE)), "scene": objs, **extra([p])}]  # fmt: skip
    else:  # Human shows a scene, Assistant describes it
        show = str(rng.choice(["look at this picture .", "here is my drawing .", "what do you see here ?"]))
        named = list(range(len(objs))) if p is None else [p, *_maybe_named(rng, list(range(1, len(objs))))]
        desc = " and ".join(describe(objs[i]) for i in named)
        turns += [{"text": show, "scene": objs, **extra(named)}, {"text": f"i see {desc} .", "scene": None}]
    n_rounds = int(rng.integers(1, 4))
    for _ in range(n_rounds):
        r = rng.random()
        if r < 0.7:  # an edit: the Assistant answers with the edited image
            new_objs, _kind, ask = _dialog_edit(objs, rng, p)
            if new_objs is None:
                continue
            objs = new_objs
            turns += [{"text": ask, "scene": None}, {"text": str(rng.choice(_HERE)), "scene": objs, **extra([p])}]
        elif r < 0.85:  # a question answered in text (level 3: about the protagonist)
            o = objs[int(rng.integers(len(objs)))] if p is None else objs[p]
            attr = str(rng.choice(["colour", "shape", "size"]))
            ref = "it"
            if len(objs) > 1:
                ref = f"the one {CELL_PHRASES[o['cell']]}" if attr == "colour" else f"the {o['colour']} one"
            q = {
                "colour": "what colour is {} ?",
                "shape": "what shape is {} ?",
                "size": "is {} big or small ?",
            }
            q = q[attr].format(ref)
            turns += [{"text": q, "scene": None}, {"text": f"it is {o[attr]} .", "scene": None}]
        else:  # small talk
            turns += [
                {"text": str(rng.choice(["thanks !", "nice , thank you .", "great !"])), "scene": None},
                {
                    "text": str(rng.choice(["you are welcome .", "glad you like it .", "any time !"])),
                    "scene": None,
                },
            ]
    return turns


def _dialog_edit(objs: list[dict[str, Any]], rng: np.random.Generator, i: int | None = None) -> tuple[Any, str, str]:
    """An edit of object i (None: a random one), as (new objects or None when boxed in, kind, request text). A given
    object is a level-3 protagonist, whose size an edit never changes (it stays the big, salient object)."""
    objs = [dict(o) for o in objs]
    kinds = list(_EDIT_ASK) if i is None else [k for k in _EDIT_ASK if k != "resize"]
    if i is None:
        i = 0 if len(objs) == 1 else int(rng.integers(len(objs)))
    obj, others = objs[i], objs[:i] + objs[i + 1 :]
    ref = "it" if not others else f"the {obj['colour']} one"  # colours are distinct within a scene
    kind = str(rng.choice(kinds))
    template = str(rng.choice(_EDIT_ASK[kind]))
    if kind == "move":
        moves = _moves(obj["cell"], {o["cell"] for o in others})
        if not moves:
            return None, kind, ""
        name, obj["cell"] = moves[int(rng.integers(len(moves)))]
        text = template.format(name=name)
    elif kind == "recolour":
        obj["colour"] = _other_colour(rng, obj, others)
        text = template.format(colour=obj["colour"])
    elif kind == "resize":
        bigger = "bigger" if obj["size"] == "small" else "smaller"
        obj["size"] = "big" if bigger == "bigger" else "small"
        text = template.format(bigger=bigger)
    else:
        obj["shape"] = str(rng.choice([s for s in SHAPES if s != obj["shape"]]))
        text = template.format(shape=obj["shape"])
    return objs, kind, text.replace(" it ", f" {ref} ", 1)
