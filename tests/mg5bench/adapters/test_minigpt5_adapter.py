"""Adapters: the minigpt5 prompts equal the official loader strings (reference_model.data) on the same
records; the minigpt5 adapter runs end to end through the runner on a freshly trained tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mg5bench.adapters.minigpt5 import cc3m_source, interleave, mmdialog_source, vist_source
from mg5bench.core.errors import ConfigError
from mg5bench.tasks import build_samples, get_task


def test_interleave_puts_each_image_at_its_placeholder() -> None:
    assert interleave("a<Img><ImageHere></Img>b", ["I"]) == ["a", "I", "b"]
    with pytest.raises(ValueError, match="1 placeholders but 0 images"):
        interleave("a<Img><ImageHere></Img>b", [])


def test_vist_prompt_matches_the_official_gen_source(small_world: Path) -> None:
    from reference_model.data import read_vist, vist_gen_source

    stories = read_vist(small_world / "VIST", "val")
    sset = build_samples(get_task("vist"), str(small_world), "val", progress=False)
    for sample in sset.samples[:15]:
        story, k = sample.meta["story_id"], sample.meta["step"]
        want_src, want_imgs = vist_gen_source(stories[story], k, 0)
        src, imgs = vist_source(sample)
        assert src == want_src
        assert [Path(p).resolve() for p in imgs] == [Path(p).resolve() for p in want_imgs]


def test_random_instruction_draws_each_official_template_per_sample(small_world: Path) -> None:
    """instruction=random: every sample gets one of the official -gen templates, by a draw fixed by (seed, id); the
    default keeps the first template, and its protocol (hashed into run keys) does not mention the new setting."""
    from reference_model.data import VIST_GEN, read_vist, vist_gen_source

    stories = read_vist(small_world / "VIST", "val")
    task = get_task("vist", {"instruction": "random", "instruction_seed": 3})
    sset = build_samples(task, str(small_world), "val", progress=False)
    again = build_samples(get_task("vist", {"instruction": "random", "instruction_seed": 3}), str(small_world),
                          "val", progress=False)  # fmt: skip
    other = build_samples(get_task("vist", {"instruction": "random", "instruction_seed": 4}), str(small_world),
                          "val", progress=False)  # fmt: skip
    used = []
    for sample in sset.samples:
        src, _ = vist_source(sample)
        k = next(i for i in range(len(VIST_GEN)) if src == vist_gen_source(stories[sample.meta["story_id"]],
                                                                          sample.meta["step"], i)[0])  # fmt: skip
        used.append(k)
    assert set(used) == set(range(len(VIST_GEN))) and 0.3 < used.count(0) / len(used) < 0.7
    assert [vist_source(s)[0] for s in again.samples] == [vist_source(s)[0] for s in sset.samples]
    assert [vist_source(s)[0] for s in other.samples] != [vist_source(s)[0] for s in sset.samples]
    assert "instruction" not in get_task("vist").to_dict()["protocol"]
    assert task.to_dict()["protocol"]["instruction"] == "random"


def test_mmdialog_prompt_matches_the_official_loader(small_world: Path) -> None:
    from reference_model.data import mmdialog_source as official
    from reference_model.data import read_mmdialog

    convs = dict(read_mmdialog(small_world / "MMDialog", "val"))
    sset = build_samples(get_task("mmdialog"), str(small_world), "val", progress=False)
    checked = 0
    for sample in sset.samples[:40]:
        turns = convs[str(sample.meta["conversation_id"])]
        if any(not t for t, _ in turns):  # the official loader cuts at empty-text turns; compare the rest
            continue
        want_src, want_imgs = official(turns, sample.meta["turn"])
        src, imgs = mmdialog_source(sample)
        assert src == want_src
        assert [Path(p).resolve() for p in imgs] == [Path(p).resolve() for p in want_imgs]
        checked += 1
    assert checked >= 10


def test_cc3m_prompt_is_the_cleaned_caption(small_world: Path) -> None:
    sset = build_samples(get_task("cc3m"), str(small_world), "val", progress=False)
    src, imgs = cc3m_source(sset.samples[0])
    caption = sset.samples[0].meta["caption"]
    assert src == " ".join(caption.lower().replace(".", " ").split()) and imgs == []


@pytest.fixture(scope="module")
def tiny_ckpt(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reference_model.lm import world_texts
    from reference_model.tiny_parts import save_tiny_random_parts
    from reference_model.train import TrainConfig, train_stage

    root = tmp_path_factory.mktemp("adapter_ckpt")
    cfg = save_tiny_random_parts(root / "parts", world_texts(small_world)[:300])
    tc = TrainConfig(stage=2, task="vist", steps=1, batch=2, warmup=1, val_examples=2, data=str(small_world / "VIST"))
    train_stage(cfg, tc, root / "s2", threads=1)
    return root / "s2"


def test_minigpt5_adapter_through_the_runner(small_world: Path, tiny_ckpt: Path, tmp_path: Path) -> None:
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import GenerationConfig, RunSpec

    spec = RunSpec(task="vist", model="minigpt5", split="val", data=str(small_world), limit=3,
                   model_args={"checkpoint": str(tiny_ckpt), "force_generation": "true"},
                   generation=GenerationConfig(num_inference_steps=2, max_new_tokens=4))  # fmt: skip
    res = run(spec, tmp_path, resamples=20, progress=False, batch_size=3)
    m = res.report["metrics"]
    assert m["clip_i"]["n"] == 3 and m["clip_i.image_rate"]["value"] == 1.0  # forced: every sample has an image
    key = res.info["key"]["model"]
    # the key holds the checkpoint's content hash, never its path (the same checkpoint elsewhere is the same run)
    assert "source" not in key and ":" in key["sha256"] and str(tiny_ckpt) not in json.dumps(res.info["key"])
    # resolved once, from the checkpoint's config; the given settings win; recorded (and hashed) as used
    ckpt = json.loads((tiny_ckpt / "minigpt5_config.json").read_text())
    used = res.info["generation"]
    assert used == res.info["key"]["generation"]
    assert used == {"guidance_scale": ckpt["guidance_scale"], "num_inference_steps": 2, "max_new_tokens": 4,
                    "temperature": ckpt["temperature"], "top_p": ckpt["top_p"],
                    "repetition_penalty": ckpt["repetition_penalty"], "do_sample": True}  # fmt: skip
    from mg5bench.adapters.minigpt5 import MiniGPT5Adapter

    adapter = MiniGPT5Adapter(get_task("vist"), {"checkpoint": str(tiny_ckpt)})
    greedy = adapter.resolve(GenerationConfig(do_sample=False))
    assert greedy.do_sample is False and greedy.temperature is None and greedy.top_p is None
    with pytest.raises(ConfigError, match="does not use --temperature"):  # greedy decoding has no temperature
        adapter.resolve(GenerationConfig(do_sample=False, temperature=0.7))
    with pytest.raises(Exception, match="does not take"):
        run(RunSpec(task="vist", model="minigpt5", model_args={"nope": 1}), tmp_path)
