"""An ablation's stored result, as ``mg5bench ablate`` writes it under ``<runs>/ablations/<axis>-<task>-<hash>/``
and the report reads it: ``ablation.json`` (its format version and the checks a file must pass to be used) and the
flat rows of ``ablation.csv`` (one per variant and headline result)."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

from mg5bench.core.escaping import csv_cell

# the format of ablation.json (seeds, t-intervals, q-values); a stored result of another version is computed again
ABLATION_VERSION = 2


ABLATION_KEYS = ("axis", "task", "split", "limit", "headline", "rows", "method", "evaluator")


def read_ablation(path: Path) -> dict[str, Any] | str | None:
    """A stored ablation.json: its content, or why it cannot be used (a string: not UTF-8, malformed JSON, not an
    ablation report), or None when there is no such file."""
    if not path.exists():
        return None
    try:
        rep = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        return f"unreadable ({type(e).__name__}: {str(e)[:80]})"
    ok = isinstance(rep, dict) and all(k in rep for k in ABLATION_KEYS) and isinstance(rep["rows"], list)
    ok = ok and isinstance(rep["axis"], dict) and isinstance(rep["headline"], list)
    ok = ok and all(isinstance(rep["axis"].get(k), str) for k in ("name", "title", "description"))
    ok = ok and all(
        isinstance(r, dict)
        and isinstance(r.get("variant"), str)
        and isinstance(r.get("label"), str)
        and isinstance(r.get("own" if r.get("base") else "compare"), dict)
        for r in rep["rows"]
    )
    ok = ok and any(r.get("base") for r in rep["rows"])
    return rep if ok else "not an ablation report (keys or rows missing)"


def seed_sd_of(seeds: dict[str, Any]) -> str | None:
    """Whose seeds a comparison's seed sd comes from: it pools the sides that have several ("base", "variant" or
    "both"), so beside a one-seed variant it is the base's spread, and a table must say so."""
    if seeds.get("sd") is None:
        return None
    several = [side for side in ("base", "variant") if seeds.get(side, 1) > 1]
    return "both" if len(several) == 2 else several[0] if several else None


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per (variant, headline result): what ablation.csv holds and the table prints."""
    out = []
    for row in report["rows"]:
        for key in report["headline"]:
            if row.get("base"):
                e = row["own"].get(key)
                if e is None:
                    continue
                vals = [v for v in e.get("seed_values", []) if v is not None]
                sd = statistics.stdev(vals) if len(vals) > 1 else None
                out.append({"variant": row["variant"], "label": row["label"], "metric": key, "n": e["n"],
                            "seeds": e.get("seeds", 1), "value": e["value"], "value_ci_low": e["ci"][0],
                            "value_ci_high": e["ci"][1], "base_value": None, "diff": None, "diff_ci_low": None,
                            "diff_ci_high": None, "seed_sd": sd, "seed_sd_of": "base" if sd is not None else None,
                            "p": None, "p_mc_error": None,
                            "p_seed_permutation": None, "q": None, "test": "base",
                            "higher_is_better": e["higher_is_better"], "too_few_clusters": None})  # fmt: skip
            else:
                e = row["compare"].get(key)
                if e is None:
                    continue
                sd = e.get("seeds", {})
                out.append({"variant": row["variant"], "label": row["label"], "metric": key, "n": e["n"],
                            "seeds": sd.get("variant", 1), "value": e["value"], "value_ci_low": e["value_ci"][0],
                            "value_ci_high": e["value_ci"][1], "base_value": e["base"], "diff": e["diff"],
                            "diff_ci_low": e["diff_ci"][0], "diff_ci_high": e["diff_ci"][1], "seed_sd": sd.get("sd"),
                            "seed_sd_of": seed_sd_of(sd), "p": e["p"], "p_mc_error": e.get("p_mc_error"),
                            "p_seed_permutation": sd.get("p_permutation"), "q": e.get("q"), "test": e["test"],
                            "higher_is_better": e["higher_is_better"],
                            "too_few_clusters": e.get("too_few_clusters")})  # fmt: skip
    return out


CSV_FIELDS = ("variant", "label", "metric", "n", "seeds", "value", "value_ci_low", "value_ci_high", "base_value",
              "diff", "diff_ci_low", "diff_ci_high", "seed_sd", "seed_sd_of", "p", "p_mc_error", "p_seed_permutation",
              "q", "test", "higher_is_better", "too_few_clusters")  # fmt: skip


def to_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in table_rows(report):
        w.writerow({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else csv_cell(r[k])))
                    for k in CSV_FIELDS})  # fmt: skip
    return buf.getvalue()
