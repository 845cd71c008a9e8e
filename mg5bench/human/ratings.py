"""The rating store: one SQLite file (WAL mode) holding the studies, their items, the raters (tokens stored as
sha256 only), the assignment of items to raters, every vote and the attention-check results.

Why SQLite in WAL mode: several raters submit at once through one Streamlit server (threads) or several
processes, and readers (the organiser page, ``mg5bench human report``) must never block writers. Every write is
one ``BEGIN IMMEDIATE`` transaction on its own connection with ``synchronous=FULL``: a submitted item is stored
whole (all its aspects and its attention-check result) or not at all, and survives a crash once ``submit``
returns. Votes are unique per (rater, item, aspect), so a retried or concurrent duplicate is refused, never
stored twice.

The schema and its migrations: ``schema``; what a study asks and who rates what: ``assignment``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError, DataError, Mg5Error
from mg5bench.human.assignment import (
    ASPECTS,
    LABELS,
    ROLES,
    StudyPlan,
    assignment_rows,
    evaluate_checks,
    item_rows,
    plan_assignments,
    stored_aspects,
    utc_now,
)
from mg5bench.human.schema import MIGRATIONS, N_ASKED_SQL, SQLITE_MAGIC, migrate

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class VoteError(Mg5Error):
    """A vote or submission that cannot be stored; nothing of it was stored."""


class AccessError(Mg5Error):
    """A request the app must refuse: a bad token, or a file outside the study's folders."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str, what: str = "rater id") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not valid: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


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
                (utc_now(), plan.task, plan.split, plan.model_x, plan.model_y, json.dumps(config)),
            )
            study = int(cur.lastrowid or 0)
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", item_rows(study, plan, queues))
            conn.executemany("INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?)", assignment_rows(study, plan, queues))
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
                (rater, hash_token(token), role, utc_now()),
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
            conn.execute("INSERT INTO slots VALUES (?, ?, ?, ?)", (study, free[0], rater, utc_now()))
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
            stored_aspects(item["aspects"]),
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
            r["aspects"] = stored_aspects(r["aspects"])
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
            asked = stored_aspects(item["aspects"])
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
            now = utc_now()
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
            evaluate_checks(conn, rater, item_id, str(item["kind"]))

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
        out = [(*tuple(r)[:4], a) for r in rows for a in ASPECTS if a not in stored_aspects(r["aspects"])]
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

        from mg5bench.core.files import atomic_write_text, check_output_file

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
