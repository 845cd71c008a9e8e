"""The rating app driven by Streamlit's AppTest (the real script, in-process, no browser): token gate, a rating
run end to end with the rows checked in SQLite, resume after a reload, the organiser page, and refused images."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import REPO
from human_fixtures import VIST_DATA, make_real_run, make_run, vist_fingerprint

from mg5bench.human.assignment import ASPECTS, LABELS, QUESTION_FITS_CONTEXT, QUESTIONS
from mg5bench.human.ratings import RatingStore
from mg5bench.human.runs import build_plan
from mg5bench.human.view import ENV_DB, ENV_STUDY, escape_markdown

APP = REPO / "human_eval" / "app.py"


@pytest.fixture()
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[RatingStore, int, dict[str, str]]:
    fp = vist_fingerprint()
    a = make_run(tmp_path / "runs", "alpha", (255, 0, 0), fingerprint=fp, word="red")
    b = make_run(tmp_path / "runs", "beta", (0, 0, 255), fingerprint=fp, word="blue")
    store = RatingStore(tmp_path / "ratings.sqlite")
    sid = store.create_study(build_plan(a, b), raters=2, overlap=2, check_every=20)
    tokens = {"alice": store.invite("alice"), "olga": store.invite("olga", "organiser")}
    monkeypatch.setenv(ENV_DB, str(store.path))
    monkeypatch.setenv(ENV_STUDY, str(sid))
    return store, sid, tokens


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=30)


def _login(at, rater: str, token: str):
    at.run()
    at.text_input(key="login_rater").input(rater)
    at.text_input(key="login_token").input(token)
    return at.button(key="login").click().run()


def _all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [t.value for t in at.title] + [p.proto.text for p in at.get("progress")]
    return "\n".join(parts)


def _chosen(at, item_id: str) -> list[str | None]:
    answers = at.session_state.get("answers", {})
    return [answers.get(f"{item_id}:{a}") for a in ASPECTS]


def _votes(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT rater, item_id, aspect, label, left_model, right_model, seconds FROM votes "
                            "ORDER BY id").fetchall()  # fmt: skip


def test_nothing_is_shown_without_a_valid_token(study) -> None:
    store, _, tokens = study
    at = _login(_app(), "alice", tokens["olga"])  # someone else's token
    assert not at.exception
    assert [e.value for e in at.error] == ["Unknown rater id or token. Ask the organiser for an invitation."]
    assert not at.get("image") and "Context" not in _all_text(at) and [b.key for b in at.button] == ["login"]
    at = _login(_app(), "mallory", "mg5-guess")
    assert not at.get("image") and at.error and [b.key for b in at.button] == ["login"]
    assert store.progress(1)[0]["rater"] is None  # no slot was claimed


def test_rating_run_end_to_end_and_resume(study) -> None:
    store, sid, tokens = study
    at = _login(_app(), "alice", tokens["alice"])
    assert not at.exception and not at.error
    queue = store.queue(sid, "alice")
    first = queue[0]
    text = _all_text(at)
    assert f"Item 1 of {len(queue)}" in text and f"0 of {len(queue)} items done" in text
    # the shared context as the model saw it (story so far + current caption), then both outputs; no model names
    k = int(first["item_id"].rsplit("_", 1)[1])
    captions = json.loads((VIST_DATA / "val_cleaned.json").read_text())["40470"]
    for step in captions[: k + 1]:
        assert escape_markdown(step["caption"]) in text
    sid_text = first["item_id"].split("/")[-1]
    left_word = "red" if first["left_model"] == "alpha" else "blue"
    right_word = "blue" if left_word == "red" else "red"
    md = [m.value for m in at.markdown]
    assert md.index(escape_markdown(f"{left_word} {sid_text}")) < md.index(escape_markdown(f"{right_word} {sid_text}"))
    assert "alpha" not in text and "beta" not in text
    assert len(at.get("image")) == k + 2  # k context images, one per output
    # answers: one button per (question, answer), the one chosen is highlighted
    at.button(key="b:language:A").click().run()
    at.button(key="b:image:tie_a").click().run()
    at.button(key="b:image:tie_b").click().run()  # changed mind: the last click counts
    assert _chosen(at, first["item_id"]) == ["A", "tie_b", None, None]
    assert at.button(key="b:image:tie_b").proto.type == "primary"
    assert at.button(key="b:image:tie_a").proto.type == "secondary"
    # submitting with a question open stores nothing
    at.button(key="submit").click().run()
    assert at.warning and _votes(store.path) == []
    at.button(key="b:multimodal:both_bad").click().run()
    assert ("consistency" in first["aspects"]) == (k > 0)  # asked once the story has an earlier image
    if k > 0:
        at.button(key="b:consistency:B").click().run()
    at.button(key="submit").click().run()
    assert not at.exception and not at.error
    rows = _votes(store.path)
    labels = {"language": "A", "image": "tie_b", "multimodal": "both_bad", "consistency": "B"}
    assert [r[:6] for r in rows] == [("alice", first["item_id"], a, labels[a], first["left_model"],
                                      first["right_model"]) for a in first["aspects"]]  # fmt: skip
    assert len({r[6] for r in rows}) == 1 and rows[0][6] > 0  # time on the item, the same for all its answers
    # the next item, with fresh questions
    text = _all_text(at)
    assert f"Item 2 of {len(queue)}" in text and f"1 of {len(queue)} items done" in text
    assert _chosen(at, queue[1]["item_id"]) == [None, None, None, None]
    assert not [b for b in at.button if b.key and b.key.startswith("b:") and b.proto.type == "primary"]
    # reload (a new browser session): the rater logs in again and resumes at item 2; nothing is duplicated
    at2 = _login(_app(), "alice", tokens["alice"])
    assert f"Item 2 of {len(queue)}" in _all_text(at2)
    second = {"language": "B", "image": "B", "multimodal": "both_bad", "consistency": "tie_a"}
    for aspect in queue[1]["aspects"]:
        at2.button(key=f"b:{aspect}:{second[aspect]}").click().run()
    at2.button(key="submit").click().run()
    rows = _votes(store.path)
    n1, n2 = len(first["aspects"]), len(queue[1]["aspects"])
    assert len(rows) == n1 + n2 and [r[1] for r in rows[n1:]] == [queue[1]["item_id"]] * n2
    assert [r[3] for r in rows[n1:]] == [second[a] for a in queue[1]["aspects"]]
    assert "Item 3 of" in _all_text(at2)
    # Backspace's button clears the answers of the open item
    at2.button(key="b:language:A").click().run()
    assert _chosen(at2, queue[2]["item_id"]) == ["A", None, None, None]
    at2.button(key="clear").click().run()
    assert _chosen(at2, queue[2]["item_id"]) == [None, None, None, None]


def test_only_the_questions_that_apply_are_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VIST outputs are images: no language question, the skipped one named, the keys of the others (visual
    consistency too: the context holds the story's earlier images); a submit stores the three answers and nothing
    for language coherence, which the report then calls not asked."""
    from mg5bench.human import analysis

    runs = tmp_path / "runs"
    a, b = make_real_run(runs, "minigpt5", (255, 0, 0)), make_real_run(runs, "sd2-ft", (0, 0, 255))
    store = RatingStore(tmp_path / "ratings.sqlite")
    sid = store.create_study(build_plan(a, b), raters=1, overlap=1, check_every=0)
    token = store.invite("alice")
    monkeypatch.setenv(ENV_DB, str(store.path))
    monkeypatch.setenv(ENV_STUDY, str(sid))
    at = _login(_app(), "alice", token)
    assert not at.exception and not at.error
    first = store.queue(sid, "alice")[0]
    assert not first["item_id"].endswith("_0")  # a later step of the story: its context holds images
    answer_keys = {b.key for b in at.button if b.key and b.key.startswith("b:")}
    assert answer_keys == {f"b:{a}:{label}" for a in ("image", "multimodal", "consistency") for label in LABELS}
    text = _all_text(at)
    assert "Not asked for this item: language coherence (neither output has text)." in text
    assert ("Keys: Shift+1-5 image quality, Alt+1-5 multimodal coherence, Alt+Shift+1-5 visual consistency" in text
            and "Language coherence:" not in text)  # fmt: skip
    assert escape_markdown(QUESTION_FITS_CONTEXT) in text  # the multimodal question for outputs of one kind
    assert escape_markdown(QUESTIONS["consistency"]) in text
    at.button(key="b:image:tie_b").click().run()
    at.button(key="b:multimodal:A").click().run()
    at.button(key="submit").click().run()
    assert at.warning and "visual consistency" in at.warning[0].value.lower() and not _votes(store.path)
    at.button(key="b:consistency:both_bad").click().run()
    at.button(key="submit").click().run()
    assert not at.exception and not at.warning and "Item 2 of" in _all_text(at)
    assert [r[1:4] for r in _votes(store.path)] == [(first["item_id"], "image", "tie_b"),
                                                    (first["item_id"], "multimodal", "A"),
                                                    (first["item_id"], "consistency", "both_bad")]  # fmt: skip
    text = analysis.format_report(analysis.report(store, resamples=0))
    assert "language coherence: not asked (1 rating:" in text and "image quality: 1 votes on 1 items" in text
    assert "visual consistency: 1 votes on 1 items" in text


