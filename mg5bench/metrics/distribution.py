"""Distribution metrics: FID and KID through torchmetrics on the evaluator's image features, the
Inception Score (only with real Inception weights), and the official per-story FID (flagged).

Features are encoded once per run; torchmetrics receives them through a pass-through feature module,
so its float64 state and Frechet computation are used as is. Generated samples without an image are
left out of the fake set (N is reported for both sets).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mg5bench.metrics.base import FeatureBank, Metric, MetricContext, ScoreItem

FID_MIN_N = 2048  # below this FID is biased upward: compare only at equal N
MEANINGFUL_MIN_N = 50  # below this a set distance says next to nothing: flagged as not meaningful


def _passthrough(dim: int) -> Any:
    import torch

    class Features(torch.nn.Module):
        """Features already computed by the run's evaluator go straight into torchmetrics' state."""

        def __init__(self) -> None:
            super().__init__()
            self.num_features = dim

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.double()

    return Features()


def frechet_distance_torchmetrics(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets with torchmetrics' FrechetInceptionDistance (float64)."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        return float("nan")
    fid = FrechetInceptionDistance(feature=_passthrough(real.shape[1]), normalize=False)
    fid.update(torch.from_numpy(np.ascontiguousarray(real, dtype=np.float64)), real=True)
    fid.update(torch.from_numpy(np.ascontiguousarray(fake, dtype=np.float64)), real=False)
    return float(fid.compute())


def frechet_distance_weighted(real: np.ndarray, wr: np.ndarray, fake: np.ndarray, wf: np.ndarray) -> float:
    """torchmetrics' FID formula in float64 numpy on sets where row i counts ``w[i]`` times (a bootstrap replicate):
    the same means, unbiased covariances and sqrt of the eigenvalues of sigma_real @ sigma_fake, without building a
    torchmetrics object per replicate (about 60x faster; equal to ``frechet_distance_torchmetrics`` on the expanded
    sets to 1e-9, tested)."""
    nr, nf = float(wr.sum()), float(wf.sum())
    if nr < 2 or nf < 2:
        return float("nan")

    def moments(x: np.ndarray, w: np.ndarray, n: float) -> tuple[np.ndarray, np.ndarray]:
        mu = (w[:, None] * x).sum(0) / n
        d = x - mu
        return mu, (w[:, None] * d).T @ d / (n - 1)

    mu1, s1 = moments(real, wr, nr)
    mu2, s2 = moments(fake, wf, nf)
    c = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(np.complex128)).real.sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * c)


class _FeatureSets(Metric):
    """Collects (real, fake) raw image features per item; fake is absent when nothing was produced."""

    ci_note = (
        "cluster-bootstrap percentile interval; resampling duplicates samples, which biases set distances "
        "upward, so the interval shows sampling spread and may lie above the point estimate"
    )

    def reset(self) -> None:
        super().reset()
        self.real: list[np.ndarray | None] = []
        self.fake: list[np.ndarray | None] = []

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        for item in items:
            self.items.append(item)
            self.real.append(bank.distribution_raw(item.gt_image) if item.gt_image else None)
            self.fake.append(bank.distribution_raw(item.gen_image) if item.gen_image else None)

    def _sets(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(weights).round().astype(int)
        real = [f for f, k in zip(self.real, w, strict=True) if f is not None for _ in range(k)]
        fake = [f for f, k in zip(self.fake, w, strict=True) if f is not None for _ in range(k)]
        dim = next((f.shape[0] for f in self.real + self.fake if f is not None), 1)
        return (np.stack(real) if real else np.zeros((0, dim))), (np.stack(fake) if fake else np.zeros((0, dim)))

    def n(self) -> dict[str, int]:
        n_fake = sum(f is not None for f in self.fake)
        return {self.name: n_fake}

    def counts(self) -> dict[str, int]:
        return {
            "n_real": sum(f is not None for f in self.real),
            "n_fake": sum(f is not None for f in self.fake),
        }

    @property
    def warning(self) -> str | None:
        """Under ~50 images per set a distance between two feature distributions is not meaningful."""
        if self.items and self.counts()["n_fake"] == 0:
            return ("no generated image: every output lacks an image, so there is no generated set and the distance "
                    "is undefined (read the image rate)")  # fmt: skip
        n = min(self.counts().values()) if self.items else 0
        if n < MEANINGFUL_MIN_N:
            return f"N={n} < {MEANINGFUL_MIN_N} images: not meaningful (a set distance needs many images)"
        return None


class FID(_FeatureSets):
    """FID: Frechet distance between the target and generated images' evaluator (or Inception) features, as
    torchmetrics computes it, N recorded and a warning below 50 images. Lower is better."""

    name = "fid"
    higher_is_better = False
    variant = "torchmetrics FrechetInceptionDistance on evaluator image embeddings (float64)"

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        """torchmetrics' formula in numpy (``frechet_distance_weighted``: equal to torchmetrics to 1e-9, tested),
        with row i counted ``weights[i]`` times: the value and every bootstrap replicate without building a
        torchmetrics object each time, and a rescoring without importing torch."""
        w = np.asarray(weights)
        dim = next((f.shape[0] for f in self.real + self.fake if f is not None), 1)
        rows = [(f, k) for f, k in zip(self.real, w, strict=True) if f is not None and k > 0]
        frows = [(f, k) for f, k in zip(self.fake, w, strict=True) if f is not None and k > 0]
        real = np.stack([f for f, _ in rows]) if rows else np.zeros((0, dim))
        fake = np.stack([f for f, _ in frows]) if frows else np.zeros((0, dim))
        wr = np.asarray([k for _, k in rows], dtype=np.float64)
        wf = np.asarray([k for _, k in frows], dtype=np.float64)
        return {self.name: frechet_distance_weighted(real.astype(np.float64), wr, fake.astype(np.float64), wf)}

    @property
    def warning(self) -> str | None:
        n = min(self.counts().values()) if self.items else 0
        if n < MEANINGFUL_MIN_N or (self.items and self.counts()["n_fake"] == 0):
            return super().warning
        if n < FID_MIN_N:
            return f"N={n} < {FID_MIN_N}: FID is biased upward at small N; compare only at equal N and read KID"
        return None


class KID(_FeatureSets):
    """KID with torchmetrics (polynomial kernel degree 3, gamma 1/d, coef 1; subsets of min(1000, N),
    100 subsets, seeded). Its CI comes from a cluster bootstrap of the full-sample unbiased MMD^2 on
    precomputed kernel matrices (the subset estimate is too slow to bootstrap 1000 times)."""

    name = "kid"
    higher_is_better = False
    variant = "torchmetrics KernelInceptionDistance, poly degree 3, gamma 1/d, coef 1, 100 subsets, seed 0"

    def __init__(self, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> None:
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        super().__init__()
        self._kernels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def compute(self) -> dict[str, float]:
        real, fake = self._sets(np.ones(len(self.items)))
        size = min(self.subset_size, len(real), len(fake))
        if size < 2:
            return {self.name: float("nan"), f"{self.name}.std": float("nan")}
        if size >= len(real) and size >= len(fake):
            # every torchmetrics subset is the whole set (in another order): its mean is the full-sample unbiased
            # MMD^2, computed here without torch (equal to torchmetrics to 1e-9, tested), and there is no spread
            return {self.name: self.statistic(np.ones(len(self.items)))[self.name], f"{self.name}.std": float("nan")}
        import torch
        from torchmetrics.image.kid import KernelInceptionDistance

        with warnings.catch_warnings():  # "will save all extracted features": we hand it features already
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=_passthrough(real.shape[1]), subsets=self.subsets, subset_size=size)
        kid.update(torch.from_numpy(real), real=True)
        kid.update(torch.from_numpy(fake), real=False)
        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)  # torchmetrics draws subsets with torch.randperm
        try:
            mean, std = kid.compute()
        finally:
            torch.random.set_rng_state(state)
        # with N <= the subset size every subset is the whole set: the std over subsets is 0 by construction, not a
        # spread, so it is reported as not applicable (NaN, printed n/a); docs/metrics.md
        whole = size >= len(real) and size >= len(fake)
        return {self.name: float(mean), f"{self.name}.std": float("nan") if whole else float(std)}

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        """Full-sample unbiased MMD^2 with items counted ``weights`` times (bootstrap replicates)."""
        if self._kernels is None:
            idx_r = np.array([i for i, f in enumerate(self.real) if f is not None])
            idx_f = np.array([i for i, f in enumerate(self.fake) if f is not None])
            if len(idx_r) < 2 or len(idx_f) < 2:
                return {self.name: float("nan")}
            x = np.stack([self.real[i] for i in idx_r]).astype(np.float64)
            y = np.stack([self.fake[i] for i in idx_f]).astype(np.float64)
            d = x.shape[1]
            self._kernels = (
                (x @ x.T / d + 1) ** 3,
                (y @ y.T / d + 1) ** 3,
                (x @ y.T / d + 1) ** 3,
                idx_r,
                idx_f,
            )
        kxx, kyy, kxy, idx_r, idx_f = self._kernels
        w, v = np.asarray(weights, dtype=np.float64)[idx_r], np.asarray(weights, dtype=np.float64)[idx_f]
        wn, vn = w.sum(), v.sum()
        if wn < 2 or vn < 2:
            return {self.name: float("nan")}
        xx = (w @ kxx @ w - (w * np.diag(kxx)).sum()) / (wn * (wn - 1))
        yy = (v @ kyy @ v - (v * np.diag(kyy)).sum()) / (vn * (vn - 1))
        xy = (w @ kxy @ v) / (wn * vn)
        return {self.name: float(xx + yy - 2 * xy)}

    def higher(self, key: str) -> bool:
        return False


class FIDPerStoryMiniGPT5(_FeatureSets):
    """The official VIST task-level FID, flagged: each story's FID over its at most five images, averaged over
    stories (rank-deficient covariances: noise, not a distribution distance). Lower is better."""

    name = "fid_per_story_minigpt5"
    higher_is_better = False
    variant = "official VIST task-level FID: FID of each story's <= 5 real vs <= 5 generated images, averaged"
    flag = (
        "compat: rank-deficient covariances (<= 5 samples per story); dominated by noise, not a distribution distance"
    )

    def reset(self) -> None:
        super().reset()
        self._per_story: dict[str, float] | None = None

    def _story_values(self) -> dict[str, float]:
        if self._per_story is None:
            by: dict[str, list[int]] = {}
            for i, item in enumerate(self.items):
                by.setdefault(item.group, []).append(i)
            out = {}
            for g, idx in by.items():
                if len(idx) < 2:
                    continue
                real = [self.real[i] for i in idx if self.real[i] is not None]
                fake = [self.fake[i] for i in idx if self.fake[i] is not None]
                if len(real) >= 2 and len(fake) >= 2:
                    out[g] = frechet_distance_torchmetrics(np.stack(real), np.stack(fake))
            self._per_story = out
        return self._per_story

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        values = self._story_values()
        gw: dict[str, float] = {}
        for item, w in zip(self.items, weights, strict=True):
            gw[item.group] = float(w)
        num = sum(gw[g] * v for g, v in values.items())
        den = sum(gw[g] for g in values)
        return {self.name: num / den if den > 0 else float("nan")}

    def n(self) -> dict[str, int]:
        return {self.name: len(self._story_values())}


class InceptionScore(Metric):
    """torchmetrics InceptionScore (10 splits, seeded) on the generated images; real Inception only."""

    name = "inception_score"
    higher_is_better = True
    variant = "torchmetrics InceptionScore, 10 splits, seed 0, torch-fidelity Inception-v3 logits"

    def __init__(self, inception: Any, splits: int = 10, seed: int = 0) -> None:
        self.inception, self.splits, self.seed = inception, splits, seed
        super().__init__()

    @classmethod
    def from_context(cls, ctx: MetricContext, **kwargs: Any) -> Metric:
        """Only with real Inception-v3 weights (``--inception``): the evaluator's features have no classes."""
        if ctx.inception is None:
            from mg5bench.core.errors import ConfigError
            from mg5bench.scoring.evaluators import INCEPTION_HELP

            raise ConfigError(f"inception_score needs real Inception-v3 weights. {INCEPTION_HELP}")
        return cls(ctx.inception, **kwargs)

    def reset(self) -> None:
        super().reset()
        self.logits: list[np.ndarray | None] = []

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        import torch
        from PIL import Image

        for item in items:
            self.items.append(item)
            if item.gen_image is None:
                self.logits.append(None)
                continue
            with Image.open(item.gen_image) as im:
                arr = np.asarray(im.convert("RGB"))
            x = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W) uint8
            with torch.inference_mode():
                dev = getattr(self.inception, "device", "cpu")
                self.logits.append(self.inception.logits(x.to(dev)).double().cpu().numpy()[0])

    def statistic(self, weights: np.ndarray) -> dict[str, float]:
        import torch
        from torchmetrics.image.inception import InceptionScore as TMInceptionScore

        w = np.asarray(weights).round().astype(int)
        rows = [f for f, k in zip(self.logits, w, strict=True) if f is not None for _ in range(k)]
        if len(rows) < self.splits:
            return {self.name: float("nan")}
        metric = TMInceptionScore(feature=_passthrough(rows[0].shape[0]), splits=self.splits)
        metric.update(torch.from_numpy(np.stack(rows)))
        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            mean, _ = metric.compute()
        finally:
            torch.random.set_rng_state(state)
        return {self.name: float(mean)}
