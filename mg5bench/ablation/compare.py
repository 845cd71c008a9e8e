"""Paired comparison of stored runs on the samples they share: every metric is computed by the scorer's own metric
classes on the same items, so a value here equals the run's scored value on the same samples, and the difference
of two runs gets a paired cluster-bootstrap CI and a paired permutation p-value (``mg5bench.stats``).

The p-value's test, per result:

- a result with per-sample values (CLIP scores, scene accuracy, text metrics): the sign-flip test on the
  clusters' mean differences, weighted as the metric averages (by sample, or one weight per cluster);
- a set-level result (FID, KID, image rate, produced-only means, conversation-level F1): the cluster swap test,
  which recomputes the metric with the two runs' outputs exchanged in a random half of the clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mg5bench.errors import DataError
from mg5bench.metrics.base import ScoreItem

# the results an ablation and the leaderboard lead with, per task format (others stay in the JSON)
HEADLINE: dict[str, tuple[str, ...]] = {
    "vist": ("clip_i", "clip_i.image_rate", "clip_t", "fid", "kid", "scene_accuracy", "scene_accuracy.colour"),
    "cc3m": ("clip_i", "clip_i.image_rate", "clip_t", "fid", "kid", "scene_accuracy", "scene_accuracy.colour"),
    "mmdialog": ("mm_relevance", "bleu1", "bleu2", "rouge_l", "sbert", "clip_i", "clip_i.image_rate", "fid",
                 "kid", "scene_accuracy", "scene_accuracy.colour"),
}  # fmt: skip


def headline_keys(task_format: str, metric_names: Sequence[str]) -> list[str]:
    """The headline results present among ``metric_names`` (a metric named outside the defaults leads too)."""
    keys = [k for k in HEADLINE.get(task_format, ()) if k.split(".")[0] in metric_names]
    keys += [m for m in metric_names if m not in keys and not any(k.split(".")[0] == m for k in keys)]
    return keys


@dataclass
class RunItems:
    """A stored run's outputs as the metrics see them, for the first ``len(ids)`` samples of its split."""

    name: str
    folder: Path
    info: dict[str, Any]
    ids: list[str]
    items: dict[str, ScoreItem]
    targets: dict[str, tuple[Any, ...]]


def load_run_items(name: str, folder: Path, sset: Any, n: int) -> RunItems:
    """Read a run folder's first ``n`` stored samples (every one must be stored) into ScoreItems."""
    from mg5bench.scoring import make_item, output_segments
    from mg5bench.store import RunStore

    store = RunStore(Path(folder))
    info = store.read_info()
    records = store.done()
    ids = [s.id for s in sset.samples[:n]]
    missing = [i for i in ids if i not in records]
    if missing:
        raise DataError(str(store.root), f"sample {missing[0]}", f"{len(missing)} of the {n} samples are not stored",
                        "generate them: rerun 'mg5bench ablate' without --no-generate")  # fmt: skip
    by_id = {s.id: s for s in sset.samples[:n]}
    items, targets = {}, {}
    roots = [store.root.resolve(), Path(sset.source.root).resolve()]  # as the scorer: the run's images, the data's
    for sid in ids:
        segs = output_segments(records[sid]["output"], store.root, store.samples, f"id {sid}", roots)
        items[sid] = make_item(by_id[sid], segs)
        targets[sid] = tuple(by_id[sid].target)
    return RunItems(name, store.root, info, ids, items, targets)


def shared_ids(base: RunItems, other: RunItems) -> list[str]:
    """The samples both runs hold, in the base's order; their targets must be the same (else the two runs are not
    over the same samples: different data, split or protocol)."""
    have = set(other.ids)
    ids = [i for i in base.ids if i in have]
    for sid in ids:
        if base.targets[sid] != other.targets[sid]:
            raise DataError(str(other.folder), f"sample {sid}", f"its target differs from the one in {base.folder}",
                            "compare runs over the same data and split")  # fmt: skip
    return ids