def test_organiser_page_shows_progress_and_agreement(study) -> None:
    store, sid, tokens = study
    for rater in ("alice", "olga"):
        store.slot_of(sid, rater)
        for q in store.queue(sid, rater)[:3]:
            store.submit(rater, q["item_id"], dict.fromkeys(q["aspects"], "A"), q["left_model"], q["right_model"], 2.0)
    at = _login(_app(), "alice", tokens["alice"])
    assert not at.sidebar.radio  # raters get no page switch
    at = _login(_app(), "olga", tokens["olga"])
    at.sidebar.radio(key="page").set_value("Organiser").run()
    assert not at.exception
    (frame,) = at.dataframe
    progress = frame.value
    assert list(progress["rater"]) == ["alice", "olga"] and list(progress["done"]) == [3, 3]
    assert "Agreement so far" in _all_text(at)
    assert at.table and at.code and "ties counted against" in at.code[0].value


def test_images_outside_the_study_folders_are_refused(study, tmp_path: Path) -> None:
    store, sid, tokens = study
    (tmp_path / "secret.png").write_bytes((VIST_DATA / "val_images" / "000000000.jpg").read_bytes())
    store.slot_of(sid, "alice")
    item = store.queue(sid, "alice")[0]["item_id"]
    with sqlite3.connect(store.path) as conn:  # a tampered database: the app must still refuse to read outside
        payload = json.loads(conn.execute("SELECT payload FROM items WHERE item_id = ?", (item,)).fetchone()[0])
        payload["outputs"]["x"][1] = {"image": "../../../../secret.png", "root": "x"}
        payload["outputs"]["y"][1] = {"image": str(tmp_path / "secret.png"), "root": "y"}
        conn.execute("UPDATE items SET payload = ? WHERE item_id = ?", (json.dumps(payload), item))
    at = _login(_app(), "alice", tokens["alice"])
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and all(e.startswith("image refused:") for e in errors)
    k = int(item.rsplit("_", 1)[1])
    assert len(at.get("image")) == k  # only the context images were shown


def test_app_without_a_database_says_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DB, raising=False)
    at = _app().run()
    assert [e.value for e in at.error] == ["No rating database configured: start the app with 'mg5bench annotate'."]


def test_a_damaged_or_misplaced_database_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app started on a database cut to 0 bytes, or on a folder: one error message saying what is wrong, no
    exception panel, and nothing written."""
    (tmp_path / "empty.sqlite").write_bytes(b"")
    (tmp_path / "folder.sqlite").mkdir()
    for name, words in (("empty.sqlite", "empty (0 bytes)"), ("folder.sqlite", "is a folder")):
        monkeypatch.setenv(ENV_DB, str(tmp_path / name))
        at = _app()
        at.run()
        assert not at.exception and len(at.error) == 1 and words in at.error[0].value, [e.value for e in at.error]
    assert (tmp_path / "empty.sqlite").stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite", "folder.sqlite"]
