"""reference_model.modeling / train: shapes, loss masks, CFG drop, determinism, learning, checkpoints, DDP.

All models here are tiny random parts saved in the real formats (reference_model.tiny_parts); the
data is the small synthetic world in the real CC3M / VIST / MMDialog formats.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_model.config import MiniGPT5Config
from reference_model.data import Example, cc3m_examples, mmdialog_examples, vist_examples, voken_string
from reference_model.lm import world_texts
from reference_model.modeling import MiniGPT5
from reference_model.train import ImageCache, TrainConfig, train_stage


@pytest.fixture(scope="module")
def parts(small_world: Path, tmp_path_factory: pytest.TempPathFactory):
    from reference_model.tiny_parts import save_tiny_random_parts

    root = tmp_path_factory.mktemp("parts")
    return save_tiny_random_parts(root, world_texts(small_world)[:400])


@pytest.fixture()
def model(parts) -> MiniGPT5:
    torch.manual_seed(0)
    return MiniGPT5.from_config(parts)


def _examples(world: Path) -> list[Example]:
    return cc3m_examples(world / "CC3M", "train", train=False)[:4]


def test_example_builders_follow_the_spec(small_world: Path) -> None:
    cc = cc3m_examples(small_world / "CC3M", "train", train=True)
    inst = [e for e in cc if e.task.endswith("_instruction")]
    assert inst and inst[0].task == "cc3m_0_instruction" and "###Human:" in inst[0].source
    rows = len(cc) - len(inst)
    assert len(inst) == -(-rows // 100)  # official: rows 0, 100, 200, ... get an instruction copy
    cc2 = cc3m_examples(small_world / "CC3M", "train", train=True, instruction_every=2)
    inst2 = [e for e in cc2 if e.task.endswith("_instruction")]
    assert len(inst2) == -(-rows // 2)
    assert all(e.caption in e.source and e.source.endswith("###Assistant:") for e in inst2)
    with pytest.raises(ValueError, match="instruction_every"):
        cc3m_examples(small_world / "CC3M", "train", train=True, instruction_every=0)
    assert cc[0].target == voken_string(8) + " ###" and cc[0].caption == cc[0].source
    vist_train = vist_examples(small_world / "VIST", "train", train=True)
    n_stories = len({e.task.split("_")[0] for e in vist_train})
    assert len(vist_train) == 13 * n_stories  # 5 gen + 4 multimodal + 4 understanding per story
    und = [e for e in vist_train if e.task.endswith("-understanding")]
    assert all(e.output_image is None and len(e.input_images) == e.source.count("<ImageHere>") for e in und)
    vist_val = vist_examples(small_world / "VIST", "val", train=False)
    assert all(e.task.endswith("-gen") for e in vist_val)
    step3 = next(e for e in vist_val if e.task.endswith("_3-gen"))
    assert len(step3.input_images) == 3 and "Generate an image with the scene description:" in step3.source
    mm = mmdialog_examples(small_world / "MMDialog", "val", train=False)
    assert mm and all(e.source.rstrip().endswith(("###Human:", "###Assistant:")) for e in mm)
    odd = next(e for e in mm if e.task.endswith("_3-mm"))
    assert odd.source.count("###Human:") + odd.source.count("###Assistant:") == 4  # 3 turns of context + tag


def test_loss_mask_keeps_only_img0_and_last_voken(model: MiniGPT5) -> None:
    ids, labels = model.tokenize("a red circle", "it moves " + voken_string(8) + " ###")
    assert ids[0] == model.tokenizer.bos_token_id and labels[0] == -100
    n_src = len(model.tokenizer("a red circle", add_special_tokens=False)["input_ids"])
    assert labels[1 : 1 + n_src] == [-100] * n_src
    vok = model.ids.vokens
    sup = {t for t, lab in zip(ids, labels, strict=True) if lab != -100}
    assert vok[0] in sup and vok[-1] in sup and not (set(vok[1:-1]) & sup)
    model.cfg.loss.supervise_all_vokens = True
    _, labels2 = model.tokenize("a red circle", voken_string(8) + " ###")
    assert sum(lab in vok for lab in labels2) == 8


def test_shapes_and_voken_positions(model: MiniGPT5, small_world: Path) -> None:
    exs = vist_examples(small_world / "VIST", "val", train=False)[:5]  # steps 0..4 of one story
    batch = model.collate(exs, ImageCache(), train=False)
    x, att, _, tokens = model._inputs_embeds(batch)
    q = model.cfg.num_image_queries
    n_img = sum(len(e.input_images) for e in exs)
    n_tok = sum(len(i) for i in batch.input_ids)
    assert x.shape[-1] == model.d_llm and int(att.sum()) == n_tok - n_img + n_img * q
    assert int((tokens == -1).sum()) == n_img * q
    h = model._decoder()(inputs_embeds=x, attention_mask=att).last_hidden_state  # (B, T, d)
    states = model.voken_states(h, tokens, batch.output_index)
    assert states.shape == (5, model.cfg.num_vokens, model.d_llm)
    p = int((tokens[0] == model.ids.first).nonzero()[0, 0])
    assert torch.equal(states[0, 0], h[0, p - 1]) and torch.equal(states[0, -1], h[0, p + 6])  # p-1 .. p+6
    model.cfg.voken_hidden_offset = 0
    assert torch.equal(model.voken_states(h, tokens, [0])[0, 0], h[0, p])
    cond = model.mapper(states)
    assert cond.shape == (5, model.cfg.mapper.num_queries, model.text_encoder.config.hidden_size)
    assert batch.output_images.shape == (5, 3, model.cfg.image_size, model.cfg.image_size)


def test_cfg_drop_rate_and_null_condition(model: MiniGPT5) -> None:
    model.train()
    h = torch.randn(4000, model.cfg.num_vokens, model.d_llm)
    drop = torch.rand(len(h), generator=torch.Generator().manual_seed(0)) < model.cfg.cfg_drop_p
    rate = float(drop.float().mean())
    assert abs(rate - 0.1) < 4 * (0.1 * 0.9 / 4000) ** 0.5
    zeroed = h * (~drop).float().view(-1, 1, 1)
    cond = model.mapper(zeroed[drop][:2])
    null = model.null_condition()
    assert torch.allclose(cond, null.expand_as(cond), atol=1e-5)


def test_forward_reports_cfg_drop_only_in_training(model: MiniGPT5, small_world: Path) -> None:
    model.setup_stage(1)
    model.cfg.cfg_drop_p = 0.5
    exs = cc3m_examples(small_world / "CC3M", "train", train=False)[:32]
    batch = model.collate(exs, ImageCache(), train=True)
    model.train()
    out = model(batch, torch.Generator().manual_seed(1))
    assert 0.2 < float(out["dropped"]) < 0.8 and float(out["caption"]) > 0
    model.eval()
    assert float(model(batch, torch.Generator().manual_seed(1))["dropped"]) == 0.0


def test_few_steps_reduce_the_loss_and_touch_only_new_rows(model: MiniGPT5, small_world: Path) -> None:
    groups = model.setup_stage(1)
    model.cfg.cfg_drop_p = 0.0
    before = model._embed().weight.detach().clone()
    opt = torch.optim.AdamW([{"params": g["params"], "lr": 3e-3 * g["lr_scale"]} for g in groups], weight_decay=0.0)
    batch = model.collate(_examples(small_world), ImageCache(), train=True)
    model.train()
    losses = []
    for _ in range(12):
        out = model(batch, torch.Generator().manual_seed(0))  # same noise: a deterministic objective
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append({k: float(v.detach()) for k, v in out.items()})
    # a random UNet hardly reacts to its condition, so the image term moves little; the others must
    first, last = losses[0], losses[-1]
    assert last["loss"] < first["loss"] and last["text"] < 0.95 * first["text"]
    assert last["caption"] < 0.5 * first["caption"]
    changed = (model._embed().weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert set(changed) <= set(model.ids.new_ids) and changed


def test_generate_is_deterministic_and_batch_independent(model: MiniGPT5, small_world: Path) -> None:
    from PIL import Image

    img = Image.open(cc3m_examples(small_world / "CC3M", "val", train=False)[0].output_image)
    a = ["a big red circle at the top left ."]
    b = ["###Human: look ", img, " ###Assistant:"]
    kw = {"force_generation": True, "max_new_tokens": 6}
    one = model.generate([a], [torch.Generator().manual_seed(5)], **kw)
    two = model.generate([b, a], [torch.Generator().manual_seed(9), torch.Generator().manual_seed(5)], **kw)
    again = model.generate([a], [torch.Generator().manual_seed(5)], **kw)

    def pixels(out):
        return [np.asarray(s["image"]) for s in out if "image" in s]

    assert any("image" in s for s in one[0])  # force_generation makes [IMG0] come first
    assert [s.get("text") for s in one[0]] == [s.get("text") for s in two[1]] == [s.get("text") for s in again[0]]
    for p, q in zip(pixels(one[0]), pixels(two[1]), strict=True):
        assert np.array_equal(p, q)
    other = model.generate([a], [torch.Generator().manual_seed(6)], **kw)
    assert not all(np.array_equal(p, q) for p, q in zip(pixels(one[0]), pixels(other[0]), strict=True))


def test_trainable_state_round_trip_and_stage2_lora(parts, small_world: Path) -> None:
    torch.manual_seed(1)
    m1 = MiniGPT5.from_config(parts)
    m1.setup_stage(2)
    with torch.no_grad():
        for n, p in m1.lm.named_parameters():
            if "lora_B" in n:
                p.normal_()  # LoRA B starts at zero; make the adapters matter
    sd = m1.trainable_state()
    assert any(k.startswith("lora.") for k in sd) and sd["tokens.embed"].shape[0] == len(m1.ids.new_ids)
    torch.manual_seed(2)
    m2 = MiniGPT5.from_config(parts)
    m2.setup_stage(2)
    m2.load_trainable_state(sd)
    batch = m1.collate(_examples(small_world), ImageCache(), train=False)
    m1.eval(), m2.eval()
    o1, o2 = m1(batch, torch.Generator().manual_seed(0)), m2(batch, torch.Generator().manual_seed(0))
    assert torch.allclose(o1["loss"], o2["loss"], atol=1e-6)
    m3 = MiniGPT5.from_config(parts)
    with pytest.raises(ValueError, match="setup_stage"):
        m3.load_trainable_state(sd)


def _tc(**kw) -> TrainConfig:
    base = {"stage": 1, "steps": 2, "batch": 4, "lr": 1e-3, "warmup": 1, "val_every": 2, "val_examples": 4}
    return TrainConfig(**{**base, **kw})


def test_paper_preset_loads_parts_from_local_folders(parts) -> None:
    """The paper preset's loading path on tiny random parts in the same formats (HF LLaMA folder,
    diffusers SD folder, BLIP-2 vision parts): the paper's values, then construction with widths scaled down."""
    from reference_model.config import paper_preset

    cfg = paper_preset(parts.lm_path, parts.t2i_path, parts.vision_path)
    assert (cfg.num_vokens, cfg.mapper.d_model, cfg.mapper.num_queries, cfg.mapper.encoder_layers) == (8, 1024, 77, 4)
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules) == (
        8,
        16,
        0.05,
        ("q_proj", "v_proj"),
    )
    assert (cfg.loss.text_weight, cfg.loss.image_weight, cfg.loss.caption_weight, cfg.loss.snr_gamma) == (
        0.01,
        1,
        0.1,
        5,
    )
    assert (cfg.cfg_drop_p, cfg.guidance_scale, cfg.num_inference_steps, cfg.image_size) == (0.1, 7.5, 50, 512)
    assert cfg.loss.image_recipe == "official"  # uniform timesteps + Min-SNR, as the released code
    backbone = replace(cfg, t2i_path=str(Path(parts.lm_path)), loss=replace(cfg.loss, image_recipe="backbone"))
    with pytest.raises(ValueError, match=r"t2i_config\.json"):  # a folder with no tiny training recipe
        MiniGPT5._image_recipe(backbone)
    assert parts.loss.image_recipe == "official"  # tiny preset too: the backbone recipe lost in stage 1 (card)
    tiny_backbone = replace(parts, loss=replace(parts.loss, image_recipe="backbone"))
    assert MiniGPT5._image_recipe(tiny_backbone).high_noise_from > 0  # the tiny T2I's recipe is read when asked
    with pytest.raises(ValueError, match="text encoder width"):
        MiniGPT5.from_config(cfg)  # 1024-wide mapper vs the 32-wide tiny text encoder: refused clearly
    small = replace(cfg, mapper=parts.mapper, num_image_queries=parts.num_image_queries, image_size=16)
    model = MiniGPT5.from_config(small)
    assert model.cfg.preset == "paper" and model.mapper.queries.shape == (1, 16, 32)


