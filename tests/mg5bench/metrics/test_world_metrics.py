"""The synthetic world's own metrics: per-object scene accuracy, oracle persistence and the CLIP consistency gap,
on hand-made samples with hand-computed values, then on orderings of whole predictions over small worlds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mg5bench.data.scenes import Geometry, place, render
from mg5bench.metrics import FeatureBank, ScoreItem
from mg5bench.metrics.consistency import ConsistencyGap, Persistence
from mg5bench.metrics.scene import SceneAccuracy
from mg5bench.stats import cluster_bootstrap


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


def test_persistence_hand_computed(tmp_path: Path) -> None:
    """Story s: the protagonist moves (step 1) and turns into a triangle (step 2); background B stays. The model
    draws B right at step 0, then green at steps 1 and 2: inconsistent once (step 1), consistent but wrong once
    (step 2). Story t: the model draws nothing at step 1. Story u has no step 0 among the samples."""
    d = lambda name, objs: _draw(tmp_path / f"{name}.png", objs)  # noqa: E731
    items = [
        _item("s", 0, [P0, B], d("s0", [P0, B])),
        _item("s", 1, [P1, B], d("s1", [P1, B_WRONG])),
        _item("s", 2, [P2, B], d("s2", [P2, B_WRONG])),
        _item("t", 0, [Q0, C], d("t0", [Q0, C])),
        _item("t", 1, [Q1, C], None),
        _item("u", 1, [Q1, C], d("u1", [Q1, C])),
    ]
    m = Persistence()
    m.update(items, FeatureBank({}, {}, 1.0, 3))
    out = m.compute()
    # per item: s1 consistency 0 / correct 0, s2 1 / 0, t1 0 / 0; s0, t0 (step 0) and u1 (no step 0) n/a
    assert m.per_sample()["persistence"] == [None, 0.0, 1.0, None, 0.0, None]
    assert out["persistence"] == pytest.approx(1 / 3) and out["persistence.correct"] == 0.0
    assert out["persistence.step1"] == 0.0 and out["persistence.step2"] == 1.0
    assert m.n()["persistence"] == 3 and m.n()["persistence.step2"] == 1
    # the cluster bootstrap resamples stories: story s alone gives (0 + 1) / 2
    only_s = np.array([1.0 if it.group == "s" else 0.0 for it in items])
    assert m.statistic(only_s)["persistence"] == pytest.approx(0.5)
    ci = cluster_bootstrap(m, [it.group for it in items], 200, seed=0)
    assert ci["persistence.step2"] == (1.0, 1.0) and ci["persistence.correct"] == (0.0, 0.0)
    assert ci["persistence"][0] <= 1 / 3 <= ci["persistence"][1]


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

SHUFFLE = (1, 3, 0, 4, 2)  # step k shows the story's image of step SHUFFLE[k]: no fixed point, no adjacent pair kept


def _conditions(world: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    """metrics.json entries of four prediction sets for the VIST test split: the ground truth, the story's own
    images shuffled across steps, the next story's images (cyclically), and a blank white image at every step."""
    from mg5bench.scoring import score_outputs
    from mg5bench.tasks import build_samples, get_task
    from mg5bench.types import Segment

    cfg = get_task("vist")
    sset = build_samples(cfg, str(world), "test", progress=False, cache_dir=tmp)
    images: dict[str, dict[int, str]] = {}
    for s in sset.samples:
        images.setdefault(s.group, {})[s.meta["step"]] = s.target_images[0]
    stories = sorted(images)
    following = {sid: stories[(i + 1) % len(stories)] for i, sid in enumerate(stories)}
    blank = tmp / "blank.png"
    Image.new("RGB", (48, 48), (255, 255, 255)).save(blank)
    pick = {
        "gt": lambda sid, k: images[sid][k],
        "shuffled": lambda sid, k: images[sid][SHUFFLE[k]],
        "other": lambda sid, k: images[following[sid]][k],
        "blank": lambda sid, k: str(blank),
    }
    out = {}
    for name, f in pick.items():
        preds = {s.id: [Segment.image(f(s.group, s.meta["step"]))] for s in sset.samples}
        report = score_outputs(cfg, sset, preds, {}, None, names=["persistence", "consistency_gap", "scene_accuracy"],
                               resamples=200, cache_dir=tmp, progress=False)  # fmt: skip
        out[name] = report["metrics"]
    return out


