"""The leaderboard tables (pandas): per table, rows = runs, columns = the task's headline results from the metric
schema; each cell the value with its 95% CI and N; the best value per column marked (the bounds gt and blank are
never "best"). Markdown and CSV are formatted with fixed precision, so the same runs give the same bytes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mg5bench.core.escaping import csv_cell, md_text
from mg5bench.leaderboard.collect import BOUNDS, TaskTable
from mg5bench.metrics.schema import display, metric_schema

NOT_APPLICABLE = "n/a"


def columns_for(table: TaskTable) -> list[str]:
    """The headline results of the task that every row's scoring has, then any official-compat result present."""
    from mg5bench.metrics.schema import headline_keys

    scored = [r.score for r in table.rows if r.score]
    if not scored:
        return []
    names = list(scored[0]["task"].get("metrics") or [])
    keys = [k for k in headline_keys(scored[0]["task"]["format"], names) if all(k in s["metrics"] for s in scored)]
    compat = sorted(k for k in scored[0]["metrics"] if metric_schema().get(k, {}).get("compat")
                    and all(k in s["metrics"] for s in scored))  # fmt: skip
    return keys + [k for k in compat if k not in keys]


def cell_value(entry: Mapping[str, Any] | None, key: str) -> Any:
    """A metrics.json entry's value, or None where the result does not apply (e.g. KID's std when every subset is
    the whole set)."""
    if entry is None or entry.get("value") is None or entry.get("not_applicable"):
        return None
    return float(entry["value"])


def frame(table: TaskTable) -> Any:
    """A long DataFrame: one row per (run, result) with value, CI, N, direction, best and compat."""
    import pandas as pd

    cols = columns_for(table)
    recs = []
    for order, r in enumerate(table.rows):
        for key in cols:
            e = r.score["metrics"].get(key) if r.score else None
            schema = metric_schema().get(key, {})
            higher = bool(e["higher_is_better"]) if e else schema.get("direction", "higher") == "higher"
            recs.append({
                "task": table.task, "split": table.split, "n_samples": table.n,
                "protocol": ",".join(f"{k}={v}" for k, v in table.protocol.items()), "order": order,
                "model": r.model, "label": r.label, "default_run": r.default, "run": r.rel,
                "checkpoint": r.checkpoint, "checkpoint_sha256": r.sha256, "metric": key, "display": display(key),
                "value": cell_value(e, key),
                "ci_low": None if not e or e.get("ci_low") is None else float(e["ci_low"]),
                "ci_high": None if not e or e.get("ci_high") is None else float(e["ci_high"]),
                "n": None if not e else int(e["n"]), "higher_is_better": higher,
                "compat": bool(schema.get("compat", False)), "bound": r.model in BOUNDS,
                "warning": (e or {}).get("warning", ""),
            })  # fmt: skip
    df = pd.DataFrame.from_records(recs)
    if df.empty:
        return df
    df["best"] = False
    for _, sub in df.groupby("metric", sort=False):
        cand = sub[~sub["bound"] & sub["value"].notna()]
        if cand.empty:
            continue
        if metric_schema().get(str(sub["metric"].iloc[0]), {}).get("best") == "zero":  # a gap to the truth
            dist = cand["value"].abs()
            df.loc[cand.index[(dist - dist.min()).abs() <= 1e-12], "best"] = True
            continue
        target = cand["value"].max() if bool(cand["higher_is_better"].iloc[0]) else cand["value"].min()
        df.loc[cand.index[(cand["value"] - target).abs() <= 1e-12], "best"] = True
    return df


def fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return NOT_APPLICABLE
    text = f"{x:.{digits}f}"
    return f"{0:.{digits}f}" if text == f"-{0:.{digits}f}" else text


def digits_for(key: str) -> int:
    return 2 if key.split(".")[0] in ("fid", "fid_per_story_minigpt5", "inception_score") else 3


def cell_text(row: Mapping[str, Any], html: bool = False) -> str:
    d = digits_for(row["metric"])
    v = fmt(row["value"], d)
    if row["value"] is None:
        return v
    ci = "" if row["ci_low"] is None else f" [{fmt(row['ci_low'], d)}, {fmt(row['ci_high'], d)}]"
    best = row["best"]
    n = "" if row.get("n") is None or row.get("n_table") in (None, row["n"]) else f" (n={int(row['n'])})"
    if html:
        v = f"<b>{v}</b>" if best else v
        return f"{v}<span class='ci'>{ci}{n}</span>"
    return (f"**{v}**" if best else v) + ci + n


def markdown_table(table: TaskTable, df: Any) -> str:
    """One Markdown table: rows = runs, cells 'value [CI]', the best per column in bold; n = the samples scored, and
    a cell over fewer (e.g. FID over the samples that produced an image) says its own n."""
    cols = columns_for(table)
    head = ["model", "n"] + [f"{display(k)} {'↑' if _higher(df, k) else '↓'}" for k in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for order in sorted(set(df["order"])):
        sub = df[df["order"] == order].set_index("metric")
        first = sub.iloc[0]
        label = md_text(first["label"]) + (" *(bound)*" if first["bound"] else "")
        n = int(first["n_samples"])
        cells = [cell_text(sub.loc[k].to_dict() | {"metric": k, "n_table": n}) for k in cols]
        lines.append("| " + " | ".join([label, str(n), *cells]) + " |")
    return "\n".join(lines)


def _higher(df: Any, key: str) -> bool:
    sub = df[df["metric"] == key]
    return bool(sub["higher_is_better"].iloc[0]) if len(sub) else True


CSV_COLUMNS = ("task", "split", "n_samples", "protocol", "model", "label", "default_run", "run", "checkpoint",
               "checkpoint_sha256", "metric", "display", "value", "ci_low", "ci_high", "n", "higher_is_better", "best",
               "compat", "bound")  # fmt: skip


def csv_text(frames: Sequence[Any]) -> str:
    """All tables as one long CSV (fixed float format, fixed column order; text that a spreadsheet would read as a
    formula is quoted, ``escaping.csv_cell``)."""
    import pandas as pd

    frames = [f for f in frames if not f.empty]
    if not frames:
        return ",".join(CSV_COLUMNS) + "\n"
    df = pd.concat(frames, ignore_index=True)[list(CSV_COLUMNS)]
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):  # text columns (object or str dtype)
            df[col] = df[col].map(csv_cell)
    return df.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def schema_markdown(keys: Sequence[str]) -> str:
    lines = ["| column | direction | units | what it is |", "|---|---|---|---|"]
    for k in keys:
        e = metric_schema().get(k)
        if not e:
            continue
        compat = " (official-compat variant, flagged)" if e["compat"] else ""
        what = e["description"] + compat
        lines.append(f"| {display(k)} (`{k}`) | {e['direction']} is better | {e['units']} | {what} |")
    return "\n".join(lines)
