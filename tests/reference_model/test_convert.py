"""reference_model.convert_official: official MiniGPT-5 Lightning checkpoints -> the project's format.

The synthetic official checkpoints are built from real modules laid out like the official Lightning module
(model.py: ``fc``, ``llm_to_t2i_mapping``, ``t2i_decoder_prompt``, ``model.llama_model``; mini_gpt5.py: PEFT
wrapping in stage 2) and saved the way its ``on_save_checkpoint`` does (only parameters with requires_grad).
Values are checked on a reduced size; the paper shapes are checked on the meta device.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from reference_model.config import MapperConfig, MiniGPT5Config, paper_preset
from reference_model.convert_official import (
    convert_file,
    convert_state_dict,
    load_official,
    main,
    merge_stage1,
)
from reference_model.mapper import VokenMapper

# The fake official modules are built as the official model.py builds them: nn.Transformer with norm_first=True,
# for which torch warns on every construction that its nested-tensor fast path is off. Expected here.
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")

D_LLM = 32
BASE_VOCAB = 50
N_VOKENS = 8
N_NEW = N_VOKENS + 1
LAYERS = 2
SMALL = MapperConfig(
    fc_hidden=24, d_model=16, heads=2, encoder_layers=2, decoder_layers=2, ffn=32, num_queries=5, out_dim=16
)
SHAPES = {"base_vocab": BASE_VOCAB, "d_llm": D_LLM, "mapper": SMALL, "llm_layers": LAYERS, "lora_r": 8}


def _llama(layers: int = LAYERS, hidden: int = D_LLM, vocab: int = BASE_VOCAB + N_NEW) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,  # Vicuna-7B has no GQA: v_proj is (d, d) like q_proj
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg)


def _target_lora(layers: int = LAYERS, hidden: int = D_LLM) -> nn.Module:
    """The project's LoRA wrapping (no modules_to_save)."""
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    return get_peft_model(_llama(layers, hidden), cfg)


class _OfficialMiniGPT5(nn.Module):
    def __init__(self, llama: nn.Module) -> None:
        super().__init__()
        self.llama_model = llama


class _OfficialLightning(nn.Module):
    """The trainable attributes of the official MiniGPT5_Model, frozen per stage as the official code does."""

    def __init__(self, stage: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        llama = _llama()
        for n, p in llama.named_parameters():
            p.requires_grad = stage == 1 and ("lm_head" in n or "embed_tokens" in n)
        if stage == 2:
            cfg = LoraConfig(
                r=8,
                lora_alpha=16,
                target_modules=["q_proj", "v_proj"],
                lora_dropout=0.05,
                bias="none",
                task_type="CAUSAL_LM",
                modules_to_save=["lm_head", "embed_tokens"],
            )
            llama = get_peft_model(llama, cfg)
            llama.base_model.model.model.embed_tokens.original_module.weight.requires_grad = False
            llama.base_model.model.lm_head.original_module.weight.requires_grad = False
        self.model = _OfficialMiniGPT5(llama)
        self.fc = nn.Sequential(nn.Linear(D_LLM, SMALL.fc_hidden), nn.GELU(), nn.Linear(SMALL.fc_hidden, SMALL.d_model))
        self.llm_to_t2i_mapping = nn.Transformer(
            batch_first=True,
            norm_first=True,
            d_model=SMALL.d_model,
            nhead=SMALL.heads,
            num_encoder_layers=SMALL.encoder_layers,
            num_decoder_layers=SMALL.decoder_layers,
            dim_feedforward=SMALL.ffn,
            dropout=0.0,
        )
        self.t2i_decoder_prompt = nn.Parameter(torch.randn(1, SMALL.num_queries, SMALL.d_model))
        with torch.no_grad():  # distinct random values everywhere (LoRA B starts at zero otherwise)
            for p in self.parameters():
                p.normal_()
        if stage == 2:
            for p in self.fc.parameters():
                p.requires_grad = False
            self.t2i_decoder_prompt.requires_grad = False

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """What the official on_save_checkpoint keeps: parameters with requires_grad."""
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in trainable}


@pytest.fixture(scope="module")
def official() -> dict[int, _OfficialLightning]:
    return {1: _OfficialLightning(1, seed=1), 2: _OfficialLightning(2, seed=2)}


