"""mg5bench run and its generation store: bounds ordering, reuse, the key (what is and is not in it), fixed batch
groups (a larger --limit, a crash mid-group, 1 vs 2 processes: bit-identical images and identical metrics),
scores stored beside the generations, rescoring without the model, --device.

The stochastic model is the ``sd2`` adapter on a tiny random diffusers pipeline (real code path, random weights),
so that per-sample generators and batch composition matter. Generate calls are counted with subclasses of the
real adapters, registered under their own names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import REPO

from mg5bench.adapters.bounds import GroundTruth
from mg5bench.adapters.sd2 import SD2
from mg5bench.catalog import MODELS
from mg5bench.core.errors import ConfigError
from mg5bench.runs.runner import batch_groups, run
from mg5bench.runs.spec import GenerationConfig, RunSpec
from mg5bench.scoring.scorer import score_run


class CountingGT(GroundTruth):
    """The real ``gt`` adapter, counting what it is asked to generate."""

    name = "counting-gt"
    batches: ClassVar[list[list[str]]] = []

    def generate(self, samples, config, generators):  # type: ignore[no-untyped-def]
        type(self).batches.append([s.id for s in samples])
        return super().generate(samples, config, generators)


class CountingSD2(SD2):
    """The real ``sd2`` adapter, counting instances and generate calls."""

    name = "counting-sd2"
    made: ClassVar[int] = 0
    batches: ClassVar[list[list[str]]] = []

    def __init__(self, task: Any, model_args: dict[str, Any]) -> None:
        type(self).made += 1
        super().__init__(task, model_args)

    def generate(self, samples, config, generators):  # type: ignore[no-untyped-def]
        type(self).batches.append([s.id for s in samples])
        return super().generate(samples, config, generators)


@pytest.fixture()
def counting() -> Iterator[None]:
    MODELS.register("counting-gt", lambda: CountingGT, "test", overwrite=True)
    MODELS.register("counting-sd2", lambda: CountingSD2, "test", overwrite=True)
    CountingGT.batches.clear()
    CountingSD2.batches.clear()
    CountingSD2.made = 0
    yield


@pytest.fixture(scope="module")
def t2i(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reference_model.lm import world_texts
    from reference_model.tiny_parts import save_tiny_random_parts

    root = tmp_path_factory.mktemp("runner_parts")
    save_tiny_random_parts(root, world_texts(small_world)[:200])
    return root / "t2i"


def _spec(world: Path, model: str, **kw: Any) -> RunSpec:
    base = {"task": "vist", "model": model, "split": "val", "data": str(world), "limit": 10}
    return RunSpec(**{**base, **kw})


def _sd2(world: Path, t2i: Path, model: str = "sd2", **kw: Any) -> RunSpec:
    return _spec(world, model, model_args={"path": str(t2i)}, generation=GenerationConfig(num_inference_steps=2), **kw)


def _rows(folder: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, (folder / "samples.jsonl").read_text().splitlines())}


def _image_bytes(folder: Path) -> dict[str, list[str | bytes]]:
    """Sample id -> its output: texts as strings, images as the bytes of the file."""
    return {sid: [(folder / seg["image"]).read_bytes() if "image" in seg else seg["text"] for seg in r["output"]]
            for sid, r in _rows(folder).items()}  # fmt: skip


def _generation_files(folder: Path) -> dict[str, bytes]:
    """Every file of the generation store except the scorings."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not {"scores", "features"} & set(p.relative_to(folder).parts)}  # fmt: skip


def test_batch_groups_are_fixed_by_global_index() -> None:
    assert batch_groups(5, 12, 4) == [range(0, 4), range(4, 8)]  # a group cut by the limit is whole
    assert batch_groups(12, 10, 4) == [range(0, 4), range(4, 8), range(8, 10)]  # the split's last group is short
    assert batch_groups(8, 12, 4) == batch_groups(7, 12, 4)[:2]
    with pytest.raises(ConfigError, match="batch-size"):
        batch_groups(4, 12, 0)


