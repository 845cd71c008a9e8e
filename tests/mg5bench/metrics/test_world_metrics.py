"""The synthetic world's own metrics: per-object scene accuracy, oracle persistence, CLIP context consistency and
the consistency gap, on hand-made samples with hand-computed values, then on orderings of whole predictions over
small worlds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mg5bench.data.scenes import Geometry, place, render
from mg5bench.metrics import FeatureBank, ScoreItem
from mg5bench.metrics.consistency import ConsistencyGap, ContextConsistency, Persistence, kept_attributes
from mg5bench.metrics.scene import SceneAccuracy
from mg5bench.scoring.statistics import cluster_bootstrap


def _obj(shape: str, colour: str, size: str, cell: int) -> dict[str, Any]:
    return {"shape": shape, "colour": colour, "size": size, "cell": cell}


def _draw(path: Path, objs: list[dict[str, Any]]) -> str:
    rng = np.random.default_rng(0)
    scene = {"background": [200, 200, 200], "objects": [place(o, Geometry(48), rng) for o in objs]}
    Image.fromarray(render(scene, 48)).save(path)
    return str(path)


def _item(story: str, step: int, target: list[dict[str, Any]] | None, gen: str | None,
          gt: str | None = None) -> ScoreItem:  # fmt: skip
    scenes = [{"background": [200, 200, 200], "objects": target}] if target is not None else []
    return ScoreItem(f"{story}_{step}", story, "", "", [gt] if gt else [], [gen] if gen else [], None,
                     scenes=scenes, meta={"story_id": story, "step": step})  # fmt: skip


P0, P1, P2 = _obj("circle", "red", "big", 0), _obj("circle", "red", "big", 1), _obj("triangle", "red", "big", 1)
B, B_WRONG = _obj("square", "blue", "small", 4), _obj("square", "green", "small", 4)
Q0, Q1, C = (
    _obj("triangle", "yellow", "small", 8),
    _obj("triangle", "yellow", "small", 7),
    _obj("circle", "purple", "big", 2),
)


def test_scene_accuracy_gives_partial_credit_per_object(tmp_path: Path) -> None:
    m = SceneAccuracy()
    m.update([_item("s", 0, [P0, B], _draw(tmp_path / "a.png", [P0, B_WRONG])),  # one of two objects right
              _item("s", 1, [P0, B], _draw(tmp_path / "b.png", [P0, B])),  # both
              _item("s", 2, [P0, B], None)], FeatureBank({}, {}, 1.0, 3))  # fmt: skip
    out = m.compute()
    assert out["scene_accuracy"] == pytest.approx(1 / 3)
    assert out["scene_accuracy.objects"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["scene_accuracy.colour"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["scene_accuracy.shape"] == pytest.approx((1 + 1 + 0) / 3)


def test_kept_attributes_pairs_objects_as_a_story_step_changes_them() -> None:
    """One event per step: equal objects pair first, the changed one with what it was; appearing and disappearing
    objects have no pair; a pair's equal attributes are the kept ones."""
    every = ["shape", "colour", "size", "cell"]
    # the protagonist moved (cell 0 -> 1), the background stayed; listed in another order
    assert kept_attributes([B, P1], [P0, B]) == [(0, 1, a) for a in every] + [(1, 0, a) for a in every[:3]]
    # reshaped: shape changes, the rest is kept
    assert kept_attributes([P2, B], [P1, B]) == [(0, 0, "colour"), (0, 0, "size"), (0, 0, "cell")] + [
        (1, 1, a) for a in every
    ]
    # C appears: only Q0 is kept; then Q0 disappears: only C
    assert kept_attributes([Q0, C], [Q0]) == [(0, 0, a) for a in every]
    assert kept_attributes([C], [Q0, C]) == [(0, 1, a) for a in every]
    # restated as a new object: what it happens to share (shape and cell here); nothing shared, nothing kept
    assert kept_attributes([_obj("circle", "blue", "small", 0)], [P0]) == [(0, 0, "shape"), (0, 0, "cell")]
    assert kept_attributes([Q0], [P0]) == []


