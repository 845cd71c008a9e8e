"""MiniGPT-5's three losses (docs/minigpt5.md, "Losses"): L = w_text * L_text + w_img * L_img (+ w_cap * L_cap in stage
1).

- L_text: next-token cross-entropy over the supervised target tokens (labels -100 elsewhere).
- L_img: conditional latent denoising, epsilon prediction, Min-SNR-gamma weights (on by default, gamma 5),
  gradients flow through the frozen UNet into the condition.
- L_cap: MSE between the mapper output and the diffusion text encoder's last hidden state of the caption.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F

_CAPTION_PUNCT = re.compile(r'[.!"()*#:;~]')


def preprocess_caption(text: str) -> str:
    """The official caption cleaning: lower-case, ``.!"()*#:;~`` -> space, collapse whitespace."""
    return " ".join(_CAPTION_PUNCT.sub(" ", text.lower()).split())


def text_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V), labels (B, T) with -100 = unsupervised -> mean CE over supervised next tokens."""
    pred = logits[:, :-1].reshape(-1, logits.shape[-1])  # (B*(T-1), V)
    tgt = labels[:, 1:].reshape(-1)  # (B*(T-1),)
    if not bool((tgt != -100).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(pred.float(), tgt, ignore_index=-100)


def snr_weights(
    alphas_cumprod: torch.Tensor,
    t: torch.Tensor,
    gamma: float | None,
    prediction_type: str = "epsilon",
    x0_floor: float = 0.0,
) -> torch.Tensor:
    """Min-SNR-gamma weight: min(SNR_t, gamma) / SNR_t for epsilon prediction (the official MiniGPT-5 loss on
    SD-2.1-base), min(SNR_t, gamma) / (SNR_t + 1) for v-prediction (diffusers' convention); ones when gamma is
    None. In x0 terms both weigh the error by min(SNR, gamma), about 0 at the noisiest steps; ``x0_floor`` raises
    that x0 weight to at least the floor (0 = official), so the steps where a backbone decides the layout are
    not ignored."""
    if gamma is None:
        return torch.ones(t.shape, dtype=torch.float32)
    a = alphas_cumprod[t].float()
    snr = a / (1 - a)
    x0 = torch.clamp(torch.clamp(snr, max=gamma), min=x0_floor)  # the weight of |dx0|^2
    if prediction_type == "v_prediction":
        return x0 / (snr + 1)
    if prediction_type != "epsilon":
        raise ValueError(f"prediction_type {prediction_type!r} is not supported: epsilon or v_prediction")
    return x0 / snr


def prediction_target(scheduler: Any, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the UNet regresses under the scheduler's prediction type: the noise (epsilon) or the velocity
    sqrt(a) eps - sqrt(1-a) z0 (v_prediction)."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(z0, noise, t)
    return noise


def sample_timesteps(cfg: Any, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n,) training timesteps of a T2IConfig ``cfg``: uniform over [0, T), except a ``high_noise_fraction`` share drawn
    uniformly from [high_noise_from, T) (see T2IConfig)."""
    dev = gen.device if gen is not None else None  # draw where the generator lives
    t = torch.randint(0, cfg.train_timesteps, (n,), generator=gen, device=dev)
    hi = torch.randint(cfg.high_noise_from, cfg.train_timesteps, (n,), generator=gen, device=dev)
    pick = torch.rand(n, generator=gen, device=dev) < cfg.high_noise_fraction
    return torch.where(pick, hi, t)


def loss_weights(snr: torch.Tensor, cfg: Any) -> torch.Tensor:
    """Per-timestep weight of the prediction loss under a T2IConfig ``cfg``. In x0 terms the epsilon loss is SNR *
    |dx0|^2 and the v loss (SNR + 1) * |dx0|^2; epsilon uses Min-SNR-gamma (x0 weight min(SNR, gamma)), v uses x0 weight
    min(SNR, gamma) + 1, so the nearly-pure-noise steps that place objects keep a weight near 1."""
    if cfg.prediction_type == "epsilon":
        return torch.clamp(snr, max=cfg.snr_gamma) / snr
    if cfg.prediction_type == "v_prediction":
        return (torch.clamp(snr, max=cfg.snr_gamma) + 1) / (snr + 1)
    raise ValueError(f"prediction_type {cfg.prediction_type!r}: choose epsilon or v_prediction")


def diffusion_loss(
    unet: Any,
    scheduler: Any,
    z0: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator | None,
    snr_gamma: float | None = 5.0,
    backbone_recipe: Any = None,
    x0_floor: float = 0.0,
) -> torch.Tensor:
    """z0 (G, C, h, w) scaled latents, cond (G, Q, D) -> weighted MSE to the scheduler's prediction target
    (noise for epsilon, as the official code with SD-2.1-base; velocity for v-prediction), averaged over images.
    ``backbone_recipe`` (a tiny T2IConfig) replaces the official uniform timesteps and Min-SNR weight by the
    timestep share and weights the backbone was trained with (LossConfig.image_recipe = "backbone")."""
    g = z0.shape[0]
    n_t = scheduler.config.num_train_timesteps
    kind = scheduler.config.prediction_type
    gdev = generator.device if generator is not None else z0.device  # draw where the generator lives
    if backbone_recipe is None:
        t = torch.randint(0, n_t, (g,), generator=generator, device=gdev)  # (G,)
    else:
        t = sample_timesteps(backbone_recipe, g, generator)  # (G,)
    noise = torch.randn(z0.shape, generator=generator, dtype=z0.dtype, device=gdev).to(z0.device)  # (G, C, h, w)
    t = t.to(z0.device)
    zt = scheduler.add_noise(z0, noise, t)
    pred = unet(zt, t, encoder_hidden_states=cond).sample  # (G, C, h, w)
    target = prediction_target(scheduler, z0, noise, t)
    per = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))  # (G,)
    t_idx = t.to(scheduler.alphas_cumprod.device)
    if backbone_recipe is None:
        w = snr_weights(scheduler.alphas_cumprod, t_idx, snr_gamma, kind, x0_floor)
    else:
        a = scheduler.alphas_cumprod[t_idx].float()
        w = loss_weights(a / (1 - a), backbone_recipe)
    return (w.to(per.device) * per).mean()


def caption_loss(cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cond, target (G, Q, D) -> mean squared error over all elements."""
    if cond.shape != target.shape:
        got, want = tuple(cond.shape), tuple(target.shape)
        raise ValueError(f"caption loss: mapper output {got} vs text-encoder target {want}")
    return F.mse_loss(cond.float(), target.float())