def _mapper_keys(d_llm: int, cfg: MapperConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {"mapper." + k: tuple(v.shape) for k, v in VokenMapper(d_llm, cfg).state_dict().items()}


def _check_mapper_and_tokens(conv: dict[str, torch.Tensor], mapper_src: dict, llm_src: dict, embed: str, head: str):
    for k, shape in _mapper_keys(D_LLM, SMALL).items():
        assert tuple(conv[k].shape) == shape, k
    for i in (0, 2):
        for p in ("weight", "bias"):
            assert torch.equal(conv[f"mapper.fc.{i}.{p}"], mapper_src[f"fc.{i}.{p}"])
    assert torch.equal(conv["mapper.queries"], mapper_src["t2i_decoder_prompt"])
    n_transformer = 0
    for k, v in conv.items():
        if k.startswith("mapper.transformer."):
            assert torch.equal(v, mapper_src["llm_to_t2i_mapping." + k.removeprefix("mapper.transformer.")]), k
            n_transformer += 1
    assert n_transformer == sum(k.startswith("llm_to_t2i_mapping.") for k in mapper_src)
    assert conv["tokens.embed"].shape == conv["tokens.head"].shape == (N_NEW, D_LLM)
    assert torch.equal(conv["tokens.embed"], llm_src[embed][BASE_VOCAB:])
    assert torch.equal(conv["tokens.head"], llm_src[head][BASE_VOCAB:])


def test_stage1_keys_and_values(official: dict[int, _OfficialLightning]) -> None:
    sd = official[1].official_state_dict()
    assert "model.llama_model.model.embed_tokens.weight" in sd and "t2i_decoder_prompt" in sd  # the official names
    conv = convert_state_dict(sd, stage=1, **SHAPES)
    assert set(conv) == set(_mapper_keys(D_LLM, SMALL)) | {"tokens.embed", "tokens.head"}
    _check_mapper_and_tokens(
        conv, sd, sd, "model.llama_model.model.embed_tokens.weight", "model.llama_model.lm_head.weight"
    )
    # prefixes of training wrappers are accepted
    wrapped = convert_state_dict({"module." + k: v for k, v in sd.items()}, stage=1, **SHAPES)
    assert set(wrapped) == set(conv)


def test_mapper_loads_strict_and_reproduces_official_forward(official: dict[int, _OfficialLightning]) -> None:
    off = official[1]
    conv = convert_state_dict(off.official_state_dict(), stage=1, **SHAPES)
    m = VokenMapper(D_LLM, SMALL).eval()
    m.load_state_dict({k.removeprefix("mapper."): v for k, v in conv.items() if k.startswith("mapper.")}, strict=True)
    h = torch.randn(3, N_VOKENS, D_LLM)
    with torch.no_grad():  # official: llm_to_t2i_mapping(src=fc(h), tgt=t2i_decoder_prompt.repeat(B, 1, 1))
        want = off.llm_to_t2i_mapping.eval()(src=off.fc(h), tgt=off.t2i_decoder_prompt.repeat(3, 1, 1))
        assert torch.allclose(m(h), want, atol=1e-5)


def test_stage2_needs_stage1_then_loads_into_peft(official: dict[int, _OfficialLightning]) -> None:
    s1, s2 = official[1].official_state_dict(), official[2].official_state_dict()
    assert not any(k.startswith("fc.") for k in s2) and "t2i_decoder_prompt" not in s2  # frozen in stage 2
    with pytest.raises(ValueError, match=r"fc\.0\.weight") as e:
        convert_state_dict(s2, stage=2, **SHAPES)
    assert "t2i_decoder_prompt" in str(e.value) and "stage-1" in str(e.value)

    merged = merge_stage1(s1, s2)
    conv = convert_state_dict(merged, stage=2, **SHAPES)
    mapper_src = {**{k: v for k, v in s1.items() if k.startswith("fc.") or k == "t2i_decoder_prompt"}, **s2}
    pre = "model.llama_model.base_model.model."
    _check_mapper_and_tokens(
        conv,
        mapper_src,
        s2,
        pre + "model.embed_tokens.modules_to_save.default.weight",
        pre + "lm_head.modules_to_save.default.weight",
    )
    assert torch.equal(conv["mapper.fc.0.weight"], s1["fc.0.weight"])  # from stage 1
    assert torch.equal(conv["mapper.transformer.decoder.norm.weight"], s2["llm_to_t2i_mapping.decoder.norm.weight"])

    lora = {k.removeprefix("lora."): v for k, v in conv.items() if k.startswith("lora.")}
    assert len(lora) == LAYERS * 2 * 2
    for k, v in lora.items():  # official key = model.llama_model.<peft key with the adapter name>
        official_key = "model.llama_model." + k.replace(".weight", ".default.weight")
        assert torch.equal(v, s2[official_key]), k
    target = _target_lora()
    assert set(lora) == set(get_peft_model_state_dict(target))
    result = set_peft_model_state_dict(target, lora)
    assert not [k for k in result.missing_keys if "lora_" in k]
    assert not result.unexpected_keys
    params = dict(target.named_parameters())
    for k, v in lora.items():
        assert torch.equal(params[k.replace(".weight", ".default.weight")], v), k

    # a naive dict update (stage-1 LLM keys next to the stage-2 PEFT copies) is refused as ambiguous
    with pytest.raises(ValueError, match="ambiguous"):
        convert_state_dict({**s1, **s2}, stage=2, **SHAPES)


def _meta_official(stage: int) -> dict[str, torch.Tensor]:
    """Paper-sized official tensors on the meta device, built the way the official model.py builds them."""
    with torch.device("meta"):
        fc = nn.Sequential(nn.Linear(4096, 1024), nn.GELU(), nn.Linear(1024, 1024))
        mapping = nn.Transformer(
            batch_first=True,
            norm_first=True,
            d_model=1024,
            num_encoder_layers=4,
            num_decoder_layers=4,
            dim_feedforward=1024 * 4,
            dropout=0.0,
        )
        sd = {f"fc.{k}": v for k, v in fc.state_dict().items()}
        sd |= {f"llm_to_t2i_mapping.{k}": v for k, v in mapping.state_dict().items()}
        sd["t2i_decoder_prompt"] = torch.empty(1, 77, 1024)
        if stage == 1:
            sd["model.llama_model.model.embed_tokens.weight"] = torch.empty(32009, 4096)
            sd["model.llama_model.lm_head.weight"] = torch.empty(32009, 4096)
        else:
            pre = "model.llama_model.base_model.model."
            sd[pre + "model.embed_tokens.modules_to_save.default.weight"] = torch.empty(32009, 4096)
            sd[pre + "lm_head.modules_to_save.default.weight"] = torch.empty(32009, 4096)
            for i in range(32):
                for proj in ("q_proj", "v_proj"):
                    sd[f"{pre}model.layers.{i}.self_attn.{proj}.lora_A.default.weight"] = torch.empty(8, 4096)
                    sd[f"{pre}model.layers.{i}.self_attn.{proj}.lora_B.default.weight"] = torch.empty(4096, 8)
    return sd


def test_paper_shapes_on_meta() -> None:
    mapper_keys = _mapper_keys(4096, paper_preset().mapper)
    assert mapper_keys["mapper.queries"] == (1, 77, 1024)
    assert mapper_keys["mapper.fc.0.weight"] == (1024, 4096)
    assert (
        "mapper.transformer.encoder.norm.weight" in mapper_keys
        and "mapper.transformer.decoder.norm.weight" in mapper_keys
    )
    for stage in (1, 2):
        conv = convert_state_dict(_meta_official(stage), stage=stage)
        assert {k: tuple(v.shape) for k, v in conv.items() if k.startswith("mapper.")} == mapper_keys
        assert conv["tokens.embed"].shape == conv["tokens.head"].shape == (9, 4096)
        assert all(v.device.type == "meta" for v in conv.values())
        lora = {k.removeprefix("lora."): tuple(v.shape) for k, v in conv.items() if k.startswith("lora.")}
        if stage == 1:
            assert not lora and len(conv) == len(mapper_keys) + 2
        else:  # the key set peft produces for a 32-layer LLaMA with the project's LoraConfig
            assert set(lora) == set(get_peft_model_state_dict(_target_lora(layers=32, hidden=16)))
            assert lora["base_model.model.model.layers.31.self_attn.v_proj.lora_B.weight"] == (4096, 8)
            assert len(conv) == len(mapper_keys) + 2 + 128


def test_errors_name_the_key(official: dict[int, _OfficialLightning]) -> None:
    sd = official[1].official_state_dict()
    with pytest.raises(ValueError, match=r"llm_to_t2i_mapping\.decoder\.norm\.weight"):
        convert_state_dict({k: v for k, v in sd.items() if k != "llm_to_t2i_mapping.decoder.norm.weight"}, 1, **SHAPES)
    with pytest.raises(ValueError, match=r"fc\.0\.weight: expected shape \(24, 32\), found \(24, 31\)"):
        convert_state_dict({**sd, "fc.0.weight": torch.zeros(24, 31)}, 1, **SHAPES)
    embed = "model.llama_model.model.embed_tokens.weight"
    with pytest.raises(ValueError, match=r"embed_tokens\.weight: expected shape \(59, 32\).*found \(58, 32\)"):
        convert_state_dict({**sd, embed: torch.zeros(58, 32)}, 1, **SHAPES)
    with pytest.raises(ValueError, match=r"unexpected official keys:\n  model\.llama_proj\.weight"):
        convert_state_dict({**sd, "model.llama_proj.weight": torch.zeros(1)}, 1, **SHAPES)
    with pytest.raises(ValueError, match=r"embed_tokens\.weight or "):
        convert_state_dict({k: v for k, v in sd.items() if k != embed}, 1, **SHAPES)
    lora_key = "model.llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
    with pytest.raises(ValueError, match=r"LoRA keys only exist in stage 2"):
        convert_state_dict({**sd, lora_key: torch.zeros(8, 32)}, 1, **SHAPES)
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        convert_state_dict(sd, 3, **SHAPES)
    s2 = merge_stage1(sd, official[2].official_state_dict())
    with pytest.raises(ValueError, match=r"layers\.1\.self_attn\.v_proj\.lora_B\.default\.weight"):
        convert_state_dict({k: v for k, v in s2.items() if "layers.1.self_attn.v_proj.lora_B" not in k}, 2, **SHAPES)


def _save_lightning(path: Path, sd: dict[str, torch.Tensor], extra: object = None) -> Path:
    ckpt = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.0.2",
        "state_dict": sd,
        "hyper_parameters": {"learning_rate": 2e-5, "gpus": [0, 1, 2, 3], "resume": None},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 2e-5}]}],
    }
    if extra is not None:
        ckpt["extra"] = extra
    torch.save(ckpt, path)
    return path