def test_gt_beats_blank_and_reuse(small_world: Path, tmp_path: Path) -> None:
    gt = run(_spec(small_world, "gt"), tmp_path, resamples=50, progress=False)
    blank = run(_spec(small_world, "blank"), tmp_path, resamples=50, progress=False)
    g, b = gt.report["metrics"], blank.report["metrics"]
    assert g["clip_i"]["value"] > 0.99 and g["clip_i"]["value"] > b["clip_i"]["value"]
    assert g["scene_accuracy"]["value"] == 1.0 and b["scene_accuracy"]["value"] == 0.0
    assert (gt.folder / "run.json").exists() and (gt.folder / "samples.jsonl").exists()
    assert gt.score_folder.parent == gt.folder / "scores"
    assert (gt.score_folder / "metrics.json").exists() and (gt.score_folder / "per_sample.jsonl").exists()
    assert gt.folder.parent == tmp_path / "vist" / "gt"
    assert gt.generated == 10 and not gt.reused and not gt.score_reused  # one group of the default batch size 10
    calls: list[int] = []
    again = run(_spec(small_world, "gt"), tmp_path, resamples=50, progress=False, after_sample=calls.append)
    assert again.reused and again.score_reused and again.folder == gt.folder and not calls and again.generated == 0
    assert again.report["metrics"] == gt.report["metrics"]


def test_larger_limit_generates_only_the_rest(small_world: Path, tmp_path: Path, counting: None) -> None:
    """--limit 50 then --limit 100: one folder, 50 + 50 samples generated, each once (groups of 10)."""
    spec = _spec(small_world, "counting-gt", split="train", limit=50)
    kw: dict[str, Any] = {"batch_size": 10, "metrics": ["clip_i"], "resamples": 20, "progress": False}
    first = run(spec, tmp_path, **kw)
    assert first.generated == 50 and sum(map(len, CountingGT.batches)) == 50
    second = run(_spec(small_world, "counting-gt", split="train", limit=100), tmp_path, **kw)
    assert second.folder == first.folder  # the limit is not part of the key
    assert second.generated == 50 and sum(map(len, CountingGT.batches)) == 100
    generated = [sid for batch in CountingGT.batches for sid in batch]
    assert len(set(generated)) == 100  # nothing generated twice
    info = json.loads((first.folder / "run.json").read_text())
    assert info["samples"] == {"in_split": info["samples"]["in_split"], "stored": 100, "stored_prefix": 100,
                               "complete_for": 100}  # fmt: skip
    assert [r["generated"] for r in info["runs"]] == [50, 50] and [r["limit"] for r in info["runs"]] == [50, 100]
    assert len(_rows(first.folder)) == 100
    assert first.report["metrics"]["clip_i"]["n"] == 50 and second.report["metrics"]["clip_i"]["n"] == 100
    assert first.score_folder != second.score_folder  # the sample subset is part of the scoring's key
    # a group cut by the limit is generated whole; the samples beyond the limit are stored for later
    CountingGT.batches.clear()
    cut = run(_spec(small_world, "counting-gt", split="train", limit=45), tmp_path / "cut", **kw)
    assert cut.generated == 50 and [len(b) for b in CountingGT.batches] == [10] * 5
    assert cut.report["metrics"]["clip_i"]["n"] == 45
    more = run(_spec(small_world, "counting-gt", split="train", limit=50), tmp_path / "cut", **kw)
    assert more.generated == 0 and len(CountingGT.batches) == 5


