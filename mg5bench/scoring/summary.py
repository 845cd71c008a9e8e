"""The last stage of the flow for one scoring: its metrics.json as the table ``mg5bench run`` and ``mg5bench score``
print. Reads only the report dict; computes nothing. (Tables across runs: ``mg5bench.leaderboard``.)"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# rows whose bare name would not say what they measure
ROW_NAMES = {"scene_accuracy": "scene_accuracy (exact scene)"}
LEGEND = "^ = higher is better, v = lower is better; CI = 95% cluster-bootstrap interval"


def number(value: float | None) -> str:
    """Four decimals; a value that rounds to zero prints as 0.0000, never -0.0000."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text


def _outside(m: Mapping[str, Any]) -> bool:
    """The point estimate lies outside its interval (set distances at small N: the bootstrap's duplicates bias
    them upward), compared as printed."""
    if m["value"] is None or m["ci_low"] is None or m["ci_high"] is None:
        return False
    v, lo, hi = (float(number(x)) for x in (m["value"], m["ci_low"], m["ci_high"]))
    return not lo <= v <= hi


def format_table(report: Mapping[str, Any]) -> str:
    """A plain-text table of the metrics with CIs, N, flags and warnings, then what the reader needs to read it:
    the legend, the evaluator, interval notes where an interval misses its estimate, and the scoring's notes."""
    rows = [("metric", "value", "95% CI", "n", "")]
    footnotes: list[str] = []
    for key, m in report["metrics"].items():
        ci = "" if m["ci_low"] is None else f"[{number(m['ci_low'])}, {number(m['ci_high'])}]"
        arrow = "^" if m["higher_is_better"] else "v"
        note = "FLAG " if "flag" in m else ""
        note += "WARN " + m["warning"] if "warning" in m else ""
        rows.append((f"{ROW_NAMES.get(key, key)} {arrow}", number(m["value"]), ci, str(m["n"]), note.strip()))
        if "flag" in m:
            footnotes.append(f"FLAG {key}: {m['flag']}")
        if m.get("ci_note") and _outside(m):
            footnotes.append(f"{key}: the CI does not contain the value: {m['ci_note']}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)).rstrip() + ("  " + r[4] if r[4] else "")
             for r in rows]  # fmt: skip
    lines.append(LEGEND)
    lines += _explanations(report["metrics"])
    ev = report["evaluator"]
    lines.append(f"evaluator: {ev['name']} (sha256 {ev['weights_sha256'][:12]}); bootstrap "
                 f"{report['bootstrap']['resamples']}x by {report['bootstrap']['cluster']}")  # fmt: skip
    lines += footnotes
    if report["predictions"]["n_missing"]:
        lines.append(f"{report['predictions']['n_missing']} sample(s) had no prediction line: scored as empty outputs")
    lines += report.get("notes", [])
    return "\n".join(lines)


def _explanations(metrics: Mapping[str, Any]) -> list[str]:
    """Notes for the rows a reader would otherwise misread: a negative KID, a KID std that cannot exist, the second
    unit of MM-Relevance."""
    out = []
    kid = metrics.get("kid", {}).get("value")
    if kid is not None and not (isinstance(kid, float) and math.isnan(kid)) and kid < 0:
        out.append("kid < 0: KID is an unbiased estimate of a squared distance; for close distributions it scatters "
                   "around 0 and can fall below it")  # fmt: skip
    if "kid.std" in metrics and metrics["kid.std"].get("value") is None:
        out.append("kid.std n/a: with no more samples than KID's subset size (1000) every subset is the whole set, "
                   "so there is no spread over subsets")  # fmt: skip
    if "mm_relevance.logit_units" in metrics:
        out.append("mm_relevance.logit_units: the same score in the paper's units (each cosine times the evaluator's "
                   "CLIP logit scale, about 100)")  # fmt: skip
    return out