def _metric(name: str, ctx: Any, items: Sequence[ScoreItem], bank: Any) -> Any:
    from mg5bench.metrics import make_metric

    m = make_metric(name, ctx)
    m.update(list(items), bank)
    return m


def _clean(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def values_on(items: Sequence[ScoreItem], names: Sequence[str], ctx: Any, bank: Any, *, resamples: int = 1000,
              seed: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each result of ``names`` on ``items`` with its cluster-bootstrap CI (as the scorer computes them)."""
    from mg5bench.stats import cluster_bootstrap

    groups = [it.group for it in items]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        m = _metric(name, ctx, items, bank)
        values = m.statistic(np.ones(len(items)))
        cis = cluster_bootstrap(m, groups, resamples, seed) if resamples else {}
        counts = m.n()
        for key, v in values.items():
            lo, hi = cis.get(key, (float("nan"), float("nan")))
            out[key] = {"value": _clean(v), "ci": [_clean(lo), _clean(hi)], "n": counts.get(key, counts.get(name)),
                        "higher_is_better": bool(m.higher(key))}  # fmt: skip
    return out


def _weighting(diff: float, a: np.ndarray, b: np.ndarray, groups: list[str]) -> str | None:
    """How the metric averages its per-sample values: the weighting whose paired mean reproduces ``diff``."""
    from mg5bench.stats import cluster_means

    both = ~np.isnan(a) & ~np.isnan(b)
    _, ma, counts = cluster_means(np.where(both, a, np.nan), groups)
    _, mb, _ = cluster_means(np.where(both, b, np.nan), groups)
    keep = counts > 0
    if not keep.any():
        return None
    d = (ma - mb)[keep]
    for name, w in (("sample", counts[keep]), ("cluster", np.ones(int(keep.sum())))):
        if abs(float((w * d).sum() / w.sum()) - diff) <= 1e-9 * max(1.0, abs(diff)):
            return name
    return None


def _produced(values: Sequence[Any], items: Sequence[ScoreItem]) -> list[float | None]:
    """Per sample: 1 if an image was generated, 0 if not, None where the metric does not apply (its image rate)."""
    return [None if v is None else (1.0 if it.gen_image is not None else 0.0) for v, it in zip(values, items,
                                                                                             strict=True)]  # fmt: skip


def _sign_flip(diff: float, other: Sequence[Any] | None, base: Sequence[Any] | None, groups: list[str],
               seed: int) -> tuple[float | None, str] | None:  # fmt: skip
    """The sign-flip p-value of per-sample values, weighted as the metric averages them; None when neither
    weighting reproduces the metric's difference (then the swap test decides)."""
    from mg5bench.stats import cluster_means, sign_flip_test

    a = np.asarray([np.nan if x is None else x for x in other or []], dtype=np.float64)
    b = np.asarray([np.nan if x is None else x for x in base or []], dtype=np.float64)
    if len(a) != len(groups) or len(b) != len(groups):
        return None
    weighting = _weighting(diff, a, b, groups)
    if weighting is None:
        return None
    both = ~np.isnan(a) & ~np.isnan(b)
    _, ma, cnt = cluster_means(np.where(both, a, np.nan), groups)
    _, mb, _ = cluster_means(np.where(both, b, np.nan), groups)
    keep = cnt > 0
    w = cnt[keep] if weighting == "sample" else np.ones(int(keep.sum()))
    p = sign_flip_test((ma - mb)[keep], w, exact_max=16, permutations=9999, seed=seed)
    return _clean(p), f"sign-flip over {int(keep.sum())} clusters ({weighting}-weighted)"


def compare(
    base_items: Sequence[ScoreItem],
    other_items: Sequence[ScoreItem],
    names: Sequence[str],
    ctx: Any,
    bank: Any,
    *,
    keys: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    permutations: int = 999,
    exact_max: int = 12,
) -> dict[str, dict[str, Any]]:
    """Per result: base and other values on the same samples, other - base with its paired cluster-bootstrap CI,
    and the paired permutation p-value (module docstring). ``keys`` limits the p-values to those results (the
    rest get the CI only); ``base_items[i]`` and ``other_items[i]`` must be the same sample."""
    from mg5bench.stats import cluster_swap_test, paired_bootstrap_replicates, percentile_ci

    if [i.id for i in base_items] != [i.id for i in other_items]:
        raise ValueError("compare() needs the same samples in the same order on both sides")
    groups = [it.group for it in base_items]
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    ones = np.ones(len(base_items))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        mb = _metric(name, ctx, base_items, bank)
        mo = _metric(name, ctx, other_items, bank)
        vb, vo = mb.statistic(ones), mo.statistic(ones)
        reps = paired_bootstrap_replicates(mo, mb, groups, resamples, seed) if resamples else {}
        pb, po = mb.per_sample(), mo.per_sample()
        swap_keys: list[str] = []
        counts_b, counts_o = mb.n(), mo.n()
        for key in vb.keys() & vo.keys():
            diff = float(vo[key]) - float(vb[key])
            r = reps.get(key)
            entry: dict[str, Any] = {
                "base": _clean(vb[key]),
                "value": _clean(vo[key]),
                "diff": _clean(diff),
                "diff_ci": list(map(_clean, percentile_ci(r[2]))) if r is not None else [None, None],
                "base_ci": list(map(_clean, percentile_ci(r[1]))) if r is not None else [None, None],
                "value_ci": list(map(_clean, percentile_ci(r[0]))) if r is not None else [None, None],
                "n": counts_o.get(key, counts_o.get(name)),
                "n_base": counts_b.get(key, counts_b.get(name)),
                "clusters": len(uniq),
                "higher_is_better": bool(mo.higher(key)),
                "p": None,
                "test": None,
            }
            out[key] = entry
            if (keys is not None and key not in keys) or np.isnan(diff):
                continue
            if key in pb and key in po:
                flip = _sign_flip(diff, po[key], pb[key], groups, seed)
            elif key.endswith(".image_rate") and name in pb and name in po:  # produced (1) or not (0) per sample
                flip = _sign_flip(diff, _produced(po[name], other_items), _produced(pb[name], base_items), groups, seed)
            else:
                flip = None
            if flip is None:
                swap_keys.append(key)
            else:
                entry["p"], entry["test"] = flip
        if swap_keys:

            def statistic(swap: np.ndarray, _name: str = name, _keys: tuple[str, ...] = tuple(swap_keys)) -> dict:
                s = swap[inv]
                ob = [o if x else b for b, o, x in zip(base_items, other_items, s, strict=True)]
                oo = [b if x else o for b, o, x in zip(base_items, other_items, s, strict=True)]
                sb = _metric(_name, ctx, ob, bank).statistic(ones)
                so = _metric(_name, ctx, oo, bank).statistic(ones)
                return {k: float(so[k]) - float(sb[k]) for k in _keys}

            ps = cluster_swap_test(statistic, len(uniq), exact_max=exact_max, permutations=permutations, seed=seed)
            how = "exact" if len(uniq) <= exact_max else f"{permutations} random"
            for key in swap_keys:
                out[key]["p"] = _clean(ps[key])
                out[key]["test"] = f"cluster swap ({how} arrangements of {len(uniq)} clusters)"
    return dict(sorted(out.items()))


def diff_summary(entry: Mapping[str, Any]) -> str:
    """'+0.0123 [-0.0040, +0.0290] p 0.210' for a compare() entry."""
    if entry.get("diff") is None:
        return "n/a"
    lo, hi = entry["diff_ci"]
    ci = "" if lo is None else f" [{lo:+.4f}, {hi:+.4f}]"
    p = "" if entry.get("p") is None else f" p {format_p(entry['p'])}"
    return f"{entry['diff']:+.4f}{ci}{p}"


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
