"""reference_model.lm: the world tokenizer and a few pretraining steps of a tiny LLaMA."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from reference_model.lm import SPECIAL, build_lm, train_tokenizer, world_texts


def test_world_texts_and_tokenizer(small_world: Path) -> None:
    texts = world_texts(small_world)
    assert any(t.startswith("###Human:") for t in texts) and any(" ." in t for t in texts)
    tok = train_tokenizer(texts, vocab_size=400)
    for s in SPECIAL:
        assert len(tok(s, add_special_tokens=False)["input_ids"]) == 1, s
    ids = tok("a big red circle at the top left .", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "a big red circle at the top left ."
    assert "[IMG0]" not in tok.get_vocab()  # vokens are added by add_vokens, not by pretraining


def test_few_steps_reduce_the_loss(small_world: Path) -> None:
    tok = train_tokenizer(world_texts(small_world), vocab_size=400)
    torch.manual_seed(0)
    lm = build_lm(len(tok), hidden=64, layers=2, heads=4)
    batch = tok(world_texts(small_world)[:8], padding="max_length", max_length=24, truncation=True, return_tensors="pt")
    x = batch["input_ids"]
    labels = x.masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        loss = lm(input_ids=x, attention_mask=batch["attention_mask"], labels=labels).loss
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first


def test_world_text_phrases_match_the_world_and_parse_back(small_world: Path) -> None:
    """reference_model cannot import mg5bench, so its copy of the world's phrases is checked here: canonical
    captions equal mg5bench's, and every possible object parses back from its description."""
    from mg5bench.data import scenes as world_scenes
    from reference_model import world_text as wt

    assert wt.CELL_PHRASES == world_scenes.CELL_PHRASES
    assert set(wt.COLOURS) == set(world_scenes.COLOURS) and set(wt.SHAPES) == set(world_scenes.SHAPES)
    assert set(wt.SIZES) == set(world_scenes.SIZES)
    for size in wt.SIZES:
        for colour in wt.COLOURS:
            for shape in wt.SHAPES:
                for cell in range(9):
                    obj = {"size": size, "colour": colour, "shape": shape, "cell": cell}
                    text = world_scenes.scene_caption({"objects": [obj]}, 1)
                    assert wt.parse_caption(text) == [obj]
                    assert wt.scene_caption([obj]) == world_scenes.scene_caption({"objects": [obj]}, 0)
    two = [{"size": "big", "colour": "red", "shape": "circle", "cell": 0},
           {"size": "small", "colour": "blue", "shape": "square", "cell": 8}]  # fmt: skip
    assert wt.parse_caption(wt.scene_caption(two)) == two
    assert wt.attribute_scores(two[:1], "a big red square at the top left .") == {
        "colour": 1.0, "shape": 0.0, "size": 1.0, "cell": 1.0, "exact": 0.0}  # fmt: skip
    assert wt.attribute_scores(two[:1], "no idea") == dict.fromkeys(("colour", "shape", "size", "cell", "exact"), 0.0)


def test_corpus_states_each_story_step_as_the_world_records_it(small_world: Path) -> None:
    """The probe documents end with the scene of step k as scenes.jsonl has it (never the narration's guess)."""
    import json

    from reference_model.world_text import PROBE_QUESTION, corpus, parse_caption, probe_prompt, vist_stories

    docs = corpus(small_world)
    stories = vist_stories(small_world, "train")
    mapping = json.loads((small_world / "VIST" / "train_image_mapping.json").read_text())
    assert len(stories) == len(json.loads((small_world / "VIST" / "train_cleaned.json").read_text()))
    assert len(mapping) == 5 * len(stories)
    probes = [d for d in docs if PROBE_QUESTION in d]
    assert len(probes) == sum(len(s) for s in stories)
    for steps in stories[:10]:
        for k in range(len(steps)):
            doc = next(d for d in probes if d.startswith(probe_prompt([c for c, _ in steps[: k + 1]]) + " "))
            assert parse_caption(doc.split("###Assistant:")[1]) == steps[k][1]
    assert any(d.startswith("###Human: <Img>") and "Describe this image." in d for d in docs)
    assert any("Generate an image with the scene description:" in d for d in docs)


