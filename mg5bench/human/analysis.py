"""The analysis of pairwise ratings: win / tie / loss per aspect with Wilson intervals under four tie
conventions, the exact sign test, the position-bias rate, Krippendorff's alpha, raters excluded by the attention
checks, and Bradley-Terry strengths with bootstrap CIs when more than two models were rated.

Why four tie conventions: "X preferred in 56% of cases" means different things depending on what a tie does to
the denominator, so the report shows each, named:

    dropped   X wins / (X wins + Y wins); ties left out
    half      (X wins + half of the ties) / (wins + ties)
    lean      (X wins + ties leaning X) / (wins + ties)
    against   X wins / all votes, "both bad" included (the paper-style "preferred in N% of cases")

"X wins" is an outright preference; a tie is "tie, leaning X" or "tie, leaning Y"; ties leaning X count for X only
under "lean". "Both bad" is not a tie: it prefers neither output, so it is left out of every rate but "against",
whose denominator is every vote; with no tie, "dropped", "half" and "lean" are equal. The sign test is the exact
two-sided binomial test of X wins against Y wins (ties dropped) at p = 0.5. Position bias is the share of votes
that express a preference (outright or leaning) that went to the left output; 0.5 is none. Alpha is nominal over
the five outcomes seen from model X's side (so the left/right draw cannot masquerade as disagreement), with the
pair items as units. Only ``pair`` items count; the attention-check items (``repeat``, ``gold``) decide exclusions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mg5bench.human.assignment import ASPECTS, QUESTIONS

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal
CONVENTIONS: dict[str, str] = {
    "dropped": "ties dropped",
    "half": "ties split half",
    "lean": "ties counted by lean",
    "against": "ties counted against",
}
BOTH_BAD_NOTE = (
    'a tie is "tie, leaning X or Y"; "both bad" is not a tie: it is left out of every rate but "ties counted '
    'against", which counts it against X'
)
OUTCOMES = ("win", "lean_win", "lean_loss", "loss", "both_bad")  # from model X's side
MIN_REPEAT_PASS = 0.5  # a rater is excluded below this share of passed repeat checks (or on any failed gold)


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (NaNs for n = 0). Successes may be fractional (ties split
    half); the formula is then applied to the fractional proportion as it stands."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def outcome(label: str, left_model: str, right_model: str, x: str) -> str:
    """A vote's outcome from model ``x``'s side: win, lean_win, lean_loss, loss or both_bad."""
    if label == "both_bad":
        return "both_bad"
    x_left = left_model == x
    if label in ("A", "B"):
        return "win" if (label == "A") == x_left else "loss"
    return "lean_win" if (label == "tie_a") == x_left else "lean_loss"


def count_outcomes(votes: Any, x: str) -> dict[str, int]:
    """Counts of each outcome from ``x``'s side over a votes DataFrame."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in votes.itertuples(index=False):
        counts[outcome(r.label, r.left_model, r.right_model, x)] += 1
    return counts


