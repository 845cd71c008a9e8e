"""Pairing two run folders into a study: the context as the model saw it, outputs and gold items rooted in the
study's folders, and one-line refusals for runs that do not match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from human_fixtures import VIST_DATA, VIST_IDS, ablated_runs, make_real_run, make_run, vist_fingerprint

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.human.assignment import GOLD_BLANK, GOLD_GT
from mg5bench.human.ratings import resolve_inside_roots
from mg5bench.human.runs import build_plan, describe_run, find_run, load_run


@pytest.fixture(scope="module")
def fp() -> str:
    return vist_fingerprint()


def test_plan_pairs_outputs_with_the_context_the_model_saw(tmp_path: Path, fp: str) -> None:
    from PIL import Image

    from mg5bench.tasks import build_samples, get_task

    a = make_run(tmp_path, "alpha", (255, 0, 0), fingerprint=fp, word="red")
    b = make_run(tmp_path, "beta", (0, 0, 255), fingerprint=fp, word="blue")
    plan = build_plan(a, b)
    assert (plan.task, plan.split, plan.model_x, plan.model_y) == ("vist", "val", "alpha", "beta")
    assert [p.sample_id for p in plan.pairs] == VIST_IDS
    samples = {s.id: s for s in build_samples(get_task("vist"), str(VIST_DATA), "val", progress=False).samples}
    for item in plan.pairs:
        ctx = item.payload["context"]
        expected = samples[item.sample_id].context
        assert len(ctx) == len(expected)
        for seg, want in zip(ctx, expected, strict=True):
            if want.is_text:
                assert seg == {"text": want.value}
            else:
                assert seg["root"] == "data" and resolve_inside_roots(plan.roots, seg) == Path(want.value).resolve()
        x, y = item.payload["outputs"]["x"], item.payload["outputs"]["y"]
        assert x[0] == {"text": f"red {item.sample_id}"} and y[0] == {"text": f"blue {item.sample_id}"}
        assert resolve_inside_roots(plan.roots, x[1]) == a / "images" / f"{item.sample_id}_0.png"
        assert resolve_inside_roots(plan.roots, y[1]) == b / "images" / f"{item.sample_id}_0.png"
    assert len(plan.gold) == 5
    for g in plan.gold:
        assert (g.model_x, g.model_y) == (GOLD_GT, GOLD_BLANK)
        (target,) = g.payload["outputs"]["x"]
        assert resolve_inside_roots(plan.roots, target) == Path(samples[g.sample_id].target[0].value).resolve()
        with Image.open(samples[g.sample_id].target[0].value) as im:
            assert g.payload["outputs"]["y"] == [{"blank": im.size[0]}]  # a white image of the target's size
    sub = build_plan(a, b, items=3, seed=5)
    assert len(sub.pairs) == 3 and build_plan(a, b, items=3, seed=5).pairs == sub.pairs


def test_runs_that_do_not_match_are_refused_in_one_line(tmp_path: Path, fp: str) -> None:
    a = make_run(tmp_path, "alpha", (255, 0, 0), fingerprint=fp)
    cases = [
        (make_run(tmp_path / "1", "beta", (1, 1, 1), ids=VIST_IDS[:3], fingerprint=fp), ConfigError,
         "do not cover the same samples"),
        (make_run(tmp_path / "2", "beta", (2, 2, 2), ids=[*VIST_IDS, "40470_9"], fingerprint=fp), ConfigError,
         "1 id(s) in only one (e.g. '40470_9')"),
        (make_run(tmp_path / "3", "beta", (3, 3, 3), split="test", fingerprint=fp), ConfigError, "differ in split"),
        (make_run(tmp_path / "4", "beta", (4, 4, 4), fingerprint="0" * 16), ConfigError, "different data"),
    ]  # fmt: skip
    for b, err, needle in cases:
        with pytest.raises(err) as e:
            build_plan(a, b)
        assert needle in str(e.value) and "\n" not in str(e.value)
    same_lie = make_run(tmp_path / "5", "beta", (5, 5, 5), fingerprint="f" * 16)
    lie = make_run(tmp_path / "6", "alpha", (6, 6, 6), fingerprint="f" * 16)
    with pytest.raises(DataError, match="the data changed since the runs"):
        build_plan(lie, same_lie)


def test_incomplete_and_broken_run_folders(tmp_path: Path, fp: str) -> None:
    with pytest.raises(DataError, match="not a run folder"):
        load_run(tmp_path)
    a = make_run(tmp_path, "alpha", (255, 0, 0), fingerprint=fp)
    (a / "samples.rank0.jsonl").write_text("")
    with pytest.raises(DataError, match="not complete") as e:
        load_run(a)
    assert "rerun 'mg5bench run --task vist --model alpha --split val'" in str(e.value)
    (a / "samples.rank0.jsonl").unlink()
    lines = (a / "samples.jsonl").read_text().splitlines()
    (a / "samples.jsonl").write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"samples.jsonl: line 2: malformed sample record"):
        load_run(a)
    (a / "samples.jsonl").write_text("\n".join([lines[0], lines[0]]) + "\n")
    with pytest.raises(DataError, match="duplicate sample id"):
        load_run(a)


def test_an_output_image_outside_the_run_is_refused(tmp_path: Path, fp: str) -> None:
    a = make_run(tmp_path, "alpha", (255, 0, 0), fingerprint=fp)
    b = make_run(tmp_path, "beta", (0, 0, 255), fingerprint=fp)
    secret = tmp_path / "secret.png"
    secret.write_bytes((b / "images" / "40470_0_0.png").read_bytes())
    for bad in ("../../../../secret.png", str(secret)):
        recs = [json.loads(x) for x in (b / "samples.jsonl").read_text().splitlines()]
        recs[0]["output"][1]["image"] = bad
        (b / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        with pytest.raises(DataError, match="outside the run folder and the data folder"):
            build_plan(a, b)


def test_find_run_and_same_model_twice(tmp_path: Path, fp: str) -> None:
    with pytest.raises(ConfigError, match="run 'mg5bench run --task vist --model alpha --split val' first"):
        find_run(tmp_path, "vist", "alpha", "val")
    a = make_run(tmp_path, "alpha", (255, 0, 0), fingerprint=fp)
    make_run(tmp_path, "alpha", (9, 9, 9), split="test", fingerprint=fp)
    assert find_run(tmp_path, "vist", "alpha", "val") == a
    a2 = make_run(tmp_path, "alpha", (0, 255, 0), fingerprint=fp)
    with pytest.raises(ConfigError, match=r"2 runs of alpha on vist val .* default settings .*pick one with --run-a"):
        find_run(tmp_path, "vist", "alpha", "val")
    plan = build_plan(a, a2)  # the same model, and no setting tells the runs apart: their folders do
    assert plan.model_x == f"alpha [{a.name}]" and plan.model_y == f"alpha [{a2.name}]"


@pytest.fixture(scope="module")
def ablated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ablated_runs(tmp_path_factory.mktemp("ablated") / "runs")


def test_every_run_is_labelled_by_its_checkpoint_and_changed_settings(ablated: dict[str, Path]) -> None:
    labels = {name: describe_run(folder) for name, folder in ablated.items()}
    assert {name: r.label for name, r in labels.items()} == {
        "default": "minigpt5: stage2-vist (shipped), default settings",
        "gs1": "minigpt5: stage2-vist (shipped), guidance_scale=1",
        "gs7.5": "minigpt5: stage2-vist (shipped), guidance_scale=7.5",
        "text": "minigpt5: stage2-vist (shipped), context=text",
        "seed1": "minigpt5: stage2-vist (shipped), seed=1",
        "no-cfg": "minigpt5: stage2-vist-no-cfg, default settings",
        "train-seed1": "minigpt5: stage2-vist-seed1, default settings",
        "sd2-ft": "sd2-ft: sd2-ft-vist (shipped), default settings",
    }
    assert [n for n, r in labels.items() if r.default] == ["default", "sd2-ft"]
    assert labels["default"].study_name == "minigpt5" and labels["no-cfg"].study_name == "minigpt5 (stage2-vist-no-cfg)"
    assert labels["gs1"].study_name == "minigpt5 (guidance_scale=1)"


def test_labels_of_other_model_args_and_of_a_retrained_checkpoint(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    forced = describe_run(make_real_run(runs, "minigpt5", (1, 1, 1), model_args={"force_generation": True}))
    assert forced.label == "minigpt5: stage2-vist (shipped), force_generation=true" and not forced.default
    old = make_real_run(runs, "minigpt5", (2, 2, 2))  # made before the shipped checkpoint was retrained
    info = json.loads((old / "run.json").read_text())
    info["key"]["model"]["sha256"] = "0" * 64
    (old / "run.json").write_text(json.dumps(info))
    assert describe_run(old).label == "minigpt5: stage2-vist (an earlier build), default settings"
    with pytest.raises(ConfigError, match="none of the 2 complete run"):
        find_run(runs, "vist", "minigpt5", "val")


def test_models_pick_the_shipped_checkpoint_at_default_settings(ablated: dict[str, Path]) -> None:
    runs = ablated["default"].parents[2]
    assert find_run(runs, "vist", "minigpt5", "val") == ablated["default"]
    assert find_run(runs, "vist", "sd2-ft", "val") == ablated["sd2-ft"]
    plan = build_plan(ablated["default"], ablated["no-cfg"])
    assert (plan.model_x, plan.model_y) == ("minigpt5", "minigpt5 (stage2-vist-no-cfg)")
    assert plan.labels == {"x": "minigpt5: stage2-vist (shipped), default settings",
                           "y": "minigpt5: stage2-vist-no-cfg, default settings"}  # fmt: skip


def test_without_the_default_run_the_error_lists_the_candidates(ablated: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    runs = tmp_path / "runs"
    for name in ("gs1", "no-cfg"):
        shutil.copytree(ablated[name], runs / "vist" / "minigpt5" / ablated[name].name)
    with pytest.raises(ConfigError) as e:
        find_run(runs, "vist", "minigpt5", "val", flag="--run-b")
    msg = str(e.value)
    assert "\n" not in msg and "none of the 2 complete run(s) of minigpt5 on vist val" in msg
    assert "pick one with --run-b FOLDER" in msg
    for name in ("gs1", "no-cfg"):
        assert f"{describe_run(ablated[name]).settings} ({ablated[name].name})" in msg
    # two runs that no setting tells apart (here: the same run copied under another name): both listed
    shutil.copytree(ablated["default"], runs / "vist" / "minigpt5" / "val-seed0-gs3-steps25-bs10-cpu1-000000000000")
    shutil.copytree(ablated["default"], runs / "vist" / "minigpt5" / ablated["default"].name)
    with pytest.raises(
        ConfigError,
        match=r"2 runs of minigpt5 on vist val .* are the shipped checkpoint at default "
        r"settings .*cpu1-000000000000.*; stage2-vist \(shipped\), default settings \(val-",
    ):
        find_run(runs, "vist", "minigpt5", "val")


def test_the_plan_asks_only_what_both_outputs_show(tmp_path: Path) -> None:
    from mg5bench.human.assignment import ASPECTS

    runs = tmp_path / "runs"
    images = make_real_run(runs, "minigpt5", (255, 0, 0))  # VIST outputs: one image each
    images_too = make_real_run(runs, "sd2-ft", (0, 0, 255))
    with_text = make_real_run(runs, "minigpt5", (0, 255, 0), generation={"guidance_scale": 1.0}, text=True)
    plan = build_plan(images, images_too)
    for item in [*plan.pairs, *plan.gold]:  # the gold items too: the truth and a blank image
        if item.sample_id.endswith("_0"):  # a story's first step: no earlier image to stay consistent with
            assert item.aspects == ("image", "multimodal")
            assert item.payload["skipped"] == {
                "language": "neither output has text",
                "consistency": "the context holds no image to stay consistent with",
            }
        else:
            assert item.aspects == ("image", "multimodal", "consistency")
            assert item.payload["skipped"] == {"language": "neither output has text"}
    assert {p.sample_id for p in plan.pairs} == {f"40470_{k}" for k in range(5)}  # both kinds above were seen
    item = next(p for p in build_plan(with_text, images).pairs if p.sample_id == "40470_1")
    assert item.payload["skipped"] == {"language": "only one output has text, and the task expects none"}
    text_too = make_real_run(runs, "sd2-ft", (9, 9, 9), seed=2, text=True)
    both = {p.sample_id: p.aspects for p in build_plan(with_text, text_too).pairs}  # both with text: every question
    assert {a for k, a in both.items() if k != "40470_0"} == {ASPECTS}  # (but consistency at the first step)


def test_the_study_covers_the_samples_the_runs_were_asked_for(tmp_path: Path) -> None:
    """A run stores whole batches, so 'mg5bench run --limit 3' may hold five samples: two runs with the same
    --limit pair on those three, whatever their batch sizes; different limits are refused."""
    runs = tmp_path / "runs"
    a = make_real_run(runs, "minigpt5", (255, 0, 0), limit=3)
    b = make_real_run(runs, "sd2-ft", (0, 0, 255))
    with pytest.raises(ConfigError, match=r"do not cover the same samples.* has 3, .* has 5"):
        build_plan(a, b)
    b3 = make_real_run(runs, "sd2-ft", (0, 0, 254), limit=3, seed=1)
    assert [p.sample_id for p in build_plan(a, b3).pairs] == VIST_IDS[:3]
