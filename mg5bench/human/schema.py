"""The rating database's schema: SQLite tables, versioned with ``PRAGMA user_version``. ``MIGRATIONS[v]`` takes a
database from version v to v+1, applied in one transaction on open (``migrate``); a database newer than this code is
refused (upgrade mg5bench). Version 2 added the questions asked on each item; NULL there, as in every study made at
version 1, means all of them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from mg5bench.core.errors import DataError
from mg5bench.human.assignment import LEGACY_ASPECTS

SQLITE_MAGIC = b"SQLite format 3\x00"

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
    # 2: the questions asked on each item (a JSON list of aspects); NULL, as in every study made before, is the
    # three questions of that time (assignment.LEGACY_ASPECTS)
    ("ALTER TABLE items ADD COLUMN aspects TEXT",),
)
# An item's number of questions, in SQL (i: the items row)
N_ASKED_SQL = f"COALESCE(json_array_length(i.aspects), {len(LEGACY_ASPECTS)})"
SCHEMA_VERSION = len(MIGRATIONS)


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