def test_convert_file_writes_the_project_format(official: dict[int, _OfficialLightning], tmp_path: Path) -> None:
    s1 = _save_lightning(tmp_path / "stage1_cc3m.ckpt", official[1].official_state_dict())
    s2 = _save_lightning(tmp_path / "stage2_vist.ckpt", official[2].official_state_dict())
    assert set(load_official(s1)) == set(official[1].official_state_dict())

    out = convert_file(s2, 2, tmp_path / "out", stage1_ckpt=s1, lm_path="vicuna", **SHAPES)
    tensors = load_file(str(out / "trainable.safetensors"))
    want = convert_state_dict(merge_stage1(load_official(s1), load_official(s2)), 2, **SHAPES)
    assert set(tensors) == set(want) and all(torch.equal(tensors[k], want[k]) for k in want)
    state = json.loads((out / "state.json").read_text())
    assert state == {
        "stage": "stage2",
        "source": "official",
        "source_sha256": hashlib.sha256(s2.read_bytes()).hexdigest(),
        "converted_keys": len(want),
        "stage1_source_sha256": hashlib.sha256(s1.read_bytes()).hexdigest(),
    }
    cfg = MiniGPT5Config.load(out)
    assert cfg.preset == "paper" and Path(cfg.lm_path).name == "vicuna"  # relative paths resolve on load
    assert sorted(p.name for p in out.iterdir()) == ["minigpt5_config.json", "state.json", "trainable.safetensors"]


def test_load_official_refuses_pickled_objects_unless_allowed(tmp_path: Path) -> None:
    path = _save_lightning(tmp_path / "x.ckpt", {"fc.0.bias": torch.ones(3)}, extra=argparse.Namespace(a=1))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_official(path)
    assert torch.equal(load_official(path, allow_pickle=True)["fc.0.bias"], torch.ones(3))
    bare = tmp_path / "bare.pt"
    torch.save({"t2i_decoder_prompt": torch.zeros(1, 2)}, bare)
    assert set(load_official(bare)) == {"t2i_decoder_prompt"}


def test_cli(official: dict[int, _OfficialLightning], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    assert "--stage1-ckpt" in help_text and "stage1_cc3m.ckpt --stage 1 --out" in help_text
    # a reduced-size file is not a paper checkpoint: clean error, exit code 2, nothing written
    small = _save_lightning(tmp_path / "small.ckpt", official[1].official_state_dict())
    assert main([str(small), "--stage", "1", "--out", str(tmp_path / "o")]) == 2
    assert "fc.0.weight: expected shape (1024, 4096)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
