"""The rating store: one SQLite file (WAL mode) holding the studies, their items, the raters (tokens stored as
sha256 only), the assignment of items to raters, every vote and the attention-check results.

Why SQLite in WAL mode: several raters submit at once through one Streamlit server (threads) or several
processes, and readers (the organiser page, ``mg5bench human report``) must never block writers. Every write is
one ``BEGIN IMMEDIATE`` transaction on its own connection with ``synchronous=FULL``: a submitted item is stored
whole (all its aspects and its attention-check result) or not at all, and survives a crash once ``submit``
returns. Votes are unique per (rater, item, aspect), so a retried or concurrent duplicate is refused, never
stored twice.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[v]`` takes a database from version v to v+1,
applied in one transaction on open. A database newer than this code is refused (upgrade mg5bench).

A study pairs two runs (models X and Y) over the same samples. Items: ``pair`` (X vs Y on one sample),
``repeat`` (an attention check: a pair item shown again later to the same rater with its sides swapped) and
``gold`` (an attention check: the ground truth against a blank image). Each rater takes one of the study's
``raters`` slots at first login; each pair item is assigned to ``overlap`` slots so agreement can be computed;
left/right is drawn per (item, slot) and stored with the assignment and with every vote.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError, Mg5Error

ASPECTS: tuple[str, ...] = ("language", "image", "multimodal")
QUESTIONS: dict[str, str] = {
    "language": "Language coherence: which output's text follows the context more coherently?",
    "image": "Image quality: which output's image is clearer and better made?",
    "multimodal": "Multimodal coherence: which output's text and image fit the context, and each other, better?",
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
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

# Each migration is a list of statements taking the schema from version v to v + 1 (never executescript: it
# commits on its own and would break the one-transaction rule).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE studies (
            id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            task TEXT NOT NULL,
            split TEXT NOT NULL,
            model_x TEXT NOT NULL,
            model_y TEXT NOT NULL,
            config TEXT NOT NULL)""",
        """CREATE TABLE items (
            item_id TEXT PRIMARY KEY,
            study INTEGER NOT NULL REFERENCES studies(id),
            kind TEXT NOT NULL CHECK (kind IN ('pair', 'repeat', 'gold')),
            sample_id TEXT NOT NULL,
            model_x TEXT NOT NULL,
            model_y TEXT NOT NULL,
            repeat_of TEXT REFERENCES items(item_id),
            payload TEXT NOT NULL)""",
        """CREATE TABLE raters (
            rater TEXT PRIMARY KEY,
            token_sha256 TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('rater', 'organiser')),
            created TEXT NOT NULL)""",
        """CREATE TABLE slots (
            study INTEGER NOT NULL REFERENCES studies(id),
            slot INTEGER NOT NULL,
            rater TEXT NOT NULL REFERENCES raters(rater),
            claimed TEXT NOT NULL,
            PRIMARY KEY (study, slot),
            UNIQUE (study, rater))""",
        """CREATE TABLE assignments (
            study INTEGER NOT NULL REFERENCES studies(id),
            slot INTEGER NOT NULL,
            position INTEGER NOT NULL,
            item_id TEXT NOT NULL REFERENCES items(item_id),
            left_model TEXT NOT NULL,
            right_model TEXT NOT NULL,
            PRIMARY KEY (study, slot, position),
            UNIQUE (study, slot, item_id))""",
        """CREATE TABLE votes (
            id INTEGER PRIMARY KEY,
            rater TEXT NOT NULL REFERENCES raters(rater),
            item_id TEXT NOT NULL REFERENCES items(item_id),
            aspect TEXT NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('A', 'B', 'tie_a', 'tie_b', 'both_bad')),
            left_model TEXT NOT NULL,
            right_model TEXT NOT NULL,
            seconds REAL NOT NULL CHECK (seconds >= 0),
            created TEXT NOT NULL,
            UNIQUE (rater, item_id, aspect))""",
        """CREATE TABLE attention (
            rater TEXT NOT NULL REFERENCES raters(rater),
            item_id TEXT NOT NULL REFERENCES items(item_id),
            kind TEXT NOT NULL CHECK (kind IN ('repeat', 'gold')),
            passed INTEGER NOT NULL,
            detail TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (rater, item_id))""",
        "CREATE INDEX votes_item ON votes(item_id)",
        "CREATE INDEX items_study ON items(study, kind)",
    ),
    # 2: the questions asked on each item (a JSON list of aspects); NULL, as in every study made before, is all
    ("ALTER TABLE items ADD COLUMN aspects TEXT",),
)
# An item's number of questions, in SQL (i: the items row)
N_ASKED_SQL = f"COALESCE(json_array_length(i.aspects), {len(ASPECTS)})"
SCHEMA_VERSION = len(MIGRATIONS)


