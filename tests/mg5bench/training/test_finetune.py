"""sd2-ft training text: what the fine-tuned baseline is trained on equals what it is prompted with."""

from __future__ import annotations

from pathlib import Path

from mg5bench.adapters.sd2 import sd2ft_text
from mg5bench.core.sample import Sample, Segment
from mg5bench.training.finetune import training_pairs

T, I = Segment.text, Segment.image  # noqa: E741


def _vist(k: int) -> Sample:
    ctx = []
    for j in range(k):
        ctx += [T(f"caption {j} ."), I(f"/img/{j}.png")]
    return Sample(f"s_{k}", (*ctx, T(f"caption {k} .")), (I(f"/img/{k}.png"),), "s", {"caption": f"caption {k} ."})


def test_vist_pairs_use_the_step_caption_or_the_story_text() -> None:
    samples = [_vist(k) for k in range(3)]
    assert training_pairs(samples, "vist") == [(f"caption {k} .", Path(f"/img/{k}.png")) for k in range(3)]
    story = training_pairs(samples, "vist", context="text")
    assert story[2] == ("caption 0 . caption 1 . caption 2 .", Path("/img/2.png"))
    assert sd2ft_text(samples[2], "vist") == "caption 2 ."


def test_mmdialog_pairs_use_the_response_text_and_skip_text_only_responses() -> None:
    with_image = Sample("c_1", (T("show me a red circle", role="human"),),
                        (T("here it is", role="assistant"), I("/img/r.png", role="assistant")), "c")  # fmt: skip
    text_only = Sample("c_2", (T("thanks", role="human"),), (T("you are welcome", role="assistant"),), "c")
    assert training_pairs([with_image, text_only], "mmdialog") == [("here it is", Path("/img/r.png"))]
    assert sd2ft_text(with_image, "mmdialog") == "show me a red circle"  # test time: the last context text


def test_train_sd2ft_end_to_end_on_tiny_parts(tmp_path: Path) -> None:
    """`mg5bench train sd2-ft` on a small world from a tiny random base: new words get text-encoder rows, the
    exported pipeline loads and the sd2-ft adapter renders with it."""
    import json

    import torch
    from transformers import CLIPTextModel

    from mg5bench.cli import main
    from mg5bench.runs.runner import run
    from mg5bench.runs.spec import GenerationConfig, RunSpec
    from reference_model.tiny_parts import save_tiny_random_parts

    save_tiny_random_parts(tmp_path / "b", ["a big red circle at the top left ."])
    base = tmp_path / "b" / "t2i"
    out = tmp_path / "ft"
    data = "synth:size=small,level=1"
    assert main(["train", "sd2-ft", "--task", "vist", "--data", data, "--out", str(out), "--steps", "2",
                 "--base", str(base), "--batch", "4"]) == 0  # fmt: skip
    info = json.loads((out / "sd2ft_info.json").read_text())
    from mg5bench.data.world_content import SIZE_PRESETS, STORY_STEPS

    train_stories = SIZE_PRESETS["small"]["vist"]["train"]
    assert info["pairs"] == train_stories * STORY_STEPS  # every train step has an image
    assert info["new_words"] > 0  # "it", "moves", ... are not in the base vocabulary
    old = CLIPTextModel.from_pretrained(base / "text_encoder").get_input_embeddings().weight
    new = CLIPTextModel.from_pretrained(out / "pipeline" / "text_encoder").get_input_embeddings().weight
    assert new.shape[0] == old.shape[0] + info["new_words"]
    # cross-kv (the default): only the UNet's cross-attention k/v moved; the packed delta rebuilds the pipeline
    from mg5bench.adapters.sd2 import load_sd2ft
    from reference_model.t2i import cross_kv_names, load_pipeline

    tuned, base_pipe, packed = load_pipeline(out / "pipeline"), load_pipeline(base), load_sd2ft(out / "packed")
    kv = cross_kv_names(tuned.unet)
    assert kv
    before, after, rebuilt = (p.unet.state_dict() for p in (base_pipe, tuned, packed))
    assert all(torch.equal(before[k], after[k]) for k in before if k not in kv)
    assert any(not torch.equal(before[k], after[k]) for k in kv)
    assert all(torch.allclose(rebuilt[k], after[k], atol=1e-3, rtol=1e-3) for k in after)  # float16 delta
    ids = packed.tokenizer(["it moves up ."], return_tensors="pt")["input_ids"]
    assert torch.equal(ids, tuned.tokenizer(["it moves up ."], return_tensors="pt")["input_ids"])
    gen = GenerationConfig(num_inference_steps=2)
    for path in (out / "pipeline", out / "packed"):
        spec = RunSpec(task="vist", model="sd2-ft", split="val", data=data, limit=2,
                       model_args=(("path", str(path)),), generation=gen)  # fmt: skip
        res = run(spec, tmp_path / "runs", progress=False, resamples=10, batch_size=2)
        assert res.n_selected == 2 and res.generated == 2
