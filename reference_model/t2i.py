"""The tiny text-to-image backbone of the embedded world: a latent diffusion model saved as a diffusers
folder that ``StableDiffusionPipeline.from_pretrained`` loads (tokenizer + CLIPTextModel +
AutoencoderKL + UNet2DConditionModel + scheduler), the same layout as SD-2.1.

Its training (the VAE, then the UNet and the text encoder) is in ``reference_model.train_t2i``. Imports nothing
from mg5bench.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

BACKGROUND = (200, 200, 200)


@dataclass
class T2IConfig:
    """Sizes of the tiny T2I backbone (saved beside every checkpoint)."""

    image_size: int = 48
    latent_channels: int = 4
    vae_channels: tuple[int, ...] = (32, 64, 64)  # 3 blocks: 48 -> 12 (factor 4)
    unet_channels: tuple[int, ...] = (48, 96, 128)  # 64 at the first level costs 1.8x per step here
    unet_layers_per_block: int = 1
    cross_attention_everywhere: bool = True  # cross-attention also at the 3x3 level, which is the scene grid
    attention_head_width: int = 32  # channels per attention head; see build_unet for diffusers' misnomer
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    max_text_len: int = 32
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    position_embedding: bool = True  # learned absolute position embedding after conv_in (PositionalUNet)
    layout_lr_scale: float = 10.0  # learning-rate multiplier of the position embedding and the text-to-layout map
    # Share of training timesteps drawn from [high_noise_from, T) instead of [0, T). Only the noisiest steps need
    # the caption to place an object (below t ~ 930 the noisy latent itself shows where the object is); drawn
    # uniformly they are ~7% of the updates and the UNet learned to read positions off the noise, not the text.
    high_noise_fraction: float = 0.5
    high_noise_from: int = 900
    cfg_drop: float = 0.1
    snr_gamma: float = 5.0
    # "v_prediction" (as SD-2.1) or "epsilon". With epsilon + Min-SNR the x0 error at high noise, where the layout
    # is decided, is weighted by SNR (~0.01): the first UNet learned colour and shape but ignored "at the top left".
    # v-prediction weighted min(SNR, gamma) + 1 in x0 terms keeps weight ~1 there.
    prediction_type: str = "v_prediction"
    ema_decay: float = 0.999
    vae_object_weight: float = 5.0
    vocab: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> T2IConfig:
        d = json.loads(text)
        for k in ("vae_channels", "unet_channels"):
            d[k] = tuple(d[k])
        d.setdefault("position_embedding", False)  # configs written before these options existed
        d.setdefault("prediction_type", "epsilon")
        d.setdefault("high_noise_fraction", 0.0)
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# data


def read_pairs(folder: Path, split: str) -> list[tuple[str, Path]]:
    """(caption, image path) rows of a CC3M-format TSV (header caption<TAB>image_path)."""
    tsv = Path(folder) / f"cc3m_{split}.tsv"
    with open(tsv, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or rows[0] != ["caption", "image_path"]:
        raise ValueError(f"{tsv}: expected header caption<TAB>image_path")
    return [(cap, Path(folder) / rel) for cap, rel in rows[1:]]


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """(N, 3, S, S) float in [-1, 1]."""
    from PIL import Image

    arrs = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            arrs.append(np.asarray(im))
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x


def build_vocab(captions: list[str]) -> list[str]:
    words = sorted({w for c in captions for w in c.split()})
    return ["<pad>", "<bos>", "<eos>", "<unk>", *words]


def make_tokenizer(vocab: list[str], max_len: int) -> Any:
    """A word-level fast tokenizer (the world's captions are space-tokenised, like VIST's)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 1), ("<eos>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=max_len,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# models


def build_vae(cfg: T2IConfig) -> Any:
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=cfg.vae_channels, layers_per_block=1,
        latent_channels=cfg.latent_channels, norm_num_groups=16, sample_size=cfg.image_size,
        mid_block_add_attention=False,
    )  # fmt: skip


