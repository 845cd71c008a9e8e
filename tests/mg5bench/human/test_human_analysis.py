"""The analysis against hand-computed values on a small fixture database: Wilson intervals by formula, the
sign test by exact binomial sums (and scipy), Krippendorff's alpha by hand from the coincidence matrix,
position bias, exclusions, and Bradley-Terry against a direct maximum-likelihood fit."""

from __future__ import annotations

import math
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from human_fixtures import label_for, synthetic_plan
from scipy.stats import binomtest

from mg5bench.human import analysis
from mg5bench.human.assignment import ASPECTS, GOLD_BLANK
from mg5bench.human.ratings import RatingStore

W, LW, LL, L, BB = "win", "lean_win", "lean_loss", "loss", "both_bad"
# Outcomes from model X's side, per rater, for the 12 items in item-id order (see the hand computations below).
DESIGN = {
    "language": {"r1": [W] * 6 + [LW] * 4 + [L] * 2, "r2": [W] * 5 + [LW] * 5 + [L] * 2},
    "image": {"r1": [W] * 6 + [LW] * 2 + [L] * 3 + [BB], "r2": [W] * 4 + [LW] + [LL] * 2 + [L] * 3 + [BB] * 2},
    "consistency": {"r1": [W] * 3 + [L] * 9, "r2": [W] * 2 + [BB] + [L] * 9},
}
# multimodal is given as raw labels (position bias): r1 always picks the left output
MULTIMODAL = {"r1": ["A"] * 12, "r2": ["A"] * 6 + ["B"] * 3 + ["both_bad"] * 3}