class VoteError(Mg5Error):
    """A vote or submission that cannot be stored; nothing of it was stored."""


class AccessError(Mg5Error):
    """A request the app must refuse: a bad token, or a file outside the study's folders."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str, what: str = "rater id") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not valid: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def migrate(conn: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS, where: str = "") -> int:
    """Bring the database to ``len(migrations)`` in one transaction (re-checked under the write lock, so
    concurrent openers apply each step once). Returns the version. A failing step leaves the old version."""
    target = len(migrations)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > target:
        raise DataError(
            where,
            None,
            f"rating database schema version {version} is newer than this mg5bench's ({target})",
            "upgrade mg5bench to read it",
        )
    if version == target:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for v in range(version, target):
            for statement in migrations[v]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target


def shows_text(segments: Sequence[Mapping[str, Any]]) -> bool:
    """An output with a text segment (an empty one too: the rater sees "(empty text)")."""
    return any("text" in seg for seg in segments)


def shows_image(segments: Sequence[Mapping[str, Any]]) -> bool:
    return any("image" in seg or "blank" in seg for seg in segments)


def asked_aspects(
    x: Sequence[Mapping[str, Any]], y: Sequence[Mapping[str, Any]], target_text: bool
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The questions that apply to what the two outputs show, and why each other one is skipped:

    - language coherence: both outputs have text, or one has and the task's expected output (the target) has
      text too (a missing text is then a failure to judge);
    - image quality: both outputs have an image (a missing image is judged under multimodal coherence);
    - multimodal coherence: always (every task's context and target together hold text and images; with an
      output of one kind it asks how that output continues the context).
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


@dataclass(frozen=True)
class ItemView:
    """What the app shows for one assigned item (``left``/``right`` are the outputs as placed for this rater)."""

    study: int
    rater: str
    position: int
    done: int
    total: int
    item_id: str
    kind: str
    sample_id: str
    left_model: str
    right_model: str
    context: list[dict[str, Any]]
    left: list[dict[str, Any]]
    right: list[dict[str, Any]]
    aspects: tuple[str, ...] = ASPECTS  # the questions asked on this item
    skipped: dict[str, str] = field(default_factory=dict)  # the others, with why they are not asked


def _asked(stored: str | None) -> tuple[str, ...]:
    """An item's questions from its ``aspects`` column (NULL: every one)."""
    return ASPECTS if stored is None else tuple(a for a in ASPECTS if a in json.loads(stored))


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


SQLITE_MAGIC = b"SQLite format 3\x00"


