"""MMDialog in the MiniGPT-5 layout: ``<split>/<split>_conversations.txt`` (JSON lines) with the
images at ``<split>/<media key>.jpg``. Media keys may be negative integers written as text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import DataError
from mg5bench.core.files import atomic_write_text
from mg5bench.core.sample import Segment
from mg5bench.data.io import Problems, check_image, check_text, read_text_utf8, resolve_inside
from mg5bench.data.vist import show_id

TEXT, MEDIA = "__TEXT__", "__MEDIA__"


@dataclass(frozen=True)
class MMTurn:
    """One turn: its elements in file order (text segments, image segments with absolute paths)."""

    elements: tuple[Segment, ...]
    media_keys: tuple[str, ...]

    @property
    def text(self) -> str:
        """All the turn's texts as one string (what a model reads or should write)."""
        return " ".join(s.value.strip() for s in self.elements if s.is_text and s.value.strip())

    @property
    def images(self) -> list[str]:
        return [s.value for s in self.elements if s.is_image]


@dataclass(frozen=True)
class MMConversation:
    """One MMDialog conversation as read: its id, its turns in order and the line of the file it came from."""

    conversation_id: str
    turns: tuple[MMTurn, ...]
    line: int


def mmdialog_file(root: Path, split: str) -> Path:
    """The conversations file of a split; its images sit beside it."""
    return Path(root) / split / f"{split}_conversations.txt"


def read_mmdialog(
    root: Path, split: str, *, problems: Problems | None = None, check_images: bool = True
) -> list[MMConversation]:
    """Read one split in file order. File-level problems raise; a conversation with any bad turn goes
    through ``problems`` (raise by default, or skipped whole and listed with ``skip_bad``)."""
    problems = problems if problems is not None else Problems()
    path = mmdialog_file(root, split)
    folder = path.parent
    text = read_text_utf8(path, "MMDialog conversations file")
    convs: list[MMConversation] = []
    seen: dict[str, int] = {}
    # split on "\n" only: str.splitlines() would also cut at U+2028 / U+0085, which JSON strings may hold raw
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            conv = _read_line(folder, path, n, line, check_images)
            if conv.conversation_id in seen:
                raise DataError(
                    str(path), f"line {n} (conversation {show_id(conv.conversation_id)})",
                    f"duplicate conversation_id (first on line {seen[conv.conversation_id]})",
                    "give each conversation its own id",
                )  # fmt: skip
            seen[conv.conversation_id] = n
            convs.append(conv)
        except DataError as e:
            problems.report(e)
    return convs


def _read_line(folder: Path, path: Path, n: int, line: str, check_images: bool) -> MMConversation:
    rec = f"line {n}"
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(
            str(path), rec, f"malformed JSON: {e.msg} at column {e.colno}", "write one JSON object per line"
        ) from None
    except RecursionError:
        raise DataError(str(path), rec, "JSON is nested too deeply", "check that this is the right file") from None
    if not isinstance(obj, dict):
        raise DataError(str(path), rec, f"a line must be a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("conversation_id", "conversation") if k not in obj]
    if missing:
        raise DataError(
            str(path), rec, f"missing field(s) {', '.join(missing)}", "give conversation_id and conversation"
        )
    cid = obj["conversation_id"]
    if isinstance(cid, bool) or not isinstance(cid, (int, str)) or cid == "":
        raise DataError(str(path), rec, f"conversation_id must be an integer or a non-empty string, got {cid!r}"[:300])
    cid = str(cid)
    rec = f"line {n} (conversation {show_id(cid)})"
    turns_raw = obj["conversation"]
    if not isinstance(turns_raw, list) or not turns_raw:
        got = "an empty list" if isinstance(turns_raw, list) else type(turns_raw).__name__
        raise DataError(str(path), rec, f"'conversation' must be a non-empty list of turns, got {got}")
    turns = [_read_turn(folder, path, f"{rec} turn {t}", turn, check_images) for t, turn in enumerate(turns_raw)]
    return MMConversation(cid, tuple(turns), n)


def _read_turn(folder: Path, path: Path, trec: str, turn: Any, check_images: bool) -> MMTurn:
    if not isinstance(turn, dict) or not isinstance(turn.get("turn"), list):
        raise DataError(str(path), trec, f"a turn must be an object {{'turn': [elements]}}, got {turn!r}"[:300])
    elements: list[Segment] = []
    keys: list[str] = []
    for el in turn["turn"]:
        if not isinstance(el, dict) or len(el) != 1 or not ({TEXT, MEDIA} & set(el)):
            raise DataError(
                str(path),
                trec,
                f"an element must be {{'{TEXT}': text}} or {{'{MEDIA}': key}}, got {el!r}"[:300],
            )
        ((kind, value),) = el.items()
        if not isinstance(value, str):
            raise DataError(
                str(path), trec, f"{kind} must be a string, got {type(value).__name__} {value!r}"[:300],
                "write media keys in quotes" if kind == MEDIA else None,
            )  # fmt: skip
        if kind == TEXT:
            elements.append(Segment.text(check_text(value, path, trec)))
            continue
        if not value or "/" in value or "\\" in value or ".." in value:
            raise DataError(str(path), trec, f"media key {value!r} is not a plain file name",
                            "media keys name <key>.jpg files beside the conversations file")  # fmt: skip
        irec = f"{trec} (media {show_id(value)})"
        image = resolve_inside(folder, f"{value}.jpg", path, irec)
        if check_images:
            check_image(image, path, irec)
        elements.append(Segment.image(str(image)))
        keys.append(value)
    result = MMTurn(tuple(elements), tuple(keys))
    if not result.text and not keys:
        raise DataError(str(path), trec, "empty turn (no text and no image)", "remove the turn or give it content")
    return result


def write_mmdialog(root: Path, split: str, conversations: list[dict[str, Any]]) -> Path:
    """Write conversations (already in the file's JSON shape) atomically, one per line."""
    path = mmdialog_file(root, split)
    atomic_write_text(path, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations))
    return path
