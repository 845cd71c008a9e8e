"""mg5bench run: bounds ordering, reuse, crash + resume, run-folder keys, 1 vs 2 processes.

The stochastic model here is the ``sd2`` adapter on a tiny random diffusers pipeline (real code path,
random weights), so that per-sample generators matter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mg5bench.runner import run
from mg5bench.spec import GenerationConfig, RunSpec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def t2i(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reference_model.lm import world_texts
    from reference_model.tiny_parts import save_tiny_random_parts

    root = tmp_path_factory.mktemp("runner_parts")
    save_tiny_random_parts(root, world_texts(small_world)[:200])
    return root / "t2i"


def _spec(world: Path, model: str, **kw) -> RunSpec:
    base = {"task": "vist", "model": model, "split": "val", "data": str(world), "limit": 10}
    return RunSpec(**{**base, **kw})


def test_gt_beats_blank_and_reuse(small_world: Path, tmp_path: Path) -> None:
    gt = run(_spec(small_world, "gt"), tmp_path, resamples=50, progress=False)
    blank = run(_spec(small_world, "blank"), tmp_path, resamples=50, progress=False)
    g, b = gt.report["metrics"], blank.report["metrics"]
    assert g["clip_i"]["value"] > 0.99 and g["clip_i"]["value"] > b["clip_i"]["value"]
    assert g["scene_accuracy"]["value"] == 1.0 and b["scene_accuracy"]["value"] == 0.0
    for f in ("run.json", "samples.jsonl", "metrics.json", "per_sample.jsonl"):
        assert (gt.folder / f).exists()
    assert gt.folder.parent == tmp_path / "vist" / "gt"
    calls = []
    again = run(_spec(small_world, "gt"), tmp_path, resamples=50, progress=False, after_sample=calls.append)
    assert again.reused and again.folder == gt.folder and not calls
    assert again.report["metrics"] == gt.report["metrics"]


def test_crash_then_resume_gives_identical_results(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    spec = _spec(small_world, "sd2", model_args={"path": str(t2i)}, generation=GenerationConfig(num_inference_steps=2))

    class Crash(Exception):
        pass

    def crash_at_4(n: int) -> None:
        if n == 4:
            raise Crash

    with pytest.raises(Crash):
        run(spec, tmp_path / "a", resamples=50, progress=False, batch_size=1, after_sample=crash_at_4)
    folder = next((tmp_path / "a" / "vist" / "sd2").iterdir())
    assert (
        not (folder / "metrics.json").exists() and len((folder / "samples.rank0.jsonl").read_text().splitlines()) == 4
    )
    with open(folder / "samples.rank0.jsonl", "a") as f:
        f.write('{"id": "torn li')  # a write cut short by the crash
    done = []
    resumed = run(spec, tmp_path / "a", resamples=50, progress=False, batch_size=1, after_sample=done.append)
    assert done[0] == 5 and done[-1] == 10  # only the missing samples were generated
    clean = run(spec, tmp_path / "b", resamples=50, progress=False, batch_size=1)
    assert resumed.report["metrics"] == clean.report["metrics"]
    rows_a = [json.loads(x) for x in (resumed.folder / "samples.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (clean.folder / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows_a] == [r["id"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b, strict=True):
        ia, ib = ra["output"][0]["image"], rb["output"][0]["image"]
        assert (resumed.folder / ia).read_bytes() == (clean.folder / ib).read_bytes()


def test_changed_settings_or_checkpoint_give_a_new_folder(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    import shutil

    spec = _spec(small_world, "sd2", limit=2, model_args={"path": str(t2i)},
                 generation=GenerationConfig(num_inference_steps=2))  # fmt: skip
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
    assert json.loads((b / "run.json").read_text())["key"]["generation"]["guidance_scale"] == 1.5


def test_two_processes_match_one(small_world: Path, t2i: Path, tmp_path: Path) -> None:
    args = ["run", "--task", "vist", "--model", "sd2", "--split", "val", "--data", str(small_world), "--limit", "6",
            "--steps", "2", "--model-args", f"path={t2i}", "--resamples", "50", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "mg5bench", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=600)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "mg5bench",
                          *args, "--out", str(tmp_path / "two")], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=600)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    f1 = next((tmp_path / "one" / "vist" / "sd2").iterdir())
    f2 = next((tmp_path / "two" / "vist" / "sd2").iterdir())
    assert f1.name == f2.name  # the process count is not a setting: same run key
    m1 = json.loads((f1 / "metrics.json").read_text())["metrics"]
    m2 = json.loads((f2 / "metrics.json").read_text())["metrics"]
    assert m1 == m2
    assert json.loads((f2 / "run.json").read_text())["processes"] == 2
    ranks = {json.loads(x)["meta"]["rank"] for x in (f2 / "samples.jsonl").read_text().splitlines()}
    assert ranks == {0, 1}