def test_persistence_hand_computed(tmp_path: Path) -> None:
    """Story s: the protagonist moves (step 1) and turns into a triangle (step 2); background B stays: 7 kept
    attributes per step (B's four, the protagonist's three untouched). The model draws B right at step 0, then green
    at steps 1 and 2: B's colour is neither consistent nor right at step 1, consistent but wrong at step 2. Story v:
    B green at step 0, right at step 1 (right, not consistent). Story t: nothing drawn at step 1. Story u has no
    step 0 among the samples."""
    d = lambda name, objs: _draw(tmp_path / f"{name}.png", objs)  # noqa: E731
    items = [
        _item("s", 0, [P0, B], d("s0", [P0, B])),
        _item("s", 1, [P1, B], d("s1", [P1, B_WRONG])),
        _item("s", 2, [P2, B], d("s2", [P2, B_WRONG])),
        _item("t", 0, [Q0, C], d("t0", [Q0, C])),
        _item("t", 1, [Q1, C], None),
        _item("u", 1, [Q1, C], d("u1", [Q1, C])),
        _item("v", 0, [P0, B], d("v0", [P0, B_WRONG])),
        _item("v", 1, [P1, B], d("v1", [P1, B])),
    ]
    m = Persistence()
    m.update(items, FeatureBank({}, {}, 1.0, 3))
    out = m.compute()
    per = m.per_sample()
    six = pytest.approx(6 / 7)
    assert per["persistence"] == [None, six, six, None, 0.0, None, None, six]
    assert per["persistence.previous"] == [None, six, 1.0, None, 0.0, None, None, six]
    assert per["persistence.target"] == [None, six, six, None, 0.0, None, None, 1.0]
    assert out["persistence"] == pytest.approx(18 / 28)
    assert out["persistence.previous"] == out["persistence.target"] == pytest.approx(19 / 28)
    assert out["persistence.step1"] == pytest.approx(4 / 7) and out["persistence.step2"] == pytest.approx(6 / 7)
    assert m.n()["persistence"] == 4 and m.n()["persistence.step2"] == 1
    # the cluster bootstrap resamples stories: story s alone gives (6/7 + 6/7) / 2
    only_s = np.array([1.0 if it.group == "s" else 0.0 for it in items])
    assert m.statistic(only_s)["persistence"] == pytest.approx(6 / 7)
    ci = cluster_bootstrap(m, [it.group for it in items], 200, seed=0)
    assert ci["persistence.step2"] == pytest.approx((6 / 7, 6 / 7))
    assert ci["persistence"][0] <= 18 / 28 <= ci["persistence"][1]


def test_context_consistency_hand_computed() -> None:
    """cos(gen_k, gt_k-1) - cos(gt_k, gt_k-1): anchored on the ground-truth context image, not on the model's own
    previous output (s2's previous output h1 is orthogonal to h2 as well, but the context g1 is what counts)."""
    e = np.eye(3)
    c60 = np.array([0.5, np.sqrt(3) / 2, 0.0])  # cosine 0.5 with e0, sqrt(3)/2 with e1
    bank = FeatureBank({"g0": e[0], "g1": c60, "g2": e[1], "h0": e[1], "h1": 2 * e[0], "h2": c60, "t0": e[2],
                        "t1": e[2], "k0": e[1]}, {}, 1.0, 3)  # fmt: skip
    items = [
        _item("s", 0, None, "h0", "g0"),
        _item("s", 1, None, "h1", "g1"),  # cos(h1, g0) 1 (features are normalised), cos(g1, g0) 0.5 -> +0.5
        _item("s", 2, None, "h2", "g2"),  # cos(h2, g1) 1, cos(g2, g1) sqrt(3)/2 -> 1 - sqrt(3)/2
        _item("t", 0, None, "k0", "t0"),
        _item("t", 1, None, None, "t1"),  # no image: cos 0, cos(t1, t0) 1 -> -1
    ]
    m = ContextConsistency()
    m.update(items, bank)
    out = m.compute()
    r3 = np.sqrt(3) / 2
    assert m.per_sample()["context_consistency"] == [None, pytest.approx(0.5), pytest.approx(1 - r3), None, -1.0]
    assert out["context_consistency"] == pytest.approx((0.5 + 1 - r3 - 1) / 3)
    assert out["context_consistency.step1"] == pytest.approx((0.5 - 1) / 2)
    assert out["context_consistency.step2"] == pytest.approx(1 - r3)
    assert out["context_consistency.generated"] == pytest.approx(2 / 3)
    assert out["context_consistency.ground_truth"] == pytest.approx((0.5 + r3 + 1) / 3)
    assert m.warning is None  # negative on average
    copy = ContextConsistency()  # drawing the context image again: closer to it than the truth, positive, warned
    copy.update([_item("s", 0, None, "h0", "g0"), _item("s", 1, None, "g0", "g1")], bank)
    assert copy.compute()["context_consistency"] == pytest.approx(0.5) and "positive" in (copy.warning or "")