def win_rates(counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """X's preference rate with its Wilson 95% CI under each tie convention (see the module docstring)."""
    w, lw, ll, lo, bb = (counts[k] for k in OUTCOMES)
    decided = w + lw + ll + lo  # every vote but "both bad", which is not a tie
    parts = {
        "dropped": (w, w + lo),
        "half": (w + 0.5 * (lw + ll), decided),
        "lean": (w + lw, decided),
        "against": (w, decided + bb),
    }
    out = {}
    for name, (s, n) in parts.items():
        out[name] = {"successes": s, "n": n, "rate": s / n if n else math.nan, "ci": wilson(s, n)}
    return out


def sign_test(counts: dict[str, int]) -> float:
    """Exact two-sided sign test p-value of X wins vs Y wins (ties dropped); NaN with no decided vote."""
    from scipy.stats import binomtest

    n = counts["win"] + counts["loss"]
    return float(binomtest(counts["win"], n, 0.5).pvalue) if n else math.nan


def position_bias(votes: Any) -> dict[str, Any]:
    """Share of preferring votes (outright or leaning) that chose the left output, with its Wilson CI and the
    exact binomial p-value against 0.5."""
    from scipy.stats import binomtest

    labels = list(votes["label"])
    left = sum(lab in ("A", "tie_a") for lab in labels)
    n = sum(lab in ("A", "tie_a", "B", "tie_b") for lab in labels)
    return {
        "left": left,
        "n": n,
        "rate": left / n if n else math.nan,
        "ci": wilson(left, n),
        "p": float(binomtest(left, n, 0.5).pvalue) if n else math.nan,
    }


def reliability_matrix(votes: Any, x: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Raters x units matrix of outcome codes (index into OUTCOMES, from ``x``'s side; NaN = not rated)."""
    raters = sorted(set(votes["rater"]))
    units = sorted(set(votes["item_id"]))
    ri, ui = {r: i for i, r in enumerate(raters)}, {u: i for i, u in enumerate(units)}
    m = np.full((len(raters), len(units)), np.nan)
    for r in votes.itertuples(index=False):
        m[ri[r.rater], ui[r.item_id]] = OUTCOMES.index(outcome(r.label, r.left_model, r.right_model, x))
    return m, raters, units


def krippendorff_alpha(votes: Any, x: str) -> float:
    """Nominal Krippendorff's alpha (package ``krippendorff``) over the pair items; NaN while no item has two
    ratings or only one outcome was ever used (alpha is undefined then)."""
    import krippendorff

    m, _, _ = reliability_matrix(votes, x)
    pairable = m[:, (~np.isnan(m)).sum(axis=0) >= 2]
    if m.shape[0] < 2 or pairable.size == 0 or len(np.unique(pairable[~np.isnan(pairable)])) < 2:
        return math.nan
    try:
        return float(
            krippendorff.alpha(
                reliability_data=m, level_of_measurement="nominal", value_domain=list(range(len(OUTCOMES)))
            )
        )
    except (ValueError, ZeroDivisionError):
        return math.nan


# --- Bradley-Terry ----------------------------------------------------------------------------


def _bt_fit(wins: np.ndarray, iters: int = 2000, tol: float = 1e-11) -> np.ndarray:
    """Bradley-Terry strengths (each row summing to 1) by Hunter's MM iteration, vectorised over a leading
    batch axis: ``wins[..., i, j]`` = (weighted) times i beat j. P(i beats j) = s_i / (s_i + s_j)."""
    n = wins + np.swapaxes(wins, -1, -2)
    total = wins.sum(axis=-1)
    p = np.full(wins.shape[:-1], 1.0 / wins.shape[-1])
    for _ in range(iters):
        pair = p[..., :, None] + p[..., None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = np.where(n > 0, n / np.where(pair > 0, pair, 1.0), 0.0).sum(axis=-1)
            new = np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), p)
        new = new / new.sum(axis=-1, keepdims=True)
        if np.max(np.abs(new - p)) < tol:
            return new
        p = new
    return p


def _connected(n: np.ndarray) -> bool:
    m = n.shape[0]
    seen, stack = {0}, [0]
    while stack:
        i = stack.pop()
        for j in range(m):
            if n[i, j] > 0 and j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == m


def bradley_terry(votes: Any, *, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Bradley-Terry strengths (summing to 1) of every model in ``votes`` with percentile CIs from a bootstrap
    over items (all votes of a resampled item together, ``resamples`` seeded draws). An outright preference is a
    win; a leaning tie is half a win each way (the "half" convention); "both bad" states no preference and is
    left out, as in the win rates."""
    models = sorted(set(votes["left_model"]) | set(votes["right_model"]))
    idx = {m: i for i, m in enumerate(models)}
    items = sorted(set(votes["item_id"]))
    item_idx = {it: k for k, it in enumerate(items)}
    k = len(models)
    per_item = np.zeros((len(items), k, k))
    for r in votes.itertuples(index=False):
        left, right, t = idx[r.left_model], idx[r.right_model], item_idx[r.item_id]
        if r.label == "A":
            per_item[t, left, right] += 1
        elif r.label == "B":
            per_item[t, right, left] += 1
        elif r.label != "both_bad":  # a leaning tie
            per_item[t, left, right] += 0.5
            per_item[t, right, left] += 0.5
    wins = per_item.sum(axis=0)
    if not _connected(wins + wins.T):
        return {
            "models": models,
            "strength": [math.nan] * k,
            "ci": [(math.nan, math.nan)] * k,
            "note": "the models were not all compared, directly or through others",
        }
    strength = _bt_fit(wins)
    rng = np.random.default_rng(seed)
    draws = (
        np.stack([np.bincount(rng.integers(0, len(items), len(items)), minlength=len(items)) for _ in range(resamples)])
        if resamples
        else np.zeros((0, len(items)))
    )
    boot = _bt_fit(np.einsum("bt,tij->bij", draws, per_item)) if resamples else np.zeros((0, k))
    alpha = (1 - level) / 2
    cis = [
        (float(np.quantile(boot[:, i], alpha)), float(np.quantile(boot[:, i], 1 - alpha)))
        if resamples
        else (math.nan, math.nan)
        for i in range(k)
    ]
    return {"models": models, "strength": [float(s) for s in strength], "ci": cis, "resamples": resamples}


# --- attention checks and the report ----------------------------------------------------------


def exclusions(attention: Any, min_repeat: float = MIN_REPEAT_PASS) -> dict[tuple[int, str], str]:
    """(study, rater) -> why the rater is excluded: any failed gold check, or fewer than ``min_repeat`` of the
    repeated items answered consistently."""
    out: dict[tuple[int, str], str] = {}
    for (study, rater), df in attention.groupby(["study", "rater"]):
        reasons = []
        gold = df[df["kind"] == "gold"]
        if (~gold["passed"]).any():
            reasons.append(f"failed {int((~gold['passed']).sum())} of {len(gold)} gold check(s)")
        rep = df[df["kind"] == "repeat"]
        if len(rep) and rep["passed"].mean() < min_repeat:
            reasons.append(f"consistent on {int(rep['passed'].sum())} of {len(rep)} repeated item(s)")
        if reasons:
            out[(int(study), str(rater))] = "; ".join(reasons)
    return out


def aspect_table(votes: Any, x: str, not_asked: int = 0) -> dict[str, Any]:
    """Everything the report shows for one aspect of one study (votes: that aspect's pair votes; ``not_asked``:
    the ratings of pair items where the question did not apply and was not asked)."""
    counts = count_outcomes(votes, x)
    return {
        "n_votes": len(votes),
        "not_asked": int(not_asked),
        "n_items": int(votes["item_id"].nunique()),
        "counts": counts,
        "rates": win_rates(counts),
        "sign_p": sign_test(counts),
        "position_bias": position_bias(votes),
        "alpha": krippendorff_alpha(votes, x),
    }


def agreement(votes: Any, study: int, x: str) -> dict[str, float]:
    """Krippendorff's alpha per aspect over a study's pair votes so far (the organiser page)."""
    v = votes[(votes["study"] == study) & (votes["kind"] == "pair")]
    return {a: krippendorff_alpha(v[v["aspect"] == a], x) for a in ASPECTS}


def report(
    store: Any, *, study: int | None = None, resamples: int = 1000, seed: int = 0, exclude: bool = True
) -> dict[str, Any]:
    """The whole analysis of a RatingStore (one study, or all): per study and aspect the tables above, the
    excluded raters, and Bradley-Terry over every study's models when more than two models were rated."""
    from mg5bench.core.limits import check_int, check_resamples

    check_resamples(resamples)
    check_int("--seed", seed)
    votes, attention, skipped = store.votes(), store.attention(), store.not_asked()
    excluded = exclusions(attention) if exclude and len(attention) else {}
    studies = [store.study(study)] if study is not None else store.studies()
    out: dict[str, Any] = {"db": str(store.path), "studies": [], "bradley_terry": None, "excluded": []}
    pooled = []
    for s in studies:
        sid, x, y = int(s["id"]), s["model_x"], s["model_y"]
        v = votes[votes["study"] == sid]
        raters = sorted(set(v["rater"]))
        gone = {r: excluded[(sid, r)] for r in raters if (sid, r) in excluded}
        out["excluded"] += [{"study": sid, "rater": r, "why": why} for r, why in gone.items()]
        used = v[(v["kind"] == "pair") & ~v["rater"].isin(list(gone))]
        pooled.append(used)
        na = skipped[(skipped["study"] == sid) & (skipped["kind"] == "pair") & ~skipped["rater"].isin(list(gone))]
        att = attention[attention["study"] == sid]
        out["studies"].append(
            {
                "id": sid,
                "task": s["task"],
                "split": s["split"],
                "x": x,
                "y": y,
                "runs": s["config"]["runs"],
                "raters": raters,
                "excluded": gone,
                "n_pair_items": int(used["item_id"].nunique()),
                "checks": {"passed": int(att["passed"].sum()), "failed": int((~att["passed"]).sum())},
                "aspects": {
                    a: aspect_table(used[used["aspect"] == a], x, int((na["aspect"] == a).sum())) for a in ASPECTS
                },
            }
        )
    if pooled:
        import pandas as pd

        allv = pd.concat(pooled)
        models = set(allv["left_model"]) | set(allv["right_model"])
        if len(models) > 2:
            out["bradley_terry"] = {
                a: bradley_terry(allv[allv["aspect"] == a], resamples=resamples, seed=seed)
                if (allv["aspect"] == a).any()
                else {"models": [], "strength": [], "ci": [], "note": "not asked (no votes)"}
                for a in ASPECTS
            }
    return out


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _pct(v: float) -> str:
    return "  n/a" if v != v else f"{100 * v:5.1f}"


def _p(v: float) -> str:
    return "n/a" if v != v else (f"{v:.2g}" if v < 0.001 else f"{v:.3f}")


def format_report(rep: dict[str, Any], aspects: Sequence[str] = ASPECTS) -> str:
    """The report as plain-text tables (``mg5bench human report``; reusable by ``mg5bench report --ratings``)."""
    lines: list[str] = []
    names = {a: QUESTIONS[a].split(":")[0].lower() for a in ASPECTS}  # "language coherence", ...
    for s in rep["studies"]:
        x, y = s["x"], s["y"]
        lines.append(
            f"study {s['id']}: {x} (X) vs {y} (Y), {s['task']} {s['split']}: {s['n_pair_items']} items, "
            f"{len(s['raters']) - len(s['excluded'])} of {len(s['raters'])} raters kept; attention checks "
            f"{s['checks']['passed']} passed, {s['checks']['failed']} failed"
        )
        for r, why in s["excluded"].items():
            lines.append(f"  excluded: {r} ({why})")
        for a in aspects:
            t = s["aspects"][a]
            c, pb = t["counts"], t["position_bias"]
            na = t.get("not_asked", 0)
            if not t["n_votes"]:
                why = (
                    f"not asked ({_n(na, 'rating')}: it did not apply to what the outputs showed)" if na else "no votes"
                )
                lines.append(f"  {names.get(a, a)}: {why}")
                continue
            asked = f"; not asked on {_n(na, 'more rating')} (did not apply)" if na else ""
            alpha = "n/a" if t["alpha"] != t["alpha"] else f"{t['alpha']:.3f}"
            lines.append(
                f"  {names.get(a, a)}: {t['n_votes']} votes on {t['n_items']} items{asked}; Krippendorff alpha "
                f"{alpha}; left chosen {_pct(pb['rate']).strip()}% of {pb['n']} preferences "
                f"[{_pct(pb['ci'][0]).strip()}, {_pct(pb['ci'][1]).strip()}] (p {_p(pb['p'])})"
            )
            lines.append(
                f"    X better {c['win']}, tie leaning X {c['lean_win']}, tie leaning Y {c['lean_loss']}, "
                f"Y better {c['loss']}, both bad {c['both_bad']}; sign test p {_p(t['sign_p'])}"
            )
            lines.append(f"    {'convention':<22} {'X preferred %':>13}  {'95% Wilson CI':<15} {'n':>7}")
            for key, label in CONVENTIONS.items():
                r = t["rates"][key]
                n = f"{r['n']:g}"
                ci = f"[{_pct(r['ci'][0]).strip()}, {_pct(r['ci'][1]).strip()}]"
                lines.append(f"    {label:<22} {_pct(r['rate']):>13}  {ci:<15} {n:>7}")
    if rep["studies"]:
        lines.append(f"  ({BOTH_BAD_NOTE})")
    bt = rep.get("bradley_terry")
    if bt:
        lines.append(
            "Bradley-Terry strengths (sum to 1; P(i beats j) = s_i / (s_i + s_j)), bootstrap 95% CI over items:"
        )
        for a in aspects:
            b = bt[a]
            if "note" in b:
                lines.append(f"  {names.get(a, a)}: {b['note']}")
                continue
            parts = [
                f"{m} {s:.3f} [{lo:.3f}, {hi:.3f}]"
                for m, s, (lo, hi) in sorted(zip(b["models"], b["strength"], b["ci"], strict=True), key=lambda t: -t[1])
            ]
            lines.append(f"  {names.get(a, a)}: " + ", ".join(parts))
    if not rep["studies"]:
        lines.append("no study in this database yet")
    return "\n".join(lines)
