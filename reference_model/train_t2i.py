"""Training of the tiny text-to-image backbone (``reference_model.t2i``), in two parts: the VAE (reconstruction,
object pixels weighted), then the UNet and the text encoder jointly (epsilon prediction, Min-SNR-5, caption dropout
for classifier-free guidance, EMA of the UNet). Both resume from their last state (``reference_model.state``);
``train_unet`` writes the pipeline folder at every checkpoint. Imports nothing from mg5bench.

    python -m reference_model.train_t2i vae  --data <world>/CC3M --out runs/t2i --steps 1500
    python -m reference_model.train_t2i unet --data <world>/CC3M --out runs/t2i --steps 20000
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reference_model.losses import loss_weights, prediction_target, sample_timesteps
from reference_model.schedule import warmup_cosine
from reference_model.state import resume, save_state
from reference_model.t2i import (
    BACKGROUND,
    T2IConfig,
    _layout_keys,
    build_text_encoder,
    build_unet,
    build_vae,
    build_vocab,
    cross_kv_names,
    export_pipeline,
    load_images,
    make_tokenizer,
    read_pairs,
    train_scheduler,
)


def train_vae(data: Path, out: Path, steps: int, batch: int = 64, lr: float = 2e-3, seed: int = 0) -> dict[str, Any]:
    """Reconstruction (MSE, object pixels weighted) + a tiny KL; resumes from out/vae_state.pt."""
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    pairs = read_pairs(data, "train")
    cfg_path = out / "t2i_config.json"
    cfg = (
        T2IConfig.from_json(cfg_path.read_text())
        if cfg_path.exists()
        else T2IConfig(vocab=build_vocab([c for c, _ in pairs]))
    )
    cfg_path.write_text(cfg.to_json())
    x_all = load_images([p for _, p in pairs], cfg.image_size)
    bg = torch.tensor(BACKGROUND).view(1, 3, 1, 1) / 127.5 - 1
    torch.manual_seed(seed)
    vae = build_vae(cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    state_path = out / "vae_state.pt"
    start, st = resume(state_path, {"model": vae, "opt": opt})
    log: list[dict[str, float]] = st.get("log", [])
    gen = torch.Generator().manual_seed(seed + start)
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="vae", unit="step")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 50)
        idx = torch.randint(0, len(x_all), (batch,), generator=gen)
        x = x_all[idx]
        if torch.rand((), generator=gen) < 0.5:
            x = x.flip(-1)
        post = vae.encode(x).latent_dist
        z = post.sample(generator=gen)
        rec = vae.decode(z).sample
        w = 1 + (cfg.vae_object_weight - 1) * ((x - bg).abs().sum(1, keepdim=True) > 0.2).float()
        mse = (w * (rec - x) ** 2).mean()
        kl = post.kl().mean()
        loss = mse + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log.append({"step": step, "mse": float(mse), "kl": float(kl)})
        bar.set_postfix(mse=f"{float(mse):.4f}")
        if (step + 1) % 250 == 0 or step + 1 == steps:
            save_state({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1, "log": log}, state_path)
    # scaling factor so latents have unit variance (as SD's 0.18215)
    with torch.no_grad():
        z = torch.cat([vae.encode(x_all[i : i + 256]).latent_dist.mean for i in range(0, min(len(x_all), 2048), 256)])
    vae.register_to_config(scaling_factor=float(1 / z.std()))
    vae.save_pretrained(out / "vae")
    info = {
        "steps": steps,
        "wall_s": round(time.time() - t0, 1),
        "final_mse": float(np.mean([r["mse"] for r in log[-50:]])),
        "scaling_factor": float(1 / z.std()),
    }
    (out / "vae_info.json").write_text(json.dumps(info, indent=2))
    return info


def _latents(out: Path, vae: Any, paths: list[Path], size: int) -> torch.Tensor:
    """Scaled latent means of the training images, cached in out/latents.pt under a key of the VAE weights and
    the image list (encoding every image took minutes at each resumed chunk)."""
    import hashlib

    key = hashlib.sha256()
    for k, v in sorted(vae.state_dict().items()):
        key.update(k.encode() + v.detach().float().numpy().tobytes())
    key.update("\n".join(map(str, paths)).encode() + str(size).encode())
    cache = out / "latents.pt"
    if cache.exists():
        st = torch.load(cache, weights_only=True)
        if st["key"] == key.hexdigest():
            return st["latents"]
    x_all = load_images(paths, size)
    with torch.no_grad():
        lat = torch.cat([vae.encode(x_all[i : i + 256]).latent_dist.mean for i in range(0, len(x_all), 256)])
    lat = lat * vae.config.scaling_factor
    save_state({"key": key.hexdigest(), "latents": lat}, cache)
    return lat


def train_unet(
    data: Path | None,
    out: Path,
    steps: int,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    ckpt_every: int = 500,
    stop_at: int | None = None,
    init_from: Path | None = None,
    pairs: list[tuple[str, Path]] | None = None,
    unet_trainable: str = "all",
    device: str = "cpu",
) -> dict[str, Any]:
    """Joint UNet + text-encoder training on (caption, image) pairs; resumes from out/unet_state.pt.
    ``unet_trainable="cross-kv"`` trains only the UNet's cross-attention key/value projections (and the whole
    text encoder): the Custom-Diffusion-style fine-tune whose changed tensors ship in ~1 MB.
    ``steps`` fixes the schedule; ``stop_at`` ends this call early (state saved) so evaluation can run
    between chunks of one schedule. ``pairs`` replaces the CC3M-format folder ``data`` (fine-tuning on
    another task's text); words missing from an ``init_from`` vocabulary get new embedding rows. ``device``: where
    the models, the batches and the generator (so the noise) live."""
    from diffusers import AutoencoderKL
    from tqdm.auto import tqdm

    cfg = T2IConfig.from_json((out / "t2i_config.json").read_text())
    pairs = pairs if pairs is not None else read_pairs(data, "train")
    tok = make_tokenizer(cfg.vocab, cfg.max_text_len)
    vae = AutoencoderKL.from_pretrained(out / "vae", dtype=torch.float32).eval()
    lat = _latents(out, vae, [p for _, p in pairs], cfg.image_size)  # (N, 4, 12, 12), scaled
    ids = tok([c for c, _ in pairs], padding="max_length", max_length=cfg.max_text_len, truncation=True,
              return_tensors="pt")["input_ids"]  # fmt: skip
    empty = tok([""], padding="max_length", max_length=cfg.max_text_len, return_tensors="pt")["input_ids"]
    torch.manual_seed(seed)
    unet, text = build_unet(cfg), build_text_encoder(cfg)
    if init_from is not None and not (out / "unet_state.pt").exists():
        _warm_start(unet, text, init_from)
    unet, text = unet.to(device), text.to(device)
    lat, ids, empty = lat.to(device), ids.to(device), empty.to(device)
    ema = copy.deepcopy(unet).requires_grad_(False)
    params, opt = _optimizer(unet, text, cfg, unet_trainable, lr)
    sched = train_scheduler(cfg)
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    weight = loss_weights(snr, cfg).to(device)
    state_path = out / "unet_state.pt"
    start, st = resume(state_path, {"unet": unet, "text": text, "ema": ema, "opt": opt}, map_location=device)
    log = st.get("log", [])
    gen = torch.Generator(device).manual_seed(seed * 7919 + start)
    t0 = time.time()
    end = min(steps, stop_at) if stop_at else steps
    bar = tqdm(range(start, end), initial=start, total=steps, desc="unet", unit="step")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 200) * g["scale"]
        idx = torch.randint(0, len(lat), (batch,), generator=gen, device=gen.device)
        z0 = lat[idx]  # (B, 4, 12, 12)
        tokens = ids[idx].clone()  # (B, L)
        drop = torch.rand(batch, generator=gen, device=gen.device) < cfg.cfg_drop
        tokens[drop] = empty
        t = sample_timesteps(cfg, batch, gen)
        noise = torch.randn(z0.shape, generator=gen, device=gen.device)
        zt = sched.add_noise(z0, noise, t)
        cond = text(tokens).last_hidden_state  # (B, L, D)
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        per = ((pred - prediction_target(sched, z0, noise, t)) ** 2).mean(dim=(1, 2, 3))
        loss = (weight[t] * per).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
        log.append({"step": step, "loss": float(loss.detach())})
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean([r['loss'] for r in log[-50:]]):.4f}")
        if (step + 1) % ckpt_every == 0 or step + 1 == end:
            save_state({"unet": unet.state_dict(), "text": text.state_dict(), "ema": ema.state_dict(),
                        "opt": opt.state_dict(), "step": step + 1, "log": log}, state_path)  # fmt: skip
            export_pipeline(out, out / "pipeline", ema, text, tok, vae, cfg)
    return {
        "steps": steps,
        "wall_s": round(time.time() - t0, 1),
        "final_loss": float(np.mean([r["loss"] for r in log[-200:]])),
    }


def _warm_start(unet: Any, text: Any, init_from: Path) -> None:
    """Start from an exported pipeline (e.g. the shipped backbone): weights only, a fresh optimizer and schedule; the
    EMA starts from the exported (EMA) UNet. Words missing from its vocabulary get new embedding rows."""
    from safetensors.torch import load_file
    from transformers import CLIPTextModel

    src = {k: v.float() for k, v in load_file(init_from / "unet" / "diffusion_pytorch_model.safetensors").items()}
    missing, unexpected = unet.load_state_dict(src, strict=False)
    if unexpected or set(missing) - _layout_keys(unet):
        raise ValueError(f"{init_from}/unet does not match this UNet: missing {missing}, unexpected {unexpected}")
    src_text = CLIPTextModel.from_pretrained(init_from / "text_encoder", dtype=torch.float32).state_dict()
    key = next(k for k in src_text if k.endswith("embeddings.token_embedding.weight"))
    own = text.state_dict()[key]  # (V, D); V grows when the vocabulary was extended for fine-tuning
    if src_text[key].shape[0] < own.shape[0]:
        rows = own.clone()
        rows[: src_text[key].shape[0]] = src_text[key]
        src_text[key] = rows
    text.load_state_dict(src_text)


def _optimizer(unet: Any, text: Any, cfg: T2IConfig, unet_trainable: str, lr: float) -> tuple[list[Any], Any]:
    """The trained parameters (all of the UNet, or its cross-attention k/v only, and the text encoder) and their
    AdamW, the layout parameters in their own group at ``cfg.layout_lr_scale``."""
    if unet_trainable not in ("all", "cross-kv"):
        raise ValueError(f"unet_trainable must be 'all' or 'cross-kv', got {unet_trainable!r}")
    if unet_trainable == "cross-kv":
        kv = cross_kv_names(unet)
        for n, p in unet.named_parameters():
            p.requires_grad_(n in kv)
    params = [p for p in unet.parameters() if p.requires_grad] + list(text.parameters())
    layout_keys = _layout_keys(unet)
    layout = [p for n, p in unet.named_parameters() if n in layout_keys and p.requires_grad]
    rest = [p for p in params if id(p) not in {id(q) for q in layout}]
    groups = [{"params": rest, "scale": 1.0}] + ([{"params": layout, "scale": cfg.layout_lr_scale}] if layout else [])
    return params, torch.optim.AdamW(groups, lr=lr, weight_decay=1e-2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["vae", "unet"])
    ap.add_argument("--data", type=Path, required=True, help="CC3M-format folder (cc3m_train.tsv)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stop-at", type=int, default=None, help="end this call at this step (schedule unchanged)")
    ap.add_argument("--init-from", type=Path, default=None, help="warm-start the UNet from an exported pipeline")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.part == "vae":
        print(train_vae(args.data, args.out, args.steps, args.batch, args.lr or 2e-3, args.seed))
    else:
        print(
            train_unet(
                args.data,
                args.out,
                args.steps,
                args.batch,
                args.lr or 1e-3,
                args.seed,
                stop_at=args.stop_at,
                init_from=args.init_from,
            )
        )


if __name__ == "__main__":
    main()
