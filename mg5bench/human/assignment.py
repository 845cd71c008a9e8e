"""What a study asks and who rates what. The questions (``ASPECTS``, ``QUESTIONS``) and answers (``LABELS``), which
questions apply to two outputs (``asked_aspects``), the study plan built from two runs (``PlanItem``, ``StudyPlan``),
each rater slot's queue (``plan_assignments``: pair items shared by ``overlap`` slots, repeat and gold attention
checks mixed in) and whether a submitted attention check passed (``evaluate_checks``).

A study pairs two runs (models X and Y) over the same samples. Items: ``pair`` (X vs Y on one sample), ``repeat``
(an attention check: a pair item shown again later to the same rater with its sides swapped) and ``gold`` (an
attention check: the ground truth against a blank image). Each rater takes one of the study's ``raters`` slots at
first login; each pair item is assigned to ``overlap`` slots so agreement can be computed; left/right is drawn per
(item, slot) and stored with the assignment and with every vote.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mg5bench.core.errors import ConfigError

ASPECTS: tuple[str, ...] = ("language", "image", "multimodal", "consistency")
# The questions of an item stored without its list (schema 1, before consistency was asked): these three, always
LEGACY_ASPECTS: tuple[str, ...] = ("language", "image", "multimodal")
QUESTIONS: dict[str, str] = {
    "language": "Language coherence: which output's text follows the context more coherently?",
    "image": "Image quality: which output's image is clearer and better made?",
    "multimodal": "Multimodal coherence: which output's text and image fit the context, and each other, better?",
    "consistency": (
        "Visual consistency: which output's image keeps what the context's images show (objects, colours, "
        "setting) where the story does not change it?"
    ),
}
# The multimodal question when an output lacks text or an image (VIST's outputs are images): it then asks how the
# output continues the context, which holds both.
QUESTION_FITS_CONTEXT = "Multimodal coherence: which output fits the context, its text and images, better?"
LABELS: tuple[str, ...] = ("A", "tie_a", "tie_b", "B", "both_bad")
# The answer buttons' labels: short enough to fit five in a row with their key hint ("Shift + 2") on a laptop
LABEL_TEXT: dict[str, str] = {
    "A": "A better",
    "tie_a": "Tie, lean A",
    "tie_b": "Tie, lean B",
    "B": "B better",
    "both_bad": "Both bad",
}
KINDS = ("pair", "repeat", "gold")
ROLES = ("rater", "organiser")
GOLD_GT, GOLD_BLANK = "gold:gt", "gold:blank"  # model labels of the gold items (never a run's label)


def shows_text(segments: Sequence[Mapping[str, Any]]) -> bool:
    """An output with a text segment (an empty one too: the rater sees "(empty text)")."""
    return any("text" in seg for seg in segments)


def shows_image(segments: Sequence[Mapping[str, Any]]) -> bool:
    return any("image" in seg or "blank" in seg for seg in segments)


def asked_aspects(
    x: Sequence[Mapping[str, Any]],
    y: Sequence[Mapping[str, Any]],
    target_text: bool,
    context: Sequence[Mapping[str, Any]] = (),
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The questions that apply to what the two outputs show, and why each other one is skipped:

    - language coherence: both outputs have text, or one has and the task's expected output (the target) has
      text too (a missing text is then a failure to judge);
    - image quality: both outputs have an image (a missing image is judged under multimodal coherence);
    - multimodal coherence: always (every task's context and target together hold text and images; with an
      output of one kind it asks how that output continues the context);
    - visual consistency: both outputs have an image and the context holds one (what the paper's human study
      asks of a story; the first step of a story, with no earlier image, has nothing to keep).
    """
    skipped: dict[str, str] = {}
    tx, ty = shows_text(x), shows_text(y)
    if not (tx or ty):
        skipped["language"] = "neither output has text"
    elif not (tx and ty) and not target_text:
        skipped["language"] = "only one output has text, and the task expects none"
    ix, iy = shows_image(x), shows_image(y)
    if not (ix and iy):
        skipped["image"] = "neither output has an image" if not (ix or iy) else "only one output has an image"
        skipped["consistency"] = skipped["image"]
    elif not any("image" in seg for seg in context):
        skipped["consistency"] = "the context holds no image to stay consistent with"
    return tuple(a for a in ASPECTS if a not in skipped), skipped


def question_for(aspect: str, left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]]) -> str:
    """The question as the rater reads it for these two outputs."""
    if aspect == "multimodal" and not all(shows_text(o) and shows_image(o) for o in (left, right)):
        return QUESTION_FITS_CONTEXT
    return QUESTIONS[aspect]