@pytest.fixture(scope="module")
def scored(small_world: Path, small_world_l2: Path, small_world_l3: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, dict[str, Any]]]:  # fmt: skip
    return {level: _conditions(root, tmp_path_factory.mktemp(f"order{level}"))
            for level, root in ((1, small_world), (2, small_world_l2), (3, small_world_l3))}  # fmt: skip


@pytest.mark.parametrize("level", [1, 2, 3])
def test_consistency_gap_orders_consistency_not_correctness(scored: dict, level: int) -> None:
    """The ground truth is exactly 0; a shuffled story is less alike step to step (negative, the whole interval);
    another story is on average exactly as alike as this one (0: with a cyclic assignment the same pairs are summed),
    though every one of its images is wrong; a blank image at every step is more alike than any story (positive,
    with the caveat). So the gap ranks consistency, and must be read with a correctness metric."""
    m = {c: scored[level][c] for c in ("gt", "shuffled", "other", "blank")}
    gap = {c: v["consistency_gap"] for c, v in m.items()}
    assert gap["gt"]["value"] == 0.0 and (gap["gt"]["ci_low"], gap["gt"]["ci_high"]) == (0.0, 0.0)
    assert gap["shuffled"]["value"] < 0 and gap["shuffled"]["ci_high"] < 0
    assert abs(gap["other"]["value"]) < 1e-9 and gap["other"]["ci_low"] < 0 < gap["other"]["ci_high"]
    assert gap["blank"]["ci_low"] > 0 and "positive" in gap["blank"]["warning"]
    assert all("warning" not in gap[c] for c in ("gt", "shuffled", "other"))
    assert gap["gt"]["n"] == 4 * 16  # steps 1-4 of the 16 test stories
    objects = [m[c]["scene_accuracy.objects"]["value"] for c in ("gt", "shuffled", "other", "blank")]
    assert objects[0] == 1.0 > objects[1] > objects[2] == objects[3] == 0.0


def test_persistence_orders_predictions(scored: dict) -> None:
    """Level 1 has nothing to keep (every event changes the one object): not applicable. Level 2: the truth keeps
    everything, a shuffled story part of it (objects it did not touch), another story's images draw none of it right,
    a blank image nothing. Level 3: a shuffled story keeps every background object (the only objects the story keeps),
    so it scores as the truth does; another story's background is consistent with itself, never right."""
    p1 = scored[1]
    assert p1["gt"]["persistence"]["n"] == 0 and p1["gt"]["persistence"]["value"] is None
    p2 = {c: (v["persistence"]["value"], v["persistence.correct"]["value"]) for c, v in scored[2].items()}
    assert p2["gt"] == (1.0, 1.0) and p2["blank"] == (0.0, 0.0)
    assert 1.0 > p2["shuffled"][1] > p2["other"][1] == 0.0
    assert 0.0 < p2["other"][0] < 1.0 and 0.0 < p2["shuffled"][0] < 1.0
    p3 = {c: (v["persistence"]["value"], v["persistence.correct"]["value"]) for c, v in scored[3].items()}
    assert p3["gt"] == p3["shuffled"] == (1.0, 1.0) and p3["blank"] == (0.0, 0.0)
    assert 0.0 < p3["other"][0] < 1.0 and p3["other"][1] == 0.0
    assert scored[3]["gt"]["persistence.step4"]["n"] == 16


def test_vist_card_shows_the_consistency_metrics(scored: dict) -> None:
    from mg5bench.scoring import resolve_metrics
    from mg5bench.table import format_table
    from mg5bench.tasks import get_task

    cfg = get_task("vist")
    assert {"persistence", "consistency_gap"} <= set(cfg.metrics)
    names, notes = resolve_metrics(cfg, synthetic=False, metrics=None)  # real data: no scene records
    assert "consistency_gap" in names and "persistence" not in names and any("persistence" in n for n in notes)
    report = {"metrics": scored[3]["blank"], "evaluator": {"name": "embedded", "weights_sha256": "0" * 64},
              "bootstrap": {"resamples": 200, "cluster": "story"}, "predictions": {"n_missing": 0}}  # fmt: skip
    table = format_table(report)
    for row in ("persistence ^", "persistence.correct.step1 ^", "consistency_gap ^", "scene_accuracy.objects ^"):
        assert row in table
    assert "WARN positive" in table
