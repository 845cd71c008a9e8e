"""reference_model.t2i: the UNet's attention is as wide as configured (diffusers' attention_head_dim trap)."""

from __future__ import annotations

from reference_model.t2i import T2IConfig, build_unet, build_vocab, unet_heads


def test_attention_heads_have_the_configured_width() -> None:
    cfg = T2IConfig(vocab=build_vocab(["a big red circle at the top left ."]))
    unet = build_unet(cfg)
    widths = {name: m.inner_dim // m.heads for name, m in unet.named_modules() if name.endswith(("attn1", "attn2"))}
    assert widths and min(widths.values()) >= cfg.attention_head_width  # was 1 channel per head at the first level
    assert unet_heads(cfg) == tuple(c // 32 for c in cfg.unet_channels)
    inner = {
        m.inner_dim for name, m in unet.named_modules() if name.startswith("down_blocks.0") and name.endswith("attn2")
    }
    assert inner == {cfg.unet_channels[0]}  # no narrowing below the block's channel count


def test_positional_unet_round_trips_through_a_pipeline_folder(tmp_path) -> None:
    """The position-embedding UNet saves as a diffusers pipeline folder, StableDiffusionPipeline loads it back
    with the embedding intact, and sampling runs; the embedding changes outputs per location."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    from reference_model import t2i

    cfg = T2IConfig(vocab=build_vocab(["a big red circle at the top left"]), unet_channels=(16, 32, 32),
                    attention_head_width=16, vae_channels=(16, 16, 16))  # fmt: skip
    torch.manual_seed(0)
    unet, text, vae = t2i.build_unet(cfg), t2i.build_text_encoder(cfg), t2i.build_vae(cfg)
    assert type(unet).__name__ == "PositionalUNet2DConditionModel"
    z = torch.zeros(1, 4, 12, 12)
    cond = torch.zeros(1, 5, cfg.text_hidden)
    base = unet(z, 10, encoder_hidden_states=cond).sample
    with torch.no_grad():
        unet.conv_in.pos[:, 0, 0] = 3.0  # only the top-left latent pixel gets a position signal
        moved = unet(z, 10, encoder_hidden_states=cond).sample
    diff = (moved - base).abs().sum(1)[0]  # (12, 12)
    assert diff[0, 0] > 0 and diff[0, 0] > diff[-1, -1]
    # the text-to-layout map: a no-op at init; once its mix is non-zero, two captions give different spatial maps
    a, b = torch.randn(1, 5, cfg.text_hidden), torch.randn(1, 5, cfg.text_hidden)
    with torch.no_grad():
        unet.conv_in.text = a
        assert torch.equal(unet.conv_in(z), base_in := unet.conv_in(z))  # zero mix: the text adds nothing yet
        unet.conv_in.text = None
        assert torch.equal(unet.conv_in(z), base_in)
        unet.conv_in.layout_mix.weight.normal_()
        unet.conv_in.text = a
        ma = unet.conv_in(z)
        unet.conv_in.text = b
        mb = unet.conv_in(z)
        unet.conv_in.text = None
    assert not torch.allclose(ma, mb)
    assert (ma - mb).abs().sum(1).std() > 0  # differs by location, not by a constant
    assert unet.conv_in.text is None
    tok = t2i.make_tokenizer(cfg.vocab, cfg.max_text_len)
    t2i.export_pipeline(tmp_path, tmp_path / "pipe", unet, text, tok, vae, cfg)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "pipe", safety_checker=None)
    assert torch.equal(pipe.unet.conv_in.pos, unet.conv_in.pos)
    assert isinstance(pipe.vae, AutoencoderKL)
    out = pipe(["a big red circle"], num_inference_steps=2, height=48, width=48, output_type="np",
               generator=torch.Generator().manual_seed(0)).images  # fmt: skip
    assert out.shape == (1, 48, 48, 3)


def test_old_configs_load_without_the_position_embedding() -> None:
    import json

    d = json.loads(T2IConfig(vocab=["a"]).to_json())
    del d["position_embedding"]
    assert T2IConfig.from_json(json.dumps(d)).position_embedding is False


def test_loss_weights_in_x0_terms() -> None:
    """epsilon: Min-SNR (x0 weight min(SNR, 5)); v: x0 weight min(SNR, 5) + 1, i.e. ~1 where SNR ~ 0, where the
    layout of a scene is decided. Checked against the x0-space identities |d eps|^2 = SNR |d x0|^2 and
    |d v|^2 = (SNR + 1) |d x0|^2 on a real schedule."""
    import torch

    from reference_model import losses, t2i

    snr = torch.tensor([0.01, 1.0, 5.0, 100.0])
    eps = losses.loss_weights(snr, T2IConfig(prediction_type="epsilon"))
    v = losses.loss_weights(snr, T2IConfig(prediction_type="v_prediction"))
    assert torch.allclose(eps * snr, torch.tensor([0.01, 1.0, 5.0, 5.0]))
    assert torch.allclose(v * (snr + 1), torch.tensor([1.01, 2.0, 6.0, 6.0]))
    # the identity behind the x0 terms, on diffusers' own v target
    sched = t2i.train_scheduler(T2IConfig(prediction_type="v_prediction"))
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    t = torch.tensor([5, 500, 990])
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    zt = sched.add_noise(x0, noise, t)
    v_true = sched.get_velocity(x0, noise, t)
    dv = 0.1 * torch.randn(3, 4, 2, 2, generator=g)
    x0_hat = a.sqrt() * zt - (1 - a).sqrt() * (v_true + dv)  # x0 recovered from a perturbed v
    snr_t = (a / (1 - a)).flatten()
    ratio = (dv**2).sum((1, 2, 3)) / ((x0_hat - x0) ** 2).sum((1, 2, 3))
    assert torch.allclose(ratio, snr_t + 1, rtol=1e-3)
    import pytest

    with pytest.raises(ValueError, match="prediction_type"):
        losses.loss_weights(snr, T2IConfig(prediction_type="sample"))


def test_minigpt5_diffusion_loss_follows_the_schedulers_prediction_type() -> None:
    """The MiniGPT-5 latent loss regresses noise for an epsilon T2I (SD-2.1-base, the official setting) and the
    velocity sqrt(a) eps - sqrt(1-a) x0 for a v-prediction T2I, with diffusers' Min-SNR weights; recomputed by hand
    with a UNet that predicts zeros."""
    from types import SimpleNamespace

    import torch

    from reference_model import t2i
    from reference_model.losses import diffusion_loss

    zero_unet = lambda z, t, encoder_hidden_states: SimpleNamespace(sample=torch.zeros_like(z))  # noqa: E731
    z0, cond = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(6, 2, 8)
    for kind in ("epsilon", "v_prediction"):
        sched = t2i.sample_scheduler(T2IConfig(prediction_type=kind))
        got = diffusion_loss(zero_unet, sched, z0, cond, torch.Generator().manual_seed(7), snr_gamma=5.0)
        g = torch.Generator().manual_seed(7)  # replay the draws: timesteps, then noise
        t = torch.randint(0, 1000, (6,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
        snr = (a / (1 - a)).flatten()
        if kind == "epsilon":
            target, w = noise, torch.clamp(snr, max=5.0) / snr
        else:
            target, w = a.sqrt() * noise - (1 - a).sqrt() * z0, torch.clamp(snr, max=5.0) / (snr + 1)
        want = (w * (target**2).mean(dim=(1, 2, 3))).mean()
        assert torch.allclose(got, want, rtol=1e-5), kind


def test_minigpt5_diffusion_loss_can_follow_the_backbone_recipe() -> None:
    """image_recipe 'backbone': timesteps from the backbone's high-noise share and its x0 weight min(SNR,5)+1, so
    the steps that place objects (t >= 900) weigh ~1 instead of the official Min-SNR ~SNR (< 0.05 there)."""
    from types import SimpleNamespace

    import torch

    from reference_model import t2i
    from reference_model.losses import diffusion_loss, snr_weights

    seen: list[torch.Tensor] = []

    def zero_unet(z, t, encoder_hidden_states):  # records the timesteps it is asked about
        seen.append(t.clone())
        return SimpleNamespace(sample=torch.zeros_like(z))

    recipe = T2IConfig(prediction_type="v_prediction", high_noise_fraction=1.0, high_noise_from=900)
    sched = t2i.sample_scheduler(recipe)
    z0, cond = torch.randn(64, 4, 3, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(64, 2, 8)
    got = diffusion_loss(zero_unet, sched, z0, cond, torch.Generator().manual_seed(7), 5.0, backbone_recipe=recipe)
    t = seen[-1]
    assert int(t.min()) >= 900 and int(t.max()) < 1000
    a = sched.alphas_cumprod[t].double()
    snr = a / (1 - a)
    w = (torch.clamp(snr, max=5.0) + 1) / (snr + 1)
    assert float(w.min()) > 0.9
    assert float(snr_weights(sched.alphas_cumprod, t, 5.0, "v_prediction").max()) < 0.05
    # replay the noise (drawn after the three timestep draws) and recompute the weighted velocity loss
    g = torch.Generator().manual_seed(7)
    torch.randint(0, 1000, (64,), generator=g), torch.randint(900, 1000, (64,), generator=g)
    torch.rand(64, generator=g)
    noise = torch.randn(z0.shape, generator=g)
    a4 = a.float().view(-1, 1, 1, 1)
    target = a4.sqrt() * noise - (1 - a4).sqrt() * z0
    want = (w.float() * (target**2).mean(dim=(1, 2, 3))).mean()
    assert torch.allclose(got, want, rtol=1e-5)


def test_x0_weight_floor_raises_only_the_noisiest_steps() -> None:
    """x0_floor f: the x0 weight is max(min(SNR, 5), f), i.e. v weight max(min(SNR,5), f) / (SNR+1) and epsilon
    weight max(min(SNR,5), f) / SNR (hand-computed), the official Min-SNR weight wherever it is above f, and
    diffusion_loss passes the floor through."""
    from types import SimpleNamespace

    import torch

    from reference_model import t2i
    from reference_model.losses import diffusion_loss, snr_weights

    sched = t2i.sample_scheduler(T2IConfig(prediction_type="v_prediction"))
    t = torch.arange(0, 1000, 7)
    a = sched.alphas_cumprod[t].double()
    snr = a / (1 - a)
    x0 = torch.clamp(torch.clamp(snr, max=5.0), min=0.25)
    got_v = snr_weights(sched.alphas_cumprod, t, 5.0, "v_prediction", 0.25).double()
    got_e = snr_weights(sched.alphas_cumprod, t, 5.0, "epsilon", 0.25).double()
    assert torch.allclose(got_v, x0 / (snr + 1), rtol=1e-5) and torch.allclose(got_e, x0 / snr, rtol=1e-5)
    official = snr_weights(sched.alphas_cumprod, t, 5.0, "v_prediction").double()
    above = torch.clamp(snr, max=5.0) >= 0.25
    assert torch.allclose(got_v[above], official[above]) and bool((got_v[~above] > official[~above]).all())
    assert float(got_v[t >= 950].min()) > 0.2 > float(official[t >= 950].max())

    def zero_unet(z, t, encoder_hidden_states):
        return SimpleNamespace(sample=torch.zeros_like(z))

    z0, cond = torch.randn(32, 4, 3, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(32, 2, 8)
    base = diffusion_loss(zero_unet, sched, z0, cond, torch.Generator().manual_seed(3), 5.0)
    floored = diffusion_loss(zero_unet, sched, z0, cond, torch.Generator().manual_seed(3), 5.0, x0_floor=0.25)
    assert float(floored) > float(base)  # same draws, only the noisy steps' weights went up


def test_high_noise_timestep_share() -> None:
    """With high_noise_fraction f, P(t >= from) = f + (1 - f) * (T - from) / T; all t stay in [0, T)."""
    import torch

    from reference_model import losses

    cfg = T2IConfig(high_noise_fraction=0.5, high_noise_from=900)
    t = losses.sample_timesteps(cfg, 40_000, torch.Generator().manual_seed(0))
    assert int(t.min()) >= 0 and int(t.max()) < cfg.train_timesteps
    share = float((t >= 900).float().mean())
    assert abs(share - 0.55) < 4 * (0.55 * 0.45 / 40_000) ** 0.5
    plain = losses.sample_timesteps(T2IConfig(high_noise_fraction=0.0), 40_000, torch.Generator().manual_seed(0))
    assert abs(float((plain >= 900).float().mean()) - 0.1) < 4 * (0.1 * 0.9 / 40_000) ** 0.5