class RatingStore:
    """The rating database at ``path`` (created, in WAL mode, unless ``create`` is False).

    An existing file is checked before anything is written to it: an empty (0-byte) or foreign file, a database
    without this schema (when ``create`` is False) or one SQLite's ``quick_check`` finds damaged is refused as a
    one-line DataError, never re-created empty. SQLite's own errors (a read-only folder, a lock held too long, a
    full disk) become one-line DataErrors too."""

    def __init__(self, path: str | Path, *, create: bool = True, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_s * 1000)
        fix = "pass the SQLite file 'mg5bench annotate' created (restore it from a backup if damaged), or a new path"
        if self.path.is_dir():
            raise DataError(str(self.path), None, "is a folder, not a rating database", "pass the database file")
        if not self.path.exists():
            if not create:
                raise DataError(
                    str(self.path), None, "rating database not found", "pass the --db that 'mg5bench annotate' created"
                )
            if not self.path.parent.is_dir():
                raise DataError(str(self.path), None, "its folder does not exist", "create the folder first")
        else:
            with self._sqlite_errors(), open(self.path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
            if not head:
                raise DataError(str(self.path), None, "the rating database is empty (0 bytes): damaged or cut short, "
                                "not a new database", fix)  # fmt: skip
            if head != SQLITE_MAGIC:
                raise DataError(str(self.path), None, "not a rating database (not an SQLite file)", fix)
        try:
            with self._sqlite_errors(), contextlib.closing(self._connect()) as conn:
                if self.path.stat().st_size and not create:
                    self._check_existing(conn, fix)
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                if (
                    conn.execute("PRAGMA user_version").fetchone()[0] == 0
                    and conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
                ):
                    raise DataError(str(self.path), None, "an SQLite database of another program (its tables are "
                                    "not the rating schema)", fix)  # fmt: skip
                migrate(conn, MIGRATIONS, str(self.path))
        except sqlite3.DatabaseError as e:
            raise DataError(str(self.path), None, f"not a rating database ({e})", fix) from None

    def _check_existing(self, conn: sqlite3.Connection, fix: str) -> None:
        """An existing database opened for reading: it must hold this schema and pass SQLite's quick_check."""
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            raise DataError(str(self.path), None, "not a rating database (no rating schema in it)", fix)
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
        if problems != ["ok"]:
            raise DataError(str(self.path), None, f"the rating database is damaged (SQLite quick_check: "
                            f"{'; '.join(problems)[:160]})", fix)  # fmt: skip

    @contextlib.contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """SQLite's operational errors (and the OS's, opening the file) as one-line DataErrors naming the database
        and the fix."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as e:
            text = str(e)
            if "locked" in text or "busy" in text:
                fix = "another process holds the database; retry when it is done"
            elif "full" in text:
                fix = "free space on that disk and retry"
            else:
                fix = ("SQLite writes DB-wal and DB-shm files beside the database: put it in a folder you can write "
                       "to (copy it there) and pass that path")  # fmt: skip
            raise DataError(str(self.path), None, f"SQLite cannot use the rating database: {text[:120]}", fix) from None

    # --- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A fresh connection per operation: safe across Streamlit's threads and across processes."""
        with self._sqlite_errors():
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = FULL")
            except BaseException:
                conn.close()
                raise
        return conn

    @contextlib.contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: BEGIN IMMEDIATE for writes (takes the write lock up front, so no deadlock on lock
        upgrade), a consistent snapshot for reads; rolled back whole on any error."""
        conn = self._connect()
        try:
            with self._sqlite_errors():
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def schema_version(self) -> int:
        with self._sqlite_errors(), contextlib.closing(self._connect()) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def journal_mode(self) -> str:
        with self._sqlite_errors(), contextlib.closing(self._connect()) as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    # --- studies ----------------------------------------------------------------------------

    def create_study(
        self, plan: StudyPlan, *, raters: int = 3, overlap: int = 2, seed: int = 0, check_every: int = 20
    ) -> int:
        """Store a study: its items and every slot's queue, in one transaction. Returns the study id."""
        if not plan.pairs:
            raise ConfigError("the study has no items: the two runs share no sample")
        if plan.model_x == plan.model_y:
            raise ConfigError(f"both runs are labelled {plan.model_x!r}; give them distinct labels")
        queues = plan_assignments(
            [p.sample_id for p in plan.pairs], [g.sample_id for g in plan.gold], raters, overlap, seed, check_every
        )
        config = {
            "roots": plan.roots,
            "runs": plan.runs,
            "labels": plan.labels,
            "aspects": list(ASPECTS),
            "raters": raters,
            "overlap": overlap,
            "seed": seed,
            "check_every": check_every,
        }
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO studies (created, task, split, model_x, model_y, config) VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), plan.task, plan.split, plan.model_x, plan.model_y, json.dumps(config)),
            )
            study = int(cur.lastrowid or 0)
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
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            gold_models = (GOLD_GT, GOLD_BLANK)
            assign = []
            for slot, queue in enumerate(queues):
                for pos, e in enumerate(queue):
                    x, y = gold_models if e.kind == "gold" else (plan.model_x, plan.model_y)
                    left, right = (y, x) if e.swap else (x, y)
                    assign.append((study, slot, pos, item_id_for(study, e.kind, e.sample_id), left, right))
            conn.executemany("INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?)", assign)
        return study

    def studies(self) -> list[dict[str, Any]]:
        with self._tx(write=False) as conn:
            rows = conn.execute("SELECT * FROM studies ORDER BY id").fetchall()
        return [{**dict(r), "config": json.loads(r["config"])} for r in rows]

    def study(self, study: int | None = None) -> dict[str, Any]:
        """One study (the latest when ``study`` is None); a one-line error when there is none."""
        all_ = self.studies()
        if not all_:
            raise ConfigError(
                f"{self.path}: holds no study yet; create one with 'mg5bench annotate --task ... --models A,B'"
            )
        if study is None:
            return all_[-1]
        for s in all_:
            if s["id"] == study:
                return s
        raise ConfigError(f"{self.path}: no study {study}; it holds studies {', '.join(str(s['id']) for s in all_)}")

    def find_study(self, runs: Mapping[str, str]) -> int | None:
        """The study over exactly these two run folders (either order), if one exists."""
        want = {str(runs["x"]), str(runs["y"])}
        for s in self.studies():
            if {s["config"]["runs"]["x"], s["config"]["runs"]["y"]} == want:
                return int(s["id"])
        return None

    # --- raters -----------------------------------------------------------------------------

    def invite(self, rater: str, role: str = "rater") -> str:
        """Create (or replace: the old token stops working) the access token of ``rater``; only its sha256 is
        stored, so the returned token is shown once."""
        check_name(rater)
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        token = "mg5-" + secrets.token_urlsafe(24)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO raters (rater, token_sha256, role, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(rater) DO UPDATE SET token_sha256 = excluded.token_sha256, role = excluded.role",
                (rater, hash_token(token), role, _now()),
            )
        return token

    def authenticate(self, rater: str, token: str) -> str | None:
        """The rater's role if ``token`` is theirs, else None (compared in constant time)."""
        if not isinstance(rater, str) or not isinstance(token, str) or not token:
            return None
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT token_sha256, role FROM raters WHERE rater = ?", (rater.strip(),)).fetchone()
        if row is None or not hmac.compare_digest(row["token_sha256"], hash_token(token.strip())):
            return None
        return str(row["role"])

    def raters(self) -> list[dict[str, Any]]:
        with self._tx(write=False) as conn:
            return [dict(r) for r in conn.execute("SELECT rater, role, created FROM raters ORDER BY rater")]

    def slot_of(self, study: int, rater: str, *, claim: bool = True) -> int | None:
        """The rater's slot in the study; at first use the lowest free slot is claimed (one transaction, so two
        raters never get the same slot). A full study is a one-line error."""
        with self._tx(write=claim) as conn:
            row = conn.execute("SELECT slot FROM slots WHERE study = ? AND rater = ?", (study, rater)).fetchone()
            if row is not None or not claim:
                return None if row is None else int(row["slot"])
            if conn.execute("SELECT 1 FROM raters WHERE rater = ?", (rater,)).fetchone() is None:
                raise AccessError(f"unknown rater {rater!r}: invite them with 'mg5bench annotate --invite {rater}'")
            cfg = json.loads(conn.execute("SELECT config FROM studies WHERE id = ?", (study,)).fetchone()["config"])
            taken = {int(r["slot"]) for r in conn.execute("SELECT slot FROM slots WHERE study = ?", (study,))}
            free = [s for s in range(int(cfg["raters"])) if s not in taken]
            if not free:
                raise AccessError(
                    f"study {study} has {cfg['raters']} rater slots and all are taken; start a study with more --raters"
                )
            conn.execute("INSERT INTO slots VALUES (?, ?, ?, ?)", (study, free[0], rater, _now()))
            return free[0]

    # --- rating -----------------------------------------------------------------------------

    def next_item(self, study: int, rater: str) -> ItemView | None:
        """The first item of the rater's queue that they have not submitted (resume point), or None when done."""
        slot = self.slot_of(study, rater)
        with self._tx(write=False) as conn:
            total = conn.execute("SELECT COUNT(*) FROM assignments WHERE study = ? AND slot = ?", (study, slot))
            total = int(total.fetchone()[0])
            rows = conn.execute(
                "SELECT a.position, a.item_id, a.left_model, a.right_model, "
                "(SELECT COUNT(*) FROM votes v WHERE v.rater = ? AND v.item_id = a.item_id) AS n, "
                f"{N_ASKED_SQL} AS asked "
                "FROM assignments a JOIN items i ON i.item_id = a.item_id WHERE a.study = ? AND a.slot = ? "
                "ORDER BY a.position",
                (rater, study, slot),
            ).fetchall()
            done = sum(int(r["n"]) >= int(r["asked"]) for r in rows)
            todo = next((r for r in rows if int(r["n"]) < int(r["asked"])), None)
            if todo is None:
                return None
            item = conn.execute("SELECT * FROM items WHERE item_id = ?", (todo["item_id"],)).fetchone()
            shown = item
            if item["kind"] == "repeat":
                shown = conn.execute("SELECT * FROM items WHERE item_id = ?", (item["repeat_of"],)).fetchone()
        payload = json.loads(shown["payload"])
        outputs = {item["model_x"]: payload["outputs"]["x"], item["model_y"]: payload["outputs"]["y"]}
        return ItemView(
            study,
            rater,
            int(todo["position"]),
            done,
            total,
            str(item["item_id"]),
            str(item["kind"]),
            str(item["sample_id"]),
            str(todo["left_model"]),
            str(todo["right_model"]),
            payload["context"],
            outputs[todo["left_model"]],
            outputs[todo["right_model"]],
            _asked(item["aspects"]),
            dict(payload.get("skipped") or {}),
        )

    def queue(self, study: int, rater: str) -> list[dict[str, Any]]:
        """The rater's whole queue in order: position, item_id, kind, left_model, right_model, aspects (the
        questions asked), done (submitted)."""
        slot = self.slot_of(study, rater)
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT a.position, a.item_id, i.kind, a.left_model, a.right_model, "
                "(SELECT COUNT(*) FROM votes v WHERE v.rater = ? AND v.item_id = a.item_id) AS n, i.aspects "
                "FROM assignments a JOIN items i ON i.item_id = a.item_id WHERE a.study = ? AND a.slot = ? "
                "ORDER BY a.position",
                (rater, study, slot),
            ).fetchall()
        out = [dict(r) for r in rows]
        for r in out:
            r["aspects"] = _asked(r["aspects"])
            r["done"] = int(r.pop("n")) >= len(r["aspects"])
        return out

    def record_vote(
        self, rater: str, item_id: str, aspect: str, label: str, left_model: str, right_model: str, seconds: float
    ) -> None:
        """Store one vote (label: "A" = the left output, "B", "tie_a", "tie_b", "both_bad") in its own
        transaction; an invalid or duplicate vote raises VoteError and stores nothing."""
        self.submit(rater, item_id, {aspect: label}, left_model, right_model, seconds, partial=True)

    def submit(
        self,
        rater: str,
        item_id: str,
        answers: Mapping[str, str],
        left_model: str,
        right_model: str,
        seconds: float,
        *,
        partial: bool = False,
    ) -> None:
        """Store one item's answers (every aspect, unless ``partial``) in one transaction, with the attention
        check's result when the item completes one. Validated first: nothing is stored from an invalid one."""
        where = f"vote by {rater!r} on item {item_id!r}"
        if not isinstance(answers, Mapping) or not answers:
            raise VoteError(f"{where}: no answers given")
        for aspect, label in answers.items():
            if aspect not in ASPECTS:
                raise VoteError(f"{where}: unknown aspect {aspect!r}; expected one of {', '.join(ASPECTS)}")
            if label not in LABELS:
                raise VoteError(f"{where}, aspect {aspect}: label {label!r} is not one of {', '.join(LABELS)}")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise VoteError(f"{where}: seconds must be a finite number >= 0, got {seconds!r}")
        if left_model == right_model:
            raise VoteError(f"{where}: left and right model are both {left_model!r}")
        with self._tx() as conn:
            item = conn.execute("SELECT study, kind, aspects FROM items WHERE item_id = ?", (item_id,)).fetchone()
            if item is None:
                raise VoteError(f"{where}: no such item in {self.path}")
            asked = _asked(item["aspects"])
            extra = [a for a in answers if a not in asked]
            if extra:
                raise VoteError(f"{where}: aspect(s) {', '.join(extra)} not asked on this item (asked: "
                                f"{', '.join(asked)}); answer only the questions shown")  # fmt: skip
            if not partial and set(answers) != set(asked):
                missing = [a for a in asked if a not in answers]
                raise VoteError(f"{where}: unanswered aspect(s) {', '.join(missing)}; answer every question")
            slot = conn.execute("SELECT slot FROM slots WHERE study = ? AND rater = ?", (item["study"], rater))
            slot = slot.fetchone()
            if slot is None:
                raise VoteError(
                    f"{where}: the rater has no slot in study {item['study']} (log in through the app, "
                    "or invite them with 'mg5bench annotate --invite')"
                )
            a = conn.execute(
                "SELECT left_model, right_model FROM assignments WHERE study = ? AND slot = ? AND item_id = ?",
                (item["study"], slot["slot"], item_id),
            ).fetchone()
            if a is None:
                raise VoteError(f"{where}: the item is not assigned to this rater")
            if (a["left_model"], a["right_model"]) != (left_model, right_model):
                raise VoteError(
                    f"{where}: sides ({left_model!r} left, {right_model!r} right) differ from the "
                    "assignment's; submit what was shown"
                )
            now = _now()
            try:
                conn.executemany(
                    "INSERT INTO votes (rater, item_id, aspect, label, left_model, right_model, seconds, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (rater, item_id, asp, lab, left_model, right_model, float(seconds), now)
                        for asp, lab in answers.items()
                    ],
                )
            except sqlite3.IntegrityError as e:
                if "UNIQUE" not in str(e):
                    raise VoteError(f"{where}: refused by the database ({e})") from None
                raise VoteError(f"{where}: already rated (a rater rates each item and aspect once)") from None
            self._evaluate_checks(conn, rater, item_id, str(item["kind"]))

    def _complete(self, conn: sqlite3.Connection, rater: str, item_id: str) -> dict[str, sqlite3.Row] | None:
        """The rater's votes on the item by aspect, once every question asked on it is answered."""
        rows = conn.execute("SELECT * FROM votes WHERE rater = ? AND item_id = ?", (rater, item_id)).fetchall()
        by_aspect = {r["aspect"]: r for r in rows}
        asked = conn.execute("SELECT aspects FROM items WHERE item_id = ?", (item_id,)).fetchone()
        return by_aspect if set(by_aspect) >= set(_asked(asked["aspects"])) else None

    def _evaluate_checks(self, conn: sqlite3.Connection, rater: str, item_id: str, kind: str) -> None:
        """Store the result of an attention check the moment the rater has answered all of it (inside the
        submitting transaction). Gold: passed when no answer favours the blank output and at least one favours
        the ground truth. Repeat: passed when the preferred model (outright or leaning; none for both_bad) is
        the same as at the first showing on a majority of the questions asked."""
        if kind == "gold":
            votes = self._complete(conn, rater, item_id)
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
            first, again = self._complete(conn, rater, orig), self._complete(conn, rater, check_id)
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
            (rater, check_id, kind, int(passed), json.dumps(detail), _now()),
        )

    # --- reading ----------------------------------------------------------------------------

    def votes(self) -> Any:
        """Every vote as a pandas DataFrame: study, rater, item_id, kind, sample_id, aspect, label, left_model,
        right_model, seconds, created (in the order stored)."""
        import pandas as pd

        cols = [
            "study",
            "rater",
            "item_id",
            "kind",
            "sample_id",
            "aspect",
            "label",
            "left_model",
            "right_model",
            "seconds",
            "created",
        ]
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT i.study, v.rater, v.item_id, i.kind, i.sample_id, v.aspect, v.label, v.left_model, "
                "v.right_model, v.seconds, v.created FROM votes v JOIN items i ON i.item_id = v.item_id ORDER BY v.id"
            ).fetchall()
        return pd.DataFrame([tuple(r) for r in rows], columns=cols)

    def attention(self) -> Any:
        """Every attention-check result as a DataFrame: study, rater, item_id, kind, passed, detail."""
        import pandas as pd

        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT i.study, a.rater, a.item_id, a.kind, a.passed, a.detail FROM attention a "
                "JOIN items i ON i.item_id = a.item_id ORDER BY a.rowid"
            ).fetchall()
        return pd.DataFrame(
            [(*tuple(r)[:4], bool(r["passed"]), r["detail"]) for r in rows],
            columns=["study", "rater", "item_id", "kind", "passed", "detail"],
        )

    def not_asked(self) -> Any:
        """Every question skipped on an item a rater submitted (it did not apply to what the outputs show), as a
        DataFrame: study, rater, item_id, kind, aspect."""
        import pandas as pd

        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT i.study, v.rater, v.item_id, i.kind, i.aspects FROM votes v JOIN items i ON i.item_id = "
                "v.item_id WHERE i.aspects IS NOT NULL GROUP BY v.rater, v.item_id ORDER BY MIN(v.id)"
            ).fetchall()
        out = [(*tuple(r)[:4], a) for r in rows for a in ASPECTS if a not in _asked(r["aspects"])]
        return pd.DataFrame(out, columns=["study", "rater", "item_id", "kind", "aspect"])

    def progress(self, study: int) -> list[dict[str, Any]]:
        """Per slot: the rater (None while unclaimed), items submitted and assigned, attention checks passed and
        failed, the median seconds per item."""
        with self._tx(write=False) as conn:
            cfg = json.loads(conn.execute("SELECT config FROM studies WHERE id = ?", (study,)).fetchone()["config"])
            raters = {int(r["slot"]): r["rater"] for r in conn.execute("SELECT * FROM slots WHERE study = ?", (study,))}
            out = []
            for slot in range(int(cfg["raters"])):
                rater = raters.get(slot)
                total = conn.execute("SELECT COUNT(*) FROM assignments WHERE study = ? AND slot = ?", (study, slot))
                row = {
                    "slot": slot,
                    "rater": rater,
                    "done": 0,
                    "total": int(total.fetchone()[0]),
                    "checks_passed": 0,
                    "checks_failed": 0,
                    "median_seconds": None,
                }
                if rater is not None:
                    secs = [
                        float(r[0])
                        for r in conn.execute(
                            "SELECT MAX(v.seconds) FROM votes v JOIN items i ON i.item_id = v.item_id "
                            f"WHERE v.rater = ? AND i.study = ? GROUP BY v.item_id HAVING COUNT(*) >= {N_ASKED_SQL}",
                            (rater, study),
                        )
                    ]
                    row["done"] = len(secs)
                    row["median_seconds"] = sorted(secs)[len(secs) // 2] if secs else None
                    for r in conn.execute(
                        "SELECT a.passed, COUNT(*) FROM attention a JOIN items i ON i.item_id = a.item_id "
                        "WHERE a.rater = ? AND i.study = ? GROUP BY a.passed",
                        (rater, study),
                    ):
                        row["checks_passed" if r[0] else "checks_failed"] = int(r[1])
                out.append(row)
        return out

    def export(self, path: str | Path) -> int:
        """Write every vote to ``path`` (.jsonl or .csv, chosen by the suffix), atomically. Returns the count."""
        import pandas as pd

        from mg5bench.data.io import atomic_write_text, check_output_file

        path = Path(path)
        if path.suffix not in (".jsonl", ".csv"):
            raise ConfigError(f"{path}: export to a .jsonl or .csv file")
        check_output_file(path)
        df = self.votes()
        if path.suffix == ".jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in df.to_dict(orient="records"))
        elif path.suffix == ".csv":
            from mg5bench.core.escaping import csv_cell

            for col in df.columns:  # no cell a spreadsheet reads as a formula
                if not pd.api.types.is_numeric_dtype(df[col]):
                    df[col] = df[col].map(csv_cell)
            text = df.to_csv(index=False)
        else:
            raise ConfigError(f"{path}: export to a .jsonl or .csv file")
        atomic_write_text(path, text)
        return len(df)

    # --- files ------------------------------------------------------------------------------

    def resolve_image(self, study: int | Mapping[str, Any], segment: Mapping[str, Any]) -> Path:
        """The file of an image segment, only if it lies inside the study's run folders (or the task's data
        folder, for the shared context and the ground truth). Anything else, including '..', absolute paths and
        symlinks that lead outside, is an AccessError."""
        roots = (self.study(study) if isinstance(study, int) else study)["config"]["roots"]
        return resolve_inside_roots(roots, segment)


def resolve_inside_roots(roots: Mapping[str, str], segment: Mapping[str, Any]) -> Path:
    """See ``RatingStore.resolve_image``."""
    rel, key = segment.get("image"), segment.get("root")
    if key not in roots:
        raise AccessError(f"image {rel!r}: unknown folder {key!r}; only the study's run and data folders are served")
    if not isinstance(rel, str) or not rel or "\0" in rel or Path(rel).is_absolute():
        raise AccessError(f"image {rel!r}: not a relative path inside the {key} folder; refused")
    root = Path(roots[key]).resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise AccessError(f"image {rel!r} resolves outside the {key} folder {root}; refused")
    if not path.is_file():
        raise AccessError(f"image {rel!r} not found in the {key} folder {root}")
    return path
