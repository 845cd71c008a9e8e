"""The rating app: a thin Streamlit view over ``mg5bench.human``. Start it with ``mg5bench annotate``.

Nothing is shown without a valid rater id and token (``mg5bench annotate --invite NAME``). A rater sees, per
item, the shared context and the two outputs side by side (left/right drawn per item and rater, model names
hidden), answers the questions that apply to what the outputs show (the others are named as not asked), and
submits once: the store writes the item in one transaction. Reopening the page resumes at the first item not
submitted. Organisers (``--invite NAME --organiser``) also get a page with progress per rater and agreement so far.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from mg5bench.core.errors import Mg5Error
from mg5bench.human.assignment import ASPECTS, LABEL_TEXT, LABELS, QUESTIONS, question_for
from mg5bench.human.ratings import AccessError, RatingStore
from mg5bench.human.view import app_config, escape_markdown, load_image

# One key per (question, answer), so a keypress lost or reordered while the page reruns can never put an answer
# on the wrong question: the digit picks the answer (in the order of the buttons), the modifier the question.
MODIFIERS = dict(zip(ASPECTS, ("", "Shift+", "Alt+", "Alt+Shift+"), strict=True))
DIGITS = dict(zip(LABELS, ("1", "2", "3", "4", "5"), strict=True))
NAMES = {a: QUESTIONS[a].split(":")[0] for a in ASPECTS}


def keys_help(asked: tuple[str, ...]) -> str:
    """The keys of the questions shown (each question keeps its modifier whether or not the others are asked)."""
    keys = ", ".join(f"{MODIFIERS[a]}1-5 {NAMES[a].lower()}" for a in asked)
    return f"Keys: {keys} (in the order of the buttons); Backspace clears; Enter submits."


CONTEXT_PER_ROW, CONTEXT_IMAGE_WIDTH = 5, 160
# A button label that does not fit wraps onto a second line instead of being cut to "Tie, le..." (Streamlit's
# default) in a window narrower than five labels with their key hints
WRAP_LABELS = (
    '<style>[data-testid^="stBaseButton"] [data-testid="stMarkdownContainer"], '
    '[data-testid^="stBaseButton"] [data-testid="stMarkdownContainer"] p '
    "{white-space: normal; overflow: visible; text-overflow: clip;}</style>"
)


def _answer_key(item_id: str, aspect: str) -> str:
    return f"{item_id}:{aspect}"


def _answers() -> dict[str, str | None]:
    """The open item's answers, in one dict changed in place. With each answer assigned to its own session-state
    key, an answer already shown as chosen was sometimes gone after the next quick keypress (seen in Chromium);
    an in-place change of one object is not undone by an interrupted rerun."""
    if "answers" not in st.session_state:
        st.session_state["answers"] = {}
    return st.session_state["answers"]


def _answer(key: str, label: str) -> None:
    _answers()[key] = label


def _clear(item_id: str) -> None:
    for aspect in ASPECTS:
        _answers().pop(_answer_key(item_id, aspect), None)


def _render(segments: list[dict[str, Any]], roots: dict[str, str], width: int | None = None) -> None:
    if not segments:
        st.caption("(nothing)")
    for seg in segments:
        if "text" in seg:
            who = f"**{escape_markdown(seg['role'])}:** " if seg.get("role") else ""
            text = escape_markdown(seg["text"]) if seg["text"].strip() else "*(empty text)*"
            st.markdown(who + text)
        else:
            try:
                st.image(load_image(roots, seg), width=width or "content")
            except AccessError as e:
                st.error(f"image refused: {e}")


def _render_context(segments: list[dict[str, Any]], roots: dict[str, str]) -> None:
    """The story or dialog so far as a compact strip (each step's text with its image, up to five a row), then
    what follows the last image (the instruction the model answered) in full width."""
    steps: list[list[dict[str, Any]]] = []
    tail: list[dict[str, Any]] = []
    for seg in segments:
        tail.append(seg)
        if "text" not in seg:
            steps.append(tail)
            tail = []
    for start in range(0, len(steps), CONTEXT_PER_ROW):
        row = steps[start : start + CONTEXT_PER_ROW]
        for col, step in zip(st.columns(CONTEXT_PER_ROW), row, strict=False):
            with col:
                _render(step, roots, width=CONTEXT_IMAGE_WIDTH)
    if tail:
        _render(tail, roots)


def _login(store: RatingStore) -> None:
    st.title("Pairwise rating")
    st.write("Enter your rater id and the access token you were given.")
    rater = st.text_input("Rater id", key="login_rater")
    token = st.text_input("Access token", type="password", key="login_token")
    if st.button("Start", key="login", type="primary"):
        role = store.authenticate(rater.strip(), token)
        if role is None:
            st.error("Unknown rater id or token. Ask the organiser for an invitation.")
        else:
            st.session_state.update(rater=rater.strip(), role=role)
            st.rerun()


def _rate(store: RatingStore, study: dict[str, Any], rater: str) -> None:
    try:
        item = store.next_item(int(study["id"]), rater)
    except AccessError as e:
        st.error(str(e))
        return
    if item is None:
        st.progress(1.0, text="All items done")
        st.success("All your items are rated. Thank you!")
        return
    st.progress(item.done / item.total, text=f"{item.done} of {item.total} items done")
    if st.session_state.get("shown_item") != item.item_id:  # time per item starts when it is first shown
        st.session_state.update(shown_item=item.item_id, shown_at=time.monotonic())
    roots = study["config"]["roots"]
    st.caption(f"Item {item.position + 1} of {item.total}")
    st.subheader("Context")
    _render_context(item.context, roots)
    left, right = st.columns(2, border=True)
    with left:
        st.subheader("Output A")
        _render(item.left, roots)
    with right:
        st.subheader("Output B")
        _render(item.right, roots)
    if item.skipped:
        st.caption(
            "Not asked for this item: "
            + "; ".join(
                f"{NAMES[a].lower()} ({escape_markdown(str(why))})" for a, why in item.skipped.items() if a in NAMES
            )
            + "."
        )
    for aspect in item.aspects:
        key = _answer_key(item.item_id, aspect)
        chosen = _answers().get(key)
        st.markdown(escape_markdown(question_for(aspect, item.left, item.right)))
        for col, label in zip(st.columns(len(LABELS)), LABELS, strict=True):
            col.button(
                LABEL_TEXT[label],
                key=f"b:{aspect}:{label}",
                shortcut=MODIFIERS[aspect] + DIGITS[label],
                type="primary" if chosen == label else "secondary",
                width="stretch",
                on_click=_answer,
                args=(key, label),
            )
    st.caption(keys_help(item.aspects))
    submit_col, clear_col, _ = st.columns([1, 1, 3])
    clear_col.button("Clear", key="clear", shortcut="Backspace", on_click=_clear, args=(item.item_id,))
    if submit_col.button("Submit", key="submit", type="primary", shortcut="Enter"):
        answers = {a: _answers().get(_answer_key(item.item_id, a)) for a in item.aspects}
        missing = [NAMES[a] for a, v in answers.items() if v is None]
        if missing:
            st.warning(f"Please answer every question (open: {', '.join(missing)}).")
            return
        seconds = round(time.monotonic() - float(st.session_state.get("shown_at", time.monotonic())), 3)
        try:
            store.submit(rater, item.item_id, answers, item.left_model, item.right_model, seconds)
        except Mg5Error as e:
            st.error(str(e))
            return
        st.session_state.pop("shown_item", None)
        _answers().clear()
        st.rerun()


def _organiser(store: RatingStore, study: dict[str, Any]) -> None:
    from mg5bench.human import analysis

    sid = int(study["id"])
    st.title(f"Study {sid}: progress and agreement")
    st.write(
        f"{study['task']} {study['split']}: {study['model_x']} vs {study['model_y']} "
        f"({study['config']['raters']} rater slots, overlap {study['config']['overlap']})"
    )
    st.dataframe(store.progress(sid))
    votes = store.votes()
    alphas = analysis.agreement(votes, sid, study["model_x"])
    st.subheader("Agreement so far (Krippendorff's alpha, nominal)")
    st.table({NAMES[a]: ["n/a" if v != v else f"{v:.3f}"] for a, v in alphas.items()})
    with st.expander("Report so far"):
        st.code(analysis.format_report(analysis.report(store, study=sid, resamples=200)), language=None)


def main() -> None:
    # the sidebar (sign out, the organiser's page switch) starts closed: the five answers a row get the width
    st.set_page_config(page_title="mg5bench rating", layout="wide", initial_sidebar_state="collapsed")
    st.html(WRAP_LABELS)
    cfg = app_config()
    if cfg is None:
        st.error("No rating database configured: start the app with 'mg5bench annotate'.")
        return
    try:
        store = RatingStore(cfg.db, create=False)
        study = store.study(cfg.study)
    except Mg5Error as e:
        st.error(str(e))
        return
    rater = st.session_state.get("rater")
    if rater is None:
        _login(store)
        return
    with st.sidebar:
        st.write(f"Signed in as **{escape_markdown(rater)}**")
        page = "Rate"
        if st.session_state.get("role") == "organiser":
            page = st.radio("Page", ["Rate", "Organiser"], key="page")
        if st.button("Sign out", key="logout"):
            for k in list(st.session_state):
                del st.session_state[k]
            st.rerun()
    if page == "Organiser":
        _organiser(store, study)
    else:
        _rate(store, study, rater)


main()
