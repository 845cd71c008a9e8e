"""Configuration dataclasses of MiniGPT-5, saved as JSON next to every checkpoint.

Presets: ``tiny`` (the CPU models shipped for the embedded world) and ``paper`` (Vicuna-7B v0, a
BLIP-2-style vision path, SD-2.1-base), following docs/minigpt5.md. Options that fix an
official quirk are explicit switches whose defaults reproduce the official behaviour.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PATH_FIELDS = ("lm_path", "t2i_path", "vision_path")


@dataclass
class MapperConfig:
    """fc (MLP) + encoder-decoder transformer + learned queries -> text-encoder space."""

    fc_hidden: int = 1024  # Linear(d_llm -> fc_hidden), GELU, Linear(fc_hidden -> d_model)
    d_model: int = 1024
    heads: int = 8
    encoder_layers: int = 4
    decoder_layers: int = 4
    ffn: int = 4096
    num_queries: int = 77
    out_dim: int = 1024  # the diffusion text encoder's hidden size (77 x out_dim conditions the UNet)


@dataclass
class LossConfig:
    """The loss weights and the recipe of L_img (official by default; each departure a recorded switch)."""

    text_weight: float = 0.01
    image_weight: float = 1.0
    caption_weight: float = 0.1  # stage 1 only
    snr_gamma: float | None = 5.0  # Min-SNR-gamma weighting of the latent denoising loss; None = plain MSE
    supervise_all_vokens: bool = False  # official: only [IMG0] and [IMG7] carry text loss (quirk)
    caption_target_attention_mask: bool = True  # official passes the mask for L_cap targets (SD-2.1 itself does not)
    # How L_img draws timesteps and weighs them. "official": t uniform over [0, T), Min-SNR-gamma weight (for
    # v-prediction diffusers' min(SNR, gamma) / (SNR + 1)). "backbone": the recipe the T2I backbone was trained
    # with (its t2i_config.json: timestep share and x0 weight min(SNR, gamma) + 1). In the tiny world the object
    # layout is decided at t > 900, where the official weight is ~0.02. Measured (stage 1, 800 steps, lr 2e-4):
    # "official" rendered colour 1.00 / exact 0.20 with forced [IMG0] on CC3M val, "backbone" colour 0.24 / exact
    # 0.03; so both presets default to "official".
    image_recipe: str = "official"
    # Floor on L_img's x0 weight (official recipe only; 0 = official Min-SNR). Min-SNR weighs the noisiest steps,
    # where the tiny v-prediction backbone decides the layout, ~0.02; measured in reference_model/candidates.
    x0_weight_floor: float = 0.0
    # Stage 2, tiny preset only (official: 0, stage 2 has no caption loss). L_cap against the diffusion text
    # encoder's state of the output image's *scene caption*, read from the world's scenes.jsonl. Real VIST and
    # MMDialog have no such record, so the paper preset never sets it. Why the tiny preset does: with L_img alone
    # stage 2 pulls the condition off the text encoder's space, and the tiny backbone decides the layout where
    # Min-SNR weighs ~0, so the place is lost (measured in reference_model/candidates/README.md).
    scene_caption_weight: float = 0.0


@dataclass
class LoraConfig:
    """The LoRA on the LM in stage 2 (official: rank 8 on q_proj and v_proj)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")


