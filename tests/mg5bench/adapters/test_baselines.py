"""The divter and two-stage baselines: Divter's training text round-trips, its LM is trained for real (LoRA only,
a few steps on tiny random backbones) and both pipelines run through the runner on every task."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from mg5bench.adapters.divter import context_text, parse_response, response_text
from mg5bench.core.errors import ConfigError
from mg5bench.core.sample import Sample, Segment

T, I = Segment.text, Segment.image  # noqa: E741


def test_response_format_round_trips() -> None:
    assert parse_response(response_text("here it is .", "a big red circle .")) == ("here it is .", "a big red circle .")
    assert parse_response(response_text("thanks", None)) == ("thanks", None)
    assert parse_response("no tag at all") == ("no tag at all", None)  # an LM that never writes the tag: no image


def test_context_text_captions_images_and_keeps_speakers() -> None:
    s = Sample("c_1", (T("draw a cat", role="human"), T("here", role="assistant"), I("/a.png", role="assistant"),
                       T("bigger", role="human")), (), "c", {"speaker": "assistant"})  # fmt: skip
    got = context_text(s, "mmdialog", {"/a.png": "a big cat ."})
    want = "###Human: draw a cat ###Assistant: here ###Assistant: [image: a big cat .] ###Human: bigger ###Assistant:"
    assert got == want
    v = Sample("s_1", (T("a red circle ."), I("/b.png"), T("it shrinks .")), (I("/c.png"),), "s")
    got = context_text(v, "vist", {"/b.png": "a big red circle ."})
    assert got == "a red circle . [image: a big red circle .] it shrinks ."


@pytest.fixture(scope="module")
def backbones(tmp_path_factory: pytest.TempPathFactory, small_world: Path) -> Path:
    from reference_model.lm import world_texts
    from reference_model.tiny_parts import save_tiny_random_parts

    root = tmp_path_factory.mktemp("baseline_parts") / "backbones"
    save_tiny_random_parts(root, world_texts(small_world)[:300])
    return root


def test_divter_trains_its_lora_and_runs_on_every_task(backbones: Path, small_world: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from mg5bench.cli import main
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import GenerationConfig, RunSpec

    out = tmp_path / "divter"
    assert main(["train", "divter", "--task", "mmdialog", "--data", str(small_world), "--out", str(out),
                 "--steps", "3", "--batch", "4", "--lr", "1e-3", "--base", str(backbones)]) == 0  # fmt: skip
    cfg = json.loads((out / "divter_config.json").read_text())
    assert cfg["steps"] == 3 and cfg["train_pairs"] > 0 and not Path(cfg["backbones"]).is_absolute()
    lora = load_file(str(out / "adapter_model.safetensors"))
    assert lora and all("lora_" in k for k in lora)  # only the LoRA is stored, not the LM
    assert any(float(v.abs().sum()) > 0 for k, v in lora.items() if "lora_B" in k)  # lora_B starts at 0: it trained
    gen = GenerationConfig(num_inference_steps=2, guidance_scale=2.0)
    for task in ("mmdialog", "vist", "cc3m"):
        # trained on mmdialog: another task is refused unless asked for (cross_task, not part of the key)
        cross = {} if task == "mmdialog" else {"cross_task": "true"}
        spec = RunSpec(task=task, model="divter", split="val", data=str(small_world), limit=2,
                       model_args={"checkpoint": str(out), **cross}, generation=gen)  # fmt: skip
        if cross:
            with pytest.raises(ConfigError, match=f"trained for the mmdialog task, not {task}.*cross_task=true"):
                run(dataclasses.replace(spec, model_args=(("checkpoint", str(out)),)), tmp_path / "runs",
                    progress=False)  # fmt: skip
        res = run(spec, tmp_path / "runs", resamples=10, progress=False, batch_size=2)
        assert res.report["metrics"], task
        assert res.info["key"]["model"]["backbones_sha256"] == cfg["backbones_sha256"]
        assert "cross_task" not in res.info["key"]["model"]["model_args"]
        # --max-new-tokens is used (default: the length it was trained with), --temperature is refused
        assert res.info["generation"]["max_new_tokens"] == cfg["max_new_tokens"]
    from mg5bench.adapters.divter import DivterAdapter
    from mg5bench.tasks import get_task

    with pytest.raises(ConfigError, match=r"does not use --temperature; it uses: .*--max-new-tokens"):
        DivterAdapter(get_task("mmdialog"), {"checkpoint": str(out)}).resolve(GenerationConfig(temperature=0.5))
    short = DivterAdapter(get_task("mmdialog"), {"checkpoint": str(out)})
    assert short.resolve(GenerationConfig(max_new_tokens=1)).max_new_tokens == 1
    from mg5bench.adapters.divter import Divter as _Divter

    written = _Divter(out).write(["###Human: hello ###Assistant:"], 1)
    assert len(written[0][0].split()) <= 1 and written[0][1] is None  # one token: no room for a description
    # a different backbones folder is refused, not silently used
    other = tmp_path / "other"
    from reference_model.tiny_parts import save_tiny_random_parts

    save_tiny_random_parts(other, ["a red circle ."], seed=1)
    from mg5bench.adapters.divter import Divter

    with pytest.raises(ConfigError, match="retrain"):
        Divter(out, other)
    # the export into a shipped set names the LM relative to itself (peft wrote the training path) and loads there;
    # backbones that are not byte-identical to the recorded ones are refused
    from mg5bench.training.divter import export_divter

    shutil.copytree(backbones, tmp_path / "set" / "backbones")
    export_divter(out, tmp_path / "set" / "divter-mmdialog", tmp_path / "set" / "backbones")
    adapter = json.loads((tmp_path / "set" / "divter-mmdialog" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "../backbones/lm"
    (tmp_path / "set" / "divter-mmdialog" / "README.md").write_text("# card\n")
    export_divter(out, tmp_path / "set" / "divter-mmdialog", tmp_path / "set" / "backbones")  # again: card kept
    assert (tmp_path / "set" / "divter-mmdialog" / "README.md").read_text() == "# card\n"
    shipped = Divter(tmp_path / "set" / "divter-mmdialog")
    assert shipped.write(["###Human: hello ###Assistant:"], 1)[0][0] == written[0][0]
    with pytest.raises(ConfigError, match="sha256 differs"):
        export_divter(out, tmp_path / "set2" / "divter-mmdialog", other)
    torch.manual_seed(0)


def test_two_stage_prompt_is_the_described_state_plus_the_instruction(backbones: Path, small_world: Path,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    from mg5bench.adapters.twostage import TwoStage
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import GenerationConfig, RunSpec
    from mg5bench.tasks import build_samples, get_task

    sset = build_samples(get_task("vist"), str(small_world), "val", progress=False)
    sample = next(s for s in sset.samples if any(seg.is_image for seg in s.context))
    adapter = TwoStage(get_task("vist"), {"backbones": str(backbones)})
    from mg5bench.adapters.backbones import Parts

    parts = Parts(backbones)
    last = [seg.value for seg in sample.context if seg.is_image][-1]
    caption = parts.captions([last])[0]
    assert adapter.scene_text(sample, {last: caption}) == f"{caption} {sample.context[-1].value}"
    gen = GenerationConfig(num_inference_steps=2, guidance_scale=2.0)
    for task in ("mmdialog", "vist", "cc3m"):
        # only in a dialog does it write text, so only there does it take --max-new-tokens
        g = dataclasses.replace(gen, max_new_tokens=4) if task == "mmdialog" else gen
        spec = RunSpec(task=task, model="two-stage", split="val", data=str(small_world), limit=2,
                       model_args={"backbones": str(backbones)}, generation=g)  # fmt: skip
        res = run(spec, tmp_path / "runs", resamples=10, progress=False, batch_size=2)
        rate = res.report["metrics"]["clip_i.image_rate"]["value"]
        assert rate == 1.0 or (task == "mmdialog" and rate is None), task  # it always draws (dialog: if asked)
        assert res.info["generation"]["max_new_tokens"] == (4 if task == "mmdialog" else None)
    with pytest.raises(ConfigError, match="does not use --max-new-tokens"):
        TwoStage(get_task("vist"), {}).resolve(GenerationConfig(max_new_tokens=4))
    assert TwoStage(get_task("mmdialog"), {}).resolve(GenerationConfig()).max_new_tokens == 24
    with pytest.raises(ConfigError, match="does not take"):
        TwoStage(get_task("vist"), {"checkpoint": "x"})
