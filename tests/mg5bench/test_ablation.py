"""mg5bench ablate on the small synthetic world with a fake adapter whose outputs are known (the ground-truth image,
a blank image or no image at chosen steps), so the paired differences, CIs and p-values are known by hand; reuse
without generation on the second call; the one-line errors (missing checkpoint with its training command, a bad
axis file, a run missing under --no-generate)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy.stats import permutation_test

from mg5bench.adapters.base import Adapter, Output
from mg5bench.catalog import MODELS
from mg5bench.core.errors import ConfigError, DataError
from mg5bench.core.sample import Sample
from mg5bench.runs.spec import GenerationConfig

LIMIT = 20  # 4 stories of 5 steps
ODD = 2 / 5  # steps 1 and 3 of every story


class Known(Adapter):
    """mode=gt: the target image; blank-odd: a white image at odd steps; none-odd: no image at odd steps."""

    pure = True
    args: ClassVar[dict[str, str]] = {"mode": "gt | blank-odd | none-odd"}
    calls: ClassVar[list[int]] = []

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        from PIL import Image

        type(self).calls.append(len(samples))
        mode = self.model_args.get("mode", "gt")
        outs: list[Output] = []
        for s in samples:
            odd = int(s.meta["step"]) % 2 == 1
            if odd and mode == "blank-odd":
                outs.append([("image", Image.new("RGB", (48, 48), (255, 255, 255)))])
            elif odd and mode == "none-odd":
                outs.append([("text", "")])
            else:
                outs.append([("image", s.target_images[0])])
        return outs


@pytest.fixture(scope="module")
def known() -> Iterator[None]:
    MODELS.register("known", lambda: Known, "test adapter with known outputs", overwrite=True)
    Known.calls.clear()
    yield


AXIS = (
    "name: known\ntitle: known outputs\ntasks: [vist]\nmodel: known\nbase: all-gt\nvariants:\n"
    "  - name: all-gt\n    model_args: {mode: gt}\n"
    "  - name: blank-odd\n    model_args: {mode: blank-odd}\n"
    "  - name: none-odd\n    model_args: {mode: none-odd}\n"
    "  - name: last\n    model_args: {mode: gt}\n    task_args: {round_range: last}\n"
)


def _ablate(axis: Path, world: Path, out: Path, **kw: Any) -> Any:
    from mg5bench.ablation import ablate

    opts = {"task": "vist", "split": "test", "data": str(world), "limit": LIMIT, "out": out, "resamples": 50,
            "permutations": 100, "device": "cpu", "progress": False}  # fmt: skip
    return ablate(axis, **{**opts, **kw})


@pytest.fixture(scope="module")
def ablated(known: None, small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, int]:
    """One ablation over the known axis (generated once): its result, the axis file and the generate calls made."""
    root = tmp_path_factory.mktemp("ablate")
    axis = root / "known.yaml"
    axis.write_text(AXIS)
    with pytest.raises(DataError, match=r"not all stored.*run without --no-generate"):
        _ablate(axis, small_world, root / "runs", generate=False)  # nothing stored yet: named, nothing generated
    assert Known.calls == []
    res = _ablate(axis, small_world, root / "runs")
    return res, axis, len(Known.calls)


def _scipy_p(cluster_means: np.ndarray) -> float:
    return float(permutation_test((cluster_means, np.zeros_like(cluster_means)), lambda a, b, axis: np.mean(
        a - b, axis=axis), permutation_type="samples", n_resamples=np.inf, vectorized=True).pvalue)  # fmt: skip


def test_known_outputs_give_the_expected_paired_differences(ablated: tuple[Any, Path, int]) -> None:
    res = ablated[0]
    rows = {r["variant"]: r for r in res.report["rows"]}
    assert rows["all-gt"]["base"] and rows["all-gt"]["own"]["scene_accuracy"]["value"] == 1.0
    assert "sign flips of per-story mean differences" in res.report["method"]["p"]  # VIST clusters are stories
    blank = rows["blank-odd"]["compare"]
    none = rows["none-odd"]["compare"]
    # every story loses its two odd steps: scene accuracy 1 -> 0 there, the same in each story, so the cluster
    # bootstrap interval is the point itself and the exact sign-flip p is scipy's over 4 equal cluster differences
    for cmp in (blank, none):
        e = cmp["scene_accuracy"]
        assert e["base"] == 1.0 and e["diff"] == pytest.approx(-ODD)
        assert e["diff_ci"] == pytest.approx([-ODD, -ODD])
        assert e["p"] == pytest.approx(_scipy_p(np.full(4, -ODD))) == pytest.approx(2 / 16)
        assert e["test"].startswith("sign-flip over 4 clusters")
    # no image at odd steps: image rate and CLIP-I (1 for the target image, 0 for a missing one) both fall by 2/5
    assert none["clip_i.image_rate"]["diff"] == pytest.approx(-ODD)
    assert none["clip_i"]["diff"] == pytest.approx(-ODD)
    assert blank["clip_i.image_rate"]["diff"] == 0.0 and blank["clip_i.image_rate"]["p"] == 1.0
    # a drawn white image scores its (negative) cosine with the target: below the missing image's 0
    assert blank["clip_i"]["value"] < none["clip_i"]["value"]
    # set-level results: the swap test, and the point values are the scorer's own (metrics.json of each run)
    folders = {r["variant"]: Path(r["run"]) for r in res.report["rows"]}
    scored = {v: json.loads(next((f / "scores").glob("*/metrics.json")).read_text())["metrics"] for v, f in
              folders.items()}  # fmt: skip
    for key in ("fid", "kid", "clip_t"):
        assert blank[key]["base"] == pytest.approx(scored["all-gt"][key]["value"], abs=1e-9)
        assert blank[key]["value"] == pytest.approx(scored["blank-odd"][key]["value"], abs=1e-9)
    assert blank["fid"]["test"].startswith("cluster swap (exact arrangements of 4 clusters)")
    assert blank["fid"]["diff"] > 0 and blank["fid"]["p"] == pytest.approx(2 / 16)
    # outputs: table, CSV with one row per variant and headline result, deterministic PNG plot
    csv = (res.folder / "ablation.csv").read_text().splitlines()
    assert csv[0].startswith("variant,label,metric,n,seeds,value")
    assert len(csv) == 1 + 4 * len(res.report["headline"])
    assert (res.folder / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_q_values_are_bh_within_the_ablation_and_few_stories_warn(ablated: tuple[Any, Path, int]) -> None:
    from statsmodels.stats.multitest import multipletests

    from mg5bench.ablation import format_report

    rep = ablated[0].report
    cells = [r["compare"][k] for r in rep["rows"] if not r.get("base") for k in rep["headline"]
             if k in r["compare"]]  # fmt: skip
    ps = [c["p"] for c in cells if c["p"] is not None]
    assert len(ps) >= 10
    expected = iter(multipletests(ps, method="fdr_bh")[1])
    for c in cells:
        if c["p"] is not None:
            assert c["q"] == pytest.approx(next(expected), abs=1e-12)
    # 4 stories: every cell is flagged, the table warns
    assert all(c["too_few_clusters"] for c in cells)
    text = format_report(rep)
    assert "WARNING: only 4 stories (fewer than 20)" in text and "Benjamini-Hochberg" in text


def test_second_call_reuses_everything(ablated: tuple[Any, Path, int], small_world: Path) -> None:
    first, axis, n_calls = ablated
    assert n_calls > 0 and not first.reused and set(first.generated) == {"all-gt", "blank-odd", "none-odd", "last"}
    png = (first.folder / "ablation.png").read_bytes()
    out = first.folder.parent.parent
    second = _ablate(axis, small_world, out, generate=False)
    assert second.reused and second.folder == first.folder and not second.generated
    assert len(Known.calls) == n_calls  # no generate call
    assert second.report == json.loads((first.folder / "ablation.json").read_text())
    # recomputing the comparison gives the same bytes
    again = _ablate(axis, small_world, out, generate=False, force=True)
    assert not again.reused and (again.folder / "ablation.png").read_bytes() == png
    assert (again.folder / "ablation.csv").read_bytes() == (first.folder / "ablation.csv").read_bytes()


def test_a_variant_over_other_samples_is_paired_on_the_shared_ones(ablated: tuple[Any, Path, int]) -> None:
    """GILL's last-step protocol generates only step 5 of each story: it is paired with the base there."""
    last = next(r for r in ablated[0].report["rows"] if r["variant"] == "last")
    assert last["n_run"] == 4 and last["n_paired"] == 4  # the last steps of the base's 4 stories
    assert last["compare"]["scene_accuracy"]["diff"] == 0.0
    assert "4 of the base's 20 samples" in last["paired_on"]


