"""What every card shares: runs through the API, oracle accuracy read back from a stored scoring, and writing a
README.md that keeps the hand-written parts of the card it replaces."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mg5bench.data.oracle import ATTRIBUTES

BEGIN = "<!-- mg5bench:generated begin"
END = "<!-- mg5bench:generated end -->"
ORACLE_COLUMNS = ("image_rate", *ATTRIBUTES, "exact")


def first_groups(samples: Sequence[Any], n: int) -> int:
    """How many leading samples cover the first ``n`` groups (stories, conversations; a CC3M sample is its own
    group): the ``--limit`` that evaluates n stories."""
    seen: set[str] = set()
    for i, s in enumerate(samples):
        if s.group not in seen:
            if len(seen) == n:
                return i
            seen.add(s.group)
    return len(samples)


def oracle_table(run: Any, samples: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Per-sample oracle results of a run scored with ``scene_accuracy``, for the samples whose target has a scene
    (an image): id -> {"image": produced an image, "exact", and each attribute}."""
    from mg5bench.runs.store import RunStore

    rows = {}
    for line in (Path(run.score_folder) / "per_sample.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("scene_accuracy") is not None:
            rows[row["id"]] = row
    records = RunStore(run.folder).done()
    out = {}
    for s in samples:
        if s.id in rows:
            row = rows[s.id]
            out[s.id] = {"image": any("image" in seg for seg in records[s.id]["output"]),
                         "exact": row["scene_accuracy"],
                         **{a: row[f"scene_accuracy.{a}"] for a in ATTRIBUTES}}  # fmt: skip
    return out


def summarise(table: dict[str, dict[str, Any]], ids: Iterable[str] | None = None) -> dict[str, Any]:
    """{"n", "image_rate", <attributes>, "exact"} over ``ids`` (default: all): the figures a card row shows. A
    sample without an image counts as wrong on everything (the denominators are all samples)."""
    keys = list(table) if ids is None else [i for i in ids if i in table]
    n = max(len(keys), 1)
    out: dict[str, Any] = {"n": len(keys), "image_rate": sum(table[k]["image"] for k in keys) / n}
    for a in (*ATTRIBUTES, "exact"):
        out[a] = sum(float(table[k][a]) for k in keys) / n
    return out


def table_rows(result: dict[str, Any], keys: Sequence[tuple[str, str]]) -> list[str]:
    """Markdown rows ``| label (n=N) | image_rate | shape | ... | exact |`` for the result keys present."""
    return [f"| {label} (n={result[key]['n']}) | " + " | ".join(f"{result[key][c]:.3f}" for c in ORACLE_COLUMNS) + " |"
            for label, key in keys if key in result]  # fmt: skip


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading line or "", text) blocks, split at every heading of level 2 or deeper. A marker comment right
    above a heading (another writer's ``<!-- mg5bench:... begin`` line) opens that heading's block, so the section
    it marks keeps its marker when the block before it is replaced."""
    out: list[tuple[str, str]] = []
    heading, lines = "", []
    for line in text.splitlines(keepends=True):
        if re.match(r"^#{2,} ", line):
            opener = [lines.pop()] if lines and lines[-1].startswith("<!-- mg5bench:") else []
            out.append((heading, "".join(lines)))
            heading, lines = line.rstrip("\n"), [*opener, line]
        else:
            lines.append(line)
    out.append((heading, "".join(lines)))
    return out


def merge_card(existing: str | None, generated: str, command: str, is_generated: Callable[[str], bool]) -> str:
    """The new card: ``generated`` between the markers, everything the existing card has outside its markers kept
    where it was. A card written before the markers existed keeps every section (heading of level >= 2) that
    ``is_generated`` does not claim, after the generated block, in its order."""
    block = f"{BEGIN}: rewritten by `{command}`; text outside these markers is kept -->\n{generated.rstrip()}\n{END}\n"
    if not existing:
        return block
    if BEGIN in existing and END in existing:
        before = existing[: existing.index(BEGIN)]
        after = existing[existing.index(END) + len(END) :].lstrip("\n")
        return before + block + ("\n" + after if after.strip() else "")
    kept = [body for heading, body in _sections(existing)[1:] if not is_generated(heading)]
    return block + ("\n" + "".join(kept).rstrip() + "\n" if kept else "")


def write_card_text(path: Path, generated: str, command: str, generated_headings: Sequence[str]) -> Path:
    """Write ``path`` (a README.md) with ``generated`` as its generated section (see ``merge_card``);
    ``generated_headings``: the heading prefixes the generator writes (how an unmarked old card is split)."""
    path = Path(path)
    existing = path.read_text() if path.is_file() else None

    def claimed(heading: str) -> bool:
        return any(heading.startswith(p) for p in generated_headings)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(merge_card(existing, generated, command, claimed))
    return path


def _where_now(ckpt: Path, state: dict[str, Any], flag: str) -> Path | None:
    """Where a moved set keeps what ``flag`` named when the checkpoint was trained: ``--init`` = the parent beside
    the checkpoint, if it is the file the record names (sha256); ``--backbones`` = the backbones its config loads."""
    from mg5bench.core.hashing import sha256_file

    if flag == "--init":
        parent = state.get("parent")
        if parent is None:
            return None
        here = ckpt.parent / Path(parent["path"]).name
        weights = here / "trainable.safetensors"
        return here if weights.is_file() and sha256_file(weights) == parent["sha256"] else None
    cfg = ckpt / "minigpt5_config.json"
    lm = json.loads(cfg.read_text()).get("lm_path") if cfg.is_file() else None
    return (ckpt / lm).parent if lm and (ckpt / lm).parent.is_dir() else None


def train_command(ckpt: Path, state: dict[str, Any]) -> str:
    """The recorded train command, with ``--init`` / ``--backbones`` pointed at where they are now when the set has
    moved since (a recorded path that no longer exists): a command the reader can re-run. state.json keeps the
    command as it ran (it is part of the checkpoint's content hash)."""
    import shlex

    from mg5bench.adapters.common import shipped_checkpoints

    ckpt = Path(ckpt)
    words = shlex.split(state["command"])
    repo = shipped_checkpoints().resolve().parents[1]  # cards live in the repository; commands run from its root
    changed = False
    for flag in ("--init", "--backbones"):
        i = words.index(flag) + 1 if flag in words else len(words)
        if i >= len(words) or Path(words[i]).exists():
            continue
        now = _where_now(ckpt, state, flag)
        if now is None:
            continue
        now = now.resolve()
        words[i] = str(now.relative_to(repo)) if now.is_relative_to(repo) else str(now)
        changed = True
    if not changed:
        return state["command"]
    return " ".join(shlex.quote(w) if w != "$W" and not w.startswith("$W/") else w for w in words)