@dataclass
class MiniGPT5Config:
    """Everything that defines a MiniGPT-5 model. Paths point at local folders in HF/diffusers formats."""

    preset: str = "tiny"
    lm_path: str = ""  # LlamaForCausalLM folder (+ tokenizer)
    t2i_path: str = ""  # StableDiffusionPipeline folder (text encoder, VAE, UNet, scheduler)
    vision_path: str = ""  # image encoder + query former + projection (MiniGPT-4 input path)
    num_vokens: int = 8
    voken_hidden_offset: int = -1  # official: states at p-1 .. p+n-2 (the state that predicts [IMG0] first)
    mapper: MapperConfig = field(default_factory=MapperConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    cfg_drop_p: float = 0.1  # probability of zeroing a voken group's hidden states in training
    learned_null_condition: bool = True  # official: negative = mapper(fc(0)); False: the T2I's "" embedding
    guidance_scale: float = 7.5
    num_inference_steps: int = 50
    image_size: int = 512
    train_hflip: bool = True  # official random horizontal flip of target images; off in the tiny world, where
    # left/right are part of the caption ("at the top left"), so a flip would teach the wrong scene
    train_input_hflip: bool = True  # official random horizontal flip of *input* images in training (each image
    # on its own); off in the tiny world for the same reason: a flipped context image shows another scene
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 0.9
    repetition_penalty: float = 2.0
    image_placeholder: str = "<ImageHere>"
    num_image_queries: int = 32  # query-former outputs per input image

    @property
    def voken_tokens(self) -> list[str]:
        return [f"[IMG{i}]" for i in range(self.num_vokens)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, folder: Path) -> None:
        """Write minigpt5_config.json; part paths are stored relative to ``folder`` so that a checkpoint
        set can be moved or shipped as a whole (``load`` resolves them again)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        d = self.to_dict()
        for k in PATH_FIELDS:
            if d[k]:  # a path relative to the cwd becomes relative to the checkpoint folder
                d[k] = os.path.relpath(Path(d[k]).resolve(), folder.resolve())
        tmp = folder / "minigpt5_config.json.tmp"
        tmp.write_text(json.dumps(d, indent=2) + "\n")
        os.replace(tmp, folder / "minigpt5_config.json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MiniGPT5Config:
        d = dict(d)
        d["mapper"] = MapperConfig(**d.get("mapper", {}))
        d["loss"] = LossConfig(**d.get("loss", {}))
        lora = dict(d.get("lora", {}))
        if "target_modules" in lora:
            lora["target_modules"] = tuple(lora["target_modules"])
        d["lora"] = LoraConfig(**lora)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown MiniGPT5Config field(s): {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def load(cls, folder: Path) -> MiniGPT5Config:
        """Read minigpt5_config.json; relative part paths are resolved against ``folder``."""
        folder = Path(folder)
        d = json.loads((folder / "minigpt5_config.json").read_text())
        for k in PATH_FIELDS:
            if d.get(k) and not Path(d[k]).is_absolute():
                d[k] = str((folder / d[k]).resolve())
        return cls.from_dict(d)


def paper_preset(lm_path: str = "", t2i_path: str = "", vision_path: str = "") -> MiniGPT5Config:
    """The official setting: Vicuna-7B v0 (d 4096), SD-2.1-base (text hidden 1024), 8 vokens."""
    return MiniGPT5Config(
        preset="paper",
        lm_path=lm_path,
        t2i_path=t2i_path,
        vision_path=vision_path,
        mapper=MapperConfig(
            fc_hidden=1024,
            d_model=1024,
            heads=8,
            encoder_layers=4,
            decoder_layers=4,
            ffn=4096,
            num_queries=77,
            out_dim=1024,
        ),
        image_size=512,
        num_inference_steps=50,
        guidance_scale=7.5,
        num_image_queries=32,
    )


def tiny_preset(lm_path: str = "", t2i_path: str = "", vision_path: str = "", text_hidden: int = 128) -> MiniGPT5Config:
    """The shipped CPU models: a few-M-parameter LLaMA, the tiny world T2I, a small mapper."""
    return MiniGPT5Config(
        preset="tiny",
        lm_path=lm_path,
        t2i_path=t2i_path,
        vision_path=vision_path,
        mapper=MapperConfig(
            fc_hidden=256,
            d_model=text_hidden,
            heads=4,
            encoder_layers=2,
            decoder_layers=2,
            ffn=512,
            num_queries=32,
            out_dim=text_hidden,
        ),
        image_size=48,
        train_hflip=False,
        train_input_hflip=False,
        num_inference_steps=25,
        guidance_scale=3.0,
        max_new_tokens=48,
        num_image_queries=8,
    )


def config_from_backbones(folder: Path) -> MiniGPT5Config:
    """The tiny preset fitted to a backbones folder (lm/, t2i/, vision/): the mapper's width and query
    count follow the T2I text encoder (hidden size, max length), the image-query count the vision path."""
    from safetensors import safe_open

    folder = Path(folder).resolve()  # a relative --backbones would otherwise be re-read against the ckpt folder
    t2i = json.loads((folder / "t2i" / "t2i_config.json").read_text())
    with safe_open(str(folder / "vision" / "extra.safetensors"), "pt") as f:
        n_queries = int(f.get_slice("query_tokens").get_shape()[1])
    cfg = tiny_preset(str(folder / "lm"), str(folder / "t2i"), str(folder / "vision"), text_hidden=t2i["text_hidden"])
    cfg.mapper.num_queries = int(t2i["max_text_len"])
    cfg.image_size = int(t2i["image_size"])
    cfg.num_image_queries = n_queries
    return cfg


PRESETS = {"tiny": tiny_preset, "paper": paper_preset}


def checkpoint_stage(state: dict[str, Any]) -> int | None:
    """The training stage a checkpoint's ``state.json`` records: ``train.py`` writes ``"stage1"``/``"stage2"``, older
    records hold 1/2; None when the record names no stage it could be."""
    stage = str(state.get("stage", "")).removeprefix("stage")
    return int(stage) if stage in ("1", "2") else None