def test_missing_checkpoint_is_one_line_with_the_training_command(tmp_path: Path) -> None:
    from mg5bench.ablation import ablate

    with pytest.raises(ConfigError) as e:
        ablate("vokens", out=tmp_path, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert "stage2-vist-vokens4" in msg and "which is not there" in msg and "1 more missing: vokens-16" in msg
    assert "python -m reference_model.train stage1" in msg and "--num-vokens 4" in msg
    assert "python -m reference_model.train stage2 --task vist --init runs/reference/stage1-vokens4" in msg
    assert not (tmp_path / "ablations").exists()


def test_a_checkpoint_missing_from_another_set_says_to_export_it_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The axis file's recipe exports into the shipped set; for another set (e.g. one trained on level 3) the
    message points at that set instead of a command that would train on the wrong world."""
    from mg5bench.ablation import ablate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "level3-set").mkdir()
    with pytest.raises(ConfigError) as e:
        ablate("vokens", out=tmp_path / "runs", checkpoints=Path("level3-set"), progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "needs the checkpoint level3-set/stage2-vist-vokens4, which is not there" in msg
    assert "export it into level3-set" in msg and "reference_model.train" not in msg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\nvariants: [{name: a, model: gt}, {name: b, model: gt, guidance: 2}]\n",
         r"x.yaml: variant 'b': unknown key\(s\) \['guidance'\]"),
        ("name: x\nvariants: [{name: a, model: gt}, {name: a, model: gt}]\n", r"duplicate variant name\(s\) \['a'\]"),
        ("name: x\nbase: c\nvariants: [{name: a, model: gt}, {name: b, model: gt}]\n", "base 'c' is not one of"),
        ("name: x\nvariants: [{name: a, model: gt}, {name: b, model: gt, generation: {guidance_scale: -1}}]\n",
         "variant 'b': guidance_scale must be >= 0"),
        ("name: x\nvariants: [{name: a}, {name: b}]\n", "variant 'a': no model"),
        ("name: x\nvariants: [{name: a, model: gt}]\n", "at least one other variant"),
        ("name: [x\n", "malformed YAML"),
    ],
)  # fmt: skip
def test_bad_axis_files_are_one_line_errors(tmp_path: Path, text: str, match: str) -> None:
    from mg5bench.ablation import load_axis

    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as e:
        load_axis(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_builtin_axes_parse_and_resolve() -> None:
    from mg5bench.ablation import list_axes, load_axis

    assert {"cfg", "stages", "caption-loss", "vokens", "context", "baselines"} <= set(list_axes())
    cfg = load_axis("cfg")
    assert cfg.base == "gs-3" and [v.generation.guidance_scale for v in cfg.variants[:5]] == [1.0, 1.5, 3.0, 5.0, 7.5]
    no_cfg = cfg.variant("no-cfg")
    assert no_cfg.checkpoint_path() is not None and no_cfg.checkpoint_path().name == "stage2-vist-no-cfg"
    spec = no_cfg.spec("vist", "test", None, 10, 0)
    assert dict(spec.model_args)["checkpoint"].endswith("reference_model/checkpoints/stage2-vist-no-cfg")
    ctx = load_axis("context")
    assert dict(ctx.variant("gill-last").task_args) == {"round_range": "last"}
    with pytest.raises(ConfigError, match="unknown axis 'cgf'; did you mean 'cfg'"):
        load_axis("cgf")
    with pytest.raises(ConfigError, match="applies to vist, not 'cc3m'"):
        cfg.task_for("cc3m")


class Seeded(Adapter):
    """Draws the target image, except at the steps its checkpoint's seed drops: seed k drops steps 1..k+1."""

    pure = True
    args: ClassVar[dict[str, str]] = {"checkpoint": "a folder with divter_config.json"}

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        seed = json.loads((Path(self.model_args["checkpoint"]) / "divter_config.json").read_text())["seed"]
        return [[("text", "")] if 1 <= int(s.meta["step"]) <= seed + 1 else [("image", s.target_images[0])]
                for s in samples]  # fmt: skip


def _seed_folders(root: Path, recipe: dict[str, Any]) -> Path:
    for k, name in enumerate(("drop", "drop-seed1", "drop-seed2")):
        (root / name).mkdir(parents=True)
        (root / name / "divter_config.json").write_text(json.dumps({**recipe, "seed": k}))
    return root / "drop"


def test_seeds_are_pooled_and_their_spread_enters_the_interval(known: None, small_world: Path, tmp_path: Path) -> None:
    """Three checkpoints of one recipe drop 1, 2 and 3 steps of every story: seed values 0.8, 0.6, 0.4. Every story
    is alike, so the stories add no variance and the interval is the seeds' t-interval against the one-checkpoint
    base (df 2), computed by hand."""
    from scipy.stats import t

    MODELS.register("seeded", lambda: Seeded, "test adapter whose output depends on its checkpoint's seed",
                    overwrite=True)  # fmt: skip
    first = _seed_folders(tmp_path / "ck", {"task": "vist", "lr": 0.1})
    axis = tmp_path / "seeds.yaml"
    axis.write_text("name: seeds\ntasks: [vist]\nbase: gt\nvariants:\n  - name: gt\n    model: known\n"
                    f"  - name: drop\n    model: seeded\n    checkpoint: {first}\n")  # fmt: skip
    res = _ablate(axis, small_world, tmp_path / "runs")
    row = next(r for r in res.report["rows"] if r["variant"] == "drop")
    assert [s["checkpoint"] for s in row["seeds"]] == ["drop", "drop-seed1", "drop-seed2"]
    e = row["compare"]["scene_accuracy"]
    assert e["seeds"]["variant_values"] == pytest.approx([0.8, 0.6, 0.4])
    assert e["seeds"]["sd"] == pytest.approx(0.2)
    assert e["diff"] == pytest.approx(-0.4)
    se = 0.2 / 3**0.5
    assert e["diff_ci"] == pytest.approx([-0.4 - t.ppf(0.975, 2) * se, -0.4 + t.ppf(0.975, 2) * se])
    assert e["p"] == pytest.approx(2 * t.sf(0.4 / se, 2))
    assert e["test"].startswith("two-level t (3 vs 1 checkpoints")
    # --seeds 1: only the shipped (first) checkpoint, no seed spread
    one = _ablate(axis, small_world, tmp_path / "runs", seeds=1)
    e1 = next(r for r in one.report["rows"] if r["variant"] == "drop")["compare"]["scene_accuracy"]
    assert e1["diff"] == pytest.approx(-0.2) and e1["seeds"]["variant"] == 1 and "sd" not in e1["seeds"]


def test_checkpoints_of_different_recipes_are_not_pooled(tmp_path: Path) -> None:
    from mg5bench.runs.seeds import seed_set

    first = _seed_folders(tmp_path / "ck", {"task": "vist", "lr": 0.1})
    assert [p.name for p in seed_set(first)] == ["drop", "drop-seed1", "drop-seed2"]
    cfg = tmp_path / "ck" / "drop-seed2" / "divter_config.json"
    cfg.write_text(json.dumps({"task": "vist", "lr": 0.2, "seed": 2}))
    with pytest.raises(ConfigError, match=r"drop-seed2 is not a seed of drop: they differ in lr"):
        seed_set(first)
    cfg.write_text(json.dumps({"task": "vist", "lr": 0.1, "seed": 0}))
    with pytest.raises(ConfigError, match=r"same seed \(0\)"):
        seed_set(first)


def test_run_seeds_lists_the_seed_checkpoints_and_summarises_the_spread(tmp_path: Path) -> None:
    from mg5bench import api

    first = _seed_folders(tmp_path / "ck", {"task": "vist", "lr": 0.1})
    spec = api.RunSpec(task="vist", model="divter", split="val", model_args={"checkpoint": str(first)})
    specs = api.seed_specs(spec, 3)
    assert [n for n, _ in specs] == ["drop", "drop-seed1", "drop-seed2"]
    assert specs[0][1] is spec and dict(specs[2][1].model_args)["checkpoint"] == str(tmp_path / "ck" / "drop-seed2")
    assert len(api.seed_specs(spec, 2)) == 2
    with pytest.raises(ConfigError, match="has no checkpoint"):
        api.seed_specs(api.RunSpec(task="vist", model="gt", split="val"), 3)
    reports = [(n, {"metrics": {"m": {"value": v}}}) for n, v in (("a", 0.4), ("b", 0.5), ("c", 0.9))]
    text = api.seed_summary(reports)
    assert "across 3 training seeds" in text
    row = next(line for line in text.splitlines() if line.startswith("m "))
    assert row.split()[-2:] == ["0.6000", f"{np.std([0.4, 0.5, 0.9], ddof=1):.4f}"]


def test_another_trained_set_resolves_bare_names(known: None, small_world: Path, tmp_path: Path) -> None:
    """--checkpoints DIR: a bare checkpoint name of an axis is a folder of that set (with its seeds), not of the
    shipped one; a missing name is named with the set's path; a set that is not a folder is one line."""
    MODELS.register("seeded", lambda: Seeded, "test adapter whose output depends on its checkpoint's seed",
                    overwrite=True)  # fmt: skip
    _seed_folders(tmp_path / "set", {"task": "vist", "lr": 0.1})
    axis = tmp_path / "bare.yaml"
    axis.write_text("name: bare\ntasks: [vist]\nbase: gt\nvariants:\n  - name: gt\n    model: known\n"
                    "  - name: drop\n    model: seeded\n    checkpoint: drop\n")  # fmt: skip
    with pytest.raises(ConfigError, match="needs the checkpoint"):
        _ablate(axis, small_world, tmp_path / "runs")  # not a shipped checkpoint
    res = _ablate(axis, small_world, tmp_path / "runs", checkpoints=tmp_path / "set")
    row = next(r for r in res.report["rows"] if r["variant"] == "drop")
    assert [s["checkpoint"] for s in row["seeds"]] == ["drop", "drop-seed1", "drop-seed2"]
    with pytest.raises(ConfigError, match="not a folder"):
        _ablate(axis, small_world, tmp_path / "runs", checkpoints=tmp_path / "nope")


def test_another_trained_set_reaches_every_model_by_its_own_checkpoint_argument(
    small_world: Path, tmp_path: Path
) -> None:
    """--checkpoints DIR over the built-in baselines axis: every variant's default resolves in DIR and reaches its
    adapter through the argument that adapter takes (sd2 and sd2-ft ``path``, two-stage ``backbones``, MiniGPT-5 and
    Divter ``checkpoint``), so a retrained set plans without an unknown-argument error."""
    from mg5bench.ablation.axis import load_axis
    from mg5bench.ablation.plan import plan
    from mg5bench.adapters.common import shipped_checkpoints

    trained = tmp_path / "set"  # another set: the shipped folders reached through links
    trained.mkdir()
    for folder in shipped_checkpoints().iterdir():
        if folder.is_dir():
            (trained / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    runs = plan(load_axis("baselines"), "vist", "test", str(small_world), 5, 0, tmp_path / "runs", batch_size=None,
                device="cpu", cache_dir=None, progress=False, checkpoints=trained)  # fmt: skip
    expected = {"minigpt5": ("checkpoint", "stage2-vist"), "sd2": ("path", "backbones/t2i"),
                "sd2-ft": ("path", "sd2-ft-vist"), "divter": ("checkpoint", "divter-vist"),
                "two-stage": ("backbones", "backbones")}  # fmt: skip
    seen = set()
    for pl in runs:
        if pl.spec.model in ("gt", "blank"):
            assert dict(pl.spec.model_args) == {}
            continue
        arg, folder = expected[pl.spec.model]
        assert set(dict(pl.spec.model_args)) == {arg}, pl.spec.model
        given = Path(dict(pl.spec.model_args)[arg])
        if pl.seed_index == 0:
            assert given == trained.resolve() / folder
        else:  # a training seed: a sibling NAME-seed<k> in the same set
            assert given.parent == (trained.resolve() / folder).parent and given.name.startswith(Path(folder).name)
        seen.add(pl.spec.model)
    assert seen == set(expected)


def test_a_setting_recorded_later_compares_at_its_default(tmp_path: Path) -> None:
    """A stage-2 record written before a training setting existed ran at its default: a later seed that records
    the default is the same recipe, one that records another value is not."""
    from mg5bench.runs.seeds import seed_set

    base = {"stage": 2, "steps": 800, "lr": 0.001, "seed": 42}
    for name, extra in (("s2", {}), ("s2-seed43", {"seed": 43, "whole_mapper": False})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.json").write_text(json.dumps({"train_config": {**base, **extra}, "task": "vist"}))
    assert [p.name for p in seed_set(tmp_path / "s2")] == ["s2", "s2-seed43"]
    (tmp_path / "s2-seed43" / "state.json").write_text(json.dumps(
        {"train_config": {**base, "seed": 43, "whole_mapper": True}, "task": "vist"}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"differ in train_config\.whole_mapper"):
        seed_set(tmp_path / "s2")


def test_a_seed_sd_beside_a_one_seed_side_says_whose_spread_it_is() -> None:
    """The seed sd pools the sides with several seeds: beside a one-seed variant it is the base's spread, and the
    row says so (the CSV's seed_sd_of and the printed table)."""
    from mg5bench.runs.ablations import seed_sd_of, table_rows

    assert seed_sd_of({"base": 3, "variant": 1, "sd": 0.02}) == "base"
    assert seed_sd_of({"base": 1, "variant": 3, "sd": 0.02}) == "variant"
    assert seed_sd_of({"base": 3, "variant": 3, "sd": 0.02}) == "both"
    assert seed_sd_of({"base": 1, "variant": 1, "sd": None}) is None
    seeds = {"base": 3, "variant": 1, "sd": 0.02}
    entry = {"n": 10, "value": 0.5, "value_ci": [0.4, 0.6], "base": 0.55, "diff": -0.05, "diff_ci": [-0.1, 0.0],
             "p": 0.04, "test": "t", "higher_is_better": True, "seeds": seeds}  # fmt: skip
    report = {"headline": ["exact"], "rows": [{"variant": "v", "label": "v", "compare": {"exact": entry}}]}
    (row,) = table_rows(report)
    assert (row["seed_sd"], row["seed_sd_of"], row["seeds"]) == (0.02, "base", 1)