@dataclass(frozen=True)
class PlanItem:
    """One item to create: a pair (X vs Y) or a gold check, with what the rater is shown (``payload``:
    ``context`` segments and ``outputs`` {"x": segments, "y": segments}; image segments carry the ``root`` they
    are relative to; ``skipped``: {aspect: why it is not asked}) and the questions asked (``aspects``)."""

    sample_id: str
    kind: str
    model_x: str
    model_y: str
    payload: dict[str, Any]
    aspects: tuple[str, ...] = ASPECTS


@dataclass(frozen=True)
class StudyPlan:
    """Everything a study needs from the two runs (built by ``mg5bench.human.runs.build_plan``)."""

    task: str
    split: str
    model_x: str
    model_y: str
    roots: dict[str, str]  # root key ("x", "y", "data") -> absolute folder; the only folders images come from
    runs: dict[str, str]  # "x" / "y" -> run folder
    pairs: list[PlanItem]
    gold: list[PlanItem] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # "x" / "y" -> the run's label (checkpoint, settings)


@dataclass(frozen=True)
class Slot:
    """One entry of a slot's queue."""

    sample_id: str
    kind: str  # pair, repeat, gold
    swap: bool  # True: model_y on the left


def plan_assignments(
    sample_ids: Sequence[str], gold_ids: Sequence[str], raters: int, overlap: int, seed: int, check_every: int
) -> list[list[Slot]]:
    """Each slot's queue. Pair items are shuffled (seeded) and item i goes to the ``overlap`` slots (i*overlap + j)
    mod raters, so every slot gets a near-equal share and every pair of slots shares items. Per slot: its items in
    a seeded order, sides drawn per (item, slot), and ``max(1, n // check_every)`` repeats (an earlier item again,
    at least two items later, sides swapped) and as many gold items (none when ``check_every`` is 0 or the slot
    has fewer than 3 items)."""
    if raters < 1 or not 1 <= overlap <= raters:
        raise ConfigError(f"--raters {raters} --overlap {overlap}: need raters >= 1 and 1 <= overlap <= raters")
    order = list(sample_ids)
    random.Random(f"order:{seed}").shuffle(order)
    per_slot: list[list[str]] = [[] for _ in range(raters)]
    for i, sid in enumerate(order):
        for j in range(overlap):
            per_slot[(i * overlap + j) % raters].append(sid)
    queues = []
    for slot, ids in enumerate(per_slot):
        rng = random.Random(f"slot:{seed}:{slot}")
        rng.shuffle(ids)
        swaps = {sid: rng.random() < 0.5 for sid in ids}
        keyed: list[tuple[int, int, float, Slot]] = [(k, 0, 0.0, Slot(s, "pair", swaps[s])) for k, s in enumerate(ids)]
        n = len(ids)
        k_checks = max(1, n // check_every) if check_every > 0 and n >= 3 else 0
        for o in sorted(rng.sample(range(n - 1), min(k_checks, n - 1))) if k_checks else []:
            q = rng.randint(min(o + 2, n), n)  # inserted before pair q (q == n: at the end)
            keyed.append((q, -1, rng.random(), Slot(ids[o], "repeat", not swaps[ids[o]])))
        if k_checks and gold_ids:
            for g in rng.sample(list(gold_ids), min(k_checks, len(gold_ids))):
                keyed.append((rng.randint(1, n), -1, rng.random(), Slot(g, "gold", rng.random() < 0.5)))
        queues.append([entry for *_, entry in sorted(keyed, key=lambda t: t[:3])])
    return queues


def stored_aspects(stored: str | None) -> tuple[str, ...]:
    """An item's questions from its ``aspects`` column (NULL, written before the column existed: the three asked
    then)."""
    return LEGACY_ASPECTS if stored is None else tuple(a for a in ASPECTS if a in json.loads(stored))


def item_id_for(study: int, kind: str, sample_id: str) -> str:
    return f"{study}/{sample_id}" if kind == "pair" else f"{study}/{kind}/{sample_id}"


def _favours(label: str, side: str) -> bool:
    """Does the label prefer the side ('A' = left, 'B' = right), outright or as a leaning tie?"""
    return label in (side, f"tie_{side.lower()}")


def preferred_model(label: str, left_model: str, right_model: str) -> str | None:
    """The model a label prefers (outright or leaning); None for both_bad."""
    if _favours(label, "A"):
        return left_model
    if _favours(label, "B"):
        return right_model
    return None


def item_rows(study: int, plan: StudyPlan, queues: Sequence[Sequence[Slot]]) -> list[tuple[Any, ...]]:
    """The ``items`` rows of a new study: its pairs and gold items, then a repeat of every pair some queue shows
    again (the same questions, sides swapped by its assignment)."""
    rows = [
        (
            item_id_for(study, it.kind, it.sample_id),
            study,
            it.kind,
            it.sample_id,
            it.model_x,
            it.model_y,
            None,
            json.dumps(it.payload),
            json.dumps(list(it.aspects)),
        )
        for it in [*plan.pairs, *plan.gold]
    ]
    by_sample = {p.sample_id: p for p in plan.pairs}
    repeated = sorted({e.sample_id for q in queues for e in q if e.kind == "repeat"})
    rows += [
        (
            item_id_for(study, "repeat", s),
            study,
            "repeat",
            s,
            by_sample[s].model_x,
            by_sample[s].model_y,
            item_id_for(study, "pair", s),
            "{}",
            json.dumps(list(by_sample[s].aspects)),  # shown again: the same questions
        )
        for s in repeated
    ]
    return rows


def assignment_rows(study: int, plan: StudyPlan, queues: Sequence[Sequence[Slot]]) -> list[tuple[Any, ...]]:
    """The ``assignments`` rows of a new study: every slot's queue in order, with the model on each side."""
    gold_models = (GOLD_GT, GOLD_BLANK)
    assign = []
    for slot, queue in enumerate(queues):
        for pos, e in enumerate(queue):
            x, y = gold_models if e.kind == "gold" else (plan.model_x, plan.model_y)
            left, right = (y, x) if e.swap else (x, y)
            assign.append((study, slot, pos, item_id_for(study, e.kind, e.sample_id), left, right))
    return assign


def _complete(conn: sqlite3.Connection, rater: str, item_id: str) -> dict[str, sqlite3.Row] | None:
    """The rater's votes on the item by aspect, once every question asked on it is answered."""
    rows = conn.execute("SELECT * FROM votes WHERE rater = ? AND item_id = ?", (rater, item_id)).fetchall()
    by_aspect = {r["aspect"]: r for r in rows}
    asked = conn.execute("SELECT aspects FROM items WHERE item_id = ?", (item_id,)).fetchone()
    return by_aspect if set(by_aspect) >= set(stored_aspects(asked["aspects"])) else None


def evaluate_checks(conn: sqlite3.Connection, rater: str, item_id: str, kind: str) -> None:
    """Store the result of an attention check the moment the rater has answered all of it (inside the
    submitting transaction). Gold: passed when no answer favours the blank output and at least one favours
    the ground truth. Repeat: passed when the preferred model (outright or leaning; none for both_bad) is
    the same as at the first showing on a majority of the questions asked."""
    if kind == "gold":
        votes = _complete(conn, rater, item_id)
        if votes is None:
            return
        first = next(iter(votes.values()))
        gt_side = "A" if first["left_model"] == GOLD_GT else "B"
        blank_side = "B" if gt_side == "A" else "A"
        labels = {a: v["label"] for a, v in votes.items()}
        favoured_blank = [a for a in labels if _favours(labels[a], blank_side)]
        passed = not favoured_blank and any(_favours(lab, gt_side) for lab in labels.values())
        detail = {"labels": labels, "gt_side": gt_side, "favoured_blank": favoured_blank}
        check_id = item_id
    else:
        if kind == "repeat":
            check_id = item_id
            orig = conn.execute("SELECT repeat_of FROM items WHERE item_id = ?", (item_id,)).fetchone()[0]
        else:
            row = conn.execute("SELECT item_id FROM items WHERE repeat_of = ?", (item_id,)).fetchone()
            if row is None:
                return
            check_id, orig = row[0], item_id
        first, again = _complete(conn, rater, orig), _complete(conn, rater, check_id)
        if first is None or again is None:
            return
        asked = [a for a in ASPECTS if a in first and a in again]
        agree = {
            a: preferred_model(first[a]["label"], first[a]["left_model"], first[a]["right_model"])
            == preferred_model(again[a]["label"], again[a]["left_model"], again[a]["right_model"])
            for a in asked
        }
        passed = 2 * sum(agree.values()) > len(asked)
        detail = {
            "agree": agree,
            "first": {a: first[a]["label"] for a in asked},
            "again": {a: again[a]["label"] for a in asked},
        }
        kind = "repeat"
    conn.execute(
        "INSERT OR IGNORE INTO attention VALUES (?, ?, ?, ?, ?, ?)",
        (rater, check_id, kind, int(passed), json.dumps(detail), utc_now()),
    )


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
