"""The rating store: schema and migrations, tokens, assignment, vote validation, transactions, attention checks,
the image-folder guard, export, and 8 concurrent writer processes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from human_fixtures import synthetic_plan

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.human.assignment import (
    ASPECTS,
    GOLD_BLANK,
    GOLD_GT,
    LEGACY_ASPECTS,
    QUESTIONS,
    asked_aspects,
    plan_assignments,
    question_for,
)
from mg5bench.human.ratings import AccessError, RatingStore, VoteError, hash_token, resolve_inside_roots
from mg5bench.human.schema import MIGRATIONS, SCHEMA_VERSION, migrate


def _study(tmp_path: Path, n: int = 6, raters: int = 2, overlap: int = 2, check_every: int = 0, gold: int = 0):
    store = RatingStore(tmp_path / "r.sqlite")
    sid = store.create_study(synthetic_plan(n, tmp_path, gold=gold), raters=raters, overlap=overlap,
                             check_every=check_every)  # fmt: skip
    return store, sid


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_new_database_is_wal_and_current_schema_and_future_schema_is_refused(tmp_path: Path) -> None:
    store = RatingStore(tmp_path / "r.sqlite")
    assert store.journal_mode() == "wal"
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    tables = {r[0] for r in _rows(store.path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"studies", "items", "raters", "slots", "assignments", "votes", "attention"} <= tables
    with sqlite3.connect(store.path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DataError, match="newer than this mg5bench") as e:
        RatingStore(store.path)
    assert "\n" not in str(e.value)
    (tmp_path / "junk.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match="not a rating database"):
        RatingStore(tmp_path / "junk.sqlite")
    with pytest.raises(DataError, match="not found"):
        RatingStore(tmp_path / "absent.sqlite", create=False)


def test_migration_path_keeps_data_and_a_failing_step_changes_nothing(tmp_path: Path) -> None:
    store, _ = _study(tmp_path)
    tok = store.invite("alice")
    conn = sqlite3.connect(store.path, isolation_level=None)
    extra = (*MIGRATIONS, ("ALTER TABLE raters ADD COLUMN email TEXT", "CREATE INDEX raters_email ON raters(email)"))
    assert migrate(conn, extra) == SCHEMA_VERSION + 1
    assert migrate(conn, extra) == SCHEMA_VERSION + 1  # idempotent
    assert conn.execute("SELECT email FROM raters WHERE rater = 'alice'").fetchone() == (None,)
    assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 6
    broken = (*extra, ("CREATE TABLE t2 (a INT)", "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't2'").fetchone() is None  # rolled back whole
    conn.close()
    assert store.authenticate("alice", tok) == "rater"


def test_tokens_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    store = RatingStore(tmp_path / "r.sqlite")
    tok = store.invite("alice")
    org = store.invite("olga", "organiser")
    stored = _rows(store.path, "SELECT rater, token_sha256 FROM raters ORDER BY rater")
    assert stored == [("alice", hash_token(tok)), ("olga", hash_token(org))]
    assert tok.encode() not in store.path.read_bytes() and tok not in json.dumps(stored)
    assert store.authenticate("alice", tok) == "rater"
    assert store.authenticate("olga", org) == "organiser"
    assert store.authenticate("alice", org) is None  # someone else's token
    assert store.authenticate("alice", "") is None
    assert store.authenticate("mallory", tok) is None
    renewed = store.invite("alice")
    assert store.authenticate("alice", tok) is None and store.authenticate("alice", renewed) == "rater"
    for bad in ("", "../x", "a b", "x" * 65, "-dash"):
        with pytest.raises(ConfigError, match="not valid"):
            store.invite(bad)


@pytest.mark.parametrize(("n", "raters", "overlap"), [(30, 3, 2), (31, 4, 3), (10, 1, 1), (25, 5, 5)])
def test_assignment_gives_each_item_to_overlap_raters_evenly(n: int, raters: int, overlap: int) -> None:
    ids = [f"s{i}" for i in range(n)]
    queues = plan_assignments(ids, ids[:5], raters, overlap, seed=3, check_every=10)
    per_item = Counter(e.sample_id for q in queues for e in q if e.kind == "pair")
    assert per_item == dict.fromkeys(ids, overlap)
    sizes = [sum(e.kind == "pair" for e in q) for q in queues]
    assert max(sizes) - min(sizes) <= 1
    for q in queues:
        pairs = {e.sample_id: i for i, e in enumerate(q) if e.kind == "pair"}
        k = max(1, len(pairs) // 10)
        repeats = [(i, e) for i, e in enumerate(q) if e.kind == "repeat"]
        assert len(repeats) == k and sum(e.kind == "gold" for e in q) == k
        for i, e in repeats:  # shown again later, at least one other item between, sides swapped
            first = pairs[e.sample_id]
            assert i >= first + 2 and e.swap != q[first].swap
        assert q[0].kind == "pair"
    if raters > 1:  # left/right is drawn, not constant
        assert len({e.swap for q in queues for e in q}) == 2
    assert plan_assignments(ids, ids[:5], raters, overlap, seed=3, check_every=10) == queues
    assert plan_assignments(ids, ids[:5], raters, overlap, seed=4, check_every=10) != queues
    with pytest.raises(ConfigError, match="overlap"):
        plan_assignments(ids, [], 2, 3, seed=0, check_every=0)


def test_slots_claimed_once_and_full_study_refused(tmp_path: Path) -> None:
    store, sid = _study(tmp_path, raters=2)
    for r in ("alice", "bob", "carol"):
        store.invite(r)
    assert store.slot_of(sid, "alice") == 0
    assert store.slot_of(sid, "bob") == 1
    assert store.slot_of(sid, "alice") == 0
    with pytest.raises(AccessError, match="all are taken"):
        store.slot_of(sid, "carol")
    with pytest.raises(AccessError, match="unknown rater"):
        store.slot_of(sid, "nobody")


def test_submit_resume_and_invalid_votes_store_nothing(tmp_path: Path) -> None:
    store, sid = _study(tmp_path, n=4, raters=1, overlap=1)
    store.invite("alice")
    first = store.next_item(sid, "alice")
    assert first is not None and first.position == 0 and first.done == 0 and first.total == 4
    ok = {"language": "A", "image": "tie_b", "multimodal": "both_bad", "consistency": "B"}
    lm, rm = first.left_model, first.right_model
    bad_cases = [
        ("alice", first.item_id, {**ok, "image": "C"}, lm, rm, 1.0, "not one of"),
        ("alice", first.item_id, {**ok, "colour": "A"}, lm, rm, 1.0, "unknown aspect"),
        ("alice", first.item_id, {"language": "A"}, lm, rm, 1.0, "unanswered aspect"),
        ("alice", first.item_id, ok, rm, lm, 1.0, "differ from the assignment"),
        ("alice", first.item_id, ok, lm, lm, 1.0, "both"),
        ("alice", first.item_id, ok, lm, rm, -1.0, "seconds"),
        ("alice", first.item_id, ok, lm, rm, float("nan"), "seconds"),
        ("alice", "1/no-such-item", ok, lm, rm, 1.0, "no such item"),
        ("bob", first.item_id, ok, lm, rm, 1.0, "no slot"),
        ("alice", first.item_id, {}, lm, rm, 1.0, "no answers"),
    ]
    for rater, item, answers, left, right, secs, msg in bad_cases:
        with pytest.raises(VoteError, match=msg) as e:
            store.submit(rater, item, answers, left, right, secs)
        assert "\n" not in str(e.value)
        assert _rows(store.path, "SELECT COUNT(*) FROM votes") == [(0,)], (msg, "stored something")
    with pytest.raises(VoteError, match="not one of"):
        store.record_vote("alice", first.item_id, "language", "a", lm, rm, 1.0)
    store.submit("alice", first.item_id, ok, lm, rm, 2.5)
    rows = _rows(store.path, "SELECT rater, item_id, aspect, label, left_model, right_model, seconds FROM votes")
    assert sorted(rows) == sorted(("alice", first.item_id, a, ok[a], lm, rm, 2.5) for a in ASPECTS)
    with pytest.raises(VoteError, match="already rated"):
        store.submit("alice", first.item_id, ok, lm, rm, 1.0)
    assert _rows(store.path, "SELECT COUNT(*) FROM votes") == [(4,)]
    # resume: a new store object (another process, a reload) continues at the next position
    again = RatingStore(store.path).next_item(sid, "alice")
    assert again is not None and again.position == 1 and again.done == 1
    # a partial item (single votes) is resumed at the same item until every aspect is in
    store.record_vote("alice", again.item_id, "language", "B", again.left_model, again.right_model, 1.0)
    assert store.next_item(sid, "alice").item_id == again.item_id  # type: ignore[union-attr]


def test_attention_checks_are_evaluated_and_stored(tmp_path: Path) -> None:
    store, sid = _study(tmp_path, n=6, raters=1, overlap=1, check_every=20, gold=2)
    store.invite("alice")
    queue = store.queue(sid, "alice")
    kinds = Counter(q["kind"] for q in queue)
    assert kinds == {"pair": 6, "repeat": 1, "gold": 1}
    repeat = next(q for q in queue if q["kind"] == "repeat")
    orig_id = repeat["item_id"].replace("/repeat/", "/")
    orig = next(q for q in queue if q["item_id"] == orig_id)
    assert (repeat["left_model"], repeat["right_model"]) == (orig["right_model"], orig["left_model"])
    while (it := store.next_item(sid, "alice")) is not None:
        if it.kind == "gold":  # prefer the blank output on image quality: a failed gold check
            blank = "A" if it.left_model == GOLD_BLANK else "B"
            gt = "B" if blank == "A" else "A"
            answers = {"language": gt, "image": blank, "multimodal": gt, "consistency": gt}
        elif it.kind == "repeat":  # same model preferred on three aspects of four: consistent
            x_side = "A" if it.left_model == "X" else "B"
            y_side = "B" if x_side == "A" else "A"
            answers = {"language": x_side, "image": f"tie_{x_side.lower()}", "multimodal": y_side,
                       "consistency": x_side}  # fmt: skip
        else:  # always prefer X
            x_side = "A" if it.left_model == "X" else "B"
            answers = dict.fromkeys(ASPECTS, x_side)
        store.submit("alice", it.item_id, answers, it.left_model, it.right_model, 1.0)
    att = store.attention()
    assert sorted(att["kind"]) == ["gold", "repeat"]
    gold = att[att["kind"] == "gold"].iloc[0]
    rep = att[att["kind"] == "repeat"].iloc[0]
    assert not gold["passed"] and json.loads(gold["detail"])["favoured_blank"] == ["image"]
    agree = {"language": True, "image": True, "multimodal": False, "consistency": True}
    assert rep["passed"] and json.loads(rep["detail"])["agree"] == agree
    assert store.progress(sid)[0] | {"median_seconds": None} == {
        "slot": 0, "rater": "alice", "done": 8, "total": 8, "checks_passed": 1, "checks_failed": 1,
        "median_seconds": None,
    }  # fmt: skip
    assert GOLD_GT in set(store.votes()["left_model"]) | set(store.votes()["right_model"])


def test_questions_apply_to_what_both_outputs_show() -> None:
    text, image, blank, empty = {"text": "a cat"}, {"image": "x.png", "root": "x"}, {"blank": 48}, {"text": ""}
    story = [text, image, text]  # a context with an earlier image
    cases = [  # (x, y, target has text, context) -> asked
        ([image], [image], False, story, ("image", "multimodal", "consistency")),  # VIST: images only
        ([image], [image], False, [text], ("image", "multimodal")),  # a story's first step: no earlier image
        ([text, image], [text, image], False, story, ASPECTS),
        ([text, image], [text, image], False, [], ("language", "image", "multimodal")),
        ([text, image], [image], False, story, ("image", "multimodal", "consistency")),  # the task expects no text
        ([text, image], [image], True, story, ASPECTS),  # MMDialog: a missing text is a failure to judge
        ([empty, blank], [text, image], True, story, ASPECTS),  # gold on MMDialog: empty text is text shown
        ([text], [image], True, story, ("language", "multimodal")),  # one image: neither quality nor consistency
        ([], [], True, story, ("multimodal",)),
    ]
    for x, y, target_text, context, asked in cases:
        got, skipped = asked_aspects(x, y, target_text, context)
        assert got == asked and set(skipped) == set(ASPECTS) - set(asked), (x, y, target_text, context)
    assert asked_aspects([image], [image], False, story)[1] == {"language": "neither output has text"}
    assert (
        asked_aspects([image], [image], False)[1]["consistency"] == "the context holds no image to stay consistent with"
    )
    assert question_for("multimodal", [image], [image]) != QUESTIONS["multimodal"]
    assert question_for("multimodal", [text, image], [text, image]) == QUESTIONS["multimodal"]


def test_questions_not_asked_are_stored_as_not_asked(tmp_path: Path) -> None:
    store = RatingStore(tmp_path / "r.sqlite")
    sid = store.create_study(synthetic_plan(6, tmp_path, gold=1, aspects=("image", "multimodal")), raters=1,
                             overlap=1, check_every=20)  # fmt: skip
    store.invite("alice")
    assert {a for (a,) in _rows(store.path, "SELECT DISTINCT aspects FROM items")} == {'["image", "multimodal"]'}
    it = store.next_item(sid, "alice")
    assert it.aspects == ("image", "multimodal")
    assert it.skipped == {"language": "not in this test's design", "consistency": "not in this test's design"}
    for answers, needle in (
        ({"language": "A", "image": "A", "multimodal": "A"}, "language not asked on this item"),
        ({"image": "A"}, r"unanswered aspect\(s\) multimodal"),
    ):
        with pytest.raises(VoteError, match=needle):
            store.submit("alice", it.item_id, answers, it.left_model, it.right_model, 1.0)
    assert _rows(store.path, "SELECT COUNT(*) FROM votes") == [(0,)]
    while (it := store.next_item(sid, "alice")) is not None:
        side = ("A" if it.left_model in ("X", GOLD_GT) else "B") if it.kind != "repeat" else "both_bad"
        store.submit("alice", it.item_id, dict.fromkeys(it.aspects, side), it.left_model, it.right_model, 1.0)
    queue = store.queue(sid, "alice")
    assert all(q["done"] for q in queue) and store.progress(sid)[0]["done"] == len(queue) == 8
    assert len(store.votes()) == 2 * 8  # two answers per item, none for the questions not asked
    skipped = store.not_asked()
    assert list(skipped["aspect"]) == ["language", "consistency"] * 8
    assert sorted(skipped["item_id"]) == sorted(2 * [q["item_id"] for q in queue])
    att = {r.kind: r for r in store.attention().itertuples()}
    assert att["gold"].passed  # the truth preferred on both questions asked
    assert not att["repeat"].passed and set(json.loads(att["repeat"].detail)["agree"]) == {"image", "multimodal"}


def test_a_database_from_before_asks_every_question(tmp_path: Path) -> None:
    """A version-1 database (no record of the questions asked) is migrated on open, keeps its rows, and its
    items ask the three questions of that version, as they did."""
    store = RatingStore(tmp_path / "r.sqlite")
    sid = store.create_study(synthetic_plan(3, tmp_path, aspects=LEGACY_ASPECTS), raters=1, overlap=1,
                             check_every=0)  # fmt: skip
    tok = store.invite("alice")
    first = store.next_item(sid, "alice")
    store.submit("alice", first.item_id, dict.fromkeys(LEGACY_ASPECTS, "A"), first.left_model, first.right_model, 1)
    with sqlite3.connect(store.path) as conn:  # the schema as version 1 left it
        conn.execute("ALTER TABLE items DROP COLUMN aspects")
        conn.execute("PRAGMA user_version = 1")
    old = RatingStore(store.path, create=False)
    assert old.schema_version() == SCHEMA_VERSION == 2 and old.authenticate("alice", tok) == "rater"
    assert _rows(store.path, "SELECT COUNT(*) FROM items WHERE aspects IS NULL") == [(3,)]
    it = old.next_item(sid, "alice")
    assert it.position == 1 and it.aspects == LEGACY_ASPECTS == ("language", "image", "multimodal")
    with pytest.raises(VoteError, match="unanswered aspect"):
        old.submit("alice", it.item_id, {"image": "B"}, it.left_model, it.right_model, 1.0)
    with pytest.raises(VoteError, match="consistency not asked on this item"):
        old.submit("alice", it.item_id, dict.fromkeys(ASPECTS, "B"), it.left_model, it.right_model, 1.0)
    old.submit("alice", it.item_id, dict.fromkeys(LEGACY_ASPECTS, "B"), it.left_model, it.right_model, 1.0)
    assert len(old.votes()) == 6 and old.not_asked().empty and old.next_item(sid, "alice").position == 2


def test_export_jsonl_and_csv_round_trip(tmp_path: Path) -> None:
    import pandas as pd

    store, sid = _study(tmp_path, n=3, raters=1, overlap=1)
    store.invite("alice")
    while (it := store.next_item(sid, "alice")) is not None:
        store.submit("alice", it.item_id, dict.fromkeys(ASPECTS, "tie_a"), it.left_model, it.right_model, 0.5)
    df = store.votes()
    assert len(df) == 3 * len(ASPECTS)
    assert store.export(tmp_path / "v.jsonl") == 3 * len(ASPECTS)
    lines = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert lines == df.to_dict(orient="records")
    assert store.export(tmp_path / "v.csv") == 3 * len(ASPECTS)
    back = pd.read_csv(tmp_path / "v.csv")
    assert list(back.columns) == list(df.columns) and list(back["label"]) == ["tie_a"] * 3 * len(ASPECTS)
    with pytest.raises(ConfigError, match=r"\.jsonl or \.csv"):
        store.export(tmp_path / "v.xlsx")


def test_image_guard_refuses_traversal(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "a"
    (run / "images").mkdir(parents=True)
    (run / "images" / "ok.png").write_bytes(b"png")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    (run / "images" / "link.png").symlink_to(secret)
    (run / "images" / "dirlink").symlink_to(tmp_path)
    roots = {"x": str(run), "y": str(run), "data": str(run)}
    assert resolve_inside_roots(roots, {"image": "images/ok.png", "root": "x"}) == (run / "images/ok.png").resolve()
    attempts = [
        {"image": "../secret.png", "root": "x"},
        {"image": "images/../../../secret.png", "root": "x"},
        {"image": str(secret), "root": "x"},
        {"image": "/etc/passwd", "root": "data"},
        {"image": "images/link.png", "root": "x"},
        {"image": "images/dirlink/secret.png", "root": "x"},
        {"image": "images/ok.png", "root": "home"},
        {"image": "images/ok.png"},
        {"image": "images/ok.png\0.txt", "root": "x"},
        {"image": "", "root": "x"},
        {"image": "images/missing.png", "root": "x"},
    ]
    for seg in attempts:
        with pytest.raises(AccessError):
            resolve_inside_roots(roots, seg)
    store = RatingStore(tmp_path / "r.sqlite")
    plan = synthetic_plan(2, run)
    sid = store.create_study(plan, raters=1, overlap=1, check_every=0)
    with pytest.raises(AccessError, match="outside"):
        store.resolve_image(sid, {"image": "../../secret.png", "root": "data"})


WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from mg5bench.human.assignment import ASPECTS, LABELS
    from mg5bench.human.ratings import RatingStore, VoteError
    db, rater, go = sys.argv[1], sys.argv[3], Path(sys.argv[6])
    study, w, n = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
    store = RatingStore(db)
    queue = store.queue(study, rater)
    shared = store.queue(study, "shared")
    while not go.exists():
        time.sleep(0.005)
    t0 = time.perf_counter()
    stored = []
    for q in queue:
        for k, aspect in enumerate(ASPECTS):
            if len(stored) == n:
                break
            label = LABELS[(q["position"] + k + w) % len(LABELS)]
            store.record_vote(rater, q["item_id"], aspect, label, q["left_model"], q["right_model"], 0.1 * w)
            stored.append([q["item_id"], aspect, label])
    won = 0
    for q in shared[:10]:  # every worker races for the same shared votes: one may win each
        for aspect in ASPECTS:
            try:
                store.record_vote("shared", q["item_id"], aspect, LABELS[w % 5], q["left_model"], q["right_model"], w)
                won += 1
            except VoteError:
                pass
    print(json.dumps({"stored": stored, "won": won, "seconds": time.perf_counter() - t0}))
    """
)