def wilson_by_formula(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> RatingStore:
    tmp = tmp_path_factory.mktemp("stats")
    store = RatingStore(tmp / "r.sqlite")
    sid = store.create_study(synthetic_plan(12, tmp), raters=2, overlap=2, check_every=0)
    for r in ("r1", "r2"):
        store.invite(r)
        queue = sorted(store.queue(sid, r), key=lambda q: q["item_id"])
        for k, q in enumerate(queue):
            x_left = q["left_model"] == "X"
            answers = {a: label_for(DESIGN[a][r][k], x_left) for a in DESIGN}
            answers["multimodal"] = MULTIMODAL[r][k]
            store.submit(r, q["item_id"], answers, q["left_model"], q["right_model"], 1.0 + k)
    return store


def test_the_consistency_question_is_counted_and_named_like_the_others(fixture_db: RatingStore) -> None:
    rep = analysis.report(fixture_db, resamples=0)
    t = rep["studies"][0]["aspects"]["consistency"]
    assert t["counts"] == {W: 5, LW: 0, LL: 0, L: 18, BB: 1} and t["n_votes"] == 24  # counted from DESIGN by hand
    text = analysis.format_report(rep)
    assert "  visual consistency: 24 votes on 12 items" in text


def test_wilson_matches_the_formula_and_a_published_value() -> None:
    lo, hi = analysis.wilson(7, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.3968, 0.8922)  # the textbook Wilson interval for 7/10
    for k, n in [(0, 10), (10, 10), (3, 17), (14, 24), (9.5, 15)]:
        assert analysis.wilson(k, n) == pytest.approx(tuple(np.clip(wilson_by_formula(k, n), 0, 1)), abs=1e-12)
    assert all(math.isnan(v) for v in analysis.wilson(0, 0))


def test_win_tie_loss_under_the_four_conventions(fixture_db: RatingStore) -> None:
    rep = analysis.report(fixture_db, resamples=0)
    (study,) = rep["studies"]
    t = study["aspects"]["image"]
    assert t["n_votes"] == 24 and t["n_items"] == 12
    assert t["counts"] == {W: 10, LW: 3, LL: 2, L: 6, BB: 3}
    # "both bad" (3) is not a tie: out of every denominator but "against"
    expected = {"dropped": (10, 16), "half": (10 + 0.5 * 5, 21), "lean": (13, 21), "against": (10, 24)}
    for conv, (k, n) in expected.items():
        r = t["rates"][conv]
        assert (r["successes"], r["n"]) == (k, n)
        assert r["rate"] == pytest.approx(k / n)
        assert r["ci"] == pytest.approx(wilson_by_formula(k, n), abs=1e-12)
    # sign test: 10 of 16 decided; two-sided exact p = 2 * P(X >= 10), X ~ Bin(16, 1/2)
    by_hand = 2 * sum(comb(16, i) for i in range(10, 17)) / 2**16
    assert by_hand == pytest.approx(29786 / 65536)
    assert t["sign_p"] == pytest.approx(by_hand, rel=1e-12)
    assert t["sign_p"] == pytest.approx(binomtest(10, 16, 0.5).pvalue, rel=1e-12)
    lang = study["aspects"]["language"]
    assert lang["counts"] == {W: 11, LW: 9, LL: 0, L: 4, BB: 0}
    assert lang["sign_p"] == pytest.approx(2 * sum(comb(15, i) for i in range(11, 16)) / 2**15, rel=1e-12)


def test_both_bad_is_not_a_tie() -> None:
    """With no tie at all, the three tie conventions agree (a "both bad" moves none of them); only "ties counted
    against" counts "both bad" against X."""
    rates = analysis.win_rates({W: 6, LW: 0, LL: 0, L: 2, BB: 4})
    assert {k: (r["successes"], r["n"]) for k, r in rates.items()} == {
        "dropped": (6, 8), "half": (6, 8), "lean": (6, 8), "against": (6, 12)}  # fmt: skip
    assert rates["half"]["ci"] == rates["dropped"]["ci"] == pytest.approx(wilson_by_formula(6, 8), abs=1e-12)
    rates = analysis.win_rates({W: 6, LW: 1, LL: 3, L: 2, BB: 4})  # with ties, "half" splits each one
    assert (rates["half"]["successes"], rates["half"]["n"]) == (8, 12)
    only_both_bad = analysis.win_rates({W: 0, LW: 0, LL: 0, L: 0, BB: 5})
    assert all(math.isnan(only_both_bad[k]["rate"]) for k in ("dropped", "half", "lean"))
    assert only_both_bad["against"]["rate"] == 0.0


def test_position_bias(fixture_db: RatingStore) -> None:
    pb = analysis.report(fixture_db, resamples=0)["studies"][0]["aspects"]["multimodal"]["position_bias"]
    # 24 votes: 18 "A", 3 "B", 3 "both_bad" -> 18 of 21 preferences went left
    assert (pb["left"], pb["n"]) == (18, 21)
    assert pb["rate"] == pytest.approx(18 / 21)
    assert pb["ci"] == pytest.approx(wilson_by_formula(18, 21), abs=1e-12)
    assert pb["p"] == pytest.approx(2 * sum(comb(21, i) for i in range(18, 22)) / 2**21, rel=1e-12)


def test_krippendorff_alpha_by_hand(fixture_db: RatingStore) -> None:
    # Tiny matrix, 2 raters x 4 units, values 0/1: [[0, 0, 1, 1], [0, 1, 1, 1]]. Coincidences (each unit has 2
    # values, so each ordered pair counts 1): o00 = 2, o01 = o10 = 1, o11 = 4; n0 = 3, n1 = 5, n = 8.
    # Nominal alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k = 1 - 7 * 2 / 30 = 16 / 30.
    rows = [("r1", "u1", W), ("r1", "u2", W), ("r1", "u3", LW), ("r1", "u4", LW),
            ("r2", "u1", W), ("r2", "u2", LW), ("r2", "u3", LW), ("r2", "u4", LW)]  # fmt: skip
    df = pd.DataFrame([(r, u, label_for(o, True), "X", "Y") for r, u, o in rows],
                      columns=["rater", "item_id", "label", "left_model", "right_model"])  # fmt: skip
    assert analysis.krippendorff_alpha(df, "X") == pytest.approx(16 / 30, abs=1e-12)
    # The sides do not matter: the same ratings with X shown on the right for u2 give the same alpha.
    df.loc[df["item_id"] == "u2", ["left_model", "right_model"]] = ["Y", "X"]
    df.loc[df["item_id"] == "u2", "label"] = [label_for(W, False), label_for(LW, False)]
    assert analysis.krippendorff_alpha(df, "X") == pytest.approx(16 / 30, abs=1e-12)
    # The fixture's language aspect: units (w,w) x5, (w,lw) x1, (lw,lw) x4, (l,l) x2. n = 24, n_w = 11, n_lw = 9,
    # n_l = 4; two disagreeing ordered pairs. alpha = 1 - 23 * 2 / (24^2 - (11^2 + 9^2 + 4^2)) = 1 - 46 / 358.
    lang = analysis.report(fixture_db, resamples=0)["studies"][0]["aspects"]["language"]
    assert lang["alpha"] == pytest.approx(1 - 46 / 358, abs=1e-12)
    # undefined cases: one rater, or a single outcome everywhere
    assert math.isnan(analysis.krippendorff_alpha(df[df["rater"] == "r1"], "X"))
    same = df.assign(label="A", left_model="X", right_model="Y")
    assert math.isnan(analysis.krippendorff_alpha(same, "X"))


def test_report_text_names_every_convention(fixture_db: RatingStore) -> None:
    text = analysis.format_report(analysis.report(fixture_db, resamples=0))
    for phrase in ("ties dropped", "ties split half", "ties counted by lean", "ties counted against",
                   "sign test p 0.454", "Krippendorff alpha 0.872", "left chosen 85.7% of 21"):  # fmt: skip
        assert phrase in text, phrase
    assert " 62.5  [38.6, 81.5]" in text  # image, ties dropped: 10/16 with its Wilson interval
    assert '"both bad" is not a tie' in text


def test_failed_attention_checks_exclude_the_rater(tmp_path: Path) -> None:
    store = RatingStore(tmp_path / "r.sqlite")
    sid = store.create_study(synthetic_plan(6, tmp_path, gold=2), raters=2, overlap=2, check_every=20)
    for r in ("good", "sloppy"):
        store.invite(r)
        while (it := store.next_item(sid, r)) is not None:
            if it.kind == "gold":
                blank = "A" if it.left_model == GOLD_BLANK else "B"
                side = ("B" if blank == "A" else "A") if r == "good" else blank
            else:  # good prefers X everywhere, sloppy prefers Y
                x_side = "A" if it.left_model == "X" else "B"
                side = x_side if r == "good" else ("B" if x_side == "A" else "A")
            store.submit(r, it.item_id, dict.fromkeys(ASPECTS, side), it.left_model, it.right_model, 1.0)
    rep = analysis.report(store, resamples=0)
    assert rep["excluded"] == [{"study": sid, "rater": "sloppy", "why": "failed 1 of 1 gold check(s)"}]
    assert rep["studies"][0]["aspects"]["image"]["counts"] == {W: 6, LW: 0, LL: 0, L: 0, BB: 0}
    kept = analysis.report(store, resamples=0, exclude=False)
    assert kept["excluded"] == [] and kept["studies"][0]["aspects"]["image"]["counts"][L] == 6
    assert "excluded: sloppy (failed 1 of 1 gold check(s))" in analysis.format_report(rep)


def _votes(pairs: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """(left, right, label, count) -> a votes frame, one item per vote."""
    rows, k = [], 0
    for left, right, label, n in pairs:
        for _ in range(n):
            rows.append((f"i{k}", left, right, label))
            k += 1
    return pd.DataFrame(rows, columns=["item_id", "left_model", "right_model", "label"])


def test_bradley_terry_two_models_closed_form() -> None:
    # 7 outright X wins, 3 outright Y wins, 2 leaning ties (half each way), 3 "both bad" (no preference: left
    # out): X has 8 of 12 "wins"; for two models the maximum-likelihood strength share is exactly that.
    df = _votes([("X", "Y", "A", 4), ("Y", "X", "B", 3), ("X", "Y", "B", 3), ("X", "Y", "tie_b", 2),
                 ("Y", "X", "both_bad", 3)])  # fmt: skip
    bt = analysis.bradley_terry(df, resamples=200, seed=1)
    assert bt["models"] == ["X", "Y"]
    assert bt["strength"] == pytest.approx([8 / 12, 4 / 12], abs=1e-9)
    (lo, hi), _ = bt["ci"]
    assert 0 < lo < 8 / 12 < hi < 1
    assert analysis.bradley_terry(df, resamples=200, seed=1) == bt  # seeded


def test_bradley_terry_matches_a_direct_likelihood_fit() -> None:
    from scipy.optimize import minimize

    df = _votes([("A", "B", "A", 9), ("A", "B", "B", 4), ("B", "C", "A", 8), ("C", "B", "A", 5),
                 ("A", "C", "A", 10), ("C", "A", "A", 2), ("A", "C", "both_bad", 2),
                 ("B", "C", "tie_a", 3)])  # fmt: skip
    bt = analysis.bradley_terry(df, resamples=100, seed=0)
    models = bt["models"]
    wins = np.zeros((3, 3))
    for r in df.itertuples():
        i, j = models.index(r.left_model), models.index(r.right_model)
        if r.label == "A":
            wins[i, j] += 1
        elif r.label == "B":
            wins[j, i] += 1
        elif r.label in ("tie_a", "tie_b"):  # both bad: no preference, no term in the likelihood
            wins[i, j] += 0.5
            wins[j, i] += 0.5

    def nll(theta: np.ndarray) -> float:
        t = np.concatenate([[0.0], theta])
        d = t[:, None] - t[None, :]
        return float(-(wins * (d - np.logaddexp(0, d))).sum())

    res = minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    ref = np.exp(np.concatenate([[0.0], res.x]))
    assert bt["strength"] == pytest.approx(list(ref / ref.sum()), abs=1e-6)
    for s, (lo, hi) in zip(bt["strength"], bt["ci"], strict=True):
        assert lo <= s <= hi


def test_report_adds_bradley_terry_when_more_than_two_models(tmp_path: Path) -> None:
    store = RatingStore(tmp_path / "r.sqlite")
    store.invite("r1")
    for other, side in (("Y", "A"), ("Z", "B")):  # X preferred over Y, Z preferred over X
        sid = store.create_study(synthetic_plan(4, tmp_path, y=other), raters=1, overlap=1, check_every=0)
        while (it := store.next_item(sid, "r1")) is not None:
            x_side = "A" if it.left_model == "X" else "B"
            label = x_side if side == "A" else ("B" if x_side == "A" else "A")
            store.submit("r1", it.item_id, dict.fromkeys(ASPECTS, label), it.left_model, it.right_model, 1.0)
    assert analysis.report(store, study=1, resamples=0)["bradley_terry"] is None
    rep = analysis.report(store, resamples=50)
    bt = rep["bradley_terry"]["image"]
    assert bt["models"] == ["X", "Y", "Z"]
    s = dict(zip(bt["models"], bt["strength"], strict=True))
    assert s["Z"] > s["X"] > s["Y"]
    assert "Bradley-Terry" in analysis.format_report(rep)


def test_a_question_never_asked_is_reported_as_not_asked(tmp_path: Path) -> None:
    """Image-only outputs (VIST): language coherence is asked on no item. The report says so, with the count,
    and computes nothing from zero votes; the other questions are analysed as usual, Bradley-Terry included."""
    import json as json_

    from mg5bench.data.io import nan_to_none

    store = RatingStore(tmp_path / "r.sqlite")
    store.invite("r1")
    for other in ("Y", "Z"):
        plan = synthetic_plan(4, tmp_path, y=other, aspects=("image", "multimodal"))
        sid = store.create_study(plan, raters=1, overlap=1, check_every=0)
        while (it := store.next_item(sid, "r1")) is not None:
            x_side = "A" if it.left_model == "X" else "B"
            store.submit("r1", it.item_id, dict.fromkeys(it.aspects, x_side), it.left_model, it.right_model, 1.0)
    rep = analysis.report(store, resamples=20)
    lang = rep["studies"][0]["aspects"]["language"]
    assert (lang["n_votes"], lang["not_asked"]) == (0, 4) and math.isnan(lang["rates"]["half"]["rate"])
    image = rep["studies"][0]["aspects"]["image"]
    assert (image["n_votes"], image["not_asked"], image["counts"][W]) == (4, 0, 4)
    assert rep["bradley_terry"]["language"]["note"] == "not asked (no votes)"
    assert rep["bradley_terry"]["image"]["models"] == ["X", "Y", "Z"]
    text = analysis.format_report(rep)
    assert "  language coherence: not asked (4 ratings: it did not apply to what the outputs showed)" in text
    assert "  image quality: 4 votes on 4 items;" in text and "language coherence: not asked (no votes)" in text
    json_.dumps(nan_to_none(rep), allow_nan=False)  # the --json report stays valid JSON