def test_pretrain_resumes_and_the_probe_scores_per_step(small_world: Path, tmp_path: Path) -> None:
    """A few real steps on the small world: curve.jsonl has the probe, a rerun with more steps resumes from the
    saved state, and the probe's per-step exact accuracy is recomputed identically from the saved model."""
    import json

    from transformers import AutoTokenizer, LlamaForCausalLM

    from reference_model.train_lm import pretrain, scene_probe

    res = pretrain(small_world, tmp_path / "lm", steps=4, batch=4, hidden=64, layers=1, probe_every=2,
                   probe_stories=4)  # fmt: skip
    curve = [json.loads(line) for line in (tmp_path / "lm" / "curve.jsonl").read_text().splitlines()]
    assert [c["step"] for c in curve] == [2, 4] and all(len(c["exact_per_step"]) == 5 for c in curve)
    p = res["probe"]
    assert p["probe_n"] == 5 * 16 and all(0.0 <= p[a] <= 1.0 for a in ("colour", "shape", "size", "cell", "exact"))
    lm = LlamaForCausalLM.from_pretrained(tmp_path / "lm" / "lm").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "lm" / "lm")
    again = scene_probe(lm, tok, small_world, "val", 200)
    assert again["exact_per_step"] == p["exact_per_step"] and again["colour"] == p["colour"]
    more = pretrain(small_world, tmp_path / "lm", steps=5, batch=4, hidden=64, layers=1, probe_every=100,
                    probe_stories=4)  # fmt: skip
    assert more["steps"] == 5 and len((tmp_path / "lm" / "curve.jsonl").read_text().splitlines()) == 3


def test_pretrain_continues_from_an_lm_folder(small_world: Path, tmp_path: Path) -> None:
    """--init loads the folder's weights and tokenizer (its sizes win over --hidden/--layers); at lr 0 a step
    leaves every weight as it was, at lr > 0 the continued model moves away from it."""
    import torch
    from transformers import LlamaForCausalLM

    from reference_model.train_lm import pretrain

    pretrain(small_world, tmp_path / "a", steps=2, batch=4, hidden=64, layers=1, probe_every=100, probe_stories=2)
    init = tmp_path / "a" / "lm"
    res = pretrain(small_world, tmp_path / "b", steps=1, batch=4, lr=0.0, hidden=999, layers=9, probe_every=100,
                   probe_stories=2, init=init)  # fmt: skip
    assert (res["hidden"], res["layers"], res["init"]) == (64, 1, str(init))
    a = LlamaForCausalLM.from_pretrained(init).state_dict()
    b = LlamaForCausalLM.from_pretrained(tmp_path / "b" / "lm").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "b" / "lm" / "tokenizer.json").read_text() == (init / "tokenizer.json").read_text()
    pretrain(small_world, tmp_path / "c", steps=2, batch=4, lr=1e-2, probe_every=100, probe_stories=2, init=init)
    c = LlamaForCausalLM.from_pretrained(tmp_path / "c" / "lm").state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_backbones_command_builds_the_lm_at_the_asked_size(small_world: Path, tmp_path: Path) -> None:
    """`reference_model.train backbones --lm-layers/--lm-hidden` reach the LM it pretrains (the shipped LM is
    deeper than the default), and the vision path is built on that LM's width."""
    from transformers import LlamaConfig

    from reference_model.train import main

    main(["backbones", "--world", str(small_world), "--out", str(tmp_path / "b"), "--lm-steps", "2",
          "--lm-layers", "2", "--lm-hidden", "64", "--qformer-steps", "0", "--vision-steps", "1"])  # fmt: skip
    cfg = LlamaConfig.from_pretrained(tmp_path / "b" / "lm")
    assert (cfg.num_hidden_layers, cfg.hidden_size) == (2, 64)
    vision = json.loads((tmp_path / "b" / "vision" / "vision_config.json").read_text())
    assert vision["lm_hidden"] == 64