def test_backbone_weights_recipe_keeps_uniform_timesteps(parts) -> None:
    """image_recipe 'backbone-weights': the backbone's per-timestep weights, the official uniform timesteps (its
    high-noise share set to 0), so a batch's timesteps spread over [0, T) and not half above high_noise_from."""
    from reference_model.losses import sample_timesteps

    full = MiniGPT5._image_recipe(replace(parts, loss=replace(parts.loss, image_recipe="backbone")))
    weights_only = MiniGPT5._image_recipe(replace(parts, loss=replace(parts.loss, image_recipe="backbone-weights")))
    assert full.high_noise_fraction > 0 and weights_only.high_noise_fraction == 0.0
    assert replace(weights_only, high_noise_fraction=full.high_noise_fraction) == full  # nothing else differs
    t = sample_timesteps(weights_only, 4000, torch.Generator().manual_seed(0))
    share = float((t >= full.high_noise_from).float().mean())
    uniform = 1 - full.high_noise_from / full.train_timesteps
    assert abs(share - uniform) < 0.03  # uniform over [0, T): the share above the cut is its length
    with pytest.raises(ValueError, match="backbone-weights"):
        MiniGPT5._image_recipe(replace(parts, loss=replace(parts.loss, image_recipe="nope")))


def test_config_paths_are_relative_to_the_checkpoint(parts, tmp_path: Path) -> None:

    parts.save(tmp_path / "ckpt")
    raw = json.loads((tmp_path / "ckpt" / "minigpt5_config.json").read_text())
    assert not Path(raw["lm_path"]).is_absolute()
    assert MiniGPT5Config.load(tmp_path / "ckpt").lm_path == str(Path(parts.lm_path).resolve())