@pytest.fixture()
def fast_dir(tmp_path: Path):
    """A folder on tmpfs where there is one: every commit fsyncs (synchronous=FULL), about 7 ms each on this
    machine's disk, so 1,630 serialised commits would take the test 2-12 s of waiting on the disk. Locking and
    WAL behave the same on tmpfs, and locking is what the concurrency test is about."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="mg5bench-human-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_connections_are_durable_and_wait_for_the_lock(tmp_path: Path) -> None:
    store = RatingStore(tmp_path / "r.sqlite")
    conn = store._connect()
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: a commit is on disk when it returns
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        conn.close()


def test_eight_concurrent_writers_lose_and_duplicate_nothing(fast_dir: Path) -> None:
    tmp_path = fast_dir
    workers, per_worker = 8, 200
    store = RatingStore(tmp_path / "r.sqlite")
    sid = store.create_study(synthetic_plan(70, tmp_path), raters=workers + 1, overlap=workers + 1, check_every=0)
    raters = [f"w{i}" for i in range(workers)]
    for r in [*raters, "shared"]:
        store.invite(r)
        store.slot_of(sid, r)
    go = tmp_path / "go"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(store.path), str(sid), r, str(i), str(per_worker),
                               str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i, r in enumerate(raters)]  # fmt: skip
    time.sleep(0.5)  # let every worker open the database and wait at the start line
    t0 = time.perf_counter()
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    wall = time.perf_counter() - t0
    df = store.votes()
    mine = df[df["rater"] != "shared"]
    assert len(mine) == workers * per_worker
    expected = {(r, *v) for r, res in zip(raters, results, strict=True) for v in res["stored"]}
    assert len(expected) == workers * per_worker
    got = {tuple(x) for x in mine[["rater", "item_id", "aspect", "label"]].itertuples(index=False)}
    assert got == expected  # nothing lost, nothing altered
    assert not mine.duplicated(["rater", "item_id", "aspect"]).any()
    shared = df[df["rater"] == "shared"]
    contested = 10 * len(ASPECTS)  # the shared rater's first 10 items, every question
    assert len(shared) == contested and sum(r["won"] for r in results) == contested  # each stored exactly once
    assert _rows(store.path, "PRAGMA integrity_check") == [("ok",)]
    print(f"\n{workers} writers x {per_worker} votes (+ {workers} x {contested} contested): {len(df)} rows in "
          f"{wall:.2f} s wall, {len(df) / wall:.0f} votes/s; slowest worker "
          f"{max(r['seconds'] for r in results):.2f} s")  # fmt: skip