def test_consistency_gap_hand_computed() -> None:
    e = np.eye(3)
    c60 = np.array([0.5, np.sqrt(3) / 2, 0.0])  # cosine 0.5 with e0, sqrt(3)/2 with e1
    bank = FeatureBank({"g0": e[0], "g1": c60, "g2": e[1], "h0": e[0], "h1": 2 * e[0], "h2": e[2], "t0": e[2],
                        "t1": e[2], "k0": e[1]}, {}, 1.0, 3)  # fmt: skip
    items = [
        _item("s", 0, None, "h0", "g0"),
        _item("s", 1, None, "h1", "g1"),  # gen cos 1 (features are normalised), gt cos 0.5 -> +0.5
        _item("s", 2, None, "h2", "g2"),  # gen cos 0, gt cos sqrt(3)/2
        _item("t", 0, None, "k0", "t0"),
        _item("t", 1, None, None, "t1"),  # no image: gen cos 0, gt cos 1 -> -1
    ]
    m = ConsistencyGap()
    m.update(items, bank)
    out = m.compute()
    r3 = np.sqrt(3) / 2
    assert m.per_sample()["consistency_gap"] == [None, pytest.approx(0.5), pytest.approx(-r3), None, -1.0]
    assert out["consistency_gap"] == pytest.approx((0.5 - r3 - 1) / 3)
    assert out["consistency_gap.step1"] == pytest.approx((0.5 - 1) / 2)
    assert out["consistency_gap.step2"] == pytest.approx(-r3)
    assert out["consistency_gap.generated"] == pytest.approx(1 / 3)
    assert out["consistency_gap.ground_truth"] == pytest.approx((0.5 + r3 + 1) / 3)
    assert m.warning is None  # negative: no caveat


# --- orderings on whole predictions ---------------------------------------------------------------------------------

CONDITIONS = ("gt", "shuffled", "other", "blank")


def _conditions(world: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    """metrics.json entries of four prediction sets for the VIST val split: the ground truth, the story's own images
    rotated by 2 (step k shows the image of step (k + 2) mod 5: never its own, never step k-1's), the next story's
    images (cyclically), and a blank white image at every step."""
    from mg5bench.core.sample import Segment
    from mg5bench.scoring.scorer import score_outputs
    from mg5bench.tasks import build_samples, get_task

    cfg = get_task("vist")
    sset = build_samples(cfg, str(world), "val", progress=False, cache_dir=tmp)
    images: dict[str, dict[int, str]] = {}
    for s in sset.samples:
        images.setdefault(s.group, {})[s.meta["step"]] = s.target_images[0]
    stories = sorted(images)
    following = {sid: stories[(i + 1) % len(stories)] for i, sid in enumerate(stories)}
    blank = tmp / "blank.png"
    Image.new("RGB", (48, 48), (255, 255, 255)).save(blank)
    pick = {
        "gt": lambda sid, k: images[sid][k],
        "shuffled": lambda sid, k: images[sid][(k + 2) % 5],
        "other": lambda sid, k: images[following[sid]][k],
        "blank": lambda sid, k: str(blank),
    }
    out = {}
    names = ["persistence", "context_consistency", "consistency_gap", "scene_accuracy"]
    for name, f in pick.items():
        preds = {s.id: [Segment.image(f(s.group, s.meta["step"]))] for s in sset.samples}
        report = score_outputs(cfg, sset, preds, {}, None, names=names, resamples=200, cache_dir=tmp, progress=False)
        out[name] = report["metrics"]
    return out


@pytest.fixture(scope="module")
def scored(small_world: Path, small_world_l2: Path, small_world_l3: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, dict[str, Any]]]:  # fmt: skip
    return {level: _conditions(root, tmp_path_factory.mktemp(f"order{level}"))
            for level, root in ((1, small_world), (2, small_world_l2), (3, small_world_l3))}  # fmt: skip