def test_export_is_relocatable_and_half_precision_on_disk(parts, small_world: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors import safe_open

    from reference_model.export import main as export_main
    from reference_model.modeling import load_checkpoint

    runs = tmp_path / "runs"
    shutil.copytree(Path(parts.lm_path).parent, runs / "backbones")
    train_stage(parts, _tc(data=str(small_world / "CC3M"), steps=1), runs / "stage1", threads=1)
    export_main([str(runs), str(tmp_path / "ckpts")])
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "ckpts", moved)  # relative paths: the set still loads after a move
    with safe_open(str(next((moved / "backbones" / "t2i" / "unet").glob("*.safetensors"))), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
    with safe_open(str(moved / "stage1" / "trainable.safetensors"), "pt") as f:
        assert f.get_tensor("tokens.embed").dtype == torch.float16
    shipped = load_checkpoint(moved / "stage1")
    original = load_checkpoint(runs / "stage1")
    assert next(shipped.unet.parameters()).dtype == torch.float32
    batch = shipped.collate(_examples(small_world), ImageCache(), train=False)
    a = float(shipped(batch, torch.Generator().manual_seed(0))["loss"])
    b = float(original(batch, torch.Generator().manual_seed(0))["loss"])
    assert abs(a - b) < 1e-2 * abs(b)  # float16 storage of the frozen parts changes the loss very little


def test_vist_context_joins_captions_and_images_without_spaces(small_world: Path) -> None:
    """The official loader builds ctx as IMG.join(captions) + IMG + newline (no spaces anywhere)."""
    from reference_model.data import IMG, SYSTEM_VIST, VIST_GEN, read_vist, vist_gen_source

    steps = next(iter(read_vist(small_world / "VIST", "val").values()))
    caps = [c for c, _ in steps]
    for k in range(len(steps)):
        src, imgs = vist_gen_source(steps, k, 0)
        ctx = (IMG.join(caps[:k]) + IMG + "\n") if k else ""
        assert src == f"{SYSTEM_VIST}###Human:{ctx} {VIST_GEN[0].format(c=caps[k])}"
        assert imgs == [p for _, p in steps[:k]]


def test_single_stage_trains_fc_and_queries_too(parts) -> None:
    """The single-stage ablation trains everything stage 1 would have (fc, mapper, queries) plus stage 2's
    parameters; the ordinary stage 2 keeps fc and the queries frozen."""
    m = MiniGPT5.from_config(parts)
    groups = m.setup_stage(2, single_stage=True)
    in_groups = {id(p) for g in groups for p in g["params"]}
    for part in (m.mapper.fc, m.mapper.transformer):
        assert all(p.requires_grad and id(p) in in_groups for p in part.parameters())
    assert m.mapper.queries.requires_grad and id(m.mapper.queries) in in_groups
    assert any("lora_" in n and p.requires_grad for n, p in m.lm.named_parameters())
    m2 = MiniGPT5.from_config(parts)
    groups2 = m2.setup_stage(2)
    assert not m2.mapper.queries.requires_grad and not any(p.requires_grad for p in m2.mapper.fc.parameters())
    assert id(m2.mapper.queries) not in {id(p) for g in groups2 for p in g["params"]}
    # learning rates: stage 2's --mapper-lr-scale reaches the single-stage fc/mapper/queries group as well, so they
    # train at lr x 10 x scale (not at 10x stage 2's lr); stage 1 keeps its 10x
    from reference_model.train import group_lr

    tc = TrainConfig(stage=2, steps=1, lr=1e-3, mapper_lr_scale=0.1)
    lrs = {g["name"]: group_lr(tc, g["name"], g["lr_scale"]) for g in groups}
    assert lrs == pytest.approx({"lora_token_rows": 1e-3, "fc_mapper_queries": 1e-3})
    lrs2 = {g["name"]: group_lr(tc, g["name"], g["lr_scale"]) for g in groups2}
    assert lrs2["mapper"] == pytest.approx(1e-4) and lrs2["lora_token_rows"] == pytest.approx(1e-3)
    s1 = MiniGPT5.from_config(parts).setup_stage(1)
    tc1 = TrainConfig(stage=1, steps=1, lr=2e-4)
    assert {g["name"]: group_lr(tc1, g["name"], g["lr_scale"]) for g in s1} == pytest.approx(
        {"token_rows": 2e-4, "fc_mapper_queries": 2e-3}
    )


def test_input_images_are_flipped_in_training_only_when_the_preset_says_so(parts, small_world: Path) -> None:
    """Official training flips each input image at random (p = 0.5); the tiny preset does not (a flip changes
    the scene there); evaluation never flips."""
    from reference_model.config import paper_preset, tiny_preset
    from reference_model.data import vist_examples
    from reference_model.vision import preprocess

    assert paper_preset().train_input_hflip and not tiny_preset().train_input_hflip
    ex = next(e for e in vist_examples(small_world / "VIST", "train", train=True) if len(e.input_images) == 4)
    load = ImageCache()
    m = MiniGPT5.from_config(replace(parts, train_input_hflip=True))
    plain = preprocess([load(p) for p in ex.input_images], m.vision.image_size)
    seen = set()
    for seed in range(6):
        x = m.collate([ex], load, train=True, generator=torch.Generator().manual_seed(seed)).input_images[0]
        for i in range(len(x)):
            same, flipped = torch.equal(x[i], plain[i]), torch.equal(x[i], plain[i].flip(-1))
            assert same or flipped
            seen.add("flip" if flipped and not same else "same")
    assert seen == {"flip", "same"}
    assert torch.equal(m.collate([ex], load, train=False).input_images[0], plain)
    off = MiniGPT5.from_config(replace(parts, train_input_hflip=False))
    assert torch.equal(off.collate([ex], load, train=True, generator=torch.Generator().manual_seed(0)).input_images[0],
                        plain)  # fmt: skip


def test_target_segment_gets_the_sentencepiece_word_boundary(model: MiniGPT5) -> None:
    """The official loader tokenizes the target apart from the source; LLaMA's SentencePiece then still starts
    its first word with a word boundary. The tiny byte-level BPE must give the ids of the text with a space
    (not the never-pretrained word-initial 'i'); voken-led targets stay as they are."""
    tok = model.tokenizer
    src = "###Human: here is my drawing . ###Assistant:"
    n_src = len(tok(src, add_special_tokens=False)["input_ids"])
    ids, labels = model.tokenize(src, "i see a red circle . ###")
    joint = tok(src + " i see a red circle . ###", add_special_tokens=False)["input_ids"]
    assert ids[1:] == joint
    assert ids[1 + n_src] != tok("i see", add_special_tokens=False)["input_ids"][0]  # the bare word differs
    assert labels[1 + n_src :] == joint[n_src:]
    vok = voken_string(8) + " ###"
    ids2, _ = model.tokenize(src, vok)
    assert ids2[1 + n_src :] == tok(vok, add_special_tokens=False)["input_ids"]  # no space token before [IMG0]


def test_segment_ids_leave_a_sentencepiece_style_tokenizer_alone() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from reference_model.modeling import segment_ids

    sp = Tokenizer(models.BPE(unk_token="<unk>"))
    sp.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")  # LLaMA's prefix
    sp.train_from_iterator(["i see a red circle .", "here is my drawing ."] * 20,
                           trainers.BpeTrainer(vocab_size=80, special_tokens=["<unk>", "<s>", "</s>"]))  # fmt: skip
    tok = PreTrainedTokenizerFast(tokenizer_object=sp, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.add_tokens(["[IMG0]"], special_tokens=True)
    for text in ("i see a red circle .", "[IMG0] ###", " here"):
        assert segment_ids(tok, text) == tok(text, add_special_tokens=False)["input_ids"]


def test_split_text_keeps_only_reply_text(model: MiniGPT5) -> None:
    """A decoded end-of-sequence token is not reply text: the text metrics would count '</s>' as a word."""
    eos, bos = model.tokenizer.eos_token, model.tokenizer.bos_token
    assert model.split_text(f"here it is .{eos}") == ("here it is .", "")
    assert model.split_text(f"{bos}sure . [IMG0][IMG1] more ### next") == ("sure .", "[IMG1] more")


def test_whole_mapper_trains_fc_and_queries_from_the_stage1_init(parts, small_world: Path, tmp_path: Path) -> None:
    """Official stage 2 keeps fc and the queries at their stage-1 values; --whole-mapper trains them too, at the
    single-stage ablation's rate, from the stage-1 values (recorded in the run's train_config)."""
    from safetensors.torch import load_file

    from reference_model.train import group_lr, main

    s1 = tmp_path / "s1"
    train_stage(parts, _tc(data=str(small_world / "CC3M"), steps=1), s1, threads=1)
    start = load_file(str(s1 / "trainable.safetensors"))
    common = ["--task", "vist", "--init", str(s1), "--data", str(small_world / "VIST"), "--steps", "2", "--batch",
              "2", "--warmup", "1", "--threads", "1", "--val-every", "2", "--lr", "1e-2"]  # fmt: skip
    for flag, out in (([], "official"), (["--whole-mapper"], "whole")):
        main(["stage2", *common, *flag, "--out", str(tmp_path / out)])
    off, whole = (load_file(str(tmp_path / n / "trainable.safetensors")) for n in ("official", "whole"))
    fixed = [k for k in start if k.startswith(("mapper.fc.", "mapper.queries"))]
    assert fixed
    assert all(torch.equal(off[k], start[k]) for k in fixed)
    assert all(not torch.equal(whole[k], start[k]) for k in fixed)
    assert json.loads((tmp_path / "whole" / "state.json").read_text())["train_config"]["whole_mapper"] is True
    tc = _tc(stage=2, task="vist", lr=1e-3, mapper_lr_scale=0.1, whole_mapper=True)
    assert group_lr(tc, "fc_mapper_queries", 10.0) == pytest.approx(1e-3)  # as the single-stage ablation's
    # a run recorded before the setting existed ran at its default, and resumes as such
    from dataclasses import asdict, replace

    from reference_model.train import same_config

    old = asdict(tc)
    old.pop("whole_mapper")
    assert same_config(old, replace(tc, whole_mapper=False)) and not same_config(old, tc)