def build_text_encoder(cfg: T2IConfig) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    tc = CLIPTextConfig(
        vocab_size=len(cfg.vocab), hidden_size=cfg.text_hidden, intermediate_size=cfg.text_hidden * 2,
        num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads,
        max_position_embeddings=cfg.max_text_len, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    return CLIPTextModel(tc)


def unet_heads(cfg: T2IConfig) -> tuple[int, ...]:
    """Heads per UNet level. diffusers' ``UNet2DConditionModel(attention_head_dim=...)`` is, despite its name,
    the number of heads: passing a width of 32 gave 32 heads of 1-4 channels each (inner dim 32 < 48 at the
    first level), attention too narrow to bind "top left" to a place: layout stayed at chance while colour
    and shape were learned."""
    return tuple(max(1, c // cfg.attention_head_width) for c in cfg.unet_channels)


class PositionConv2d(torch.nn.Conv2d):
    """``conv_in`` plus (1) a learned absolute position embedding (C, H, W) and (2) a text-to-layout map: the
    caption's token states are attention-pooled and linearly mapped to a (k, H, W) map, mixed into the C channels
    by a zero-initialised 1x1 conv. Both start as no-ops.

    Why: the plain UNet never tied "at the top left" to a place. Diagnostic on the 2,700-step model: for all nine
    position phrases the oracle's cell histogram over 12 seeds was identical. Neither wider heads, a learned
    position embedding alone (500 steps: embedding stayed noise-sized, 0.015) nor v-prediction (500 steps)
    changed that: placing an object through cross-attention needs queries that know their place *and* keys
    that carry the object at once, a saddle that gradient descent did not leave at this budget. The layout map
    gives the caption a direct, linear path to "something goes here" whose gradient is there from step one."""

    def __init__(self, *args: Any, size: int, text_dim: int, layout_channels: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.size, self.layout_channels = size, layout_channels
        self.pos = torch.nn.Parameter(torch.zeros(self.out_channels, size, size))
        self.pool_query = torch.nn.Parameter(torch.randn(text_dim) * text_dim**-0.5)
        self.layout = torch.nn.Linear(text_dim, layout_channels * size * size)
        torch.nn.init.normal_(self.layout.weight, std=0.02)
        torch.nn.init.zeros_(self.layout.bias)
        self.layout_mix = torch.nn.Conv2d(layout_channels, self.out_channels, 1)
        torch.nn.init.zeros_(self.layout_mix.weight)
        torch.nn.init.zeros_(self.layout_mix.bias)
        self.text: torch.Tensor | None = None  # (B, L, D), set by the UNet for the duration of one forward

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """The text states the layout map reads: (B, L, D) attention-pooled by ``pool_query`` -> (B, D)."""
        w = torch.softmax(h @ self.pool_query / h.shape[-1] ** 0.5, dim=1)  # (B, L)
        return (w[..., None] * h).sum(1)

    def _grid(self, t: torch.Tensor, hw: tuple[int, ...]) -> torch.Tensor:
        return t if t.shape[-2:] == hw else torch.nn.functional.interpolate(t, size=hw, mode="bilinear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # (B, C, H, W)
        hw = tuple(y.shape[-2:])
        y = y + self._grid(self.pos[None], hw).to(y.dtype)
        if self.text is not None:
            h = self.text.to(y.dtype)  # (B, L, D)
            m = self.layout(self.pool(h)).view(len(h), self.layout_channels, self.size, self.size)  # (B, k, S, S)
            y = y + self.layout_mix(self._grid(m, hw))
        return y


@functools.cache
def _positional_unet_class() -> Any:
    """Built once on first use (so importing this module does not import diffusers); one class object, which
    diffusers' loader finds as this module's attribute."""
    from diffusers import UNet2DConditionModel

    class PositionalUNet2DConditionModel(UNet2DConditionModel):
        """A diffusers UNet2DConditionModel whose conv_in carries a learned position embedding and a
        text-to-layout map (``PositionConv2d``). It saves and loads like its parent (same config keys); a
        pipeline folder names this class, so import ``reference_model.t2i`` before
        ``StableDiffusionPipeline.from_pretrained`` (diffusers resolves non-diffusers component classes from
        modules the caller has imported)."""

        @functools.wraps(UNet2DConditionModel.__init__)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            c = self.conv_in
            self.conv_in = PositionConv2d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding,
                                          size=self.config.sample_size,
                                          text_dim=self.config.cross_attention_dim)  # fmt: skip

        def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
            self.conv_in.text = encoder_hidden_states
            try:
                return super().forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
            finally:
                self.conv_in.text = None

    PositionalUNet2DConditionModel.__module__ = __name__
    return PositionalUNet2DConditionModel


def __getattr__(name: str) -> Any:  # lazy, so importing this module does not import diffusers
    if name == "PositionalUNet2DConditionModel":
        return _positional_unet_class()
    if name == "ModelMixin":  # diffusers' pipeline loader looks up the base class in the component's module
        from diffusers import ModelMixin

        return ModelMixin
    raise AttributeError(name)


def build_unet(cfg: T2IConfig) -> Any:
    latent = cfg.image_size // 2 ** (len(cfg.vae_channels) - 1)
    cls = _unet_cls(cfg)
    return cls(
        sample_size=latent, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        block_out_channels=cfg.unet_channels, layers_per_block=cfg.unet_layers_per_block,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
        + (("CrossAttnDownBlock2D",) if cfg.cross_attention_everywhere else ("DownBlock2D",)),
        up_block_types=(("CrossAttnUpBlock2D",) if cfg.cross_attention_everywhere else ("UpBlock2D",))
        + ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cfg.text_hidden, attention_head_dim=unet_heads(cfg), norm_num_groups=16,
    )  # fmt: skip


def _unet_cls(cfg: T2IConfig) -> Any:
    from diffusers import UNet2DConditionModel

    return _positional_unet_class() if cfg.position_embedding else UNet2DConditionModel


def _layout_keys(unet: Any) -> set[str]:
    """State-dict names of the parameters PositionConv2d adds to conv_in (none for a plain UNet)."""
    if not isinstance(unet.conv_in, PositionConv2d):
        return set()
    return {f"conv_in.{n}" for n, _ in unet.conv_in.named_parameters() if n not in ("weight", "bias")}


def train_scheduler(cfg: T2IConfig) -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                         prediction_type=cfg.prediction_type, clip_sample=False)  # fmt: skip


def sample_scheduler(cfg: T2IConfig) -> Any:
    """DDIM with leading spacing and no clipping: trailing spacing starts where alpha-bar vanishes
    under squaredcos_cap_v2 and turns every image into a saturated blob (tiny-world.md)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                         prediction_type=cfg.prediction_type, clip_sample=False, timestep_spacing="leading",
                         steps_offset=1, set_alpha_to_one=False)  # fmt: skip


def cross_kv_names(unet: Any) -> set[str]:
    """The UNet's cross-attention key/value weights: the only UNet tensors a text-side fine-tune changes."""
    return {n for n, _ in unet.named_parameters() if ".attn2.to_k." in n or ".attn2.to_v." in n}


def load_pipeline(path: Path | str) -> Any:
    """A StableDiffusionPipeline folder in float32 with its progress bar off: the tiny world's (which names
    ``PositionalUNet2DConditionModel``, resolvable because this module is imported) or a real SD one."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(path, safety_checker=None, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def export_pipeline(out: Path, dest: Path, unet: Any, text: Any, tok: Any, vae: Any, cfg: T2IConfig) -> None:
    """Write a diffusers StableDiffusionPipeline folder (no safety checker)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sample_scheduler(cfg),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    pipe.save_pretrained(tmp, safe_serialization=True)
    (tmp / "t2i_config.json").write_text(cfg.to_json())
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    os.replace(tmp, dest)