def test_larger_limit_is_bit_identical(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    """limit 6 (groups of 4: 8 generated) then 10 (4 more) == limit 10 at once (12 generated), byte for byte."""
    kw: dict[str, Any] = {"batch_size": 4, "resamples": 50, "progress": False}
    small = run(_sd2(small_world, t2i, limit=6), tmp_path / "a", **kw)
    assert small.generated == 8 and small.report["metrics"]["clip_i"]["n"] == 6
    grown = run(_sd2(small_world, t2i, limit=10), tmp_path / "a", **kw)
    assert grown.generated == 4 and grown.folder == small.folder
    fresh = run(_sd2(small_world, t2i, limit=10), tmp_path / "b", **kw)
    assert fresh.generated == 12 and fresh.folder.name == grown.folder.name
    assert _image_bytes(grown.folder) == _image_bytes(fresh.folder)
    assert grown.report["metrics"] == fresh.report["metrics"]


def test_crash_then_resume_gives_identical_results(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    spec = _sd2(small_world, t2i)

    class Crash(Exception):
        pass

    def crash_at_4(n: int) -> None:
        if n == 4:
            raise Crash

    with pytest.raises(Crash):
        run(spec, tmp_path / "a", resamples=50, progress=False, batch_size=1, after_sample=crash_at_4)
    folder = next((tmp_path / "a" / "vist" / "sd2").iterdir())
    assert not (folder / "scores").exists() and len((folder / "samples.rank0.jsonl").read_text().splitlines()) == 4
    with open(folder / "samples.rank0.jsonl", "a") as f:
        f.write('{"id": "torn li')  # a write cut short by the crash
    done: list[int] = []
    resumed = run(spec, tmp_path / "a", resamples=50, progress=False, batch_size=1, after_sample=done.append)
    assert done[0] == 5 and done[-1] == 10  # only the missing samples were generated
    clean = run(spec, tmp_path / "b", resamples=50, progress=False, batch_size=1)
    assert resumed.report["metrics"] == clean.report["metrics"]
    assert list(_rows(resumed.folder)) == list(_rows(clean.folder))
    assert _image_bytes(resumed.folder) == _image_bytes(clean.folder)


def test_crash_inside_a_group_regenerates_the_group_and_keeps_what_was_stored(
    small_world: Path, t2i: Path, tmp_path: Path
) -> None:
    spec = _sd2(small_world, t2i)  # limit 10, groups of 4: [0-3] [4-7] [8-11]

    class Crash(Exception):
        pass

    def crash_at_6(n: int) -> None:
        if n == 6:
            raise Crash  # group 1 has 2 of its 4 samples stored

    with pytest.raises(Crash):
        run(spec, tmp_path / "a", resamples=50, progress=False, batch_size=4, after_sample=crash_at_6)
    folder = next((tmp_path / "a" / "vist" / "sd2").iterdir())
    kept = {r["id"]: folder / r["output"][0]["image"]
            for r in map(json.loads, (folder / "samples.rank0.jsonl").read_text().splitlines())}  # fmt: skip
    stamps = {sid: (p.stat().st_mtime_ns, p.read_bytes()) for sid, p in kept.items()}
    assert len(kept) == 6
    done: list[int] = []
    resumed = run(spec, tmp_path / "a", resamples=50, progress=False, batch_size=4, after_sample=done.append)
    assert done == [7, 8, 9, 10, 11, 12] and resumed.generated == 6
    assert {sid: (p.stat().st_mtime_ns, p.read_bytes()) for sid, p in kept.items()} == stamps  # never rewritten
    clean = run(spec, tmp_path / "b", resamples=50, progress=False, batch_size=4)
    assert _image_bytes(resumed.folder) == _image_bytes(clean.folder)
    assert resumed.report["metrics"] == clean.report["metrics"]
    assert len(_rows(resumed.folder)) == 12  # the selection (10) and the rest of its last group


def test_batch_size_is_part_of_the_key(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    a = run(_sd2(small_world, t2i, limit=4), tmp_path, batch_size=4, resamples=20, progress=False)
    b = run(_sd2(small_world, t2i, limit=4), tmp_path, batch_size=2, resamples=20, progress=False)
    assert a.folder != b.folder and "-bs4-" in a.folder.name and "-bs2-" in b.folder.name
    assert json.loads((b.folder / "run.json").read_text())["key"]["batch_size"] == 2


def test_changed_settings_or_checkpoint_give_a_new_folder(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    import shutil

    spec = _sd2(small_world, t2i, limit=2)
    a = run(spec, tmp_path, resamples=20, progress=False).folder
    b = run(_spec(small_world, "sd2", limit=2, model_args={"path": str(t2i)},
                  generation=GenerationConfig(num_inference_steps=2, guidance_scale=1.5)),
            tmp_path, resamples=20, progress=False).folder  # fmt: skip
    copy = tmp_path / "t2i_copy"
    shutil.copytree(t2i, copy)
    weights = next((copy / "unet").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    spec_c = _spec(small_world, "sd2", limit=2, model_args={"path": str(copy)},
                   generation=GenerationConfig(num_inference_steps=2))  # fmt: skip
    c = run(spec_c, tmp_path, resamples=20, progress=False).folder
    assert len({a, b, c}) == 3
    info = json.loads((b / "run.json").read_text())
    assert info["key"]["generation"]["guidance_scale"] == 1.5
    # the settings as used, defaults filled in: numbers, nothing the model does not use
    unused = dict.fromkeys(("max_new_tokens", "temperature", "top_p", "repetition_penalty", "do_sample"))
    assert info["generation"] == {"guidance_scale": 1.5, "num_inference_steps": 2, **unused}
    assert json.loads((a / "run.json").read_text())["generation"]["guidance_scale"] == 3.0  # sd2's default


def test_the_same_checkpoint_by_another_path_or_a_moved_store_is_reused(
    small_world: Path, t2i: Path, tmp_path: Path, counting: None
) -> None:
    """A key holds the checkpoint's content, never its path: a copy elsewhere, a symlink to it, and a runs folder
    moved to another place all find the stored run; nothing is generated again."""
    import shutil

    spec = _sd2(small_world, t2i, model="counting-sd2", limit=4)
    first = run(spec, tmp_path / "runs", resamples=20, progress=False, batch_size=4)
    assert first.generated == 4 and str(t2i) not in json.dumps(first.info["key"])
    copy = tmp_path / "elsewhere" / "t2i"
    shutil.copytree(t2i, copy)
    link = tmp_path / "link"
    link.symlink_to(t2i)
    for path in (copy, link):
        again = run(_spec(small_world, "counting-sd2", limit=4, model_args={"path": str(path)},
                          generation=GenerationConfig(num_inference_steps=2)), tmp_path / "runs", resamples=20,
                    progress=False, batch_size=4)  # fmt: skip
        assert again.folder == first.folder and again.generated == 0
    shutil.move(str(tmp_path / "runs"), str(tmp_path / "moved"))
    moved = run(spec, tmp_path / "moved", resamples=20, progress=False, batch_size=4)
    assert moved.generated == 0 and moved.folder.name == first.folder.name
    assert len(CountingSD2.batches) == 1  # the first run's one batch of 4, never again


def test_a_run_stored_under_the_path_keys_is_migrated(small_world: Path, t2i: Path, tmp_path: Path,
                                                      counting: None) -> None:  # fmt: skip
    """A folder written when keys held paths (runner version 3) is renamed to its content key and reused."""
    from mg5bench.core.hashing import content_hash
    from mg5bench.runs.keys import RUNNER_VERSION, run_folder

    spec = _sd2(small_world, t2i, model="counting-sd2", limit=2)
    new = run(spec, tmp_path, resamples=20, progress=False, batch_size=4)
    info = json.loads((new.folder / "run.json").read_text())
    old_key = json.loads(json.dumps(info["key"]))
    old_key["runner"] = 3
    old_key["model"] = {"adapter": "counting-sd2", "path": str(t2i), **old_key["model"],
                        "model_args": {"path": str(t2i)}}  # fmt: skip
    old = run_folder(tmp_path, spec, old_key)
    new.folder.rename(old)
    (old / "run.json").write_text(json.dumps({**info, "runner": 3, "key": old_key,
                                              "folder_hash": content_hash(old_key)}))  # fmt: skip
    again = run(spec, tmp_path, resamples=20, progress=False, batch_size=4)
    assert again.folder == new.folder and again.generated == 0 and not old.exists()
    moved = json.loads((again.folder / "run.json").read_text())
    assert moved["key"]["runner"] == RUNNER_VERSION and moved["migrated_from"] == old.name
    assert len(CountingSD2.batches) == 1


def test_a_setting_the_model_does_not_use_is_refused(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not use --max-new-tokens; it uses: --guidance-scale, --num-infer"):
        run(_spec(small_world, "sd2", model_args={"path": str(t2i)}, generation=GenerationConfig(max_new_tokens=8)),
            tmp_path, progress=False)  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "mg5bench", "run", "--task", "vist", "--model", "gt", "--data",
                           str(small_world), "--split", "val", "--guidance-scale", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "does not use --guidance-scale; it uses: no generation settings" in lines[0]
    assert not (tmp_path / "vist").exists()
    # a scoring option with a typo fails before anything is generated
    with pytest.raises(ConfigError, match="did you mean 'clip_i'"):
        run(_spec(small_world, "blank", limit=2), tmp_path, metrics=["clip_ii"], progress=False)
    with pytest.raises(ConfigError, match="unknown evaluator"):
        run(_spec(small_world, "blank", limit=2), tmp_path, evaluator="clip-please", progress=False)
    assert not (tmp_path / "vist").exists()


def test_rescoring_never_calls_the_model(small_world: Path, t2i: Path, tmp_path: Path, counting: None) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from mg5bench.scoring.evaluators import EMBEDDED_DIR

    spec = _sd2(small_world, t2i, model="counting-sd2", limit=8)
    first = run(spec, tmp_path, batch_size=4, resamples=20, progress=False)
    assert first.generated == 8 and len(CountingSD2.batches) == 2
    before = _generation_files(first.folder)
    # another evaluator: the embedded CLIP with perturbed weights
    other = tmp_path / "other_clip"
    other.mkdir()
    (other / "open_clip_config.json").write_bytes((EMBEDDED_DIR / "open_clip_config.json").read_bytes())
    gen = torch.Generator().manual_seed(1)
    weights = load_file(str(EMBEDDED_DIR / "open_clip_model.safetensors"))
    noisy = {k: v + 0.1 * v.float().std().nan_to_num() * torch.randn(v.shape, generator=gen).to(v.dtype)
             if v.is_floating_point() and v.numel() > 1 else v for k, v in weights.items()}  # fmt: skip
    save_file(noisy, str(other / "open_clip_model.safetensors"))
    made = CountingSD2.made
    rescored = score_run(first.folder, evaluator=f"open_clip:local-dir:{other}", resamples=30, progress=False)
    assert CountingSD2.made == made and len(CountingSD2.batches) == 2  # the model was not even constructed
    assert not rescored.reused and rescored.folder.parent == first.folder / "scores"
    assert rescored.folder != first.score_folder
    assert rescored.report["metrics"]["clip_i"]["value"] != first.report["metrics"]["clip_i"]["value"]
    assert rescored.report["evaluator"]["name"] == "open_clip:local-dir:other_clip"
    assert rescored.key["evaluator"]["weights_sha256"] != first.report["evaluator"]["weights_sha256"]
    again = score_run(first.folder, evaluator=f"open_clip:local-dir:{other}", resamples=30, progress=False)
    assert again.reused and again.report == rescored.report
    # through `mg5bench run` with another scoring: the run is reused, only the scoring is new
    via_run = run(spec, tmp_path, batch_size=4, resamples=40, progress=False)
    assert via_run.generated == 0 and not via_run.score_reused and len(CountingSD2.batches) == 2
    # through the CLI in a fresh process, where "counting-sd2" is not even registered
    proc = subprocess.run([sys.executable, "-m", "mg5bench", "score", str(first.folder), "--resamples", "25",
                           "--quiet"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "clip_i" in proc.stdout and "no sample generated" in proc.stdout
    assert len(list((first.folder / "scores").iterdir())) == 4
    cli = next(p for p in (first.folder / "scores").iterdir() if "-r25-" in p.name)
    assert json.loads((cli / "metrics.json").read_text())["bootstrap"]["resamples"] == 25
    assert _generation_files(first.folder) == before  # generations (and run.json) byte-identical
    # a subset it does not hold is an error that names the fix
    with pytest.raises(Exception, match=r"cover the first 8 .* --limit 12"):
        score_run(first.folder, limit=12, progress=False)


RESCORE = """
import json, sys
from pathlib import Path
from mg5bench.scoring.scorer import score_run
res = score_run(Path(sys.argv[1]), resamples=25, force=True, progress=False)
print(json.dumps({"torch": "torch" in sys.modules, "open_clip": "open_clip" in sys.modules,
                  "metrics": res.report["metrics"], "encoding": res.report["encoding"]}))
"""


def test_a_rescoring_with_cached_features_loads_no_model(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    """Features of the generated images and texts are cached in the run by content: rescoring in a fresh process
    imports neither torch nor open_clip and gives the same numbers; an image whose content changed is encoded
    again."""
    first = run(_sd2(small_world, t2i, limit=8), tmp_path, batch_size=4, resamples=25, progress=False)

    def rescore() -> dict:
        proc = subprocess.run([sys.executable, "-c", RESCORE, str(first.folder)], capture_output=True, text=True,
                              cwd=REPO, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    again = rescore()
    assert not again["torch"] and not again["open_clip"] and again["encoding"]["images_encoded"] == 0
    assert again["metrics"] == first.report["metrics"]
    image = next((first.folder / "images").iterdir())
    from PIL import Image

    Image.new("RGB", (48, 48), (10, 200, 30)).save(image)  # another content under the same name
    changed = rescore()
    assert changed["open_clip"] and changed["encoding"]["images_encoded"] == 1
    assert changed["metrics"]["clip_i"]["value"] != first.report["metrics"]["clip_i"]["value"]


def test_device_option(small_world: Path, tmp_path: Path) -> None:
    import torch

    from mg5bench.core.devices import resolve_device

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match=r"--device .gpu.: use auto .*, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")
    res = run(_spec(small_world, "blank", limit=2), tmp_path, device="cpu", resamples=10, progress=False)
    info = json.loads((res.folder / "run.json").read_text())
    assert info["device"]["device"] == "cpu" and info["device"]["type"] == "cpu"
    assert res.report["device"] == "cpu"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_and_score(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    """On a GPU: models, generators and evaluators on CUDA; a CUDA run is its own generation (other random
    streams, other kernels), its scores agree with scoring the same images on the CPU."""
    cpu = run(_sd2(small_world, t2i, limit=4), tmp_path, device="cpu", batch_size=4, resamples=20, progress=False)
    gpu = run(_sd2(small_world, t2i, limit=4), tmp_path, device="cuda", batch_size=4, resamples=20, progress=False)
    assert (
        gpu.folder != cpu.folder and json.loads((gpu.folder / "run.json").read_text())["key"]["device_type"] == "cuda"
    )
    assert len(_image_bytes(gpu.folder)) == 4
    on_cpu = score_run(gpu.folder, device="cpu", resamples=20, progress=False)
    on_gpu = score_run(gpu.folder, device="cuda", resamples=20, progress=False)
    assert on_cpu.folder != on_gpu.folder
    assert on_cpu.report["metrics"]["clip_i"]["value"] == pytest.approx(
        on_gpu.report["metrics"]["clip_i"]["value"], abs=1e-4
    )


def _one_vs_two(model: str, args: list[str], tmp_path: Path) -> None:
    """The same `mg5bench run` in one process and under `torchrun --nproc-per-node 2`: same folder name, the same
    output bytes, the same metrics; each group generated by rank group % 2."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's per-process default; threads are part of the key
    one = subprocess.run([sys.executable, "-m", "mg5bench", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=900)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "mg5bench",
                          *args, "--out", str(tmp_path / "two")], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=900)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    f1 = next((tmp_path / "one" / "vist" / model).iterdir())
    f2 = next((tmp_path / "two" / "vist" / model).iterdir())
    assert f1.name == f2.name  # the process count is not a setting: same run key
    assert _image_bytes(f1) == _image_bytes(f2)
    s1, s2 = next((f1 / "scores").iterdir()), next((f2 / "scores").iterdir())
    assert s1.name == s2.name
    m1, m2 = (json.loads((s / "metrics.json").read_text())["metrics"] for s in (s1, s2))
    assert m1 == m2
    info = json.loads((f2 / "run.json").read_text())
    assert info["runs"][-1]["processes"] == 2
    rows = _rows(f2)
    assert {r["meta"]["rank"] for r in rows.values()} == {0, 1}
    assert all(r["meta"]["rank"] == r["meta"]["group"] % 2 for r in rows.values())


def test_two_processes_match_one(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    """Groups of 2 over 6 samples: rank 0 takes groups 0 and 2, rank 1 group 1; the batches are those of the
    single process, so the images are the same bytes."""
    args = ["run", "--task", "vist", "--model", "sd2", "--split", "val", "--data", str(small_world), "--limit", "6",
            "--num-inference-steps", "2", "--batch-size", "2", "--model-args", f"path={t2i}", "--resamples", "50",
            "--quiet"]  # fmt: skip
    _one_vs_two("sd2", args, tmp_path)


@pytest.mark.skipif(not (REPO / "reference_model" / "checkpoints" / "stage2-vist").is_dir(), reason="not shipped")
def test_two_processes_match_one_minigpt5(small_world: Path, tmp_path: Path) -> None:
    """MiniGPT-5 under torchrun gives the clip_i of one process: batches are fixed groups (shards forming other
    batches would give other numbers), so the texts and images are the same bytes."""
    args = ["run", "--task", "vist", "--model", "minigpt5", "--split", "val", "--data", str(small_world), "--limit",
            "4", "--num-inference-steps", "2", "--max-new-tokens", "12", "--batch-size", "2", "--resamples", "20",
            "--metrics", "clip_i,clip_t,scene_accuracy", "--quiet"]  # fmt: skip
    _one_vs_two("minigpt5", args, tmp_path)