def _values(scored: dict, level: int, key: str) -> list[float]:
    return [scored[level][c][key]["value"] for c in CONDITIONS]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_persistence_orders_truth_shuffled_other_blank(scored: dict, level: int) -> None:
    """Kept attributes drawn unchanged and right: the truth all of them; the story's own images shuffled many (at
    level 3 every background attribute, since a story never changes its background); another story's images only
    what they share with this one by chance; a blank image none."""
    gt, shuffled, other, blank = _values(scored, level, "persistence")
    assert gt == 1.0 > shuffled > other > blank == 0.0
    # the halves: another story's images are consistent with themselves far more than they are right
    previous, target = (_values(scored, level, f"persistence.{half}") for half in ("previous", "target"))
    assert previous[0] == target[0] == 1.0 and previous[3] == target[3] == 0.0
    assert previous[2] > target[2]
    # level 3 always keeps its background, so every step k >= 1 is scored; at levels 1 and 2 a restatement that shares
    # nothing with what it replaced can leave nothing to keep
    n = scored[level]["gt"]["persistence"]["n"]
    assert n == 4 * 16 if level == 3 else 0 < n <= 4 * 16


@pytest.mark.parametrize("level", [1, 2, 3])
def test_context_consistency_orders_truth_shuffled_other_blank(scored: dict, level: int) -> None:
    """The truth is exactly 0 (the whole interval); the story's own later images stay closer to the context image
    than another story's do, and a blank image is furthest."""
    gt, shuffled, other, blank = _values(scored, level, "context_consistency")
    assert gt == 0.0 > shuffled > other > blank
    entry = scored[level]["gt"]["context_consistency"]
    assert (entry["ci_low"], entry["ci_high"]) == (0.0, 0.0) and entry["n"] == 4 * 16
    assert scored[level]["shuffled"]["context_consistency"]["ci_high"] < 0
    assert all("warning" not in scored[level][c]["context_consistency"] for c in CONDITIONS)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_consistency_gap_orders_consistency_not_correctness(scored: dict, level: int) -> None:
    """The diagnostic: the ground truth is exactly 0; a shuffled story is less alike step to step (negative, the
    whole interval); another story is on average exactly as alike as this one (0: with a cyclic assignment the same
    pairs are summed), though every one of its images is wrong; a blank image at every step is more alike than any
    story (positive, with the caveat). So the gap ranks consistency alone, not the ordering the ranked results keep."""
    m = {c: scored[level][c] for c in CONDITIONS}
    gap = {c: v["consistency_gap"] for c, v in m.items()}
    assert gap["gt"]["value"] == 0.0 and (gap["gt"]["ci_low"], gap["gt"]["ci_high"]) == (0.0, 0.0)
    assert gap["shuffled"]["value"] < 0 and gap["shuffled"]["ci_high"] < 0
    assert abs(gap["other"]["value"]) < 1e-9 and gap["other"]["ci_low"] < 0 < gap["other"]["ci_high"]
    assert gap["blank"]["ci_low"] > 0 and "positive" in gap["blank"]["warning"]
    assert all("warning" not in gap[c] for c in ("gt", "shuffled", "other"))
    assert gap["gt"]["n"] == 4 * 16  # steps 1-4 of the 16 val stories
    objects = _values(scored, level, "scene_accuracy.objects")
    assert objects[0] == 1.0 > objects[1] > objects[2] >= objects[3] == 0.0


def test_vist_card_shows_the_consistency_metrics(scored: dict) -> None:
    from mg5bench.metrics.schema import headline_keys
    from mg5bench.scoring.scorer import resolve_metrics
    from mg5bench.scoring.summary import format_table
    from mg5bench.tasks import get_task

    cfg = get_task("vist")
    assert {"persistence", "context_consistency", "consistency_gap"} <= set(cfg.metrics)
    names, notes = resolve_metrics(cfg, synthetic=False, metrics=None)  # real data: no scene records
    assert {"context_consistency", "consistency_gap"} <= set(names) and "persistence" not in names
    assert any("persistence" in n for n in notes)
    # the leaderboard and ablations rank on persistence and context consistency; the gap is a diagnostic
    keys = headline_keys("vist", cfg.metrics)
    assert {"persistence", "context_consistency"} <= set(keys) and "consistency_gap" not in keys
    assert headline_keys("vist", ["consistency_gap"]) == ["consistency_gap"]  # asked for alone, it leads
    report = {"metrics": scored[3]["blank"], "evaluator": {"name": "embedded", "weights_sha256": "0" * 64},
              "bootstrap": {"resamples": 200, "cluster": "story"}, "predictions": {"n_missing": 0}}  # fmt: skip
    table = format_table(report)
    for row in ("persistence ^", "persistence.target.step1 ^", "context_consistency ^", "consistency_gap ^",
                "scene_accuracy.objects ^"):  # fmt: skip
        assert row in table
    assert "WARN positive" in table
