"""Metric meta-evaluation on the synthetic world: across every model variant scored on the same VIST samples, how
well CLIP-I, CLIP-T, FID and KID rank the variants the way the oracle's scene accuracy (exact, and colour) does:
Spearman's rho with two 95% intervals that cover different uncertainties. The story-level one (a cluster bootstrap
that resamples the same stories for every variant) holds the variants fixed: would the ranking agree on other
stories? The variant-level one (Fisher's z over the variants) treats the variants as a sample of models: would it
agree on other models? With a dozen variants the second is much wider, and it is the one a claim about the metric
in general needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.tasks import SampleCache

METRICS = ("clip_i", "clip_t", "fid", "kid")
TRUTH = ("scene_accuracy", "scene_accuracy.colour")


def meta_evaluate(rows: Sequence[Any], n: int, *, evaluator: str, resamples: int = 1000, seed: int = 0,
                  device: str = "cpu", cache_dir: Path | None = None, exclude: Sequence[str] = ("gt", "blank"),
                  progress: bool = False, samples: SampleCache | None = None) -> dict[str, Any]:  # fmt: skip
    """``rows``: RunRecords of one table (the same samples). Returns rho per (metric, truth) with its CI, the
    variants used and their values. ``samples``: the report's sample cache."""
    from mg5bench.catalog import make_metric
    from mg5bench.data.world import default_cache_dir
    from mg5bench.leaderboard.collect import sample_set
    from mg5bench.metrics import MetricContext
    from mg5bench.scoring.evaluators import load_evaluator
    from mg5bench.scoring.features import build_bank
    from mg5bench.scoring.items import load_run_items
    from mg5bench.scoring.statistics import spearman_bootstrap, spearman_fisher_ci

    used = [r for r in rows if r.model not in exclude and r.score is not None]
    if len(used) < 3:
        return {"note": f"needs at least 3 variants scored on the same samples, found {len(used)}"}
    samples = samples if samples is not None else SampleCache()
    ssets = [sample_set(r, samples, cache_dir) for r in used]
    runs = [load_run_items(r.label, r.folder, sset, n) for r, sset in zip(used, ssets, strict=True)]
    ev = load_evaluator(evaluator, device)
    first = ssets[0]
    items = [it for run in runs for it in run.items.values()]
    bank, _ = build_bank(ev, items, first, Path(cache_dir) if cache_dir else default_cache_dir(), progress)
    ctx = MetricContext(runs[0].info["key"]["task"]["format"], None, device)
    names = sorted({k.split(".")[0] for k in METRICS + TRUTH})
    ids = runs[0].ids
    groups = [runs[0].items[i].group for i in ids]
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    built = []
    for run in runs:
        if run.ids != ids:
            raise ValueError("meta-evaluation needs every variant over the same samples")
        ms = {}
        for name in names:
            m = make_metric(name, ctx)
            m.update([run.items[i] for i in ids], bank)
            ms[name] = m
        built.append(ms)
    keys = list(METRICS + TRUTH)

    def values(w: np.ndarray) -> np.ndarray:
        out = np.empty((len(built), len(keys)))
        for j, ms in enumerate(built):
            stats: dict[str, float] = {}
            for m in ms.values():
                stats.update(m.statistic(w))
            out[j] = [stats.get(k, np.nan) for k in keys]
        return out

    point = values(np.ones(len(ids)))
    rng = np.random.default_rng(seed)
    reps = np.empty((resamples, len(built), len(keys)))
    for r in range(resamples):
        reps[r] = values(np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[inv].astype(float))
    result: dict[str, Any] = {
        "variants": [run.name for run in runs],
        "values": {run.name: {k: float(point[j, i]) for i, k in enumerate(keys)} for j, run in enumerate(runs)},
        "n_samples": len(ids),
        "clusters": len(uniq),
        "resamples": resamples,
        "excluded": list(exclude),
        "rho": {},
    }
    for truth in TRUTH:
        t = keys.index(truth)
        for metric in METRICS:
            mi = keys.index(metric)
            s = spearman_bootstrap(reps[:, :, mi], reps[:, :, t], point[:, mi], point[:, t])
            ties = int(len(point) - len(np.unique(point[:, t])))
            fz = spearman_fisher_ci(s["rho"], len(point))
            result["rho"][f"{metric}~{truth}"] = {"metric": metric, "truth": truth, "rho": _clean(s["rho"]),
                                                  "ci": [_clean(s["ci"][0]), _clean(s["ci"][1])],
                                                  "ci_variants": [_clean(fz[0]), _clean(fz[1])],
                                                  "replicates": s["replicates"], "ties_in_truth": ties}  # fmt: skip
    return result


def _clean(x: float) -> float | None:
    return None if x is None or x != x else float(x)


def markdown(meta: dict[str, Any]) -> str:
    if "note" in meta:
        return f"Not computed: {meta['note']}."
    lines = [
        f"Spearman's rho across {len(meta['variants'])} model variants (the bounds {', '.join(meta['excluded'])} left "
        f"out), each scored on the same {meta['n_samples']} samples. Two 95% intervals: *stories*, from "
        f"{meta['resamples']} cluster-bootstrap replicates over the {meta['clusters']} stories shared by all variants "
        "(the variants held fixed: would the ranking hold on other stories?); *variants*, Fisher's z over the "
        f"{len(meta['variants'])} variants (variance 1.06/(n-3); the variants as a sample of models: would it hold for "
        "other models?). A metric that ranks models as the oracle does has rho near +1 (higher-is-better metrics) or "
        "near -1 (FID, KID). The bootstrap distribution of a rank correlation is skewed, so a point estimate can sit "
        "near the edge of its story interval.",
        "",
        "| metric | vs oracle exact scene | vs oracle colour |",
        "|---|---|---|",
    ]
    for metric in METRICS:
        cells = []
        for truth in TRUTH:
            e = meta["rho"][f"{metric}~{truth}"]
            rho = "n/a" if e["rho"] is None else f"{e['rho']:+.2f}"
            ci = "" if e["ci"][0] is None else f" stories [{e['ci'][0]:+.2f}, {e['ci'][1]:+.2f}]"
            cv = e.get("ci_variants") or [None, None]
            ci += "" if cv[0] is None else f", variants [{cv[0]:+.2f}, {cv[1]:+.2f}]"
            ties = f" ({e['ties_in_truth']} ties)" if e["ties_in_truth"] else ""
            cells.append(rho + ci + ties)
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
